"""Deleting data rows: the row and everything that names it, in one transaction.

Every table that holds a ``row_id`` is listed once, in :data:`catalog.store.schema.ROW_TABLES`
(vectors, labels, batch entries); a new such table is one more line there. The versions of the
embeddings that lose vectors move on, so vector caches and indexes built from them are rebuilt.
Unknown references fail the whole call and nothing is deleted. Saved slices that name a deleted row
as an anchor keep the reference (their search then says that anchor is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..errors import CatalogError
from ..store import ROW_TABLES, registered

MAX_DELETE = 1_000_000


@dataclass
class DeleteReport:
    deleted: int
    ids: list[str]
    embeddings: list[str]  # ids of the embeddings whose vectors changed

    def to_dict(self) -> dict:
        return {"deleted": self.deleted, "ids": self.ids, "embeddings": self.embeddings}


class DataRowDeletion:
    """Deletes data rows of one catalog. ``refs``: the RowRefs resolver; ``cache``: the vector cache
    (``invalidate(embedding_id)``)."""

    def __init__(self, store, refs, cache):
        self.store = store
        self.refs = refs
        self.cache = cache

    def delete_datarows(self, refs) -> DeleteReport:
        """Delete the rows ``refs`` (ids or global_keys) with their vectors, labels and batch entries."""
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise CatalogError("no data rows to delete; give ids or global_keys", field="ids")
        if len(refs) > MAX_DELETE:
            raise CatalogError(f"at most {MAX_DELETE:,} data rows can be deleted at once, not {len(refs):,}",
                               field="ids")
        with self.store.transaction() as con:
            ids = self.refs.resolve(refs, field="ids")
            with registered(con, pa.table({"rid": pa.array(ids, pa.string())}), "deleted_rows") as t:
                gone = f"(SELECT CAST(rid AS UUID) FROM {t})"
                embeddings = [r[0] for r in con.execute(
                    f"SELECT DISTINCT CAST(embedding_id AS VARCHAR) FROM vectors WHERE row_id IN {gone} ORDER BY 1"
                ).fetchall()]
                for table in ROW_TABLES:
                    con.execute(f"DELETE FROM {table} WHERE row_id IN {gone}")
                con.execute(f"DELETE FROM datarows WHERE id IN {gone}")
                for eid in embeddings:
                    con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ?", [eid])
        for eid in embeddings:
            self.cache.invalidate(eid)
        return DeleteReport(len(ids), ids, embeddings)
