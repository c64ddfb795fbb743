"""Ximilar-style collections: an embedding with an image model seen as a collection of records.

A record is a data row: ``_id`` is its global_key, every field other than ``_id``/``_url``/``_file``/
``_base64`` is metadata, and its vector comes from the collection's model when it is inserted. The
service inserts (rows and vectors in one transaction), updates metadata, deletes, gets, lists
(paged or all, with a filter), draws random records and runs k-NN by a record id or an image. Records
given by URL are fetched by the caller (the REST layer guards those fetches); here images are bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile

import numpy as np

from .errors import CatalogError, ValidationError
from .filters import compile_filter
from .search import Page, SearchSpec

IMAGE_FIELDS = ("_id", "_url", "_file", "_base64")
MAX_RECORDS = 10_000


def record_of(row: dict, fields) -> dict:
    """A row as a record: ``_id`` plus the metadata ``fields`` (``"*"``: all of them)."""
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        meta = json.loads(meta)
    out = {"_id": row["global_key"]}
    wanted = list(fields or ["_id"])
    if "*" in wanted:
        out.update(meta)
    else:
        out.update({f: meta[f] for f in wanted if f != "_id" and f in meta})
    return out


class Collections:
    """The collections of one catalog. ``datarows`` imports rows, ``deletion`` deletes them,
    ``models`` encodes images, ``importer`` writes vectors, ``embeddings`` resolves collections,
    ``searcher`` runs k-NN, ``metadata`` updates fields."""

    def __init__(self, store, datarows, deletion, models, importer, embeddings, searcher, metadata, labeling):
        self.store = store
        self.datarows = datarows
        self.deletion = deletion
        self.models = models
        self.importer = importer
        self.embeddings = embeddings
        self.searcher = searcher
        self.metadata = metadata
        self.labeling = labeling

    def collection(self, ref):
        if ref is None or (isinstance(ref, str) and not ref.strip()):
            raise CatalogError("no collection given; name an embedding (id or name) as the collection",
                               field="collection")
        emb = self.embeddings.get_embedding(ref)
        if emb.custom or emb.media_type != "image":
            raise CatalogError(f"collection {emb.name} has no image model to give inserted records a vector; "
                               "use an image embedding (clip-vit-b-32 or color-texture)", field="collection")
        return emb

    @staticmethod
    def _records(records) -> list[dict]:
        if not isinstance(records, list) or not records:
            raise CatalogError("`records` must be a non-empty list of records", field="records")
        if len(records) > MAX_RECORDS:
            raise CatalogError(f"at most {MAX_RECORDS:,} records per request, not {len(records):,}", field="records")
        errors = []
        for i, rec in enumerate(records, start=1):
            if not isinstance(rec, dict):
                errors.append((i, "a record must be an object"))
            elif not isinstance(rec.get("_id"), str) or not rec["_id"].strip():
                errors.append((i, "a record needs an `_id` (a non-empty string)"))
        if errors:
            raise ValidationError(f"{len(errors)} invalid record{'s' if len(errors) > 1 else ''}; nothing was written",
                                  errors, unit="record", field="records")
        return records

    def insert(self, ref, records, images: list[bytes]) -> list[dict]:
        """Insert ``records`` (each with ``_id``; metadata fields) whose images are ``images`` (bytes, same
        order): rows and vectors in one transaction. Returns the records as stored (``_id`` and metadata)."""
        emb = self.collection(ref)
        records = self._records(records)
        if len(images) != len(records):
            raise CatalogError(f"{len(records)} records but {len(images)} images", field="records")
        vectors, errors = [], []
        for i, data in enumerate(images, start=1):
            try:
                vectors.append(self.models.encode_query(emb, image=data))
            except CatalogError as exc:
                errors.append((i, exc.message))
        if errors:
            raise ValidationError(f"{len(errors)} record image{'s' if len(errors) > 1 else ''} cannot be read; "
                                  "nothing was written", errors, unit="record", field="records")
        with tempfile.TemporaryDirectory(prefix="catalog-collection-") as tmp:
            path = os.path.join(tmp, "records.ndjson")
            with open(path, "w", encoding="utf-8") as fh:
                for rec, data in zip(records, images):
                    meta = {k: v for k, v in rec.items() if k not in IMAGE_FIELDS}
                    line = {"_id": rec["_id"].strip(), "_base64": base64.b64encode(data).decode("ascii"), **meta}
                    fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            with self.store.transaction():
                report = self.datarows.import_datarows([path], copy_files=True)
                if report.skipped:
                    raise ValidationError("records were refused; nothing was written",
                                          [(None, why) for _, why in report.skipped], unit="record", field="records")
                keys = [r["_id"].strip() for r in records]
                self.importer.import_array(emb, keys, np.asarray(vectors, dtype=np.float64), allow_builtin=True)
        return [record_of(r, ["*"]) for r in self.datarows.get_datarows(keys)]

    def add_and_label(self, ref, data: bytes, results: int, threshold: float, top_only: bool):
        """Add an image as a new data row (global_key ``upload/<sha1 of its bytes>``, with its vector in
        the collection) and save its label-by-similarity suggestions, in one transaction; returns the
        :class:`LabelBySimilarityResult` (the same image again updates the same row)."""
        key = f"upload/{hashlib.sha1(data).hexdigest()[:20]}"
        with self.store.transaction():
            self.insert(ref, [{"_id": key}], [data])
            return self.labeling.label_by_similarity(ref, [key], results, threshold, top_only, True, None)

    def update(self, ref, records) -> list[dict]:
        """Set the metadata fields of each record (``_id`` names it); one transaction."""
        self.collection(ref)
        records = self._records(records)
        with self.store.transaction():
            for rec in records:
                values = {k: v for k, v in rec.items() if k not in IMAGE_FIELDS}
                if values:
                    self.metadata.set_metadata(values, ids=[rec["_id"]])
        return [record_of(r, ["*"]) for r in self.datarows.get_datarows([r["_id"] for r in records])]

    def delete(self, ref, ids) -> int:
        self.collection(ref)
        return self.deletion.delete_datarows(ids).deleted

    def get(self, ref, ids, fields) -> list[dict]:
        self.collection(ref)
        return [record_of(r, fields) for r in self.datarows.get_datarows(ids)]

    def _select(self, emb, where, order: str, limit, offset: int):
        sql, params = compile_filter(where or None)
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        with self.store.connect() as con:
            total = con.execute(f"SELECT count(*) FROM datarows d WHERE {sql} AND EXISTS (SELECT 1 FROM vectors v "
                                "WHERE v.row_id = d.id AND v.embedding_id = ?)", [*params, emb.id]).fetchall()[0][0]
            rows = con.execute(f"SELECT d.global_key, CAST(d.metadata AS VARCHAR) FROM datarows d WHERE {sql} AND "
                               "EXISTS (SELECT 1 FROM vectors v WHERE v.row_id = d.id AND v.embedding_id = ?) "
                               f"ORDER BY {order}{page}", [*params, emb.id]).fetchall()
        return int(total), [{"global_key": k, "metadata": m} for k, m in rows]

    def all_records(self, ref, fields, where=None, size: int | None = None, page: int = 1):
        """``(total, records)``: every record with a vector in the collection (``size`` per ``page``)."""
        emb = self.collection(ref)
        if size is not None and (size < 1 or page < 1):
            raise CatalogError("`size` and `page` must be at least 1", field="size")
        total, rows = self._select(emb, where, "d.global_key, d.id", size, 0 if size is None else (page - 1) * size)
        return total, [record_of(r, fields) for r in rows]

    def random(self, ref, count: int, fields, where=None) -> list[dict]:
        emb = self.collection(ref)
        if not 1 <= count <= MAX_RECORDS:
            raise CatalogError(f"`count` must be from 1 to {MAX_RECORDS}, not {count}", field="count")
        return [record_of(r, fields) for r in self._select(emb, where, "random()", count, 0)[1]]

    def knn(self, ref, k: int, fields, where=None, row=None, image: bytes | None = None) -> list[dict]:
        """The ``k`` records nearest a record (``row``: its ``_id``) or an image, best first, each with
        ``_score`` (the catalog's score) and ``_distance`` (1 − score)."""
        emb = self.collection(ref)
        spec = SearchSpec(embedding=emb.id, anchors=[row] if row is not None else (), image=image, where=where or None,
                          min_score=0.0, max_score=1.0)
        result = self.searcher.search(spec, Page(k, 0), None)
        rows = {r["id"]: r for r in self.datarows.get_datarows([h.id for h in result.results])} if result.results else {}
        return [{**record_of(rows[h.id], fields), "_score": h.score, "_distance": 1.0 - h.score} for h in result.results]
