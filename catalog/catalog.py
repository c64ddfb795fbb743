"""The :class:`Catalog`: one DuckDB file and the operations on it.

Each concept lives in its own module as a mixin; this class only ties them to a :class:`Store`.
"""

from __future__ import annotations

from .batches import BatchesMixin
from .bulk_metadata import MetadataMixin
from .datarows import DataRowsMixin
from .embeddings import EmbeddingsMixin
from .labeling import LabelingMixin
from .labels import LabelsMixin
from .models import ModelsMixin
from .search import SearchMixin
from .slices import SlicesMixin
from .store import Store


class Catalog(DataRowsMixin, EmbeddingsMixin, ModelsMixin, SearchMixin, LabelsMixin, LabelingMixin,
              SlicesMixin, BatchesMixin, MetadataMixin):
    """An embedding catalog stored in one DuckDB file (``path``, else ``$CATALOG_DB``, else ``./catalog.duckdb``)."""

    def __init__(self, path=None, lock_timeout: float | None = None):
        self.store = Store(path, lock_timeout=lock_timeout)

    @property
    def path(self):
        return self.store.path

    def atomic(self):
        """Group several library calls into one transaction: all of them take effect, or none.

        ``with cat.atomic(): cat.set_labels(...); cat.review_labels(...)``. The catalog file stays
        locked for the duration, so keep the block short."""
        return self.store.transaction()

    def __repr__(self) -> str:
        return f"Catalog({str(self.store.path)!r})"
