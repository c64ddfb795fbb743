"""Exact batched k-nearest-neighbour search under L1 distance (many queries against one pool).

Label-by-similarity asks for the k best rows of a labeled pool for thousands of query rows at once.
A flat faiss L1 index scans the whole pool for every query, so a pool larger than the CPU cache is
read from memory once per query. Here the pool is cut into blocks that stay in the L3 cache; every
block is scanned by all queries (faiss parallelises over queries) and the per-block top-k lists are
merged with faiss's ``ResultHeap``. The result is the same exact top-k.

Distances are L1 between the given (already normalised) float32 rows; turn them into scores with
:func:`catalog.scoring.score_from_l1`.
"""

from __future__ import annotations

import faiss
import numpy as np

# 4096 rows × 512 dims × 4 bytes = 8 MiB: comfortably inside a shared L3 cache.
BLOCK_BYTES = 8 << 20
QUERY_BATCH = 16_384


def _block_rows(dims: int) -> int:
    return max(256, BLOCK_BYTES // (4 * max(1, dims)))


def knn_l1(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)``, each ``len(queries) × k``, nearest first.

    Where the pool has fewer than ``k`` rows the missing places hold ``inf`` and ``-1``.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.asarray(pool, dtype=np.float32)
    nq, nb = len(q), len(x)
    out_d = np.full((nq, k), np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or nb == 0 or k <= 0:
        return out_d, out_i
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape[1]} vs {x.shape[1]}")
    step = _block_rows(q.shape[1])
    blocks = [np.ascontiguousarray(x[s:s + step]) for s in range(0, nb, step)] if nb > step else [
        np.ascontiguousarray(x)]
    for q0 in range(0, nq, QUERY_BATCH):
        qb = q[q0:q0 + QUERY_BATCH]
        heap = faiss.ResultHeap(len(qb), k, keep_max=False)
        start = 0
        for block in blocks:
            kb = min(k, len(block))
            d, i = faiss.knn(qb, block, kb, metric=faiss.METRIC_L1)
            if kb < k:
                d = np.pad(d, ((0, 0), (0, k - kb)), constant_values=np.inf)
                i = np.pad(i, ((0, 0), (0, k - kb)), constant_values=-1)
            i = np.where(i >= 0, i + start, -1)
            heap.add_result(np.ascontiguousarray(d, dtype=np.float32), np.ascontiguousarray(i, dtype=np.int64))
            start += len(block)
        heap.finalize()
        out_d[q0:q0 + len(qb)] = heap.D
        out_i[q0:q0 + len(qb)] = heap.I
    bad = out_i < 0
    if bad.any():
        out_d[bad] = np.inf
    return out_d, out_i
