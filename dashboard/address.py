"""The address bar: the search as URL parameters, and a shared link adopted as the search.

After every change the catalog page writes the search to the address (``?emb=..&a=..&min=..``), so it can
be shared by copying it: ``?slice=NAME`` while an opened slice is unchanged, and ``?q=KEY`` — a search the
catalog keeps (``Catalog.share_search``) — when it has more anchors than :data:`LINK_ANCHORS`, so that the
link stays short. A link opened from outside (a reload, a colleague's link) becomes the search.
"""

from __future__ import annotations

import streamlit as st

from catalog import CatalogError

from . import session
from .state import SearchState


def current_params() -> dict[str, list[str]]:
    qp = st.query_params
    return {k: qp.get_all(k) for k in qp}


LINK_ANCHORS = 20  # a search with more anchors than this is shared as ?q=KEY (the catalog keeps it)


def _short_key(cat, state: SearchState) -> str:
    """The catalog's key for the search (stored once per search: asked again, the session remembers)."""
    links = session.cache("links")
    key = state.key()
    if key not in links:
        links[key] = cat.share_search(state.link_spec())
        while len(links) > 64:  # the oldest first (dicts keep insertion order)
            links.pop(next(iter(links)))
    return links[key]


def write_url(cat, state: SearchState) -> None:
    """Put the search in the address bar: ``?slice=NAME`` while an opened slice is unchanged, ``?q=KEY``
    (a search the catalog keeps) when it has more than :data:`LINK_ANCHORS` anchors, else the search
    itself (``?emb=..&a=..&min=..``)."""
    if state.slice and session.slice_base() is not None and not session.slice_modified(state):
        params = {"slice": state.slice}
    elif len(state.anchors) + len(state.negatives) > LINK_ANCHORS:
        params = {"q": _short_key(cat, state)}
    else:
        params = state.to_params()
    if state.page > 1:
        params["page"] = str(state.page)
    wanted = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    if wanted != current_params():
        st.query_params.from_dict(params)
    session.set_url_seen(wanted)


def sync_from_url(cat) -> list[str]:
    """Adopt the address bar's search when it was changed from outside (a shared link, a reload);
    returns the problems found in it (bad parts are dropped)."""
    cur = current_params()
    if cur == session.url_seen():
        return []
    session.set_url_seen(cur)
    if not cur or set(cur) <= {"page"} and session.has_search():
        return []
    problems: list[str] = []
    if "slice" in cur or "q" in cur:
        try:
            if "slice" in cur:
                session.open_slice(cat, cur["slice"][0])
            else:
                session.put(SearchState.from_spec(cat.shared_search(cur["q"][0])))
                session.leave_slice()
                session.mark_reload()
        except CatalogError as exc:
            session.put(SearchState())
            session.leave_slice()
            session.mark_reload()
            return [f"The address names a {'slice' if 'slice' in cur else 'shared search'} that this catalog "
                    f"does not have ({exc.message}); showing all rows."]
        try:
            session.search().page = max(1, int(cur.get("page", ["1"])[0]))
        except ValueError:
            pass
        return problems
    state, problems = SearchState.from_params(st.query_params)
    session.put(state)
    session.leave_slice()
    session.mark_reload()
    return problems
