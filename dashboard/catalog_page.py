"""The catalog page: browse, find similar, narrow by score and filters, act on the selection.

The results (heading, toolbar, gallery and pager) run as one fragment, keyed "results": turning a page,
ticking a card, selecting all or moving the score slider re-runs only that part, not the sidebar and
the anchors panel. Anything else that changes the query, an open dialog or the catalog re-runs the
whole page.
"""

from __future__ import annotations

import math

import streamlit as st

from . import actions, address, anchors, gallery, query_panel, results, session
from .common import (bump, embeddings, forget_other_dialogs, generation, get_catalog, guard, md_text, show_error,
                     show_flash)
from .state import PER_PAGE

from catalog import CatalogError


SORTS = {"score:desc": "Best score first", "score:asc": "Lowest score first",
         "global_key:asc": "Global key A–Z", "global_key:desc": "Global key Z–A",
         "created:desc": "Newest", "created:asc": "Oldest",
         "uniqueness:desc": "Most unique first", "uniqueness:asc": "Least unique first"}
LISTING = "global_key:asc"  # what an unsorted listing shows (the library's plain listing order)


def _on_page(key: str = "w_page") -> None:
    session.search().page = int(session.widget(key) or 1)


def _on_order() -> None:
    sort, order = (session.widget("w_order") or "score:desc").split(":")
    if sort == "global_key" and order == "asc" and not session.search().is_similarity:
        sort, order = "score", "desc"  # a listing's default order: keep the address plain
    session.update(sort=sort, order=order)


def _sort_choice(s) -> tuple[list[str], str]:
    """The sort options for the results (no score options without a similarity query) and the chosen one."""
    if s.is_similarity:
        return list(SORTS), f"{s.sort}:{s.order}"
    options = [k for k in SORTS if not k.startswith(("score:", "uniqueness:"))]
    return options, LISTING if s.sort == "score" else f"{s.sort}:{s.order}"


def _span(s, page) -> str:
    """Which rows of the results this page shows ("rows 289–336 of 2,097")."""
    if not page.rows:
        return f"0 of {page.total:,}"
    first = (s.page - 1) * PER_PAGE + 1
    unit = "groups" if s.grouping else "rows"
    return f"{unit} {first:,}–{first + len(page.rows) - 1:,} of {page.total:,}"


def _refresh() -> None:
    bump()


def _adopt_url(cat) -> None:
    """Apply a shared link or ``?slice=NAME`` once, resolving anchor keys to row ids."""
    try:
        before = session.search() if session.has_search() else None
        problems = address.sync_from_url(cat)
        s = session.search()
        if s is not before:
            refs = s.anchors + s.negatives
            if refs:
                found = cat.refs.lookup(refs)
                unknown = [r for r in dict.fromkeys(refs) if found.get(r) is None]
                if unknown:  # said once; the rest of the link still works
                    shown = ", ".join(repr(r) for r in unknown[:5]) + (
                        f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                    problems.append(f"The address names {len(unknown)} anchor{'s' if len(unknown) > 1 else ''} "
                                    f"that match no data row ({shown}); "
                                    f"{'they were' if len(unknown) > 1 else 'it was'} left out.")
                s.anchors = list(dict.fromkeys(found[r] for r in s.anchors if found.get(r)))
                s.negatives = list(dict.fromkeys(found[r] for r in s.negatives if found.get(r)))
                if not unknown:
                    session.rebase_slice()
        for p in problems:
            st.warning(p)
    except CatalogError as exc:
        show_error(exc)


def _model_to_load(cat, s) -> str | None:
    """The name of the model the state's prompt needs and this server has not loaded yet, else None."""
    model = cat.query_model(s.embedding) if (s.text or s.image) and s.embedding else None
    return model[0] if model is not None and not model[1] else None


def _fetch(cat, s):
    """``results.cached_fetch``, saying so while a prompt's model loads (seconds, the first time only)."""
    model = _model_to_load(cat, s)
    if model is None:
        return results.cached_fetch(cat, s)
    with st.spinner(f"Loading the {model} model for the first prompt — a few seconds; later prompts are fast…",
                    show_time=True):
        return results.cached_fetch(cat, s)


def _heading(s, page) -> str:
    if page.mode == "similar":
        used = page.score_range
        rng = f"{used.min_score:.2f}–{used.max_score:.2f}"
        if s.grouping:
            return f"{page.total:,} groups by {s.grouping} with a score in {rng}"
        return f"{page.total:,} similar rows with a score in {rng}"
    if page.mode == "filter":
        return f"{page.total:,} rows match the filter"
    return f"{page.total:,} rows"


def _outside(s) -> tuple:
    """What the parts of the page outside the results fragment depend on (the score range is not one)."""
    key = list(s.key())
    key[3:5] = []  # min and max score: only the fragment shows them (the slider keeps its own value)
    return (tuple(key), s.slice, session.slice_base(), session.dialog(), generation(), session.has_flashes())


def _empty_message(page) -> None:
    if page.rows:
        return
    if page.mode == "similar":
        st.info("No rows in this score range. Widen the range with the slider (e.g. 0.70–1), "
                "or change the anchors or filters.", icon=":material/tune:")
    elif page.total == 0 and page.mode == "all":
        st.info("This catalog has no data rows yet. Add some on the Upload page, or with "
                "`advtool datarows import PATH`.")
    else:
        st.info("No rows on this page.")


@st.fragment(key="results")
def _results(cat) -> None:
    """Heading, toolbar, gallery and pager for the state's current page (the catalog file opened once
    for all the calls they make)."""
    try:
        with cat.reading():
            _draw_results(cat)
    except CatalogError as exc:  # the file could not be opened (busy): said, and the page stays
        show_error(exc)


def _draw_results(cat) -> None:
    s = session.search()
    if session.outside() != _outside(s):
        st.rerun(scope="app")  # a card or toolbar action changed the query or opened a dialog
    status = st.container(key="results_status")  # fixed places, see page()
    if s.slice:
        status.caption(f":material/bookmark: Slice **{md_text(s.slice)}**"
                       + (" · modified" if session.slice_modified(s) else ""))
    try:
        with status:
            page = _fetch(cat, s)
    except CatalogError as exc:
        with status:
            show_error(exc)
        address.write_url(cat, s)
        return
    for note in page.warnings:  # e.g. the vector engine failed and the search ran locally
        status.warning(note, icon=":material/warning:")
    if not page.complete:
        measured = "" if page.recall is None else f" (measured recall {page.recall:.3f})"
        status.caption(f":material/info: Approximate answer from the {page.backend} backend{measured}: "
                       "rows in the range may be missing and the total is a lower bound.")
    pages = max(1, math.ceil(page.total / PER_PAGE))
    s.page = min(s.page, pages)
    for key in ("w_page", "w_page_top"):
        if pages > 1 and session.widget(key) != s.page:
            session.set_widget(key, s.page)
    with st.container(horizontal=True, vertical_alignment="center", key="results_head"):
        st.subheader(_heading(s, page), anchor=False)
        st.caption(_span(s, page) + f" · {page.seconds * 1000:.0f} ms")
        options, chosen = _sort_choice(s)
        if session.widget("w_order") != chosen:
            session.set_widget("w_order", chosen)
        st.selectbox("Sort", options, format_func=SORTS.get, key="w_order", on_change=_on_order,
                     label_visibility="collapsed", width=190,
                     help="Order of the rows (the rows themselves stay the same); ties by row id")
        actions.save_search_button(cat, s)
        if pages > 1:
            st.pagination(pages, key="w_page_top", on_change=_on_page, args=("w_page_top",), max_visible_pages=5)
    actions.toolbar(cat, s, page.total)
    with st.container(key="results_message"):
        _empty_message(page)
    similar: set[str] = set()
    if s.embedding and page.rows:
        try:
            similar = cat.rows_with_vectors(s.embedding, [r["id"] for r in page.rows])
        except CatalogError as exc:
            with status:
                show_error(exc)
    gallery.render(cat, page.rows, page.labels, similar, page=s.page)

    if pages > 1:
        with st.container(horizontal=True, horizontal_alignment="center", key="pager"):
            st.pagination(pages, key="w_page", on_change=_on_page, max_visible_pages=9)
    address.write_url(cat, s)


def _meta_keys(rows) -> list[str]:
    keys: dict[str, None] = {}
    for r in rows:
        for k in (r.get("metadata") or {}):
            keys[k] = None
    return sorted(keys)


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    # Fixed places: what comes and goes above the results (notices, the anchors panel) has its own
    # container, so the results fragment is always the third block of the page. Were it to move, a run
    # interrupted half-way (the slider moved while the page was redrawn after *Similar*) would leave the
    # old gallery standing where the new anchors panel is drawn.
    notices, query_slot = st.container(key="catalog_notices"), st.container(key="anchors_slot")
    with notices:
        show_flash()
        forget_other_dialogs("catalog:")
        _adopt_url(cat)
        s = session.search()
        # the embedding must be known before searching; the sidebar shows it
        if s.embedding is None:
            with guard():
                s.embedding = query_panel.default_embedding(embeddings(cat))
        page = None
        try:  # a prompt's model loads (seconds, once) before the catalog file is held for the page
            if _model_to_load(cat, s):
                page = _fetch(cat, s)
        except CatalogError:
            pass  # shown by the results fragment
    try:
        with cat.reading():  # the file is opened once for every call of the rest of this run
            _draw(cat, s, notices, query_slot, page)
    except CatalogError as exc:  # the file could not be opened (busy): said, and the page stays
        with notices:
            show_error(exc)


def _draw(cat, s, notices, query_slot, page) -> None:
    with query_slot:
        anchors.render(cat, s)
    if page is None:
        try:
            with notices:
                page = _fetch(cat, s)
        except CatalogError:
            pass  # shown by the results fragment
    query_panel.render(cat, s, _meta_keys(page.rows) if page else [])
    st.sidebar.caption(f"Catalog: `{cat.path}`")
    st.sidebar.button("Refresh", icon=":material/refresh:", on_click=_refresh, key="refresh",
                      help="Read the catalog again (after changes made with the CLI)")

    session.set_outside(_outside(s))
    _results(cat)
    actions.dialogs(cat)
