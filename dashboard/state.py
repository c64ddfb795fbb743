"""The search state of the catalog page, and its round trip through the URL and through slices.

One :class:`SearchState` per browser session is kept by :mod:`dashboard.session`, which writes it to the
URL after every change (``?emb=..&a=..&min=..&sort=..``), so a search can be shared by copying the address;
``?slice=NAME`` opens a saved slice with its whole state. This module is plain data: no Streamlit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from catalog import CatalogError, SearchSpec
from catalog.filters import parse_filter
from catalog.search.backends import check_choice
from catalog.search.spec import DEFAULT_MAX_SCORE, DEFAULT_MIN_SCORE, SORTS

DEFAULT_MIN, DEFAULT_MAX = DEFAULT_MIN_SCORE, DEFAULT_MAX_SCORE
PER_PAGE = 48


@dataclass
class SearchState:
    embedding: str | None = None          # embedding name
    anchors: list[str] = field(default_factory=list)      # data-row ids
    negatives: list[str] = field(default_factory=list)    # data-row ids
    min_score: float | None = None        # None and None: the library's automatic range (auto_range.py)
    max_score: float | None = None
    aggregate: str = "mean"               # "mean" or "max"
    where: dict | None = None             # the one filter: the pickers' and the JSON box's parts (query_panel)
    text: str | None = None               # text prompt
    image: bytes | None = field(default=None, repr=False)  # uploaded query image (not in the URL)
    image_name: str | None = None
    order: str = "desc"                   # direction of ``sort``
    sort: str = "score"                   # "score", "global_key", "created" or "uniqueness" (SearchSpec.sort)
    group_by: str | None = None           # a metadata field: one card per group (SearchSpec.group_by)
    page: int = 1
    slice: str | None = None              # the slice this state was opened from
    backend: str = "auto"                 # the search backend (Catalog.search's backend=; ?backend= in the URL)

    # -- what kind of query -----------------------------------------------------------------------
    @property
    def is_similarity(self) -> bool:
        return bool(self.anchors or self.text or self.image)

    @property
    def auto_range(self) -> bool:
        """No range chosen: the library picks one (0.85–1, or the best rows when that holds none, and
        always for a text prompt) and says which."""
        return self.min_score is None and self.max_score is None

    def query_key(self) -> tuple:
        """:meth:`key` without the score range: what the distribution of scores depends on."""
        key = list(self.key())
        key[3:5] = []
        return tuple(key)

    def slice_key(self) -> tuple:
        """What a slice of this state stores: :meth:`key` without the embedding when nothing is
        compared (a pure filter), so an opened slice is "modified" only when its query changed."""
        key = self.key()
        return key if self.is_similarity else (None, *key[1:])

    def key(self) -> tuple:
        """Identifies the result set (not the page)."""
        def r(x):
            return None if x is None else round(x, 4)
        return (self.embedding, tuple(self.anchors), tuple(self.negatives), r(self.min_score),
                r(self.max_score), self.aggregate, json.dumps(self.where, sort_keys=True),
                self.text, hash(self.image) if self.image else None, self.order, self.sort, self.group_by,
                self.backend)

    def spec(self) -> SearchSpec:
        """The library's description of this search (``Catalog.search`` / ``search_row_ids``)."""
        return SearchSpec(embedding=self.embedding, anchors=self.anchors, negatives=self.negatives,
                          text=self.text or None, image=self.image or None, min_score=self.min_score,
                          max_score=self.max_score, aggregate=self.aggregate, where=self.where, order=self.order,
                          sort=self.sort, group_by=self.grouping)

    @property
    def grouping(self) -> str | None:
        """The field results are grouped by: only a similarity search groups (a listing has no scores)."""
        return self.group_by if self.is_similarity else None

    def listing(self) -> tuple[str, str]:
        """``(sort, order)`` for the library's listing of rows when nothing is compared."""
        return SearchSpec(sort=self.sort, order=self.order).listing_sort

    def slice_spec(self) -> SearchSpec:
        """What a slice of this state stores (a text or image prompt is not stored)."""
        return SearchSpec(embedding=self.embedding if self.is_similarity else None, anchors=self.anchors,
                          negatives=self.negatives, min_score=self.min_score, max_score=self.max_score,
                          aggregate=self.aggregate, where=self.where, order=self.order, sort=self.sort,
                          group_by=self.grouping)

    # -- URL ----------------------------------------------------------------------------------------
    def to_params(self) -> dict[str, str | list[str]]:
        p: dict[str, str | list[str]] = {}
        if self.embedding:
            p["emb"] = self.embedding
        if self.anchors:
            p["a"] = list(self.anchors)
        if self.negatives:
            p["neg"] = list(self.negatives)
        if not self.auto_range:  # a chosen range; without one the link asks for the automatic range too
            p["min"] = f"{DEFAULT_MIN if self.min_score is None else self.min_score:g}"
            p["max"] = f"{DEFAULT_MAX if self.max_score is None else self.max_score:g}"
        if self.aggregate != "mean":
            p["agg"] = self.aggregate
        if self.where:
            p["where"] = json.dumps(self.where, separators=(",", ":"), ensure_ascii=False)
        if self.text:
            p["text"] = self.text
        if self.order != "desc":
            p["order"] = self.order
        if self.sort != "score":
            p["sort"] = self.sort
        if self.group_by:
            p["group"] = self.group_by
        if self.backend != "auto":
            p["backend"] = self.backend
        if self.page > 1:
            p["page"] = str(self.page)
        return p

    @classmethod
    def from_params(cls, params) -> tuple["SearchState", list[str]]:
        """A state from URL parameters, and the problems found in them (bad values are dropped)."""
        s, problems = cls(), []

        def get(name):
            return params.get(name) if hasattr(params, "get") else None

        s.embedding = get("emb") or None
        s.anchors = list(params.get_all("a")) if hasattr(params, "get_all") else []
        s.negatives = list(params.get_all("neg")) if hasattr(params, "get_all") else []
        if get("min") is not None or get("max") is not None:
            try:
                rng = SearchSpec(min_score=get("min") if get("min") is not None else DEFAULT_MIN,
                                 max_score=get("max") if get("max") is not None else DEFAULT_MAX)
                s.min_score, s.max_score = rng.min_score, rng.max_score
            except CatalogError:
                problems.append("the score range in the address must be two numbers with 0 ≤ min ≤ max ≤ 1; "
                                "using the automatic range")
        if get("agg") in ("mean", "max"):
            s.aggregate = get("agg")
        if get("where"):
            try:  # the library's reading of a filter: bounded depth and size, one-line errors
                s.where = parse_filter(get("where"))
            except CatalogError as exc:
                problems.append(f"the filter in the address was ignored: {exc.message}")
        s.text = get("text") or None
        if get("order") in ("asc", "desc"):
            s.order = get("order")
        if get("sort") in SORTS:
            s.sort = get("sort")
        elif get("sort"):
            problems.append(f"the sort in the address must be one of {', '.join(SORTS)}; sorting by score")
        if get("group"):
            try:  # the library's check of a field name
                s.group_by = SearchSpec(embedding="x", anchors=["x"], min_score=0, group_by=get("group")).group_by
            except CatalogError as exc:
                problems.append(f"the grouping in the address was ignored: {exc.message}")
        if get("backend"):
            try:  # the library's check of the name; whether this catalog offers it is the query panel's
                s.backend = check_choice(get("backend")) or "auto"
            except CatalogError as exc:
                problems.append(f"the backend in the address was ignored: {exc.message}")
        try:
            s.page = max(1, int(get("page") or 1))
        except ValueError:
            s.page = 1
        return s, problems

    def link_spec(self) -> SearchSpec:
        """What a shared link keeps: the search without an uploaded image (which has no stored form)."""
        return SearchSpec(embedding=self.embedding, anchors=self.anchors, negatives=self.negatives,
                          text=self.text or None, min_score=self.min_score, max_score=self.max_score,
                          aggregate=self.aggregate, where=self.where, order=self.order, sort=self.sort,
                          group_by=self.grouping)

    @classmethod
    def from_spec(cls, spec: SearchSpec, slice: str | None = None) -> "SearchState":  # noqa: A002
        """The state of a stored search (a slice's or a shared link's)."""
        if spec.is_filter_only:  # nothing is compared: no range
            spec = SearchSpec(where=spec.where, order=spec.order, sort=spec.sort)
            return cls(where=spec.where, order=spec.order, sort=spec.sort, slice=slice)
        return cls(
            embedding=spec.embedding,
            anchors=[a for a in spec.anchors if isinstance(a, str)],
            negatives=[a for a in spec.negatives if isinstance(a, str)],
            min_score=spec.min_score, max_score=spec.max_score, aggregate=spec.aggregate,
            where=spec.where, text=spec.text or None, order=spec.order, sort=spec.sort, slice=slice,
            group_by=spec.group_by,
        )

    @classmethod
    def from_slice_query(cls, name: str, query: dict) -> "SearchState":
        """The state a saved slice stands for (its query is a stored :class:`SearchSpec`)."""
        state = cls.from_spec(SearchSpec.from_json(query or {}), slice=name)
        state.text = None  # a slice keeps row anchors and filters, not prompts
        return state

    def copy(self, **changes) -> "SearchState":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("image")
        return d


@dataclass
class MapView:
    """The Map page's session: the point the pointer rests on (its preview), what the last lasso or box
    selected and how long it took, and the colour values computed for the current map and choice."""

    hover: int | None = None
    note: str | None = None
    colours: tuple | None = None  # (key, colour indices, palette, legend)
