"""Approximate backend: the IVF L1 index of :mod:`catalog.search.ivf`, lists visited nearest first,
members scored exactly. ``Matches.complete`` says whether rows in the range may be missing (the
automatic backend choice then falls back to the exact scan)."""

from __future__ import annotations

import math

import numpy as np

from ...scoring import score_from_l1
from ..ivf import TARGET_RECALL, index_info, load_index
from ..scan import threads
from .base import Backend, Capabilities, Context, Matches, Query, in_range, range_thresholds


class ApproximateBackend(Backend):
    """Descending score order only (the lowest scores lie everywhere: no list order helps), and the
    ``score`` sort only (the others need every row of the range, which is what the exact scan gives);
    uses the page size for one query vector (each anchor's own top k would not be enough for ``max``).
    For several query vectors it keeps, per row, which one was nearest (``Matches.anchors``)."""

    name = "approximate"
    capabilities = Capabilities(exact=False, orders=("desc",), sorts=("score",), anchors=True, top_k=True,
                                per_anchor_top_k=False, filters=False, recall=TARGET_RECALL)

    def __init__(self, emb, exact, ivf):
        self.emb = emb
        self.exact = exact
        self.ivf = ivf
        self.meta = ivf.meta if ivf else {}

    @classmethod
    def open(cls, context: Context, emb, exact) -> "ApproximateBackend":
        return cls(emb, exact, load_index(context.store, emb, exact) if exact.size else None)

    @classmethod
    def ready(cls, context: Context, emb) -> bool:
        """Only an index that was built already (builds take minutes at 1M rows) and whose
        calibration found a small share of lists enough."""
        info = index_info(context.store, emb)
        return bool(info and info.get("version") == emb.version and info.get("useful"))

    @property
    def size(self) -> int:
        return self.exact.size

    def vectors(self, row_ids):
        return self.exact.vectors(row_ids)

    def search(self, query: Query) -> Matches:
        if self.ivf is None:
            return Matches(self.exact.ids, np.empty(0, np.int64), np.empty(0), complete=True)
        queries = np.ascontiguousarray(np.atleast_2d(query.vectors), dtype=np.float32)
        _, radius = range_thresholds(query.min_score, query.max_score, self.emb.dims)
        k = query.limit_hint
        alpha = self.meta.get("alpha")
        alpha = math.inf if alpha is None else float(alpha)
        cap = int(self.meta.get("max_lists") or self.ivf.nlist)
        n_threads = threads()
        found, complete = [], True
        for qi, q in enumerate(queries):
            pos, dist, ok = self.ivf.search_one(q, radius, k, alpha, cap, n_threads)
            keep = dist <= radius
            found.append((pos[keep], dist[keep], np.full(int(keep.sum()), qi, dtype=np.int32)))
            complete &= ok
        pos = np.concatenate([f[0] for f in found])
        dist = np.concatenate([f[1] for f in found])
        which = np.concatenate([f[2] for f in found])
        if len(queries) > 1:  # keep each row's smallest distance (ties: the lowest query index)
            o = np.lexsort((which, dist, pos))
            pos, dist, which = pos[o], dist[o], which[o]
            first = np.ones(len(pos), dtype=bool)
            first[1:] = pos[1:] != pos[:-1]
            pos, dist, which = pos[first], dist[first], which[first]
        scores = score_from_l1(dist, self.emb.dims)
        keep = in_range(scores, query.min_score, query.max_score)
        pos, scores, which = pos[keep], scores[keep], which[keep]
        if k is not None and len(pos) >= k:
            complete = False  # the page is served; the total may miss rows beyond it
        o = np.argsort(pos, kind="stable")
        return Matches(self.exact.ids, pos[o], scores[o], complete=complete,
                       anchors=which[o] if len(queries) > 1 else None,
                       recall=None if complete else self.meta.get("recall_at_100"))
