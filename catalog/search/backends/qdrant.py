"""Qdrant backend: the catalog's vector engine (a server or cluster, Qdrant Edge in-process, or local
mode; :mod:`catalog.engine`) finds the candidates, the catalog scores them.

The engine holds each embedding's L2-normalised vectors under ``Distance.MANHATTAN``, so its
``score_threshold`` is a largest L1 distance. A search asks, per query vector, for every point within
the range's distance bound widened by :func:`~.base.range_thresholds` (the same margin the exact scan
uses), in Qdrant's exact mode, in one answer. The candidates are then scored with the catalog's one
score function from the vector cache (the rows the engine returned, at the version the engine holds),
and the range is checked exactly, so scores equal the exact backend's and the rows are the same.

``aggregate="max"`` runs one query per anchor and merges (each row keeps its nearest anchor, the
lowest index on ties); negatives arrive already combined into the query vectors. Filters that map to
Qdrant payload filters (:mod:`catalog.engine.filters`, :data:`PUSHED_DOWN`) narrow the engine's answer
when the engine's payloads are current; the search service applies the full filter to every match
(``Capabilities.filters`` is False), so what does not map is still applied exactly. The engine finds
far rows no faster than near ones, so only the descending order is declared (``asc`` is answered by
the exact scan). A range that every row satisfies (``[0, 1]`` without a filter that maps) needs no
engine round trip: every cached row is a candidate, scored by the cache's scan. A copy that is not synced at the embedding's version never answers
(:meth:`QdrantBackend.open` raises; :meth:`~QdrantBackend.ready` is False).
"""

from __future__ import annotations

import faiss
import numpy as np

from ...engine.client import PAGE
from ...engine.filters import MAPPED, to_engine_filter
from ...errors import CatalogError
from ...scoring import scale, score_from_l1
from ...vectors.cache import find_rows
from .base import Backend, Capabilities, Context, Matches, Query, in_range, range_thresholds

PUSHED_DOWN = MAPPED  # the filter operators and fields the engine applies itself (the service applies all)


class QdrantBackend(Backend):
    name = "qdrant"
    capabilities = Capabilities(exact=True, orders=("desc",), sorts=("score", "global_key", "created"), anchors=True,
                                top_k=False, per_anchor_top_k=False, filters=False, recall=1.0)

    def __init__(self, emb, exact, engine, collection: str, push_filters: bool):
        self.emb = emb
        self.exact = exact
        self.engine = engine
        self.collection = collection
        self.push_filters = push_filters
        self.recall = 1.0

    @classmethod
    def open(cls, context: Context, emb, exact) -> "QdrantBackend":
        return cls(emb, exact, *cls.copy(context, emb))

    @classmethod
    def copy(cls, context: Context, emb) -> tuple:
        """``(engine, collection, payload current)`` of the embedding's copy, which answers (else raises)."""
        if context.engines is None:
            raise CatalogError(f"no vector engine can be used here, so the {cls.name} backend cannot search",
                               field="backend")
        return context.engines.searchable(emb, f"the {cls.name} backend cannot answer")

    @classmethod
    def offered(cls, context: Context) -> bool:
        return context.engines is not None and context.engines.config() is not None

    @classmethod
    def ready(cls, context: Context, emb) -> bool:
        engines = context.engines
        if engines is None:
            return False
        cfg, fresh = engines.state(emb)
        return cfg is not None and fresh.vectors

    @property
    def size(self) -> int:
        return self.exact.size

    def vectors(self, row_ids):
        return self.exact.vectors(row_ids)

    def candidates(self, q: np.ndarray, threshold: float, flt) -> list[str]:
        """Ids of every point within L1 ``threshold`` of ``q``. The limit grows until the answer is
        shorter than it (one answer, not offset pages: points tied at a page boundary could be skipped)."""
        limit = PAGE
        while True:
            got = self.engine.query(self.collection, q, threshold, flt, limit, 0)
            if len(got) < limit:
                return got
            limit *= 4

    def everything(self, query: Query, lo: float, hi: float, flt) -> bool:
        """Whether every row is a candidate (no engine round trip helps)."""
        return lo <= 0 and hi >= scale(self.emb.dims) and flt is None

    def gather(self, queries, threshold: float, flt, limit) -> tuple[set[str], bool]:
        """The ids within ``threshold`` of any query vector, and whether that is provably all of them."""
        found: set[str] = set()
        for q in queries:
            found.update(self.candidates(q, threshold, flt))
        return found, True

    def search(self, query: Query) -> Matches:
        queries = np.ascontiguousarray(np.atleast_2d(query.vectors), dtype=np.float32)
        lo, hi = range_thresholds(query.min_score, query.max_score, self.emb.dims)
        flt = to_engine_filter(query.where) if self.push_filters else None
        several = len(queries) > 1
        if self.everything(query, lo, hi, flt):
            return self.exact.search(query)  # every row is a candidate: the cache's scan, no engine round trip
        found, complete = self.gather(queries, float(hi), flt, query.limit_hint)
        recall = None if complete else self.recall
        pos = find_rows(self.exact.ids, sorted(found))
        pos = np.sort(pos[pos >= 0])
        if len(pos) == 0:
            empty = np.empty(0, np.int64)
            return Matches(self.exact.ids, empty, np.empty(0), complete=complete, recall=recall,
                           anchors=np.empty(0, np.int32) if several else None)
        rows = np.ascontiguousarray(self.exact.matrix[pos], dtype=np.float32)
        dd = faiss.pairwise_distances(queries, rows, faiss.METRIC_L1)
        which = dd.argmin(axis=0).astype(np.int32)  # the first (lowest index) on ties, as the exact scan
        dist = dd[which, np.arange(len(pos))]
        keep = (dist <= hi) & (dist >= lo)
        pos, dist, which = pos[keep], dist[keep], which[keep]
        scores = score_from_l1(dist, self.emb.dims)
        keep = in_range(scores, query.min_score, query.max_score)
        return Matches(self.exact.ids, pos[keep], scores[keep], complete=complete, recall=recall,
                       anchors=which[keep] if several else None)
