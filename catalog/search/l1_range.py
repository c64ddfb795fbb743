"""Exact all-pairs L1 range search: every pair of rows of one matrix within a distance.

Near-duplicate detection asks for every pair scoring at least τ, i.e. with L1 distance at most
``(1 − τ)·2√D``. The native kernel (:mod:`.l1_knn`) takes that distance as a cap: a row whose 8-bit
lower bound lies above it is never a candidate, so almost every pair is rejected after the half-width
first pass. It returns each row's ``k`` nearest rows within the cap; a row whose ``k`` places are all
filled may have more, and is asked again with ``4·k`` (bounded by the number of rows), so the answer
is exact whatever the group sizes. For wide rows the search runs first on sums of dimension pairs
(a lower bound, half the bytes) and the pairs it leaves are measured on the rows themselves. Without the native kernel a faiss flat L1 ``range_search`` over
blocks of rows gives the same pairs (much slower).

Pairs come back once each (``i < j``) with their float32 distances. ``MAX_PAIRS`` (50 million) bounds
the memory: a threshold that links more pairs than that is refused with a hint to raise it.
"""

from __future__ import annotations

import faiss
import numpy as np

from ..errors import CatalogError
from ..threads import threads
from .l1_knn import _l1kernel, kernel

MAX_PAIRS = 50_000_000
FIRST_K = 16
QUERY_BLOCK = 16_384
_FAISS_BLOCK = 2_048
_VERIFY_CHUNK = 1 << 18
POOL_FROM = 64


def _too_many(n: int) -> CatalogError:
    return CatalogError(f"the threshold links more than {MAX_PAIRS:,} pairs of rows ({n:,} so far); raise the "
                        "minimum score or narrow the rows with a filter", field="min_score")


def _native(q: np.ndarray, x: np.ndarray, max_dist: float, progress=None):
    n, d = x.shape
    out_i, out_j, out_d = [], [], []
    total = 0
    todo = np.arange(len(q))
    k = min(FIRST_K, n)
    done = 0
    while len(todo):
        again = []
        for s in range(0, len(todo), QUERY_BLOCK):
            qpos = todo[s:s + QUERY_BLOCK]
            qb = np.ascontiguousarray(q[qpos])
            dist = np.full((len(qb), k), np.inf, dtype=np.float32)
            idx = np.full((len(qb), k), -1, dtype=np.int64)
            _l1kernel.knn_l1(qb, x, len(qb), n, d, int(k), dist, idx, threads(), True, float(max_dist))
            ok = (idx >= 0) & (dist <= max_dist)
            full = ok[:, -1] if k < n else np.zeros(len(qb), bool)
            again.append(qpos[full])
            keep = ok & ~full[:, None]
            out_i.append(np.broadcast_to(qpos[:, None], idx.shape)[keep])
            out_j.append(idx[keep])
            out_d.append(dist[keep])
            total += len(out_j[-1])
            if total > 2 * MAX_PAIRS:  # each pair of one matrix is found from both of its rows
                raise _too_many(total // 2)
            done += int((~full).sum())
            if progress is not None:
                progress(done, len(q))
        todo = np.concatenate(again) if again else np.empty(0, np.int64)
        k = min(n, k * 4)
    return out_i, out_j, out_d


def _faiss(q: np.ndarray, x: np.ndarray, max_dist: float, progress=None):
    n, d = x.shape
    index = faiss.IndexFlat(d, faiss.METRIC_L1)
    index.add(x)
    out_i, out_j, out_d = [], [], []
    total = 0
    for s in range(0, len(q), _FAISS_BLOCK):
        lims, dist, idx = index.range_search(np.ascontiguousarray(q[s:s + _FAISS_BLOCK]), float(max_dist))
        out_i.append(np.repeat(np.arange(s, s + len(lims) - 1), np.diff(lims.astype(np.int64))))
        out_j.append(idx)
        out_d.append(dist)
        total += len(idx)
        if total > 2 * MAX_PAIRS:
            raise _too_many(total // 2)
        if progress is not None:
            progress(min(len(q), s + _FAISS_BLOCK), len(q))
    return out_i, out_j, out_d


def range_search_l1(queries, pool, max_dist: float, kernel_choice: str | None = None, progress=None):
    """``(query index, pool index, distance)`` of every pool row within L1 ``max_dist`` of each query
    (a query that is also a pool row finds itself)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.ascontiguousarray(pool, dtype=np.float32)
    if len(q) == 0 or len(x) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    finite = bool(np.isfinite(q).all() and np.isfinite(x).all())
    use_native = kernel(kernel_choice) == "native" and finite
    parts = (_native if use_native else _faiss)(q, x, max_dist, progress)
    i, j, dist = (np.concatenate(p) for p in parts)
    return i.astype(np.int64), j.astype(np.int64), dist.astype(np.float32)


def _pooled_candidates(x: np.ndarray, max_dist: float, kernel_choice, progress):
    """Pairs ``i < j`` whose rows of summed dimension pairs lie within ``max_dist``: a superset of the pairs
    within ``max_dist`` (``|a₁ − b₁ + a₂ − b₂| ≤ |a₁ − b₁| + |a₂ − b₂|``), found at half the bytes; the
    margin covers the float32 rounding of the sums."""
    pooled = np.ascontiguousarray(x.reshape(len(x), -1, 2).sum(axis=2, dtype=np.float32))
    i, j, _ = range_search_l1(pooled, pooled, max_dist * (1 + 1e-4) + 1e-5, kernel_choice, progress)
    upper = i < j
    return i[upper], j[upper]


def _distances(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), np.float32)
    for s in range(0, len(i), _VERIFY_CHUNK):
        e = s + _VERIFY_CHUNK
        out[s:e] = np.abs(x[i[s:e]] - x[j[s:e]]).sum(axis=1, dtype=np.float32)
    return out


def range_pairs_l1(x, max_dist: float, kernel_choice: str | None = None, progress=None):
    """``(i, j, distance)`` arrays of every pair ``i < j`` of rows of ``x`` with L1 distance ≤ ``max_dist``,
    sorted by ``(i, j)``. ``progress(done, total)`` is called after each block of rows.

    With the native kernel and an even width of at least ``POOL_FROM`` (64), the search first runs on the
    rows' sums of dimension pairs (a lower bound of every distance, half the bytes: about twice as fast)
    and the candidates it leaves are measured exactly on the rows themselves."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape if x.ndim == 2 else (len(x), 0)
    if n >= 2 and d >= POOL_FROM and d % 2 == 0 and kernel(kernel_choice) == "native" and bool(np.isfinite(x).all()):
        i, j = _pooled_candidates(x, max_dist, kernel_choice, progress)
        dist = _distances(x, i, j)
        ok = dist <= max_dist
        i, j, dist = i[ok], j[ok], dist[ok]
    else:
        i, j, dist = range_search_l1(x, x, max_dist, kernel_choice, progress)
        upper = i < j
        i, j, dist = i[upper], j[upper], dist[upper]
    order = np.lexsort((j, i))
    return i[order], j[order], dist[order]
