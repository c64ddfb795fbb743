"""Fetching one page of rows for the gallery: a similarity search, a filtered listing or the plain list.

Only the visible page is fetched (``limit``/``offset`` go to the library). The last pages are kept in
the session for a short time so that ticking a box does not run the search again, and so are the last
pages' data rows and labels: moving the score slider usually keeps the best-scoring rows on page 1, so
only the search runs again, not the row and label look-ups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from catalog.search import Page as SearchPage

from . import session
from .session import generation
from .state import PER_PAGE, SearchState

_KEEP_S = 30.0
_MAX_KEPT = 8


@dataclass
class Page:
    total: int
    rows: list[dict]                      # get_datarows dicts, plus "score" for similarity results (and
                                          # "matched": the anchor's global_key, for "any" of ≥2 anchors)
    seconds: float = 0.0
    mode: str = "all"                     # "similar", "filter" or "all"
    labels: dict[str, list[str]] = field(default_factory=dict)
    score_range: object = None            # the library's RangeChoice for similarity results (which range, why)
    distribution: object = None           # its ScoreDistribution when the range was automatic (same scan)
    warnings: list[str] = field(default_factory=list)  # the search's notes (e.g. the engine failed: searched locally)
    backend: str | None = None            # the backend that answered a similarity search
    complete: bool = True                 # False: an approximate answer that may miss rows
    recall: float | None = None           # its measured recall, when not complete


def _kept(name: str, key, make):
    """``make()``, kept in the session for a short time under ``key`` (and the catalog generation)."""
    kept: dict = session.cache(name)
    key = (key, generation())
    now = time.monotonic()
    hit = kept.get(key)
    if hit is not None and now - hit[0] < _KEEP_S:
        return hit[1]
    value = make()
    kept[key] = (now, value)
    for old in sorted(kept, key=lambda k: kept[k][0])[:-_MAX_KEPT]:
        del kept[old]
    return value


def _labels(cat, ids: list[str]) -> dict[str, list[str]]:
    if not ids:
        return {}

    def make():
        got = cat.get_labels(ids) or {}
        return {rid: [lab["label"] if isinstance(lab, dict) else str(lab) for lab in labs] for rid, labs in got.items()}
    return _kept("_page_labels", (str(cat.path), tuple(ids)), make)


def datarows(cat, ids: list[str]) -> list[dict]:
    """``cat.get_datarows(ids)``, answered from the session for a few seconds when asked again."""
    if not ids:
        return []
    return _kept("_page_rows", (str(cat.path), tuple(ids)), lambda: cat.get_datarows(ids))


def _rows_for(cat, hits, anchor_keys: dict | None = None) -> list[dict]:
    """Data rows for search hits, in hit order, with their score (and, given ``anchor_keys``, the
    global_key of the anchor each hit matched as ``"matched"``)."""
    ids = [h.id for h in hits]
    by_id = {r["id"]: r for r in datarows(cat, ids)}
    out = []
    for h in hits:
        row = dict(by_id[h.id])
        row["score"] = h.score
        if h.group_size is not None:
            row["group_size"] = h.group_size
        if anchor_keys:
            row["matched"] = anchor_keys.get(h.anchor) if isinstance(h.anchor, str) else None
        out.append(row)
    return out


def _anchor_keys(cat, s: SearchState) -> dict | None:
    """``{anchor row id: global_key}`` when the cards say which anchor they match: "any" (max) of ≥2."""
    if s.aggregate != "max" or len(s.anchors) < 2:
        return None
    return {r["id"]: r["global_key"] for r in datarows(cat, list(s.anchors))}


def fetch(cat, s: SearchState, per_page: int = PER_PAGE) -> Page:
    """The state's page of rows (``s.page``, 1-based)."""
    offset = (s.page - 1) * per_page
    t0 = time.perf_counter()
    if s.is_similarity:
        res = cat.search(s.spec(), SearchPage(per_page, offset), backend=s.backend)
        page = Page(res.total, _rows_for(cat, res.results, _anchor_keys(cat, s)), mode="similar",
                    score_range=res.score_range, distribution=res.distribution, warnings=list(res.warnings),
                    backend=res.backend, complete=res.complete, recall=res.recall)
    elif s.where or s.sort != "score":
        sort, order = s.listing()
        res = cat.filter_datarows(s.where, limit=per_page, offset=offset, sort=sort, order=order)
        page = Page(res.total, _rows_for(cat, res.results), mode="filter" if s.where else "all")
        for r in page.rows:
            r["score"] = None
    else:
        page = Page(cat.count_datarows(), cat.list_datarows(limit=per_page, offset=offset), mode="all")
    page.labels = _labels(cat, [r["id"] for r in page.rows])
    page.seconds = time.perf_counter() - t0
    return page


def cached_fetch(cat, s: SearchState, per_page: int = PER_PAGE, force: bool = False) -> Page:
    """:func:`fetch`, answered from the session for a few seconds when nothing changed."""
    kept: dict = session.cache("pages")
    key = (str(cat.path), s.key(), s.page, per_page, generation())
    now = time.monotonic()
    hit = kept.get(key)
    if hit is not None and not force and now - hit[0] < _KEEP_S:
        return hit[1]
    page = fetch(cat, s, per_page)
    kept[key] = (now, page)
    for old in sorted(kept, key=lambda k: kept[k][0])[:-_MAX_KEPT]:
        del kept[old]
    return page


def distribution(cat, s: SearchState, page: Page | None = None):
    """The scores of every row against the state's query, whatever the range (a ``ScoreDistribution``,
    kept per query: moving the slider does not scan again); from ``page`` when its search made one."""
    if page is not None and page.distribution is not None:
        session.cache("distributions")[((str(cat.path), s.query_key()), generation())] = (time.monotonic(),
                                                                                        page.distribution)
    return _kept("distributions", (str(cat.path), s.query_key()), lambda: cat.score_distribution(s.spec()))


def all_ids(cat, s: SearchState) -> list[str]:
    """Every row id of the state's result set (for "select all" and for labeling the results)."""
    if s.is_similarity:
        return list(cat.search_row_ids(s.spec(), backend=s.backend))
    if s.where or s.sort != "score":
        sort, order = s.listing()
        return list(cat.filter_row_ids(s.where, sort=sort, order=order))
    return [r["id"] for r in cat.iter_datarows()]
