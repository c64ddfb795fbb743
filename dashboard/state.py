"""The search state of the catalog page, and its round trip through the URL and through slices.

One :class:`SearchState` per browser session lives in ``st.session_state``. It is written to the URL
after every change (``?emb=..&a=..&min=..``), so a search can be shared by copying the address, and
``?slice=NAME`` opens a saved slice with its whole state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import streamlit as st

from catalog import CatalogError, SearchSpec
from catalog.search.spec import DEFAULT_MAX_SCORE, DEFAULT_MIN_SCORE

DEFAULT_MIN, DEFAULT_MAX = DEFAULT_MIN_SCORE, DEFAULT_MAX_SCORE
PER_PAGE = 48


@dataclass
class SearchState:
    embedding: str | None = None          # embedding name
    anchors: list[str] = field(default_factory=list)      # data-row ids
    negatives: list[str] = field(default_factory=list)    # data-row ids
    min_score: float = DEFAULT_MIN
    max_score: float = DEFAULT_MAX
    aggregate: str = "mean"               # "mean" or "max"
    where: dict | None = None             # the one filter: the pickers' and the JSON box's parts (query_panel)
    text: str | None = None               # text prompt
    image: bytes | None = field(default=None, repr=False)  # uploaded query image (not in the URL)
    image_name: str | None = None
    order: str = "desc"
    page: int = 1
    slice: str | None = None              # the slice this state was opened from

    # -- what kind of query -----------------------------------------------------------------------
    @property
    def is_similarity(self) -> bool:
        return bool(self.anchors or self.text or self.image)

    def slice_key(self) -> tuple:
        """What a slice of this state stores: :meth:`key` without the embedding when nothing is
        compared (a pure filter), so an opened slice is "modified" only when its query changed."""
        key = self.key()
        return key if self.is_similarity else (None, *key[1:])

    def key(self) -> tuple:
        """Identifies the result set (not the page)."""
        return (self.embedding, tuple(self.anchors), tuple(self.negatives), round(self.min_score, 4),
                round(self.max_score, 4), self.aggregate, json.dumps(self.where, sort_keys=True),
                self.text, hash(self.image) if self.image else None, self.order)

    def spec(self) -> SearchSpec:
        """The library's description of this search (``Catalog.search`` / ``search_row_ids``)."""
        return SearchSpec(embedding=self.embedding, anchors=self.anchors, negatives=self.negatives,
                          text=self.text or None, image=self.image or None, min_score=self.min_score,
                          max_score=self.max_score, aggregate=self.aggregate, where=self.where, order=self.order)

    def slice_spec(self) -> SearchSpec:
        """What a slice of this state stores (a text or image prompt is not stored)."""
        return SearchSpec(embedding=self.embedding if self.is_similarity else None, anchors=self.anchors,
                          negatives=self.negatives, min_score=self.min_score, max_score=self.max_score,
                          aggregate=self.aggregate, where=self.where, order=self.order)

    # -- URL ----------------------------------------------------------------------------------------
    def to_params(self) -> dict[str, str | list[str]]:
        p: dict[str, str | list[str]] = {}
        if self.embedding:
            p["emb"] = self.embedding
        if self.anchors:
            p["a"] = list(self.anchors)
        if self.negatives:
            p["neg"] = list(self.negatives)
        if (self.min_score, self.max_score) != (DEFAULT_MIN, DEFAULT_MAX):
            p["min"] = f"{self.min_score:g}"
            p["max"] = f"{self.max_score:g}"
        if self.aggregate != "mean":
            p["agg"] = self.aggregate
        if self.where:
            p["where"] = json.dumps(self.where, separators=(",", ":"), ensure_ascii=False)
        if self.text:
            p["text"] = self.text
        if self.order != "desc":
            p["order"] = self.order
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
        try:
            rng = SearchSpec(min_score=get("min") if get("min") is not None else DEFAULT_MIN,
                             max_score=get("max") if get("max") is not None else DEFAULT_MAX)
            s.min_score, s.max_score = rng.min_score, rng.max_score
        except CatalogError:
            problems.append("the score range in the address must be two numbers with 0 ≤ min ≤ max ≤ 1; using 0.85–1")
        if get("agg") in ("mean", "max"):
            s.aggregate = get("agg")
        if get("where"):
            try:
                w = json.loads(get("where"))
                if not isinstance(w, dict):
                    raise ValueError
                s.where = w
            except ValueError:
                problems.append("the filter in the address is not a JSON object; it was ignored")
        s.text = get("text") or None
        if get("order") in ("asc", "desc"):
            s.order = get("order")
        try:
            s.page = max(1, int(get("page") or 1))
        except ValueError:
            s.page = 1
        return s, problems

    @classmethod
    def from_slice_query(cls, name: str, query: dict) -> "SearchState":
        """The state a saved slice stands for (its query is a stored :class:`SearchSpec`)."""
        spec = SearchSpec.from_json(query or {})
        return cls(
            embedding=spec.embedding,
            anchors=[a for a in spec.anchors if isinstance(a, str)],
            negatives=[a for a in spec.negatives if isinstance(a, str)],
            min_score=spec.min_score, max_score=spec.max_score, aggregate=spec.aggregate,
            where=spec.where, order=spec.order, slice=name,
        )

    def copy(self, **changes) -> "SearchState":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("image")
        return d


# -- the session's state --------------------------------------------------------------------------
def get() -> SearchState:
    if "search" not in st.session_state:
        st.session_state["search"] = SearchState()
    return st.session_state["search"]


def put(state: SearchState) -> None:
    st.session_state["search"] = state


def update(**changes) -> SearchState:
    """Change the state; any change of the query goes back to page 1."""
    s = get()
    if "page" not in changes:
        changes["page"] = 1
    new = replace(s, **changes)
    put(new)
    return new


def current_params() -> dict[str, list[str]]:
    qp = st.query_params
    return {k: qp.get_all(k) for k in qp}


def write_url(state: SearchState) -> None:
    """Put the state in the address bar (``?slice=NAME`` while an opened slice is unchanged)."""
    base = st.session_state.get("_slice_base")
    if state.slice and base is not None and base == state.slice_key():
        params = {"slice": state.slice}
        if state.page > 1:
            params["page"] = str(state.page)
    else:
        params = state.to_params()
    wanted = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    if wanted != current_params():
        st.query_params.from_dict(params)
    st.session_state["_url_seen"] = wanted


def open_slice(cat, name: str) -> list[str]:
    """Load a saved slice into the session's state; returns problems to show."""
    sl = cat.get_slice(name)
    state = SearchState.from_slice_query(sl.name, sl.query)
    if state.embedding:  # slices store the embedding's id; the page names embeddings by name
        state.embedding = cat.get_embedding(state.embedding).name
    put(state)
    st.session_state["_slice_base"] = state.slice_key()
    return []


def sync_from_url(cat) -> list[str]:
    """Adopt the address bar's state when it was changed from outside (a shared link, a reload)."""
    cur = current_params()
    if cur == st.session_state.get("_url_seen"):
        return []
    st.session_state["_url_seen"] = cur
    if not cur or set(cur) <= {"page"} and "search" in st.session_state:
        return []
    problems: list[str] = []
    if "slice" in cur:
        problems = open_slice(cat, cur["slice"][0])
        try:
            get().page = max(1, int(cur.get("page", ["1"])[0]))
        except ValueError:
            pass
        return problems
    state, problems = SearchState.from_params(st.query_params)
    put(state)
    st.session_state.pop("_slice_base", None)
    return problems
