"""Saved slices: a named :class:`SearchSpec` (its JSON is the stored query).

Slices are dynamic: the stored query runs again every time the slice is read, so rows imported later
appear when they match. A slice without an embedding is a pure filter slice: its rows are the rows the
filter selects, with score None, listed by ``global_key`` A–Z, or by the spec's ``global_key`` or
``created`` sort in its ``order`` (ties by row id). A slice of selected rows (:meth:`Slices.save_rows`)
is a filter slice on their ids: it holds exactly those rows while they exist.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import orjson

from .errors import AlreadyExists, CatalogError, NotFound
from .export import check_format, write_records
from .filters import compile_filter
from .search import ALL, Hit, Page, SearchResult, SearchSpec
from .store import one, scalar

NAME_MIN, NAME_MAX = 3, 60
EXPORT_CHUNK = 5_000


def check_name(name, what="slice", lo=NAME_MIN, hi=NAME_MAX) -> str:
    """A stripped name of ``lo``–``hi`` (3–60) printable characters."""
    if not isinstance(name, str):
        raise CatalogError(f"{what} name must be a string", field="name")
    name = name.strip()
    if not lo <= len(name) <= hi:
        raise CatalogError(f"{what} name {name!r} must be {lo} to {hi} characters long", field="name")
    if any(not c.isprintable() for c in name):
        raise CatalogError(f"{what} name {name!r} must not contain control characters", field="name")
    return name


def _iso(ts) -> str | None:
    return ts.isoformat() if isinstance(ts, datetime) else (str(ts) if ts is not None else None)


@dataclass
class Slice:
    """A saved query; ``rows()`` runs it now."""

    id: str
    name: str
    description: str | None
    query: dict
    created_at: str | None
    updated_at: str | None
    service: "Slices" = field(repr=False, compare=False, default=None)

    @property
    def spec(self) -> SearchSpec:
        """The stored search."""
        return SearchSpec.from_json(self.query)

    @property
    def is_filter_only(self) -> bool:
        return not self.query.get("embedding")

    def search_args(self) -> dict:
        """The keyword arguments of :meth:`Catalog.search` this slice stands for."""
        return self.spec.kwargs()

    def rows(self, limit: int | None = 50, offset: int = 0, backend=None) -> SearchResult:
        """One page of the slice's rows as a ``SearchResult`` (``limit=None``: all of them); ``backend``
        as in :meth:`Catalog.search` (a filter slice needs none)."""
        return self.service.rows(self, Page(limit, offset), backend)

    def row_ids(self, backend=None) -> list[str]:
        """Every row id of the slice, in the slice's order."""
        return self.service.row_ids(self, backend)

    def delete(self) -> None:
        self.service.delete_slice(self.name)

    def export(self, out, fmt: str = "ndjson") -> int:
        return self.service.export_slice(self.name, out, fmt)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "query": self.query,
                "created_at": self.created_at, "updated_at": self.updated_at}


_SELECT = "SELECT CAST(id AS VARCHAR), name, description, CAST(query AS VARCHAR), created_at, updated_at FROM slices"


class Slices:
    """Saved slices, and plain filtered listings (what a pure filter slice shows).

    ``embeddings`` resolves the slice's embedding, ``refs`` its row anchors, ``searcher`` runs it and
    ``datarows`` gives the metadata and labels of exported rows."""

    def __init__(self, store, refs, embeddings, searcher, datarows):
        self.store = store
        self.refs = refs
        self.embeddings = embeddings
        self.searcher = searcher
        self.datarows = datarows

    # -- filtered listing ----------------------------------------------------------------------------
    def filter_datarows(self, where=None, limit: int | None = 50, offset: int = 0, sort: str = "global_key",
                        order: str | None = None) -> SearchResult:
        """Rows matching ``where`` (None or ``{}``: every row), as a ``SearchResult`` with score None, by
        ``sort`` (``"global_key"``, ``"created"``; ``"score"`` is the plain listing, global_key A–Z) in
        ``order`` (None: A–Z for keys, newest first for created); ties by row id."""
        if (limit is not None and limit < 0) or offset < 0:
            raise CatalogError("`limit` and `offset` must not be negative", field="limit")
        sql, params = compile_filter(where)
        base = (f"SELECT CAST(d.id AS VARCHAR), d.global_key FROM datarows d WHERE {sql} "
                f"ORDER BY {_listing_order(sort, order)}")
        page, page_params = (" OFFSET ?", [offset]) if limit is None else (" LIMIT ? OFFSET ?", [limit, offset])
        with self.store.connect() as con:
            total = scalar(con, f"SELECT count(*) FROM datarows d WHERE {sql}", params)
            rows = con.execute(base + page, [*params, *page_params]).fetchall()
        return SearchResult(total=total, results=[Hit(id=r[0], global_key=r[1], score=None) for r in rows])

    def filter_row_ids(self, where=None, sort: str = "global_key", order: str | None = None) -> list[str]:
        """Ids of every row matching ``where``, in the order of :meth:`filter_datarows`."""
        sql, params = compile_filter(where)
        with self.store.connect() as con:
            rows = con.execute(f"SELECT CAST(d.id AS VARCHAR) FROM datarows d WHERE {sql} "
                               f"ORDER BY {_listing_order(sort, order)}", params).fetchall()
        return [r[0] for r in rows]

    # -- running a slice -----------------------------------------------------------------------------
    def rows(self, s: Slice, page: Page, backend=None) -> SearchResult:
        spec = s.spec
        if spec.is_filter_only:
            sort, order = spec.listing_sort
            return self.filter_datarows(spec.where, limit=page.limit, offset=page.offset, sort=sort, order=order)
        return self.searcher.search(spec, page, backend)

    def row_ids(self, s: Slice, backend=None) -> list[str]:
        spec = s.spec
        if spec.is_filter_only:
            sort, order = spec.listing_sort
            return self.filter_row_ids(spec.where, sort=sort, order=order)
        return list(self.searcher.row_ids(spec, backend))

    # -- saving --------------------------------------------------------------------------------------
    def stored_spec(self, spec: SearchSpec) -> SearchSpec:
        """The form a slice stores: the embedding by id, row anchors as row ids (they must exist), and
        an automatic range resolved to the range it chooses now (a slice's range is stable); checked by
        running it once, so a saved slice always runs."""
        if spec.is_filter_only:
            return spec
        emb = self.embeddings.get_embedding(spec.embedding)
        stored = spec.replace(embedding=emb.id, anchors=self._stored_anchors(spec.anchors),
                              negatives=self._stored_anchors(spec.negatives))
        used = self.searcher.search(stored, Page(limit=0)).score_range  # the search's own checks
        if stored.auto_range:
            stored = stored.replace(min_score=used.min_score, max_score=used.max_score)
        return stored

    def _stored_anchors(self, anchors) -> tuple:
        refs = [a for a in anchors if isinstance(a, str)]
        ids = iter(self.refs.resolve(refs, field="anchors") if refs else [])
        out = []
        for a in anchors:
            if isinstance(a, str):
                out.append(next(ids))
            else:
                if not np.all(np.isfinite(np.asarray(a, dtype=np.float64))):
                    raise CatalogError("an anchor vector contains NaN or Infinity", field="anchors")
                out.append(tuple(float(x) for x in np.asarray(a, dtype=np.float32)))
        return tuple(out)

    def rows_of(self, slice, rows=None):
        """The row ids of ``slice`` (a name or a Slice), or ``rows`` as given when ``slice`` is None."""
        if slice is None:
            return rows
        if rows is not None:
            raise CatalogError("give `slice` or `rows`, not both", field="slice")
        return self.row_ids(self.get_slice(slice))

    def save_slice(self, name, spec: SearchSpec, description=None, replace=False) -> Slice:
        """Save ``spec`` under ``name``; ``replace=True`` updates an existing slice in place."""
        name = check_name(name)
        if description is not None and not isinstance(description, str):
            raise CatalogError("slice description must be a string", field="description")
        if spec.image is not None:
            raise CatalogError("an image prompt cannot be saved in a slice; use row anchors or a text prompt",
                               field="image")
        text = orjson.dumps(self.stored_spec(spec).to_json()).decode()
        with self.store.transaction() as con:
            existing = one(con, "SELECT CAST(id AS VARCHAR), description FROM slices WHERE name = ?", [name])
            if existing and not replace:
                raise AlreadyExists(f"a slice named {name!r} already exists; pass `replace` to update it "
                                    "or choose another name", field="name")
            if existing:
                con.execute("UPDATE slices SET query = CAST(? AS JSON), description = ?, updated_at = now() WHERE name = ?",
                            [text, description if description is not None else existing[1], name])
            else:
                con.execute("INSERT INTO slices (id, name, description, query) VALUES (?, ?, ?, CAST(? AS JSON))",
                            [str(uuid.uuid4()), name, description, text])
        return self.get_slice(name)

    def save_rows(self, name, row_ids, description=None, replace=False) -> Slice:
        """Save a slice of exactly these rows (a selection, e.g. a lasso on the map): a filter slice on
        their ids, ``{"where": {"id": {"$in": [...]}}}``. It holds those rows while they exist (a row
        deleted leaves it; one imported again later has a new id and does not join it). No look-up of
        the rows: ids that match no row simply match nothing."""
        ids = [str(r) for r in row_ids]
        if not ids:
            raise CatalogError("a slice of rows needs at least one row", field="rows")
        return self.save_slice(name, SearchSpec(where={"id": {"$in": ids}}), description, replace)

    # -- reading -------------------------------------------------------------------------------------
    def _slice(self, row) -> Slice:
        return Slice(id=row[0], name=row[1], description=row[2], query=json.loads(row[3]),
                     created_at=_iso(row[4]), updated_at=_iso(row[5]), service=self)

    def get_slices(self) -> list[Slice]:
        with self.store.connect() as con:
            rows = con.execute(f"{_SELECT} ORDER BY name").fetchall()
        return [self._slice(r) for r in rows]

    def get_slice(self, name) -> Slice:
        """The slice named ``name`` (or with that id, or the :class:`Slice` itself, read again)."""
        ref = (name.id if isinstance(name, Slice) else str(name)).strip()
        with self.store.connect() as con:
            row = one(con, f"{_SELECT} WHERE name = ? OR CAST(id AS VARCHAR) = lower(?)", [ref, ref])
        if row is None:
            raise NotFound(f"no slice named {ref!r}", field="slice", hint="list the slices to see them")
        return self._slice(row)

    def delete_slice(self, name) -> None:
        s = self.get_slice(name)
        with self.store.transaction() as con:
            con.execute("DELETE FROM slices WHERE id = CAST(? AS UUID)", [s.id])

    # -- export --------------------------------------------------------------------------------------
    def export_slice(self, name, out, fmt: str = "ndjson") -> int:
        """Write every row of the slice (id, global_key, score, metadata, labels) in the slice's order."""
        check_format(fmt)
        hits = self.rows(self.get_slice(name), ALL).results

        def records():
            for start in range(0, len(hits), EXPORT_CHUNK):
                chunk = hits[start:start + EXPORT_CHUNK]
                details = self.datarows.row_details([h.id for h in chunk])
                for h in chunk:
                    meta, labels = details.get(h.id, ({}, []))
                    yield {"id": h.id, "global_key": h.global_key,
                           "score": None if h.score is None else float(h.score), "metadata": meta, "labels": labels}

        write_records(out, records(), fmt, ["id", "global_key", "score", "metadata", "labels"])
        return len(hits)


_SAVE_ARGS = ("embedding", "anchors", "negative_anchors", "min_score", "max_score", "aggregate", "where", "order",
              "description", "replace", "text", "include_anchors", "sort", "group_by")


def _listing_order(sort, order) -> str:
    """The ORDER BY of a filtered listing (validated as a :class:`SearchSpec`'s sort and order are)."""
    column, direction = SearchSpec(sort=sort, order=order).listing_sort
    sql = "DESC" if direction == "desc" else "ASC"
    if column == "created":
        return f"d.created_at {sql}, d.id"
    return f"d.global_key {sql}"


def save_call(spec, args: tuple, kwargs: dict) -> tuple[SearchSpec, str | None, bool]:
    """``(spec, description, replace)`` from either form of ``Catalog.save_slice``:
    ``save_slice(name, SearchSpec, description=None, replace=False)`` or the keyword form
    ``save_slice(name, embedding=None, anchors=(), ..., description=None, replace=False, ...)``."""
    if isinstance(spec, SearchSpec):
        kw = dict(zip(("description", "replace"), args))
        for k, v in kwargs.items():
            if k not in ("description", "replace") or k in kw:
                raise TypeError(f"save_slice(name, spec, description=None, replace=False) got {k!r}")
            kw[k] = v
        return spec, kw.get("description"), bool(kw.get("replace", False))
    kw = dict(zip(_SAVE_ARGS, (spec, *args))) if spec is not None or args else {}
    for k, v in kwargs.items():
        if k not in _SAVE_ARGS or k in kw:
            raise TypeError(f"save_slice got an unexpected or repeated argument {k!r}")
        kw[k] = v
    description, replace = kw.pop("description", None), bool(kw.pop("replace", False))
    return SearchSpec.from_kwargs(**kw), description, replace
