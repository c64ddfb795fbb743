"""One description of a search, used everywhere: :class:`SearchSpec` (and :class:`Page` for paging).

The library, saved slices (which store ``spec.to_json()``), the CLI flags, the dashboard state and the
REST bodies all build and read this one type. It is validated once, when it is made: a spec that
exists is well formed (whether its anchors exist and have vectors is checked when it runs).

JSON form (the slice's stored query)::

    {"embedding": <id or name | null>, "anchors": [<row id | [floats]>...],
     "negative_anchors": [...], "text": <str | null>, "min_score": <float | null>,
     "max_score": <float | null>, "aggregate": "mean" | "max", "where": <filter | null>,
     "order": "desc" | "asc", "include_anchors": <bool>[, "sort": "global_key" | "created"]}

``min_score``/``max_score`` are null for a pure filter spec (no embedding). ``image`` (bytes or a
file path) is a query-time anchor and has no JSON form.

The score range is *automatic* when neither bound is given (``min_score`` and ``max_score`` both
None, the default): the search service then chooses it from the query's scores
(:mod:`catalog.search.auto_range`) before any backend sees the spec, and the result says which range
it used. Giving one bound only fills the other from the default range 0.85–1, as it always did. An
automatic spec's JSON has null bounds and ``"auto_range": true``; JSON without that key reads null
bounds as 0.85–1, exactly as before (a saved slice stores the range its search resolved to). A pure
filter spec (no embedding) has no scores and is never automatic: its unused bounds stay 0.85–1.

``sort`` chooses what the results are ordered by, ``order`` the direction: ``"score"`` (the default),
``"global_key"`` or ``"created"`` (when the row was imported). The sort never changes *which* rows
match (score range, filters, anchors left out) nor the total, only their order; equal values are
ordered by row id (ascending in both directions), so pages concatenate to the whole ordering. Without
an ``order`` the natural direction of the sort is used: best score first (``desc``), global keys
A–Z (``asc``), newest first (``desc``); the spec always holds the resolved direction, and its JSON
stores it. A pure filter spec has no score: its ``"score"`` sort is the plain listing, by
``global_key`` A–Z whatever ``order`` says (as filter listings always were); ``"global_key"`` and
``"created"`` follow ``order``. The JSON has ``"sort"`` only when it is not ``"score"``, so JSON
without it reads exactly as before. ``"uniqueness"`` (most unique first) orders by the rows'
uniqueness under the spec's embedding (:mod:`catalog.quality.uniqueness`); it needs a similarity
search and a current uniqueness run (else the search says to compute it); rows without one come last.

``group_by`` (a metadata field, a dotted path as in filters; None: no grouping) returns one result per
group of rows that share the field's value (Ximilar's "product id"): the group's best-scoring row, with
the group's size and best score (its score). Groups are then sorted and paged as rows are, and the total
counts groups. Rows without the field (missing or JSON null) are each a group of their own. Values are
compared as JSON (``1`` and ``"1"`` differ; ``1`` and ``1.0`` are the same number). The JSON has
``"group_by"`` only when it is set. Grouping needs a similarity search (a pure filter has no scores).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import CatalogError
from ..filters import compile_filter, json_path, mentions, parse_filter

DEFAULT_MIN_SCORE, DEFAULT_MAX_SCORE = 0.85, 1.0
AGGREGATES = ("mean", "max")
ORDERS = ("desc", "asc")
SORTS = ("score", "global_key", "created", "uniqueness")
NATURAL_ORDER = {"score": "desc", "global_key": "asc", "created": "desc", "uniqueness": "desc"}
DEFAULT_LIMIT = 50


def _score(value, what: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise CatalogError(f"{what} must be a number from 0 to 1, not {value!r}", field=name) from None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise CatalogError(f"{what} {value:g} is outside [0, 1]; scores lie between 0 and 1", field=name)
    return value


def _anchor(a, name: str):
    """A row reference (stripped string) or a vector (tuple of floats)."""
    if isinstance(a, bytes):
        a = a.decode()
    if isinstance(a, str):
        if not a.strip():
            raise CatalogError("an anchor is an empty string; give a data row id or global_key", field=name)
        return a.strip()
    if isinstance(a, np.ndarray) or (isinstance(a, (list, tuple)) and a and all(
            isinstance(x, numbers.Real) and not isinstance(x, bool) for x in a)):
        try:
            return tuple(float(x) for x in np.asarray(a, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            pass
    raise CatalogError(f"anchor {a!r} is neither a data row id/global_key nor a vector", field=name)


def _anchors(value, name: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        value = [value]
    elif isinstance(value, np.ndarray):
        value = [value] if value.ndim == 1 else list(value)
    elif isinstance(value, tuple) and value and all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                                                     for x in value):
        value = [value]  # one vector given as a tuple of floats
    return tuple(_anchor(a, name) for a in value)


def _group_field(value) -> str | None:
    """A metadata field to group by (a dotted path as in filters, ``metadata.`` prefix allowed), or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise CatalogError(f"`group_by` must be a metadata field name such as \"product_id\", not {value!r}",
                           field="group_by")
    value = value.strip()
    json_path(value[len("metadata."):] if value.startswith("metadata.") else value, "group_by")
    return value


MAX_PAGE = 10**12  # the largest limit or offset (far above any catalog's rows, far below 2**63)


@dataclass(frozen=True)
class Page:
    """Which part of the ordered results: ``limit`` rows (None: all) after ``offset``."""

    limit: int | None = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self):
        lim, off = self.limit, self.offset
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, numbers.Integral) or lim < 0):
            raise CatalogError(f"limit must be a whole number ≥ 0 (or None for all), not {lim!r}", field="limit")
        if isinstance(off, bool) or not isinstance(off, numbers.Integral) or off < 0:
            raise CatalogError(f"offset must be a whole number ≥ 0, not {off!r}", field="offset")
        if lim is not None and lim > MAX_PAGE:  # DuckDB's LIMIT/OFFSET are 64-bit; beyond, the query fails
            raise CatalogError(f"`limit` must be at most {MAX_PAGE:,}, not {lim}", field="limit")
        if off > MAX_PAGE:
            raise CatalogError(f"`offset` must be at most {MAX_PAGE:,}, not {off}", field="offset")
        object.__setattr__(self, "limit", None if lim is None else int(lim))
        object.__setattr__(self, "offset", int(off))

    @property
    def end(self) -> int | None:
        """``offset + limit`` (None: every match is needed)."""
        return None if self.limit is None else self.offset + self.limit


ALL = Page(limit=None)


@dataclass(frozen=True)
class SearchSpec:
    """A search: anchors (row ids/global_keys or vectors), negatives, a text or image prompt, an
    inclusive score range (both bounds None: automatic, see the module), how anchors combine, a
    metadata/label filter, what the results are sorted by (``sort``) and the direction (``order``; None:
    the sort's natural direction, see the module).

    Without ``embedding`` (and anchors) it is a pure filter: the rows ``where`` selects."""

    embedding: str | None = None
    anchors: tuple = ()
    negatives: tuple = ()
    text: str | None = None
    image: bytes | str | None = field(default=None, repr=False)
    min_score: float | None = None
    max_score: float | None = None
    aggregate: str = "mean"
    where: dict | None = None
    order: str | None = None
    include_anchors: bool = False
    sort: str = "score"
    group_by: str | None = None

    def __post_init__(self):
        emb = self.embedding
        if emb is not None and not isinstance(emb, str):
            emb = getattr(emb, "id", None) or str(emb)  # an Embedding object
        set_ = object.__setattr__
        set_(self, "embedding", emb.strip() if isinstance(emb, str) and emb.strip() else None)
        set_(self, "anchors", _anchors(self.anchors, "anchors"))
        set_(self, "negatives", _anchors(self.negatives, "negatives"))
        if self.min_score is None and self.max_score is None and self.embedding is not None:
            lo = hi = None  # automatic: chosen by the search service
        else:
            lo = DEFAULT_MIN_SCORE if self.min_score is None else _score(self.min_score, "min score", "min_score")
            hi = DEFAULT_MAX_SCORE if self.max_score is None else _score(self.max_score, "max score", "max_score")
        if lo is not None and lo > hi:
            raise CatalogError(f"min score {lo:g} is greater than max score {hi:g}; give min ≤ max", field="min_score")
        set_(self, "min_score", lo)
        set_(self, "max_score", hi)
        if self.aggregate not in AGGREGATES:
            raise CatalogError(f"aggregate {self.aggregate!r} is not supported; use mean or max", field="aggregate")
        sort = "score" if self.sort is None else self.sort
        if sort not in SORTS:
            raise CatalogError(f"sort {sort!r} is not supported; use score, global_key, created or uniqueness",
                               field="sort")
        set_(self, "sort", sort)
        if self.order is None:
            set_(self, "order", NATURAL_ORDER[sort])
        if self.order not in ORDERS:
            raise CatalogError(f"order {self.order!r} is not supported; use desc or asc", field="order")
        where = parse_filter(self.where) if isinstance(self.where, str) else self.where
        if where is not None and not isinstance(where, dict):
            raise CatalogError("a filter must be a JSON object such as {\"split\": \"train\"}", field="where")
        set_(self, "where", where or None)
        if emb is None and self.uses_uniqueness:
            raise CatalogError("uniqueness (a sort or a filter) needs a similarity search: choose an embedding "
                               "and anchors", field="sort" if sort == "uniqueness" else "where")
        _ = self.where_sql  # compiled now: a bad filter fails when the spec is made
        if self.text is not None and not isinstance(self.text, str):
            raise CatalogError("a text prompt must be a string", field="text")
        if self.text is not None and self.image is not None:
            raise CatalogError("give either a text or an image query, not both", field="text")
        set_(self, "include_anchors", bool(self.include_anchors))
        if emb is None and (self.anchors or self.negatives or self.text is not None or self.image is not None):
            raise CatalogError("anchors need an embedding: choose one (`embedding`, a name or id), or leave "
                               "out the anchors for a pure filter", field="embedding")
        set_(self, "group_by", _group_field(self.group_by))
        if emb is None and self.group_by is not None:
            raise CatalogError("grouping (`group_by`) needs a similarity search: choose an embedding and anchors",
                               field="group_by")

    @cached_property
    def where_sql(self) -> tuple[str, list] | None:
        """The filter compiled to ``(SQL over datarows d, parameters)``, or None without a filter."""
        return None if self.where is None else compile_filter(self.where, alias="d", embedding=self.embedding)

    @property
    def uses_uniqueness(self) -> bool:
        """Whether the sort or the filter reads the rows' uniqueness."""
        return self.sort == "uniqueness" or (self.where is not None and mentions(self.where, "uniqueness"))

    # -- what kind of search -------------------------------------------------------------------------
    @property
    def is_filter_only(self) -> bool:
        return self.embedding is None

    @property
    def auto_range(self) -> bool:
        """Whether the score range is left to the search service (no bound was given)."""
        return self.min_score is None

    @property
    def listing_sort(self) -> tuple[str, str]:
        """``(column, order)`` of a pure filter listing: the ``"score"`` sort is by global_key A–Z."""
        return ("global_key", "asc") if self.sort == "score" else (self.sort, self.order)

    @property
    def has_query(self) -> bool:
        """Whether anything defines a query vector (anchors, a text or an image)."""
        return bool(self.anchors) or self.text is not None or self.image is not None

    def replace(self, **changes) -> "SearchSpec":
        return dataclasses.replace(self, **changes)

    # -- the JSON form (a slice's stored query) --------------------------------------------------------
    def to_json(self) -> dict:
        if self.image is not None:
            raise CatalogError("an image prompt has no stored form; use row anchors or a text prompt", field="image")

        def out(items):
            return [list(a) if isinstance(a, tuple) else a for a in items]

        if self.is_filter_only:
            return {"embedding": None, "anchors": [], "negative_anchors": [], "text": None, "min_score": None,
                    "max_score": None, "aggregate": self.aggregate, "where": self.where, "order": self.order,
                    "include_anchors": False, **self._sort_json()}
        data = {"embedding": self.embedding, "anchors": out(self.anchors), "negative_anchors": out(self.negatives),
                "text": self.text, "min_score": self.min_score, "max_score": self.max_score,
                "aggregate": self.aggregate, "where": self.where, "order": self.order,
                "include_anchors": self.include_anchors, **self._sort_json()}
        if self.auto_range:
            data["auto_range"] = True
        return data

    def _sort_json(self) -> dict:
        return ({} if self.sort == "score" else {"sort": self.sort}) | (
            {} if self.group_by is None else {"group_by": self.group_by})

    @classmethod
    def from_json(cls, data: dict) -> "SearchSpec":
        if not isinstance(data, dict):
            raise CatalogError("a stored search must be a JSON object")
        lo, hi = data.get("min_score"), data.get("max_score")
        if data.get("auto_range") and lo is None and hi is None:
            return cls(embedding=data.get("embedding"), anchors=data.get("anchors") or (),
                       negatives=data.get("negative_anchors") or data.get("negatives") or (),
                       text=data.get("text"), aggregate=data.get("aggregate") or "mean",
                       where=data.get("where") or None, order=data.get("order") or None,
                       include_anchors=bool(data.get("include_anchors", False)), sort=data.get("sort") or "score",
                       group_by=data.get("group_by"))
        return cls(embedding=data.get("embedding"), anchors=data.get("anchors") or (),
                   negatives=data.get("negative_anchors") or data.get("negatives") or (),
                   text=data.get("text"), min_score=DEFAULT_MIN_SCORE if lo is None else lo,
                   max_score=DEFAULT_MAX_SCORE if hi is None else hi, aggregate=data.get("aggregate") or "mean",
                   where=data.get("where") or None, order=data.get("order") or None,
                   include_anchors=bool(data.get("include_anchors", False)), sort=data.get("sort") or "score",
                   group_by=data.get("group_by"))

    # -- the keyword form of Catalog.search -------------------------------------------------------------
    @classmethod
    def from_kwargs(cls, embedding=None, anchors=(), negative_anchors=(), min_score=None,
                    max_score=None, aggregate="mean", where=None, order=None,
                    include_anchors=False, text=None, image=None, sort="score", group_by=None) -> "SearchSpec":
        return cls(embedding=embedding, anchors=anchors, negatives=negative_anchors, text=text, image=image,
                   min_score=min_score, max_score=max_score, aggregate=aggregate, where=where, order=order,
                   include_anchors=include_anchors, sort=sort, group_by=group_by)

    def kwargs(self) -> dict:
        """The keyword arguments of the keyword form that stand for this spec."""
        return {"embedding": self.embedding, "anchors": [np.asarray(a, np.float32) if isinstance(a, tuple) else a
                                                         for a in self.anchors],
                "negative_anchors": [np.asarray(a, np.float32) if isinstance(a, tuple) else a
                                     for a in self.negatives],
                "text": self.text, "min_score": self.min_score, "max_score": self.max_score,
                "aggregate": self.aggregate, "where": self.where, "order": self.order,
                "include_anchors": self.include_anchors, "sort": self.sort, "group_by": self.group_by}
