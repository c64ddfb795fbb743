"""The float32 L1 scan: every row of a matrix against one or several query vectors, on all cores.

faiss parallelises its distance kernels over queries, not over rows, so one query would use one
core; the scan therefore splits the rows into one contiguous part per thread (faiss releases the
GIL). Several query vectors (``aggregate="max"``) are scored block by block, so the data is read
from memory once whatever the number of anchors.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

from ..threads import threads

__all__ = ["l1_scan", "l1_rows", "executor", "threads"]

_BLOCK_ROWS_ONE = 65_536       # rows per kernel call for a single query
_CACHE_BYTES = 1 << 20         # block size for several queries: stays in the core's cache
_QUERY_GROUP = 8               # faiss switches to its own threads above 10 queries; stay below
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != n:
        _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="l1scan")
        _pool_size = n
    return _pool


def _scan_part(mat, queries, out, start, stop, which=None):
    nq, dims = queries.shape
    if nq == 1:
        for s in range(start, stop, _BLOCK_ROWS_ONE):
            e = min(stop, s + _BLOCK_ROWS_ONE)
            out[s:e] = faiss.pairwise_distances(queries, mat[s:e], faiss.METRIC_L1)[0]
        return
    block = max(64, _CACHE_BYTES // (4 * dims))
    for s in range(start, stop, block):
        e = min(stop, s + block)
        part = mat[s:e]
        best = arg = None
        for g in range(0, nq, _QUERY_GROUP):
            dd = faiss.pairwise_distances(queries[g:g + _QUERY_GROUP], part, faiss.METRIC_L1)
            if which is None:
                d = dd.min(axis=0)
                best = d if best is None else np.minimum(best, d, out=best)
                continue
            a = dd.argmin(axis=0)  # the first (lowest index) on ties
            d = dd[a, np.arange(len(a))]
            if best is None:
                best, arg = d, a + g
            else:
                better = d < best  # strictly: an earlier query keeps a tie
                best[better], arg[better] = d[better], a[better] + g
        out[s:e] = best
        if which is not None:
            which[s:e] = arg


def l1_scan(mat: np.ndarray, queries: np.ndarray, n_threads: int | None = None, nearest: bool = False):
    """L1 distance of every row of ``mat`` to the nearest of ``queries`` (float32, one per row).

    With ``nearest=True``: ``(distances, which)``, ``which`` the index of that nearest query per row
    (int32; the lowest index on ties), computed in the same pass."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = len(mat)
    out = np.empty(n, dtype=np.float32)
    which = np.zeros(n, dtype=np.int32) if nearest else None
    multi = which if nearest and len(queries) > 1 else None
    if n == 0:
        return (out, which) if nearest else out
    t = n_threads or threads()
    t = max(1, min(t, n // 4096 or 1))
    if t == 1:
        _scan_part(mat, queries, out, 0, n, multi)
        return (out, which) if nearest else out
    bounds = np.linspace(0, n, t + 1).astype(int)
    futures = [executor(t).submit(_scan_part, mat, queries, out, int(a), int(b), multi)
               for a, b in zip(bounds[:-1], bounds[1:])]
    for f in futures:
        f.result()
    return (out, which) if nearest else out


def l1_rows(mat: np.ndarray, positions: np.ndarray, queries: np.ndarray, nearest: bool = False):
    """:func:`l1_scan` restricted to the rows at ``positions`` (ascending): the same float32 values
    (the same faiss kernel per pair) and, with ``nearest``, the same nearest query. Blocks where many
    rows are wanted are scanned whole (no gather); elsewhere the wanted rows are gathered."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    positions = np.asarray(positions, dtype=np.int64)
    out = np.empty(len(positions), dtype=np.float32)
    which = np.zeros(len(positions), dtype=np.int32) if nearest else None
    if len(positions) == 0:
        return (out, which) if nearest else out
    multi = nearest and len(queries) > 1
    edges = np.searchsorted(positions, np.arange(0, len(mat) + _BLOCK_ROWS_ONE, _BLOCK_ROWS_ONE))
    jobs = [(int(b), int(a), int(z)) for b, (a, z) in enumerate(zip(edges[:-1], edges[1:])) if z > a]

    def run(job):
        b, a, z = job
        s = b * _BLOCK_ROWS_ONE
        want = positions[a:z]
        dense = (z - a) * 8 > _BLOCK_ROWS_ONE
        part = np.asarray(mat[s:min(len(mat), s + _BLOCK_ROWS_ONE)]) if dense else np.asarray(mat[want])
        d = np.empty(len(part), dtype=np.float32)
        w = np.zeros(len(part), dtype=np.int32) if multi else None
        _scan_part(part, queries, d, 0, len(part), w)
        pick = want - s if dense else slice(None)
        out[a:z] = d[pick]
        if multi:
            which[a:z] = w[pick]

    t = max(1, min(threads(), len(jobs)))
    if t == 1:
        for j in jobs:
            run(j)
    else:
        for f in [executor(t).submit(run, j) for j in jobs]:
            f.result()
    return (out, which) if nearest else out
