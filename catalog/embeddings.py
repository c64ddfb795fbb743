"""Embedding types: named vector spaces with fixed dims (Labelbox SDK names).

Off-the-shelf embeddings are computed by a model; custom ones are created with a name and dims and
filled by NDJSON import. Everywhere an embedding is named, its id or its name is accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .errors import AlreadyExists, CatalogError, NotFound
from .store import CLIP_ID, MPNET_ID, one, scalar
from .vectors.cache import find_rows

MIN_DIMS, MAX_DIMS = 8, 2048
LIST_HINT = "list the embeddings to see them"
LIST_HINT_SHORT = "list the embeddings"

# Labelbox's display names of its two precomputed embeddings (the first two as Catalog and the SDK's
# get_embeddings() show them, the third as its exports name the image one), accepted wherever an
# embedding is named, in any letter case; ``list`` keeps our names.
LABELBOX_NAMES = {
    "image embedding (clip vit-b/32)": CLIP_ID,
    "image embedding v2 (clip vit-b/32)": CLIP_ID,
    "text embedding (all-mpnet-base-v2)": MPNET_ID,
}


def labelbox_alias(name) -> str | None:
    """The embedding id that a Labelbox display name stands for, or None."""
    return LABELBOX_NAMES.get(" ".join(str(name).split()).lower())


@dataclass
class Embedding:
    id: str
    name: str
    dims: int
    custom: bool
    model: str | None
    media_type: str | None
    version: int
    service: "Embeddings" = field(repr=False, compare=False)

    # -- Labelbox SDK names ---------------------------------------------------------------------
    def import_vectors_from_file(self, path, callback=None, *, progress=None) -> int:
        """Validate and import an NDJSON(.gz) file; all-or-nothing. Returns the number imported.

        ``callback`` (the SDK's argument): called once per 1,000 vectors as they are written, after
        the whole file was validated (a refused file never calls it), with
        ``{"importedFileSizeOfBytes": b, "vectors": n}``: this chunk's share of the file's size in
        bytes (the shares add up to the size, so advtool-style progress reaches 100%) and its number
        of vectors. The write commits after the last call; an exception from the callback stops the
        import and nothing is written. ``progress(bytes read)``: called as the file is read, before
        validation ends (``None`` at its end)."""
        return self.service.import_vectors_from_file(self, path, progress=progress, callback=callback)

    def import_vectors(self, ids, vectors) -> int:
        """Import a numpy array (one row per id or global_key) with the same validation as a file."""
        return self.service.import_vectors(self, ids, vectors)

    def get_imported_vector_count(self) -> int:
        return self.service.vector_count(self.id)

    def export_vectors(self, out, fmt: str = "ndjson", rows=None, progress=None):
        """Write the stored vectors (of ``rows``, ids or global_keys, when given) as import-ready
        NDJSON to ``out`` (a text stream or a path; ``.gz`` compresses), or as ``npy`` to a path (the
        float32 matrix, with the ids in ``<name>.ids.json``). Returns a
        :class:`~catalog.vectors.export.VectorExportReport`."""
        return self.service.export_vectors(self, out, fmt, rows=rows, progress=progress)

    def delete(self) -> None:
        self.service.delete_embedding(self.id)

    def refresh(self) -> "Embedding":
        return self.service.get_embedding(self.id)

    def to_dict(self, count: int | None = None) -> dict:
        d = {"id": self.id, "name": self.name, "dims": self.dims, "custom": self.custom,
             "model": self.model, "media_type": self.media_type}
        if count is not None:
            d["count"] = count
        return d


_COLUMNS = "CAST(id AS VARCHAR), name, dims, custom, model, media_type, version"


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
        return True
    except ValueError:
        return False


class Embeddings:
    """Embedding types of one catalog: ``store`` (the DuckDB file), ``cache`` (the
    :class:`~catalog.vectors.cache.VectorCache`), ``importer`` (the
    :class:`~catalog.vectors.importer.VectorImport`) and ``exporter`` (the
    :class:`~catalog.vectors.export.VectorExport`)."""

    def __init__(self, store, cache, importer, exporter):
        self.store = store
        self.cache = cache
        self.importer = importer
        self.exporter = exporter

    def _embedding(self, row) -> Embedding:
        return Embedding(*row, service=self)

    def create_embedding(self, name: str, dims: int) -> Embedding:
        if name is not None and not isinstance(name, str):
            raise CatalogError(f"embedding name must be a string, not {type(name).__name__}", field="name")
        name = (name or "").strip()
        if not name:
            raise CatalogError("embedding name is empty; give a name such as my-embedding", field="name")
        if any(not c.isprintable() for c in name):  # a newline or tab would fake lines in listings
            raise CatalogError(f"embedding name {name!r} must not contain control characters (newlines, tabs)",
                               field="name")
        if len(name) > 100:
            raise CatalogError(f"embedding name is {len(name)} characters long; use at most 100", field="name")
        try:
            dims = int(dims)
        except (TypeError, ValueError):
            raise CatalogError(f"embedding dims must be a whole number from {MIN_DIMS} to {MAX_DIMS}, not {dims!r}",
                               field="dims") from None
        if not MIN_DIMS <= dims <= MAX_DIMS:
            raise CatalogError(f"embedding dims must be from {MIN_DIMS} to {MAX_DIMS}, not {dims}", field="dims")
        if _is_uuid(name):
            raise CatalogError(f"embedding name {name!r} looks like an id; choose a name that is not a UUID",
                               field="name")
        if labelbox_alias(name):
            raise AlreadyExists(f"embedding name {name!r} is Labelbox's name of an off-the-shelf embedding; "
                                "choose another name", field="name")
        eid = str(uuid.uuid4())
        with self.store.transaction() as con:
            if one(con, "SELECT 1 FROM embeddings WHERE lower(name) = lower(?)", [name]):
                raise AlreadyExists(f"an embedding named {name!r} already exists; choose another name", field="name")
            con.execute(
                "INSERT INTO embeddings (id, name, dims, custom) VALUES (?, ?, ?, true)", [eid, name, dims]
            )
        return self.get_embedding(eid)

    def get_embeddings(self) -> list[Embedding]:
        with self.store.connect() as con:
            rows = con.execute(f"SELECT {_COLUMNS} FROM embeddings ORDER BY custom, created_at, id").fetchall()
        return [self._embedding(r) for r in rows]

    def get_embedding_by_id(self, id: str) -> Embedding:  # noqa: A002 - the SDK's keyword
        if not _is_uuid(id):
            raise NotFound(f"embedding id {id!r} is not a UUID", field="embedding", hint=LIST_HINT_SHORT)
        with self.store.connect() as con:
            row = one(con, f"SELECT {_COLUMNS} FROM embeddings WHERE id = ?", [str(id)])
        if row is None:
            raise NotFound(f"no embedding with id {id}", field="embedding", hint=LIST_HINT)
        return self._embedding(row)

    def get_embedding_by_name(self, name: str) -> Embedding:
        """By name (any letter case), or by Labelbox's display name of an off-the-shelf embedding."""
        with self.store.connect() as con:
            row = one(con, f"SELECT {_COLUMNS} FROM embeddings WHERE lower(name) = lower(?)", [str(name).strip()])
            if row is None and labelbox_alias(name):
                row = one(con, f"SELECT {_COLUMNS} FROM embeddings WHERE id = ?", [labelbox_alias(name)])
        if row is None:
            raise NotFound(f"no embedding named {name!r}", field="embedding", hint=LIST_HINT)
        return self._embedding(row)

    def get_embedding(self, ref) -> Embedding:
        """An embedding by id or name (or an :class:`Embedding`, returned refreshed)."""
        if isinstance(ref, Embedding):
            ref = ref.id
        ref = str(ref).strip()
        if _is_uuid(ref):
            try:
                return self.get_embedding_by_id(ref)
            except NotFound:
                pass
        try:
            return self.get_embedding_by_name(ref)
        except NotFound:
            raise NotFound(f"no embedding with id or name {ref!r}", field="embedding", hint=LIST_HINT) from None

    def embedding_counts(self) -> dict[str, int]:
        """Vector count per embedding id."""
        with self.store.connect() as con:
            rows = con.execute(
                "SELECT CAST(e.id AS VARCHAR), count(v.row_id) FROM embeddings e "
                "LEFT JOIN vectors v ON v.embedding_id = e.id GROUP BY e.id"
            ).fetchall()
        return dict(rows)

    def rows_with_vectors(self, ref, row_ids) -> set[str]:
        """Which of ``row_ids`` have a vector in the embedding (from its vector cache)."""
        emb = self.get_embedding(ref)
        ids, _ = self.cache.load(emb)
        wanted = [str(r).lower() for r in row_ids]
        return {w for w, p in zip(wanted, find_rows(ids, wanted)) if p >= 0}

    def vector_count(self, embedding_id: str) -> int:
        """The number of vectors the embedding holds."""
        with self.store.connect() as con:
            return scalar(con, "SELECT count(*) FROM vectors WHERE embedding_id = ?", [embedding_id])

    def import_vectors_from_file(self, emb: Embedding, path, progress=None, callback=None) -> int:
        """Validate and import an NDJSON(.gz) file into ``emb`` (a custom embedding); all-or-nothing."""
        return self.importer.import_file(emb, path, progress=progress, callback=callback)

    def export_vectors(self, ref, out, fmt: str = "ndjson", rows=None, progress=None):
        """Write the stored vectors of the embedding ``ref`` (of ``rows`` when given); see
        :meth:`Embedding.export_vectors`."""
        return self.exporter.export(self.get_embedding(ref), out, fmt, rows=rows, progress=progress)

    def import_vectors(self, emb: Embedding, ids, vectors) -> int:
        """Import a numpy array into ``emb`` (a custom embedding), validated like a file."""
        return self.importer.import_array(emb, ids, vectors)

    def delete_embedding(self, ref) -> str:
        emb = self.get_embedding(ref)
        if not emb.custom:
            raise CatalogError(
                f"{emb.name} is an off-the-shelf embedding and cannot be deleted; only custom embeddings can",
                field="embedding",
            )
        with self.store.transaction() as con:
            con.execute("DELETE FROM vectors WHERE embedding_id = ?", [emb.id])
            con.execute("DELETE FROM uniqueness WHERE embedding_id = ?", [emb.id])
            con.execute("DELETE FROM uniqueness_runs WHERE embedding_id = ?", [emb.id])
            con.execute("DELETE FROM embeddings WHERE id = ?", [emb.id])
        self.cache.forget(emb.id)  # its caches and maps
        return emb.id

    def vectors_changed(self, embedding_id: str) -> None:
        """Hook for derived state (vector caches, indexes) after an embedding's vectors change."""
        self.cache.invalidate(embedding_id)
