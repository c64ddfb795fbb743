"""A small, realistic catalog for the dashboard tests: coloured shapes, short texts, a custom embedding.

The "shapes" embedding is built from what the images show (shape and colour), so similar rows are
predictable: a red circle's nearest rows are the other red circles, then the red squares.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from catalog import Catalog

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"red": (220, 50, 47), "blue": (38, 110, 210), "green": (60, 170, 90), "orange": (240, 150, 40)}
SHAPES = ("circle", "square", "triangle")
VARIANTS = 3
DIMS = 16
WAIT_MS = 30_000  # bounded waits in the browser tests: a rerun on a busy 2-core machine can take seconds


def _draw(shape: str, colour, variant: int, size: int = 160) -> Image.Image:
    bg = (248 - 6 * variant, 246, 240 + 4 * variant)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    m = 22 + 8 * variant
    box = (m, m, size - m, size - m)
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    else:
        d.polygon([(size // 2, m), (size - m, size - m), (m, size - m)], fill=colour)
    return img


def make_images(root: Path) -> Path:
    """36 PNGs: 3 shapes × 4 colours × 3 sizes, under ``root/<shape>/<colour>-<n>.png``."""
    for shape in SHAPES:
        for colour, rgb in COLOURS.items():
            for v in range(VARIANTS):
                p = root / shape / f"{colour}-{v}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                _draw(shape, rgb, v).save(p)
    return root


TEXTS = {
    "sports": ["The striker scored twice in the final minutes", "A marathon runner broke the course record",
               "The tennis match went to five long sets", "Our team won the basketball championship"],
    "cooking": ["Simmer the tomato sauce for twenty minutes", "Knead the bread dough until smooth and elastic",
                "Roast the vegetables with olive oil and thyme", "Whisk the eggs and sugar for the sponge cake"],
}


def make_texts(path: Path) -> Path:
    with open(path, "w") as fh:
        for topic, items in TEXTS.items():
            for i, t in enumerate(items):
                fh.write(json.dumps({"global_key": f"{topic}-{i}", "text": t, "metadata": {"topic": topic}}) + "\n")
    return path


def shape_vector(key: str, rng) -> np.ndarray:
    """A row's vector in the "shapes" embedding: shape and colour blocks plus a little noise."""
    v = np.zeros(DIMS, dtype=np.float64)
    if "/" in key:
        shape, rest = key.split("/", 1)
        colour = rest.split("-")[0]
        v[SHAPES.index(shape)] = 1.0
        v[3 + list(COLOURS).index(colour)] = 1.0
    else:
        topic = key.split("-")[0]
        v[8 + (topic == "cooking")] = 3.0
    v[10:] = rng.normal(scale=0.05, size=DIMS - 10)
    return v


def build(folder: Path, labels: bool = True) -> Path:
    """The catalog file (``folder/catalog.duckdb``) with rows, the "shapes" embedding and a few labels."""
    folder.mkdir(parents=True, exist_ok=True)
    imgs = make_images(folder / "shapes")
    texts = make_texts(folder / "texts.ndjson")
    db = folder / "catalog.duckdb"
    cat = Catalog(db)
    cat.import_datarows([imgs, texts])
    emb = cat.create_embedding("shapes", DIMS)
    rng = np.random.default_rng(7)
    keys = [r["global_key"] for r in cat.iter_datarows()]
    emb.import_vectors(keys, np.array([shape_vector(k, rng) for k in keys]))
    if labels:
        for shape in SHAPES:
            for colour in COLOURS:
                cat.set_labels(f"{shape}/{colour}-0.png", [shape])
        cat.set_labels("sports-0", ["sports"])
        cat.set_labels("cooking-0", ["cooking"])
    return db


def bad_ndjson(cat: Catalog) -> bytes:
    """Three lines, the second one too short (line 2 must be reported)."""
    keys = [r["global_key"] for r in cat.list_datarows(limit=3)]
    lines = [json.dumps({"id": keys[0], "vector": [0.1] * DIMS}),
             json.dumps({"id": keys[1], "vector": [0.1] * (DIMS - 1)}),
             json.dumps({"id": keys[2], "vector": [0.2] * DIMS})]
    return ("\n".join(lines) + "\n").encode()


# -- a real server for the browser tests ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server command in a subprocess on 127.0.0.1 and a free port (``{port}`` in ``cmd``), waited for
    at ``health`` and stopped by PID (:meth:`stop`)."""

    def __init__(self, cmd: list[str], env: dict, log: Path, health: str, what: str):
        self.port = free_port()
        self.log = open(log, "w")
        self.log_path = log
        self.proc = subprocess.Popen([c.format(port=self.port) for c in cmd], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}{health}", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{what} did not start; see {log}: {log.read_text()[-2000:]}")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if not self.log.closed:
            self.log.close()


class Server(ServerProcess):
    """``streamlit run app.py`` on a free port with ``CATALOG_DB`` set; stopped by :meth:`stop`.
    ``address=None`` leaves the listening address to ``.streamlit/config.toml``."""

    def __init__(self, db: Path, log: Path, address: str | None = "127.0.0.1"):
        env = dict(os.environ, CATALOG_DB=str(db), CATALOG_LOCK_TIMEOUT="2")
        flags = ["--server.address", address] if address else []
        super().__init__(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", "{port}",
             *flags, "--server.headless", "true", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            env, log, "/_stcore/health", "streamlit")


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def idle(page) -> None:
    """Wait (bounded) until Streamlit has finished the current run (a Playwright page)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"] [data-testid=\"stStatusWidgetRunningIcon\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')", timeout=WAIT_MS)
    page.wait_for_timeout(300)


def heading(page) -> str:
    """The catalog page's results heading ("44 rows", "2 similar rows with a score in …")."""
    return page.locator(".st-key-results_head h3").first.inner_text(timeout=WAIT_MS)


def wait_heading(page, pattern: str) -> str:
    """Wait (bounded) for a results heading matching ``pattern`` and the end of the run; returns it."""
    page.locator(".st-key-results_head h3", has_text=re.compile(pattern)).first.wait_for(timeout=WAIT_MS)
    idle(page)
    return heading(page)
