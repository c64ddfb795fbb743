"""Derived, rebuildable copies of an embedding's vectors beside the DuckDB file.

For each embedding the cache holds the L2-normalised float32 matrix (memory-mapped) and the row ids
in the same order, under ``<db>.cache/<embedding id>-v<version>``. The embedding's ``version`` is
bumped in the same transaction as every change to its vectors, so a cache whose version differs is
stale and is rebuilt; nothing here must be kept.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np

from .scoring import normalize
from .store import scalar

_lock = threading.Lock()
_memo: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}


def _folder(store, embedding_id: str, version: int) -> Path:
    return store.cache_dir / f"{embedding_id}-v{version}"


def invalidate(store, embedding_id: str) -> None:
    """Drop every cached copy of an embedding (they are rebuilt on demand)."""
    with _lock:
        for key in [k for k in _memo if k[0] == str(store.path) and k[1] == embedding_id]:
            del _memo[key]
    if store.cache_dir.exists():
        for p in store.cache_dir.glob(f"{embedding_id}-v*"):
            shutil.rmtree(p, ignore_errors=True)


def _build(catalog, emb, folder: Path) -> None:
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with catalog.store.connect() as con:
        n = scalar(con, "SELECT count(*) FROM vectors WHERE embedding_id = ?", [emb.id])
        ids = np.empty(n, dtype="U36")
        mat = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, emb.dims))
        reader = con.execute(
            "SELECT CAST(row_id AS VARCHAR) AS row_id, vector FROM vectors WHERE embedding_id = ? ORDER BY row_id",
            [emb.id],
        ).to_arrow_reader(100_000)
        pos = 0
        for batch in reader:
            k = batch.num_rows
            ids[pos:pos + k] = batch.column(0).to_numpy(zero_copy_only=False)
            flat = batch.column(1).flatten().to_numpy()
            mat[pos:pos + k] = normalize(flat.reshape(k, emb.dims))
            pos += k
        mat.flush()
        del mat
    np.save(tmp / "ids.npy", ids)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)


def load(catalog, emb) -> tuple[np.ndarray, np.ndarray]:
    """``(row_ids, normalised matrix)`` for the embedding's current version, building it if needed."""
    key = (str(catalog.store.path), emb.id, emb.version)
    with _lock:
        hit = _memo.get(key)
        if hit is not None:
            return hit
        folder = _folder(catalog.store, emb.id, emb.version)
        if not (folder / "ids.npy").exists():
            for stale in catalog.store.cache_dir.glob(f"{emb.id}-v*") if catalog.store.cache_dir.exists() else []:
                if stale != folder:
                    shutil.rmtree(stale, ignore_errors=True)
            _build(catalog, emb, folder)
        ids = np.load(folder / "ids.npy")
        mat = np.load(folder / "vectors.npy", mmap_mode="r")
        for old in [k for k in _memo if k[:2] == key[:2]]:
            del _memo[old]
        _memo[key] = (ids, mat)
        return ids, mat
