"""The catalog page: browse, find similar, narrow by score and filters, act on the selection.

The results (heading, toolbar, gallery and pager) run as one fragment, keyed "results": turning a page,
ticking a card, selecting all or moving the score slider re-runs only that part, not the sidebar and
the anchors panel. Anything else that changes the query, an open dialog or the catalog re-runs the
whole page.
"""

from __future__ import annotations

import math

import streamlit as st

from . import actions, anchors, gallery, query_panel, results
from . import state as search_state
from .common import bump, forget_other_dialogs, generation, get_catalog, guard, show_error, show_flash
from .state import PER_PAGE

from catalog import CatalogError


def _on_page() -> None:
    search_state.get().page = int(st.session_state.get("w_page") or 1)


def _refresh() -> None:
    bump()


def _adopt_url(cat) -> None:
    """Apply a shared link or ``?slice=NAME`` once, resolving anchor keys to row ids."""
    try:
        before = st.session_state.get("search")
        problems = search_state.sync_from_url(cat)
        s = search_state.get()
        if s is not before:
            query_panel.mark_reload()
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
                if st.session_state.get("_slice_base") is not None and not unknown:
                    st.session_state["_slice_base"] = s.slice_key()
        for p in problems:
            st.warning(p)
    except CatalogError as exc:
        show_error(exc)


def _heading(s, page) -> str:
    if page.mode == "similar":
        rng = f"{s.min_score:.2f}–{s.max_score:.2f}"
        return f"{page.total:,} similar rows with a score in {rng}"
    if page.mode == "filter":
        return f"{page.total:,} rows match the filter"
    return f"{page.total:,} rows"


def _outside(s) -> tuple:
    """What the parts of the page outside the results fragment depend on (the score range is not one)."""
    key = list(s.key())
    key[3:5] = []  # min and max score: only the fragment shows them (the slider keeps its own value)
    return (tuple(key), s.slice, st.session_state.get("_slice_base"), st.session_state.get("_dialog"),
            generation(), bool(st.session_state.get("_flash")))


@st.fragment(key="results")
def _results(cat) -> None:
    """Heading, toolbar, gallery and pager for the state's current page."""
    s = search_state.get()
    if st.session_state.get("_outside") != _outside(s):
        st.rerun(scope="app")  # a card or toolbar action changed the query or opened a dialog
    if s.slice:
        st.caption(f":material/bookmark: Slice **{s.slice}**"
                   + ("" if st.session_state.get("_slice_base") == s.slice_key() else " · modified"))
    try:
        page = results.cached_fetch(cat, s)
    except CatalogError as exc:
        show_error(exc)
        search_state.write_url(s)
        return
    with st.container(horizontal=True, vertical_alignment="center", key="results_head"):
        st.subheader(_heading(s, page), anchor=False)
        st.caption(f"{page.seconds * 1000:.0f} ms")
        actions.save_search_button(cat, s)
    actions.toolbar(cat, s, page.total)
    if not page.rows:
        if page.mode == "similar":
            st.info("No rows in this score range. Widen the range with the slider (e.g. 0.70–1), "
                    "or change the anchors or filters.", icon=":material/tune:")
        elif page.total == 0 and page.mode == "all":
            st.info("This catalog has no data rows yet. Import some with `advtool datarows import PATH`.")
        else:
            st.info("No rows on this page.")
    similar = set()
    if s.embedding and page.rows:
        try:
            similar = cat.rows_with_vectors(s.embedding, [r["id"] for r in page.rows])
        except CatalogError as exc:
            show_error(exc)
    gallery.render(cat, page.rows, page.labels, similar)

    pages = max(1, math.ceil(page.total / PER_PAGE))
    if pages > 1:
        s.page = min(s.page, pages)
        if st.session_state.get("w_page") != s.page:
            st.session_state["w_page"] = s.page
        with st.container(horizontal=True, horizontal_alignment="center", key="pager"):
            st.pagination(pages, key="w_page", on_change=_on_page, max_visible_pages=9)
    search_state.write_url(s)


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
    show_flash()
    forget_other_dialogs("catalog:")
    _adopt_url(cat)
    s = search_state.get()
    # the embedding must be known before searching; the sidebar shows it
    from .common import embeddings
    if s.embedding is None:
        with guard():
            s.embedding = query_panel.default_embedding(embeddings(cat))
    anchors.render(cat, s)

    page = None
    try:
        page = results.cached_fetch(cat, s)
    except CatalogError:
        pass  # shown by the results fragment
    query_panel.render(cat, s, _meta_keys(page.rows) if page else [])
    st.sidebar.caption(f"Catalog: `{cat.path}`")
    st.sidebar.button("Refresh", icon=":material/refresh:", on_click=_refresh, key="refresh",
                      help="Read the catalog again (after changes made with the CLI)")

    st.session_state["_outside"] = _outside(s)
    _results(cat)
    actions.dialogs(cat)
