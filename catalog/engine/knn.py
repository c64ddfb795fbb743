"""Label-by-similarity's neighbour search through the engine (``backend="qdrant"``): the same answer
as the exact one (:func:`catalog.labeling.rule.neighbours`: the k best rows of the labeled pool, never
the query row itself, ties to the smaller pool index, i.e. the smaller row id).

The engine is asked, in Qdrant's exact mode and in one batch, for each query's ``2·(k+1) + 16``
nearest points among the pool's rows (a point-id filter: ids never go stale, unlike payloads). The
candidates are re-scored from the vector cache with the catalog's one score; the k-th distance ``d``
is then certain when the farthest candidate lies beyond ``d`` by more than twice the float32 margin
of :func:`catalog.search.backends.base.range_thresholds` (every pool row the engine did not return is
at least that far, so none of them ties or beats the k-th). Otherwise that query asks again for every
pool point within ``d`` plus the margin, and the k best of those are taken.
"""

from __future__ import annotations

import faiss
import numpy as np

from ..scoring import score_from_l1
from ..vectors.cache import find_rows
from .client import PAGE

SPARE = 16  # candidates asked for beyond 2·(k+1)


def _margin(d: float) -> float:
    return 1e-4 + d * 1e-5  # range_thresholds' widening of an L1 bound


def _within(engine, name, q, threshold, flt) -> list[str]:
    limit = PAGE
    while True:
        got = engine.query(name, q, threshold, flt, limit, 0)
        if len(got) < limit:
            return got
        limit *= 4


def engine_neighbours(engine, name, matrix, pool, queries: np.ndarray, k: int, self_ids=None):
    """``(hit pool indices, hit scores)``, each ``len(queries) × k`` (-1 / nan where the pool holds
    fewer), as :func:`catalog.labeling.rule.neighbours` returns them. ``queries``: normalised
    float32 rows; ``self_ids``: each query's own row id (never a hit), or None."""
    dims = matrix.shape[1]
    pool_ids = np.asarray(pool.row_ids)
    flt = {"must": [("ids", pool_ids.tolist())]}
    limit = int(min(len(pool), 2 * (k + 1) + SPARE))
    idx = np.full((len(queries), k), -1, np.int64)
    dist = np.full((len(queries), k), np.inf, np.float32)
    answers = engine.query_many(name, queries, flt, limit) if len(queries) and limit else [[] for _ in queries]
    for i, got in enumerate(answers):
        q = np.ascontiguousarray(queries[i:i + 1], dtype=np.float32)
        own = None if self_ids is None else str(self_ids[i])
        cand, d = _scored(q, got, own, pool_ids, pool, matrix)
        if len(got) == limit and len(d) >= k:  # the pool holds more: is the k-th distance certain?
            kth = float(np.partition(d, k - 1)[k - 1])
            last = _scored(q, got[-1:], None, pool_ids, pool, matrix)[1]
            if not (len(last) and float(last[0]) > kth + 2 * _margin(kth)):
                cand, d = _scored(q, _within(engine, name, q[0], kth + _margin(kth), flt), own, pool_ids, pool, matrix)
        order = np.lexsort((cand, d))[:k]
        idx[i, :len(order)] = cand[order]
        dist[i, :len(order)] = d[order]
    scores = np.where(idx >= 0, score_from_l1(np.where(idx >= 0, dist, 0.0), dims), np.nan)
    return idx, scores


def _scored(q, ids, own, pool_ids, pool, matrix):
    """Pool indices of the returned ids (the query's own row left out) and their exact L1 distances."""
    if own is not None:
        ids = [r for r in ids if r != own]
    pos = find_rows(pool_ids, ids) if ids else np.empty(0, np.int64)
    pos = np.unique(pos[pos >= 0])
    if not len(pos):
        return pos, np.empty(0, np.float32)
    rows = np.ascontiguousarray(matrix[pool.cache_pos[pos]], dtype=np.float32)
    return pos, faiss.pairwise_distances(q, rows, faiss.METRIC_L1)[0]
