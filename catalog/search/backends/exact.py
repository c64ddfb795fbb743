"""Exact backend: a full L1 scan of the memory-mapped, normalised vector cache (the reference every
other backend is measured against)."""

from __future__ import annotations

import numpy as np

from ...scoring import scale, score_from_l1
from ...vectors.cache import find_rows
from ..scan import l1_scan
from .base import Backend, Capabilities, Context, Matches, Query, in_range, range_thresholds


class ExactBackend(Backend):
    """Every row is scored; for several query vectors the nearest one is found in the same pass."""

    name = "exact"
    capabilities = Capabilities(exact=True, orders=("desc", "asc"), recall=1.0)

    def __init__(self, emb, ids: np.ndarray, matrix: np.ndarray):
        self.emb = emb
        self.ids, self.matrix = ids, matrix

    @classmethod
    def open(cls, context: Context, emb, exact=None) -> "ExactBackend":
        if exact is not None:
            return exact
        ids, matrix = context.cache.load(emb)
        return cls(emb, ids, matrix)

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
