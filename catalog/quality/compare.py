"""The score between two things: two rows, or a row and an outside text or image (PRODUCT.md §3).

Each side is a row reference (id or global_key), ``{"text": str}`` or ``{"image": path | bytes}``
(encoded by the embedding's model, as search's prompts are). The first side is turned into a query
exactly as search turns one anchor into its query vector (:func:`catalog.search.ranking.query_vectors`),
and the second is scored against it by the same float32 L1 kernel, so the number equals the score
that a search from the first side shows for the second (to float32 rounding).

Without an embedding, two rows are compared in the one embedding in which both have a vector; no
such embedding, or several, is an error naming them. A text or image side needs the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from ..errors import CatalogError
from ..scoring import score_from_l1
from ..search.backends import ExactBackend
from ..search.ranking import query_vectors


@dataclass
class Comparison:
    score: float
    embedding: str

    def to_dict(self) -> dict:
        return {"score": self.score, "embedding": self.embedding}


def _kind(side) -> str:
    if isinstance(side, str):
        return "row"
    if isinstance(side, dict) and len(side) == 1 and "text" in side and isinstance(side["text"], str):
        return "text"
    if isinstance(side, dict) and len(side) == 1 and "image" in side:
        return "image"
    raise CatalogError("each side is a row id or global_key, {\"text\": ...} or {\"image\": path or bytes}",
                       field="a")


class Comparer:
    """Scores between rows and prompts: ``datarows`` resolve rows, ``embeddings`` embeddings,
    ``searcher`` gives the exact backend (the vector cache), ``models`` encodes prompts."""

    def __init__(self, datarows, embeddings, searcher, models):
        self.datarows = datarows
        self.embeddings = embeddings
        self.searcher = searcher
        self.models = models

    def compare(self, a, b, embedding=None) -> Comparison:
        kinds = (_kind(a), _kind(b))
        rows = {side: self.datarows.get_datarow(side)["id"] for side, k in zip((a, b), kinds) if k == "row"}
        emb = self._embedding(embedding, kinds, list(rows.values()))
        exact = ExactBackend.open(self.searcher.context, emb)
        va, vb = (self._vector(emb, exact, side, k, rows) for side, k in zip((a, b), kinds))
        query = query_vectors(va[None], np.empty((0, emb.dims), np.float32), "mean")
        dist = faiss.pairwise_distances(query, np.ascontiguousarray(vb[None], dtype=np.float32), faiss.METRIC_L1)
        return Comparison(float(score_from_l1(dist, emb.dims)[0, 0]), emb.name)

    def _embedding(self, embedding, kinds, row_ids):
        if embedding is not None:
            return self.embeddings.get_embedding(embedding)
        if "row" not in kinds or kinds != ("row", "row"):
            raise CatalogError("comparing with a text or an image needs an embedding (its model encodes it)",
                               field="embedding")
        both = [e for e in self.embeddings.get_embeddings()
                if len(self.embeddings.rows_with_vectors(e.id, row_ids)) == len(set(row_ids))]
        if len(both) == 1:
            return both[0]
        if not both:
            raise CatalogError("no embedding holds a vector for both rows; import or compute them first",
                               field="embedding")
        raise CatalogError(f"both rows have vectors in several embeddings ({', '.join(e.name for e in both)}); "
                           "choose one", field="embedding")

    def _vector(self, emb, exact, side, kind, rows) -> np.ndarray:
        if kind == "row":
            vecs, missing = exact.vectors([rows[side]])
            if missing:
                raise CatalogError(f"data row {side!r} has no vector in embedding {emb.name}", field="embedding")
            return vecs[0]
        value = side[kind]
        if kind == "text":
            return self.models.encode_query(emb, text=value)
        return self.models.encode_query(emb, image=value)
