"""The engine's HNSW index and its measured recall (the ``qdrant-hnsw`` backend's), as the IVF index
of the approximate backend measures its own (:mod:`catalog.search.ivf`).

Building it (:func:`build_hnsw`, ``advtool engine index``, or the first ``qdrant-hnsw`` search of a
synced copy) asks the engine to index the collection (Qdrant Edge: ``EdgeShard.optimize``, which
blocks until its segments are merged and carry an HNSW graph; a server indexes by itself in the
background, and what it has not indexed yet is searched by a full scan), then calibrates the search
width ``hnsw_ef``: on :data:`CALIBRATION_QUERIES` sample rows, the smallest value of :data:`EFS` whose
mean recall against the exact scan reaches :data:`TARGET_RECALL`, for their top 100 and for the score
ranges holding their ~30 and ~100 nearest rows (the smallest of the three means), then one step
wider as a margin. The result (``ef``, ``recall``, what was measured) is a small derived file
``qdrant-hnsw.json`` in the embedding's cache folder (``<db>.cache/<embedding id>-v<version>/``),
valid for the engine URL, collection and point count it was measured on.
"""

from __future__ import annotations

import json
import os
import threading
import time

import faiss
import numpy as np

from .client import connect

META_FILE = "qdrant-hnsw.json"
TARGET_RECALL = 0.99
CALIBRATION_QUERIES = 64
EFS = (64, 128, 256, 512, 1024, 2048, 4096)  # hnsw_ef steps; the last is used when none reaches the target
FIRST_LIMIT = 128  # a range query asks for this many points first, then 4x more while the answer is full
MAX_LIMIT = 1 << 20  # a range query's largest answer from the HNSW index (beyond it: exact mode)
FORMAT = 1


def _path(store, emb):
    return store.cache_dir / f"{emb.id}-v{emb.version}" / META_FILE


def hnsw_info(store, emb) -> dict | None:
    """The stored calibration (``ef``, ``recall``, ``url``, ``collection``, ``count``, ...), or None."""
    try:
        meta = json.loads(_path(store, emb).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def current(meta: dict | None, cfg, emb, count: int) -> bool:
    """Whether ``meta`` was measured on this engine's copy of ``emb`` as it is now."""
    return bool(meta) and (meta.get("url"), meta.get("collection"), meta.get("version"), meta.get("count")) == \
        (cfg.url, cfg.collection(emb), emb.version, count)


def range_ids(engine, name, q, threshold, flt, ef, limit=None) -> tuple[list[str], bool]:
    """Ids within L1 ``threshold`` from the HNSW index, nearest first, and whether the answer held
    fewer than it asked for. ``limit``: a top-k answer; else the limit grows until the answer is
    shorter than it (at most :data:`MAX_LIMIT`)."""
    if limit is not None:
        got = engine.query(name, q, threshold, flt, int(limit), 0, ef=max(int(ef), int(limit)))
        return got, len(got) < limit
    size = FIRST_LIMIT
    while True:
        got = engine.query(name, q, threshold, flt, size, 0, ef=max(int(ef), size))
        if len(got) < size or size >= MAX_LIMIT:
            return got, len(got) < size
        size *= 4


def _l1(mat, q, step=65_536) -> np.ndarray:
    """L1 distances of every row of ``mat`` to ``q`` (float32, read in blocks)."""
    return np.concatenate([faiss.pairwise_distances(q[None, :], np.ascontiguousarray(mat[s:s + step], np.float32),
                                                    faiss.METRIC_L1)[0] for s in range(0, len(mat), step)])


def calibrate(engine, name, ids, mat, k=100, target=TARGET_RECALL, seed=7) -> tuple[int, float, int]:
    """``(ef, recall, sample size)``: the smallest step of :data:`EFS` reaching ``target`` on the
    sample, one step wider, and the recall measured at it."""
    n = len(ids)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(CALIBRATION_QUERIES, n), replace=False))
    k = min(k, n)
    near = min(30, k) - 1
    cases = []
    for i in sample:
        q = np.asarray(mat[i], dtype=np.float32)
        d = _l1(mat, q)
        top = np.argpartition(d, k - 1)[:k]
        kth = float(d[top].max())
        r30 = float(np.partition(d[top], near)[near])
        ranges = [(r, {str(ids[j]) for j in np.flatnonzero(d <= r)}) for r in (r30, kth)]
        cases.append((q, {str(ids[j]) for j in top}, ranges, kth))

    def run(ef):
        top_rec, rng_rec = [], ([], [])
        for q, truth, ranges, kth in cases:
            got, _ = range_ids(engine, name, q, kth + 1e-3, None, ef, limit=k)
            top_rec.append(len(truth & set(got)) / len(truth))
            for (r, want), out in zip(ranges, rng_rec):
                got, _ = range_ids(engine, name, q, r + 1e-4 + r * 1e-5, None, ef)
                out.append(len(want & set(got)) / len(want))
        return min(float(np.mean(top_rec)), *(float(np.mean(x)) for x in rng_rec))

    chosen = len(EFS) - 1
    for i, ef in enumerate(EFS):
        if run(ef) >= target:
            chosen = min(len(EFS) - 1, i + 1)  # one step wider than needed: a margin
            break
    return EFS[chosen], run(EFS[chosen]), len(cases)


def build_hnsw(store, cache, cfg, emb, count: int, target_recall: float = TARGET_RECALL) -> dict:
    """Index ``emb``'s synced copy on the engine and calibrate it (``count``: the points the sync
    record says it holds); returns the stored description."""
    engine, name = connect(cfg), cfg.collection(emb)
    ids, mat = cache.load(emb)
    started = time.perf_counter()
    engine.optimize(name)
    built = time.perf_counter()
    ef, recall, queries = calibrate(engine, name, ids, mat, target=target_recall) if len(ids) else (EFS[0], 1.0, 0)
    meta = {"format": FORMAT, "url": cfg.url, "collection": name, "version": emb.version, "count": int(count),
            "ef": int(ef), "recall": round(float(recall), 4), "target_recall": target_recall,
            "calibration_queries": queries, "indexed_vectors": engine.indexed(name),
            "index_seconds": round(built - started, 2), "calibration_seconds": round(time.perf_counter() - built, 2)}
    path = _path(store, emb)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{META_FILE}.tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, path)
    return meta
