"""Shared fixtures: a fresh catalog file per test and the real ``advtool`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import Catalog

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "catalog.duckdb"


@pytest.fixture
def cat(db_path) -> Catalog:
    return Catalog(db_path)


@pytest.fixture
def cli(db_path):
    """Run ``advtool`` (its console-script entry point) against the test's catalog."""

    def run(*args, db=None, input=None, env=None, timeout=300) -> CliResult:
        full_env = dict(os.environ)
        full_env.pop("CATALOG_DB", None)
        full_env.update(env or {})
        cmd = [sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
               "--db", str(db or db_path), *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, input=input, env=full_env, timeout=timeout)
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Six small PNGs in two colour families, in nested folders."""
    root = tmp_path / "imgs"
    for i in range(3):
        p = root / "red" / f"r{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (200 + 20 * i, 10 * i, 0)).save(p)
        p = root / "blue" / f"b{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (0, 10 * i, 200 + 20 * i)).save(p)
    return root


@pytest.fixture
def text_records(tmp_path) -> Path:
    """An NDJSON record file with eight texts in two topics."""
    import json

    texts = {
        "sports": ["The striker scored twice in the final", "A marathon runner broke the course record",
                   "The tennis match went to five sets", "Our team won the basketball championship"],
        "cooking": ["Simmer the tomato sauce for twenty minutes", "Knead the bread dough until smooth",
                    "Roast the vegetables with olive oil", "Whisk the eggs and sugar for the cake"],
    }
    path = tmp_path / "texts.ndjson"
    with open(path, "w") as fh:
        for topic, items in texts.items():
            for i, t in enumerate(items):
                fh.write(json.dumps({"global_key": f"{topic}-{i}", "text": t, "metadata": {"topic": topic, "n": i}}) + "\n")
    return path


def random_unit(n, d, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
