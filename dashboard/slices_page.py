"""The slices page: every saved slice with its row count; open, update, delete, export."""

from __future__ import annotations

import io

import streamlit as st

from . import session
from .common import (attempt, bump, close_dialog, delete_buttons, dialog_args, embeddings, flash, forget_other_dialogs, generation,
                     get_catalog, md_text, open_dialog, show_error, show_flash, worded)

from catalog import CatalogError


@st.cache_data(ttl=30, show_spinner=False)
def _count(path: str, name: str, updated: str | None, gen: int) -> int | None:
    from .common import _open

    try:
        return _open(path).get_slice(name).rows(limit=0).total
    except CatalogError:
        return None


def _export(cat, name: str, fmt: str):
    def make() -> str:
        buf = io.StringIO()
        try:
            cat.export_slice(name, buf, fmt)
        except CatalogError as exc:
            return f"error: {worded(exc)}\n"
        return buf.getvalue()
    return make


def _open_slice(cat, name: str) -> None:
    try:
        session.open_slice(cat, name)
    except CatalogError as exc:
        session.defer_error("slices", exc)
        return
    session.forget_url()
    session.go_to("catalog")


@st.dialog("Delete slice", on_dismiss=close_dialog)
def _confirm_delete(cat, name: str) -> None:
    st.markdown(f"Delete the slice **{md_text(name)}**? Its rows stay in the catalog; only the saved query is removed.")
    delete_buttons("slice_del", cat.delete_slice, name, lambda _: f"Slice {name!r} deleted")


@st.dialog("Edit slice", on_dismiss=close_dialog)
def _edit(cat, sl) -> None:
    s = session.search()
    description = st.text_area("Description", value=sl.description or "", height=90)
    use_current = st.checkbox("Replace its query with the current search on the Catalog page",
                              value=False, disabled=not (s.is_similarity or s.where),
                              help="Embedding, anchors, score range, aggregation and filters as they are now.")
    if st.button("Save", type="primary", icon=":material/save:", key="slice_edit_save"):
        if use_current:
            ok, spec = attempt(s.slice_spec)
        else:
            ok, spec = attempt(lambda: sl.spec)
        if ok:
            ok, _ = attempt(cat.save_slice, sl.name, spec, description=description.strip() or None, replace=True)
        if ok:
            bump()
            flash(f"Slice {sl.name!r} updated")
            close_dialog()
            st.rerun()


def _summary(sl, emb_names: dict[str, str]) -> str:
    q = sl.query
    if not q.get("embedding"):
        what = "filter"
    else:
        emb = emb_names.get(q["embedding"], q["embedding"])
        n, neg = len(q.get("anchors") or []), len(q.get("negative_anchors") or [])
        what = (f"{n} anchor{'s' if n != 1 else ''}" + (f" − {neg} negative" if neg else "")
                + f" · {emb} · score {q.get('min_score', 0.85):.2f}–{q.get('max_score', 1.0):.2f}"
                + (" · any" if q.get("aggregate") == "max" else ""))
    if q.get("where"):
        import json
        w = json.dumps(q["where"], ensure_ascii=False)
        what += f" · where {w if len(w) < 80 else w[:77] + '…'}"
    return what  # plain text: it names embeddings and holds the filter; escape it to show it


def _slice_card(cat, sl, emb_names) -> None:
    count = _count(str(cat.path), sl.name, sl.updated_at, generation())
    with st.container(border=True, key=f"slice_{sl.id}"):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"#### {md_text(sl.name)}")
        head.markdown(f":blue-badge[{count:,} rows]" if count is not None else ":red-badge[cannot run]")
        if sl.description:
            st.markdown(md_text(sl.description))
        st.caption(f"{md_text(_summary(sl, emb_names))} · updated {str(sl.updated_at or '')[:16].replace('T', ' ')}")
        with st.container(horizontal=True, gap="small"):
            st.button("Open", key=f"open_{sl.id}", icon=":material/open_in_new:", type="primary",
                      on_click=_open_slice, args=(cat, sl.name))
            st.button("Edit", key=f"edit_{sl.id}", icon=":material/edit:", on_click=open_dialog,
                      args=("slices:edit", sl.name))
            st.download_button("Export NDJSON", _export(cat, sl.name, "ndjson"), file_name=f"{sl.name}.ndjson",
                               mime="application/x-ndjson", key=f"exp_{sl.id}", icon=":material/download:",
                               on_click="ignore")
            st.download_button("Export CSV", _export(cat, sl.name, "csv"), file_name=f"{sl.name}.csv",
                               mime="text/csv", key=f"expc_{sl.id}", icon=":material/download:", on_click="ignore")
            st.button("Delete", key=f"del_{sl.id}", icon=":material/delete:", on_click=open_dialog,
                      args=("slices:delete", sl.name))


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    goto = session.take_go_to()
    if goto:
        st.switch_page(session.app_page(goto))
    show_flash()
    forget_other_dialogs("slices:")
    err = session.take_error("slices")
    if err is not None:
        show_error(err)
    st.title("Slices", anchor=False)
    st.caption("Saved searches. A slice runs again every time it is opened, so rows added later appear "
               "when they match. Share one with the address `?slice=NAME`.")
    try:
        slices = cat.get_slices()
        emb_names = {e["id"]: e["name"] for e in embeddings(cat)}
    except CatalogError as exc:
        show_error(exc)
        return
    if not slices:
        st.info("No slices yet. On the Catalog page, find similar rows or filter, then **Save search as slice**.")
        return
    needle = st.text_input("Find a slice", placeholder="name or description", label_visibility="collapsed")
    for sl in slices:
        if needle and needle.lower() not in (sl.name + " " + (sl.description or "")).lower():
            continue
        _slice_card(cat, sl, emb_names)
    by_name = {sl.name: sl for sl in slices}
    args = dialog_args("slices:edit")
    if args and args[0] in by_name:
        _edit(cat, by_name[args[0]])
    args = dialog_args("slices:delete")
    if args and args[0] in by_name:
        _confirm_delete(cat, args[0])
