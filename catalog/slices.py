"""Saved slices: a named search state (embedding, anchors, score range, aggregation, filter, order).

Slices are dynamic: the stored query runs again every time the slice is read, so rows imported later
appear when they match. A slice without an embedding is a pure filter slice: its rows are the rows the
filter selects, listed by ``global_key``, with score None.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa

from .errors import AlreadyExists, CatalogError, NotFound
from .filters import compile_filter, parse_filter
from .search import Hit, SearchResult
from .store import one, scalar

NAME_MIN, NAME_MAX = 3, 60
AGGREGATES = ("mean", "max")
ORDERS = ("desc", "asc")
EXPORT_CHUNK = 5_000


def check_name(name, what="slice", lo=NAME_MIN, hi=NAME_MAX) -> str:
    """A stripped name of ``lo``–``hi`` (3–60) printable characters."""
    if not isinstance(name, str):
        raise CatalogError(f"{what} name must be a string")
    name = name.strip()
    if not lo <= len(name) <= hi:
        raise CatalogError(f"{what} name {name!r} must be {lo} to {hi} characters long")
    if any(not c.isprintable() for c in name):
        raise CatalogError(f"{what} name {name!r} must not contain control characters")
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
    catalog: object = field(repr=False, compare=False, default=None)

    @property
    def is_filter_only(self) -> bool:
        return not self.query.get("embedding")

    def search_args(self) -> dict:
        """The keyword arguments of :meth:`Catalog.search` this slice stands for."""
        return _search_args(self.query)

    def rows(self, limit: int | None = 50, offset: int = 0):
        """One page of the slice's rows as a ``SearchResult`` (``limit=None``: all of them)."""
        if self.is_filter_only:
            return self.catalog.filter_datarows(self.query.get("where"), limit=limit, offset=offset)
        return self.catalog.search(**self.search_args(), limit=limit, offset=offset)

    def row_ids(self) -> list[str]:
        """Every row id of the slice, in the slice's order."""
        if self.is_filter_only:
            return self.catalog.filter_row_ids(self.query.get("where"))
        return list(self.catalog.search_row_ids(**self.search_args()))

    def delete(self) -> None:
        self.catalog.delete_slice(self.name)

    def export(self, out, fmt: str = "ndjson") -> int:
        return self.catalog.export_slice(self.name, out, fmt)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "query": self.query,
                "created_at": self.created_at, "updated_at": self.updated_at}


def _anchor_list(anchors) -> list:
    """Anchors as a list: one string or one vector is one anchor."""
    if anchors is None:
        return []
    if isinstance(anchors, str) or (isinstance(anchors, np.ndarray) and anchors.ndim == 1):
        return [anchors]
    return list(anchors)


def _search_args(q: dict) -> dict:
    """Stored query → keyword arguments of ``Catalog.search`` (stored vectors are lists of floats)."""
    def anchors(items):
        return [np.asarray(a, dtype=np.float32) if isinstance(a, list) else a for a in items or []]

    return {"embedding": q["embedding"], "anchors": anchors(q.get("anchors")),
            "negative_anchors": anchors(q.get("negative_anchors")), "text": q.get("text"),
            "min_score": q.get("min_score", 0.85), "max_score": q.get("max_score", 1.0),
            "aggregate": q.get("aggregate", "mean"), "where": q.get("where"), "order": q.get("order", "desc"),
            "include_anchors": bool(q.get("include_anchors", False))}


class SlicesMixin:
    """Catalog methods for saved slices and plain filtered listings."""

    # -- filtered listing (pure filter slices, and anyone who wants rows by filter) -------------
    def filter_datarows(self, where=None, limit: int | None = 50, offset: int = 0):
        """Rows matching ``where`` by ``global_key``, as a ``SearchResult`` with score None."""
        if (limit is not None and limit < 0) or offset < 0:
            raise CatalogError("limit and offset must not be negative")
        sql, params = compile_filter(where)
        base = f"SELECT CAST(d.id AS VARCHAR), d.global_key FROM datarows d WHERE {sql} ORDER BY d.global_key"
        page, page_params = (" OFFSET ?", [offset]) if limit is None else (" LIMIT ? OFFSET ?", [limit, offset])
        with self.store.connect() as con:
            total = scalar(con, f"SELECT count(*) FROM datarows d WHERE {sql}", params)
            rows = con.execute(base + page, [*params, *page_params]).fetchall()
        return SearchResult(total=total, results=[Hit(id=r[0], global_key=r[1], score=None) for r in rows])

    def filter_row_ids(self, where=None) -> list[str]:
        """Ids of every row matching ``where``, ordered by ``global_key``."""
        sql, params = compile_filter(where)
        with self.store.connect() as con:
            rows = con.execute(f"SELECT CAST(d.id AS VARCHAR) FROM datarows d WHERE {sql} ORDER BY d.global_key",
                               params).fetchall()
        return [r[0] for r in rows]

    # -- saving -------------------------------------------------------------------------------------
    def _slice_query(self, embedding, anchors, negative_anchors, min_score, max_score, aggregate, where, order,
                     text=None, include_anchors=False) -> dict:
        """The stored form of a search state, checked by running it once (so a saved slice always runs)."""
        if isinstance(where, str):
            where = parse_filter(where)
        if where is not None and not isinstance(where, dict):
            raise CatalogError("a slice filter must be a JSON object such as {\"split\": \"train\"}")
        compile_filter(where)  # raises on a bad filter
        if aggregate not in AGGREGATES:
            raise CatalogError(f"aggregate {aggregate!r} is not supported; use mean or max")
        if order not in ORDERS:
            raise CatalogError(f"order {order!r} is not supported; use desc or asc")
        anchors = _anchor_list(anchors)
        negative_anchors = _anchor_list(negative_anchors)
        query = {"embedding": None, "anchors": [], "negative_anchors": [], "text": None, "min_score": None,
                 "max_score": None, "aggregate": aggregate, "where": where or None, "order": order,
                 "include_anchors": False}
        if embedding is None:
            if anchors or negative_anchors or text is not None:
                raise CatalogError("anchors need an embedding: pass --embedding (name or id), "
                                   "or leave out the anchors for a pure filter slice")
            return query
        emb = self.get_embedding(embedding)
        query.update(embedding=emb.id, anchors=self._stored_anchors(anchors),
                     negative_anchors=self._stored_anchors(negative_anchors), text=text,
                     min_score=min_score, max_score=max_score, include_anchors=bool(include_anchors))
        self.search(**_search_args(query), limit=0)  # the search's own checks: anchors, vectors, range
        query["min_score"], query["max_score"] = float(min_score), float(max_score)
        return query

    def _stored_anchors(self, anchors) -> list:
        """Row refs become row ids (they must exist); raw vectors become lists of floats."""
        refs = [a for a in anchors if isinstance(a, str)]
        ids = iter(self.resolve_row_ids(refs) if refs else [])
        out = []
        for a in anchors:
            if isinstance(a, str):
                out.append(next(ids))
            else:
                vec = np.asarray(a, dtype=np.float32).reshape(-1)
                if not np.all(np.isfinite(vec)):
                    raise CatalogError("an anchor vector contains NaN or Infinity")
                out.append([float(x) for x in vec])
        return out

    def save_slice(self, name, embedding=None, anchors=(), negative_anchors=(), min_score=0.85, max_score=1.0,
                   aggregate="mean", where=None, order="desc", description=None, replace=False, text=None,
                   include_anchors=False) -> Slice:
        """Save the search state under ``name``; ``replace=True`` updates an existing slice in place.

        Without ``embedding`` (and anchors) the slice is a pure filter slice. ``text`` is a text prompt
        anchor, encoded again whenever the slice is read.
        """
        name = check_name(name)
        if description is not None and not isinstance(description, str):
            raise CatalogError("slice description must be a string")
        query = self._slice_query(embedding, anchors, negative_anchors, min_score, max_score, aggregate, where,
                                  order, text=text, include_anchors=include_anchors)
        text = orjson.dumps(query).decode()
        with self.store.transaction() as con:
            existing = one(con, "SELECT CAST(id AS VARCHAR), description FROM slices WHERE name = ?", [name])
            if existing and not replace:
                raise AlreadyExists(f"a slice named {name!r} already exists; pass --replace to update it "
                                    "or choose another name")
            if existing:
                con.execute("UPDATE slices SET query = CAST(? AS JSON), description = ?, updated_at = now() WHERE name = ?",
                            [text, description if description is not None else existing[1], name])
            else:
                con.execute("INSERT INTO slices (id, name, description, query) VALUES (?, ?, ?, CAST(? AS JSON))",
                            [str(uuid.uuid4()), name, description, text])
        return self.get_slice(name)

    # -- reading ------------------------------------------------------------------------------------
    _SLICE_SELECT = ("SELECT CAST(id AS VARCHAR), name, description, CAST(query AS VARCHAR), created_at, updated_at "
                     "FROM slices")

    def _slice(self, row) -> Slice:
        return Slice(id=row[0], name=row[1], description=row[2], query=json.loads(row[3]),
                     created_at=_iso(row[4]), updated_at=_iso(row[5]), catalog=self)

    def get_slices(self) -> list[Slice]:
        with self.store.connect() as con:
            rows = con.execute(f"{self._SLICE_SELECT} ORDER BY name").fetchall()
        return [self._slice(r) for r in rows]

    def get_slice(self, name) -> Slice:
        """The slice named ``name`` (or with that id)."""
        ref = str(name).strip()
        with self.store.connect() as con:
            row = one(con, f"{self._SLICE_SELECT} WHERE name = ? OR CAST(id AS VARCHAR) = lower(?)", [ref, ref])
        if row is None:
            raise NotFound(f"no slice named {ref!r}; see `advtool slices list`")
        return self._slice(row)

    def delete_slice(self, name) -> None:
        s = self.get_slice(name)
        with self.store.transaction() as con:
            con.execute("DELETE FROM slices WHERE id = CAST(? AS UUID)", [s.id])

    # -- export -------------------------------------------------------------------------------------
    def export_slice(self, name, out, fmt: str = "ndjson") -> int:
        """Write every row of the slice (id, global_key, score, metadata, labels) in the slice's order."""
        if fmt not in ("ndjson", "csv"):
            raise CatalogError(f"export format {fmt!r} is not supported; use ndjson or csv")
        hits = self.get_slice(name).rows(limit=None).results
        writer = None
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(["id", "global_key", "score", "metadata", "labels"])
        for start in range(0, len(hits), EXPORT_CHUNK):
            chunk = hits[start:start + EXPORT_CHUNK]
            details = self._row_details([h.id for h in chunk])
            for h in chunk:
                meta, labels = details.get(h.id, ({}, []))
                if writer is not None:
                    writer.writerow([h.id, h.global_key, "" if h.score is None else repr(float(h.score)),
                                     json.dumps(meta, ensure_ascii=False), json.dumps(labels, ensure_ascii=False)])
                else:
                    out.write(orjson.dumps({"id": h.id, "global_key": h.global_key,
                                            "score": None if h.score is None else float(h.score),
                                            "metadata": meta, "labels": labels}).decode())
                    out.write("\n")
        return len(hits)

    def _row_details(self, ids) -> dict:
        """``{row_id: (metadata, [label dicts])}`` for ``ids``."""
        if not ids:
            return {}
        with self.store.connect() as con:
            con.register("export_ids", pa.table({"id": pa.array(list(ids), pa.string())}))
            try:
                rows = con.execute(
                    """SELECT CAST(d.id AS VARCHAR), CAST(d.metadata AS VARCHAR),
                              list({'label': l.label, 'source': l.source, 'score': l.score, 'reviewed': l.reviewed}
                                   ORDER BY l.label) FILTER (WHERE l.label IS NOT NULL)
                       FROM export_ids e JOIN datarows d ON d.id = CAST(e.id AS UUID)
                       LEFT JOIN labels l ON l.row_id = d.id
                       GROUP BY d.id, d.metadata""").fetchall()
            finally:
                con.unregister("export_ids")
        return {r[0]: (json.loads(r[1]), list(r[2] or [])) for r in rows}
