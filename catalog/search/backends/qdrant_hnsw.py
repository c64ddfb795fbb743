"""Qdrant HNSW backend (``qdrant-hnsw``): the engine's HNSW graph finds the candidates, the catalog
scores them, as the ``qdrant`` backend does with Qdrant's exact mode (:mod:`.qdrant`).

It is the engine's counterpart of the approximate (IVF) backend: chosen by name only (the automatic
choice uses the exact ``qdrant`` backend, whose answers equal the exact scan's), descending score
order and the ``score`` sort only, the page size used for one query vector, and every answer flagged
incomplete (``Matches.complete`` is False: HNSW proves nothing about the rows it did not reach; the
total is then a lower bound) with the recall measured when the index was calibrated
(:mod:`catalog.engine.hnsw`: ``hnsw_ef`` chosen on sample rows against the exact scan, stored with
the copy it was measured on). Scores are recomputed exactly from the vector cache, so every row it
returns has the exact backend's score and lies in the range. The first search of a copy that was not
calibrated indexes and calibrates it (as the approximate backend builds its index); ``advtool engine
index`` does it ahead. Local mode (``local:``) has no HNSW index: it answers exactly, still flagged.
"""

from __future__ import annotations

from ...engine.hnsw import TARGET_RECALL, range_ids
from .base import Capabilities, Context
from .qdrant import QdrantBackend


class QdrantHnswBackend(QdrantBackend):
    name = "qdrant-hnsw"
    capabilities = Capabilities(exact=False, orders=("desc",), sorts=("score",), anchors=True, top_k=True,
                                per_anchor_top_k=False, filters=False, recall=TARGET_RECALL)

    def __init__(self, emb, exact, engine, collection: str, push_filters: bool, meta: dict):
        super().__init__(emb, exact, engine, collection, push_filters)
        self.ef = int(meta["ef"])
        self.recall = float(meta["recall"])

    @classmethod
    def open(cls, context: Context, emb, exact) -> "QdrantHnswBackend":
        engine, collection, push = cls.copy(context, emb)  # raises when no current copy can answer
        meta = context.engines.index_info(emb) or context.engines.index(emb)
        return cls(emb, exact, engine, collection, push, meta)

    @classmethod
    def ready(cls, context: Context, emb) -> bool:
        return QdrantBackend.ready(context, emb) and context.engines.index_info(emb) is not None

    def everything(self, query, lo, hi, flt) -> bool:
        return query.limit_hint is None and super().everything(query, lo, hi, flt)

    def gather(self, queries, threshold, flt, limit) -> tuple[set[str], bool]:
        found: set[str] = set()
        for q in queries:
            got, _ = range_ids(self.engine, self.collection, q, threshold, flt, self.ef,
                               limit if len(queries) == 1 else None)
            found.update(got)
        return found, False
