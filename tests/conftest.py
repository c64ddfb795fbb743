"""Shared fixtures: a fresh catalog file per test and the ``advtool`` command line.

``cli`` calls :func:`catalog.cli.main` in this process (fast); in a test marked
``@pytest.mark.cli_process`` it runs every call through the real console-script path in a fresh
interpreter instead: that is for what only a separate process shows (the ``sys.exit`` path, locks
held by another process, signals, imports and import-time state, library warnings and logging that
pytest would capture in-process, start-up time).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import Catalog
from catalog.cli import main as cli_main

pytest_plugins = ["browser_fixtures"]  # server, browser and page for the browser tests

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


def pytest_configure(config):
    config.addinivalue_line("markers", "cli_process: the `cli` fixture runs advtool in a subprocess")


def _exit_code(exc: SystemExit) -> int:
    """The status the interpreter would exit with for ``exc`` (argparse raises SystemExit(2))."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _text(stream: io.StringIO) -> str:
    """What ``subprocess.run(text=True)`` would read: universal newlines (csv writes CRLF)."""
    return stream.getvalue().replace("\r\n", "\n").replace("\r", "\n")


def _cli_in_process(db_path):
    def run(*args, db=None, input=None, env=None, timeout=None) -> CliResult:
        argv = ["--db", str(db or db_path), *map(str, args)]
        out, err = io.StringIO(), io.StringIO()
        stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("CATALOG_DB", raising=False)
            for key, value in (env or {}).items():
                mp.setenv(key, value)
            mp.setattr(sys, "stdin", stdin)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = cli_main(argv)
                except SystemExit as exc:
                    code = _exit_code(exc)
                except Exception:  # what an uncaught exception does to the real process
                    traceback.print_exc()
                    code = 1
        return CliResult(code, _text(out), _text(err))

    return run


def _cli_subprocess(db_path):
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
def cli(db_path, request):
    """Run ``advtool`` against the test's catalog: ``cli(*args, db=None, input=None, env=None)``."""
    if request.node.get_closest_marker("cli_process"):
        return _cli_subprocess(db_path)
    return _cli_in_process(db_path)


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
