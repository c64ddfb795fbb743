"""The row detail view: one data row, large, with its fields, metadata, labels (which can be edited
there), the embeddings that have a vector for it, *Find similar* and previous/next through the page.

It is a dialog opened by a click on a card's image or text (``session.open_dialog("catalog:row", id)``,
so it survives reruns) and drawn by :func:`dashboard.actions.dialogs`. Every value shown comes from the
library and is shown as text or escaped HTML.
"""

from __future__ import annotations

import html
import json

import streamlit as st

from catalog import CatalogError, thumbnails

from . import results, session
from .common import attempt, bump, close_dialog, embeddings, flash, open_dialog, show_error

NAME = "catalog:row"
LARGE = 1024  # the detail image's longest side (a thumbnail of the original at this size)
FORM = "row_detail"


def _table(rows: list[tuple[str, str]], cls: str, head: tuple[str, ...] | None = None) -> str:
    """An HTML table of text cells (every value escaped)."""
    top = "".join(f"<th>{html.escape(h)}</th>" for h in head) if head else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="cat-fields {cls}">' + (f"<thead><tr>{top}</tr></thead>" if top else "") + \
        f"<tbody>{body}</tbody></table>"


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _page_ids(cat) -> list[str]:
    """The ids of the current page of results (for previous / next)."""
    try:
        return [r["id"] for r in results.cached_fetch(cat, session.search()).rows]
    except CatalogError:
        return []


def _go(row_id: str) -> None:
    """Show another row (a button in a dialog re-runs only the dialog: the whole page must run)."""
    open_dialog(NAME, row_id)
    st.rerun()


def _media(cat, row: dict) -> None:
    if row["media_type"] != "image":
        with st.container(height=320, key="row_detail_text"):
            st.text(row["row_data"])
        return
    path = thumbnails.thumbnail(cat.store, row, size=LARGE)
    if path is not None:
        st.image(str(path), width="stretch")
    else:
        st.html('<div class="cat-missing">image not available<br><small>'
                f'{html.escape(str(row.get("row_data", ""))[-120:])}</small></div>')


def _vectors(cat, row_id: str) -> str:
    out = []
    for e in embeddings(cat):
        try:
            has = row_id in cat.rows_with_vectors(e["name"], [row_id])
        except CatalogError:
            has = False
        out.append((e["name"], f'{e["dims"]}-d', "yes" if has else "no"))
    if not out:
        return '<p class="cat-note">This catalog has no embeddings yet.</p>'
    return _table(out, "cat-vectors", ("Embedding", "Dims", "Has a vector"))


def _labels(cat, row_id: str) -> None:
    try:
        labs = cat.get_labels([row_id]).get(row_id, [])
    except CatalogError as exc:
        show_error(exc)
        return
    if labs:
        st.html(_table([(lab["label"], lab["source"], "" if lab["score"] is None else f'{lab["score"]:.3f}',
                         "yes" if lab["reviewed"] else "no") for lab in labs], "cat-row-labels",
                       ("Label", "Source", "Score", "Reviewed")))
    else:
        st.caption("No labels yet.")
    gen = session.form_generation(FORM)
    have = [lab["label"] for lab in labs]
    try:
        known = [name for name in cat.label_counts() if name not in have]
    except CatalogError:
        known = []
    with st.container(horizontal=True, vertical_alignment="bottom", key="row_detail_add"):
        add = st.multiselect("Add labels", known, key=f"rd_add_{row_id}_{gen}", accept_new_options=True,
                             placeholder="Pick or type a label")
        if st.button("Add", icon=":material/new_label:", key=f"rd_add_btn_{row_id}", disabled=not add):
            ok, names = attempt(cat.set_labels, row_id, add)
            if ok:
                _changed(f"Label{'s' if len(names) > 1 else ''} {', '.join(names)} added")
    if have:
        with st.container(horizontal=True, vertical_alignment="bottom", key="row_detail_remove"):
            gone = st.multiselect("Remove labels", have, key=f"rd_rm_{row_id}_{gen}", placeholder="Pick labels")
            if st.button("Remove", icon=":material/label_off:", key=f"rd_rm_btn_{row_id}", disabled=not gone):
                ok, n = attempt(cat.remove_labels, row_id, gone)
                if ok:
                    _changed(f"{n} label{'s' if n != 1 else ''} removed")


def _changed(message: str) -> None:
    bump()
    session.next_form_generation(FORM)
    flash(message)
    st.rerun()


def _nav(cat, row_id: str) -> None:
    ids = _page_ids(cat)
    at = ids.index(row_id) if row_id in ids else -1
    s = session.search()
    try:
        can_similar = bool(s.embedding) and row_id in cat.rows_with_vectors(s.embedding, [row_id])
    except CatalogError:
        can_similar = False
    with st.container(horizontal=True, vertical_alignment="center", key="row_detail_nav"):
        prev = ids[at - 1] if at > 0 else None
        nxt = ids[at + 1] if 0 <= at < len(ids) - 1 else None
        if st.button("Previous", icon=":material/chevron_left:", key="rd_prev", disabled=prev is None):
            _go(prev)
        if st.button("Next", icon=":material/chevron_right:", key="rd_next", disabled=nxt is None):
            _go(nxt)
        if at >= 0:
            st.caption(f"{at + 1} of {len(ids)} on this page")
        st.space("stretch")
        if st.button("Find similar", icon=":material/image_search:", key="rd_similar", type="primary",
                     disabled=not can_similar, help="Search with this row as the only anchor" if can_similar
                     else "This row has no vector in the chosen embedding"):
            close_dialog()
            session.start_query([row_id])
            st.rerun()


@st.dialog("Data row", width="large", on_dismiss=close_dialog)
def dialog(cat, row_id: str) -> None:
    try:
        row = cat.get_datarow(row_id)
    except CatalogError as exc:
        show_error(exc)
        if st.button("Close", key="rd_close"):
            close_dialog()
            st.rerun()
        return
    _nav(cat, row_id)
    left, right = st.columns([3, 2], gap="medium")
    with left, st.container(key="row_detail_media"):
        _media(cat, row)
    with right:
        st.html(_table([("Global key", row["global_key"]), ("Id", row["id"]), ("Media type", row["media_type"]),
                        ("Created", (row.get("created_at") or "").replace("T", " ")[:19])], "cat-row-fields"))
        st.markdown("**Labels**")
        _labels(cat, row_id)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown("**Metadata**")
        meta = row.get("metadata") or {}
        if meta:
            st.html(_table([(k, _value(v)) for k, v in meta.items()], "cat-row-meta", ("Field", "Value")))
        else:
            st.caption("No metadata.")
    with right:
        st.markdown("**Embeddings**")
        st.html(_vectors(cat, row_id))
