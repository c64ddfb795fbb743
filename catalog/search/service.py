"""The search service: one :class:`SearchSpec` in, a page of scored rows out (PRODUCT.md §3).

It resolves anchors (row ids or global_keys, vectors, a text or image prompt encoded by the
embedding's model), combines them (:func:`ranking.query_vectors`), asks the planned backend for the
rows in the score range, then excludes the anchors, applies the filter, orders and pages.

A spec without a range (``spec.auto_range``) is resolved here, before any backend sees it: one exact
scan scores every row, the filter and the anchor exclusion are applied, and
:func:`auto_range.choose_range` picks the range from that :class:`ScoreDistribution`; the same scan
then answers the search (unless a non-exact backend was asked for by name). The result carries the
range used (``SearchResult.score_range``) and, for an automatic range, the distribution.

``spec.sort`` orders the rows in the range by score, ``global_key`` or ``created`` (ties by row id);
it never changes which rows match or the total. A backend that does not declare the sort
(``Capabilities.sorts``) is replaced by the exact scan, as for an order it does not declare. For
``aggregate="max"`` each hit names the anchor that gave its score (``Hit.anchor``), from the backend's
``Matches.anchors``.
"""

from __future__ import annotations

import time

import numpy as np

from dataclasses import dataclass

from ..engine.client import EngineError
from ..errors import CatalogError, VectorsChanged
from ..vectors.cache import find_rows
from .auto_range import (DEFAULT_BINS, TOP_N, RangeChoice, ScoreDistribution, check_bins, choose_range,
                         distribution_from_scores, given_range)
from .backends import Context, ExactBackend, Matches, Query, plan
from .backends.registry import offered
from .backends.base import in_range
from .backends.registry import Plan
from .ivf import build_index, index_info
from .ranking import check_vector, matching, query_vectors, rank
from .results import Hit, SearchResult
from .spec import ALL, Page, SearchSpec


SEARCH_ATTEMPTS = 5  # a search that meets a change of its vectors starts again, this often at most


def _names(rows: list[dict]) -> str:
    shown = ", ".join(repr(r["global_key"]) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


_KEYWORDS = ("anchors", "negative_anchors", "min_score", "max_score", "aggregate", "where", "limit", "offset",
             "order", "include_anchors", "text", "image", "backend", "sort", "group_by")


def split_call(spec, args: tuple, kwargs: dict, paged: bool = True) -> tuple:
    """``(spec, page, backend)`` from either call form of ``Catalog.search``: ``search(spec, page,
    backend=...)`` or the keyword form ``search(embedding, anchors=..., min_score=..., limit=...)``.
    With ``paged=False`` (``search_row_ids``): ``(spec, backend)``, and no page may be given."""
    kwargs = dict(kwargs)
    if isinstance(spec, SearchSpec):
        if not paged:
            backend = args[0] if args else kwargs.pop("backend", None)
            if len(args) > 1 or kwargs:
                raise TypeError("search_row_ids(spec, backend=None) takes no other arguments")
            return spec, backend
        page = args[0] if args else kwargs.pop("page", None)
        backend = kwargs.pop("backend", None)
        if len(args) > 1 or kwargs:
            raise TypeError("search(spec, page, backend=None) takes no other arguments")
        return spec, page if page is not None else Page(), backend
    names = _KEYWORDS if paged else tuple(n for n in _KEYWORDS if n not in ("limit", "offset"))
    if len(args) > len(names):
        raise TypeError("too many positional arguments for search")
    kw = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in kw:
            raise TypeError(f"search got multiple values for {k!r}")
        kw[k] = v
    unknown = set(kw) - set(names)
    if unknown:
        raise TypeError(f"search got unexpected keyword arguments {sorted(unknown)}")
    page = Page(kw.pop("limit", 50), kw.pop("offset", 0)) if paged else None
    backend = kw.pop("backend", None)
    spec = SearchSpec.from_kwargs(spec, **kw)
    return (spec, page, backend) if paged else (spec, backend)


@dataclass
class _Prepared:
    """A spec's query, ready for a backend: its embedding, plan, anchor rows and query vectors."""

    spec: SearchSpec
    emb: object
    chosen: Plan
    rows: list
    neg_rows: list
    queries: np.ndarray

    @property
    def exclude(self) -> list[str]:
        return [] if self.spec.include_anchors else [r["id"] for r in self.rows + self.neg_rows]

    def anchor_names(self) -> list:
        """What each query vector stands for under ``max``, in query order: the row anchors' ids, then
        the vector anchors' indices in ``spec.anchors``, then None for a text or image prompt."""
        vector_at = [i for i, a in enumerate(self.spec.anchors) if not isinstance(a, str)]
        return [r["id"] for r in self.rows] + vector_at + [None] * (self.spec.text is not None
                                                                    or self.spec.image is not None)


class Searcher:
    """Similarity search over one catalog.

    ``embeddings`` resolves embedding references, ``datarows`` row references (with their
    global_keys), ``encoder`` turns a text or image prompt into a vector (``encode_query``),
    ``uniqueness`` (:class:`catalog.quality.Uniqueness`) checks that a spec sorting or filtering by
    uniqueness reads a current run."""

    def __init__(self, store, cache, embeddings, datarows, encoder, engines=None, uniqueness=None):
        self.store = store
        self.uniqueness = uniqueness
        self.cache = cache
        self.embeddings = embeddings
        self.datarows = datarows
        self.encoder = encoder
        self.context = Context(store=store, cache=cache, engines=engines)
        self._memo: dict = {"token": None, "embeddings": {}}

    # -- public ----------------------------------------------------------------------------------------
    def search(self, spec: SearchSpec, page: Page | None = None, backend=None) -> SearchResult:
        """Rows of ``spec.embedding`` scoring within the range, one ``page`` of them, and the total. When the
        embedding's vectors change while they are read, the search starts again on the new ones (at most
        ``SEARCH_ATTEMPTS`` times; then :class:`VectorsChanged`, a :class:`CatalogBusy`)."""
        for attempt in range(1, SEARCH_ATTEMPTS + 1):
            try:
                return self._search(spec, page, backend)
            except VectorsChanged:
                if attempt == SEARCH_ATTEMPTS:
                    raise
                self._memo["token"] = None  # read the embedding (its new version) again
                time.sleep(0.01 * attempt)

    def _search(self, spec: SearchSpec, page: Page | None, backend) -> SearchResult:
        page = page or Page()
        found, total, name, p, choice, dist, groups = self._run(spec, page, backend)
        ids = found.table[found.positions].tolist()
        keys = self.cache.load_keys(p.emb).get(found.positions) if ids else []
        anchors = [None] * len(ids)
        if spec.aggregate == "max" and ids:
            names = p.anchor_names()
            which = found.anchors if found.anchors is not None else np.zeros(len(ids), np.int64)
            anchors = [names[int(w)] if int(w) < len(names) else None for w in which]
        hits = [Hit(i, k, float(s), a) for i, k, s, a in zip(ids, keys, found.scores, anchors)]
        if groups is not None:
            for hit, size, value in zip(hits, groups.sizes.tolist(), groups.values):
                hit.group, hit.group_size = value, int(size)
        return SearchResult(total=total, results=hits, backend=name, complete=found.complete, score_range=choice,
                            distribution=dist, warnings=list(p.chosen.warnings),
                            recall=None if found.complete else found.recall)

    def backends(self) -> tuple[str, ...]:
        """The backend choices for this catalog: ``"auto"`` and the registered backends it offers (the
        vector engine's only when one is configured)."""
        return ("auto", *offered(self.context))

    def row_ids(self, spec: SearchSpec, backend=None) -> list[str]:
        """Every matching row id, in result order (no paging)."""
        found = self._run(spec, ALL, backend)[0]
        return found.table[found.positions].tolist()

    def score_distribution(self, spec: SearchSpec, bins: int = DEFAULT_BINS, top: int = TOP_N) -> ScoreDistribution:
        """The scores of every row ``spec``'s query matches, whatever its range: the histogram over
        [0, 1] in ``bins`` equal bins, the number of rows scored, the best score and the best ``top``
        scores. One exact scan; the filter applies and the anchors are left out (unless included)."""
        bins = check_bins(bins)
        prepared = self._prepare(spec, "exact")
        return distribution_from_scores(self._all_scores(prepared).scores, bins, top)

    def position_scores(self, spec: SearchSpec) -> tuple[np.ndarray, np.ndarray]:
        """Every row ``spec``'s query matches, whatever its range: its position in the embedding's
        vector cache (row-id order) and its score. One exact scan; filter and anchor exclusion apply."""
        found = self._all_scores(self._prepare(spec, "exact"))
        return found.positions, found.scores

    def resolve_range(self, spec: SearchSpec) -> tuple[SearchSpec, RangeChoice]:
        """``spec`` with its range filled in, and the :class:`RangeChoice`: an automatic range is chosen
        from the query's scores (one exact scan); a given range is kept."""
        if not isinstance(spec, SearchSpec):
            raise CatalogError("a search is described by a SearchSpec")
        if not spec.auto_range:
            return spec, given_range(spec.min_score, spec.max_score)
        choice = choose_range(self.score_distribution(spec), text_prompt=spec.text is not None)
        return spec.replace(min_score=choice.min_score, max_score=choice.max_score), choice

    def build_index(self, embedding) -> dict:
        """Build the approximate (IVF-Flat L1) index of an embedding now; returns its description."""
        emb = self.embeddings.get_embedding(embedding)
        exact = ExactBackend.open(self.context, emb)
        if exact.size == 0:
            raise CatalogError(f"embedding {emb.name} has no vectors; import or compute them first",
                               field="embedding")
        return build_index(self.store, emb, exact)

    def index_info(self, embedding) -> dict | None:
        """The approximate index's description (nlist, calibrated nprobe, measured recall) or None."""
        return index_info(self.store, self.embeddings.get_embedding(embedding))

    # -- one search ------------------------------------------------------------------------------------
    def _prepare(self, spec: SearchSpec, backend) -> _Prepared:
        if not isinstance(spec, SearchSpec):
            raise CatalogError("a search is described by a SearchSpec")
        refs = [a for a in spec.anchors if isinstance(a, str)]
        raw = [np.asarray(a) for a in spec.anchors if not isinstance(a, str)]
        neg_refs = [a for a in spec.negatives if isinstance(a, str)]
        neg_raw = [np.asarray(a) for a in spec.negatives if not isinstance(a, str)]
        if not spec.has_query:
            raise CatalogError("search needs at least one anchor: a data row id or global_key (`anchors`), "
                               "`text` or `image`", field="anchors")
        emb = self._embedding(spec.embedding)
        if spec.uses_uniqueness:
            if self.uniqueness is None:
                raise CatalogError("this catalog cannot read uniqueness", field="sort")
            emb = self.uniqueness.require_current(emb, field="sort" if spec.sort == "uniqueness" else "where")
            spec = spec.replace(embedding=emb.id)  # the filter and the sort read this embedding's run
        if spec.text is not None or spec.image is not None:
            raw.append(np.asarray(self.encoder.encode_query(emb, text=spec.text, image=spec.image), np.float32))
        chosen = plan(self.context, emb, backend)
        rows = self._anchor_rows(chosen.exact, emb, refs)
        neg_rows = self._anchor_rows(chosen.exact, emb, neg_refs)
        be = chosen.backend
        pos_vecs = self._anchor_vectors(be, emb, rows, raw, "anchor")
        neg_vecs = self._anchor_vectors(be, emb, neg_rows, neg_raw, "negative anchor")
        queries = query_vectors(pos_vecs, neg_vecs, spec.aggregate)
        return _Prepared(spec, emb, chosen, rows, neg_rows, queries)

    def _all_scores(self, p: _Prepared) -> Matches:
        """Every row's score (exact scan, range [0, 1]), anchors excluded and the filter applied."""
        full = p.chosen.exact.search(Query(p.queries, 0.0, 1.0, limit_hint=None, order="desc"))
        return matching(full, p.exclude, p.spec.where_sql, self.store.connect, lambda: self.cache.load_uuids(p.emb))

    def _run(self, spec: SearchSpec, page: Page, backend):
        p = self._prepare(spec, backend)
        spec, emb, chosen, queries = p.spec, p.emb, p.chosen, p.queries
        be = chosen.backend
        k = page.end
        exclude, where_sql = p.exclude, spec.where_sql
        hint = None if k is None else k + len(exclude)  # a top-k answer must cover the rows left out after it
        dist = None
        if spec.auto_range:
            full = self._all_scores(p)
            dist = distribution_from_scores(full.scores)
            choice = choose_range(dist, text_prompt=spec.text is not None)
            spec = spec.replace(min_score=choice.min_score, max_score=choice.max_score)
            if chosen.auto or be is chosen.exact:  # the scan already answers: keep the rows in range
                matches = full.subset(in_range(full.scores, spec.min_score, spec.max_score))
                matches.complete = True
                be, exclude, where_sql = chosen.exact, [], None  # already excluded and filtered
            else:
                be, matches = self._matches(be, chosen.exact, queries, spec, hint, exclude)
        else:
            choice = given_range(spec.min_score, spec.max_score)
            try:
                be, matches = self._matches(be, chosen.exact, queries, spec, hint, exclude)
            except EngineError as exc:  # the automatic choice falls back to the local scan, and says so
                if not chosen.auto:
                    raise
                chosen.warnings.append(f"{exc}; searched locally instead")
                be, matches = self._matches(chosen.exact, chosen.exact, queries, spec, hint, exclude)
            if not matches.complete and chosen.auto:
                be = chosen.exact
                matches = be.search(Query(queries, spec.min_score, spec.max_score, limit_hint=None,
                                          order=spec.order))
        found, total, groups = rank(matches, spec.order, k, exclude, where_sql, self.store.connect,
                                    lambda: self.cache.load_uuids(emb), sort=spec.sort, group_by=spec.group_by,
                                    embedding_id=emb.id)
        rest = slice(page.offset, None)
        return (found.subset(rest), total, be.name, p, choice, dist,
                None if groups is None else groups.subset(rest))

    @staticmethod
    def _matches(be, exact, queries, spec: SearchSpec, k, exclude=()):
        """Ask ``be`` what its capabilities let it answer; the exact scan answers the rest. Returns the
        backend that answered and its matches. ``k``: the rows a top-k answer must hold (the page's end
        plus the anchors left out after it); not given to a backend for a filter it does not apply."""
        caps = be.capabilities
        wants_anchor = spec.aggregate == "max" and len(queries) > 1
        if spec.order not in caps.orders or spec.sort not in caps.sorts or (wants_anchor and not caps.anchors):
            be = exact
            caps = be.capabilities
        use_k = spec.sort == "score" and spec.group_by is None and caps.top_k \
            and (len(queries) == 1 or caps.per_anchor_top_k) \
            and (not spec.where or caps.filters)  # the k best rows before a filter may not hold k that pass it
        return be, be.search(Query(queries, spec.min_score, spec.max_score, limit_hint=k if use_k else None,
                                   order=spec.order, where=spec.where, exclude=tuple(exclude)))

    def _anchor_vectors(self, be, emb, rows, raw, what) -> np.ndarray:
        vecs, missing = be.vectors([r["id"] for r in rows]) if rows else (np.empty((0, emb.dims), np.float32), [])
        if missing:
            lost = [r for r in rows if r["id"] in set(missing)]
            many = len(lost) > 1
            raise CatalogError(
                f"{what}{'s' if many else ''} {_names(lost)} {'have' if many else 'has'} no vector "
                f"in embedding {emb.name}; import or compute {'their vectors' if many else 'its vector'} "
                "first, or choose other anchors", field="anchors")
        extra = [check_vector(v, emb.dims, emb.name, i) for i, v in enumerate(raw, start=1)]
        if extra:
            vecs = np.vstack([vecs, np.vstack(extra)]) if len(vecs) else np.vstack(extra)
        return np.asarray(vecs, dtype=np.float32).reshape(-1, emb.dims)

    def _anchor_rows(self, exact: ExactBackend, emb, refs) -> list[dict]:
        """``[{"id", "global_key"}]`` for anchor references: ids and global keys of cached rows are
        resolved from the cache; anything else (rows without a vector, unknown refs) from the database,
        which words the errors."""
        if not refs:
            return []
        table = self.cache.load_keys(emb)
        at = find_rows(exact.ids, [r.lower() for r in refs])
        if (at < 0).any():
            at[at < 0] = table.find([r for r, p in zip(refs, at) if p < 0])
            if (at < 0).any():
                return self._rows_from_database(refs)
        keys = table.get(at)
        out, seen = [], set()
        for p, key in zip(at, keys):
            rid = str(exact.ids[p])
            if rid not in seen:
                seen.add(rid)
                out.append({"id": rid, "global_key": key})
        return out

    def _rows_from_database(self, refs) -> list[dict]:
        return [{"id": r["id"], "global_key": r["global_key"]} for r in self.datarows.get_datarows(refs)]

    # -- lookups that need no database connection while nothing was committed ------------------------
    def _embedding(self, ref):
        token = self.store.change_token()
        if self._memo["token"] != token:
            self._memo = {"token": token, "embeddings": {}}
        found = self._memo["embeddings"]
        emb = found.get(ref)
        if emb is None:
            emb = found[ref] = self.embeddings.get_embedding(ref)
        return emb
