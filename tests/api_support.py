"""Helpers for the REST API tests: the dashboard's small catalog with color-texture vectors, a token,
and a real ``advtool serve`` on a free port (waited for, stopped by its PID)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dashboard_support import ROOT, ServerProcess, build

from catalog import Catalog

IMAGE_EMBEDDING = "color-texture"  # an off-the-shelf image model that runs here without weights


def build_api_catalog(folder: Path) -> tuple[Path, str, str]:
    """``(db, read-write token, read-only token)`` for the shapes catalog with color-texture vectors."""
    db = build(folder)
    cat = Catalog(db)
    cat.compute_embeddings(IMAGE_EMBEDDING)
    _, rw = cat.tokens.create_token("writer")
    _, ro = cat.tokens.create_token("reader", read_only=True)
    return db, rw, ro


def image_path(folder: Path, key: str) -> Path:
    return folder / "shapes" / key


class ApiServer(ServerProcess):
    """``advtool serve`` in a subprocess on 127.0.0.1 and a free port; :meth:`stop` ends it by PID."""

    def __init__(self, db: Path, log: Path, *extra: str):
        env = dict(os.environ, CATALOG_LOCK_TIMEOUT="5", PYTHONPATH=str(ROOT))
        env.pop("CATALOG_DB", None)
        super().__init__(
            [sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())", "serve",
             "--db", str(db), "--host", "127.0.0.1", "--port", "{port}", *extra],
            env, log, "/health", "advtool serve")
