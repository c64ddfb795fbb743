"""Exact backend: a full L1 scan of the memory-mapped, normalised vector cache (the reference every
other backend is measured against).

Where the 8-bit codes are on (``$CATALOG_SEARCH_CODES``, :func:`catalog.vectors.codes.mode`), a
search with a score range narrower than [0, 1], or a top k (descending, no filter), scans the codes
instead and re-scores the candidates from the float32 cache (:mod:`catalog.search.codes_scan`): the
same rows, order, scores and totals as the float32 scan, which stays the path for everything else."""

from __future__ import annotations

import numpy as np

from ...scoring import scale, score_from_l1
from ...vectors import codes as codes_mod
from ...vectors import pooled as pooled_mod
from ...vectors.cache import find_rows
from ..codes_scan import codes_search
from ..scan import l1_scan
from .base import Backend, Capabilities, Context, Matches, Query, in_range, range_thresholds


class ExactBackend(Backend):
    """Every row is scored; for several query vectors the nearest one is found in the same pass."""

    name = "exact"
    capabilities = Capabilities(exact=True, orders=("desc", "asc"), recall=1.0, top_k=True, per_anchor_top_k=True)

    def __init__(self, emb, ids: np.ndarray, matrix: np.ndarray, cache=None):
        self.emb = emb
        self.ids, self.matrix = ids, matrix
        self.cache = cache

    @classmethod
    def open(cls, context: Context, emb, exact=None) -> "ExactBackend":
        if exact is not None:
            return exact
        ids, matrix = context.cache.load(emb)
        return cls(emb, ids, matrix, context.cache)

    @property
    def size(self) -> int:
        return len(self.ids)

    def positions(self, row_ids) -> tuple[np.ndarray, list[str]]:
        """Cache positions of the rows that have a vector, and the ids that have none."""
        row_ids = [str(r) for r in row_ids]
        pos = find_rows(self.ids, row_ids)
        missing = [r for r, p in zip(row_ids, pos) if p < 0]
        return pos[pos >= 0], missing

    def vectors(self, row_ids):
        pos, missing = self.positions(row_ids)
        return np.asarray(self.matrix[pos], dtype=np.float32), missing

    def search(self, query: Query) -> Matches:
        nq = np.atleast_2d(query.vectors).shape[0]
        several = nq > 1
        k = query.limit_hint if query.where is None and query.order == "desc" else None
        everything = query.min_score <= 0 and query.max_score >= 1
        narrow = query.min_score > 0
        if self.cache is not None and self.size and (k is not None or not everything) \
                and nq <= codes_mod.MAX_QUERIES and codes_mod.use_codes(self.size, self.emb.dims, nq, narrow):
            exclude = self.positions(query.exclude)[0] if query.exclude else None
            pooled = pooled_mod.load(self.cache, self.emb) \
                if pooled_mod.wanted(self.size, self.emb.dims, nq, narrow) else None
            pos, scores, which, unlisted = codes_search(
                codes_mod.load(self.cache, self.emb), self.matrix, query.vectors, self.emb.dims, query.min_score,
                query.max_score, k, exclude, nearest=several, pooled=pooled)
            return Matches(self.ids, pos, scores, complete=True, anchors=which, unlisted=unlisted)
        return self.scan(query)

    def scan(self, query: Query) -> Matches:
        """The float32 scan of every row (the reference; the fallback of the codes)."""
        dims = self.emb.dims
        several = np.atleast_2d(query.vectors).shape[0] > 1
        dist, which = l1_scan(self.matrix, query.vectors, nearest=True) if several else \
            (l1_scan(self.matrix, query.vectors), None)
        lo, hi = range_thresholds(query.min_score, query.max_score, dims)
        if lo <= 0 and hi >= scale(dims):
            cand = np.arange(len(dist), dtype=np.int64)
        else:
            cand = np.flatnonzero((dist <= hi) & (dist >= lo))
        scores = score_from_l1(dist[cand], dims)
        keep = in_range(scores, query.min_score, query.max_score)
        if not keep.all():
            cand, scores = cand[keep], scores[keep]
        return Matches(self.ids, cand, scores, complete=True, anchors=None if which is None else which[cand])
