"""What can be done with the current search and the selected rows: slices, batches, metadata, labeling."""

from __future__ import annotations

import streamlit as st

from . import results, row_detail, session
from .session import selection
from .common import (attempt, bump, call, close_dialog, dialog_args, flash, md_text, open_dialog,
                     show_error)

from catalog import CatalogError
from catalog.metadata import parse_assignment_lines


# -- selection -> query ---------------------------------------------------------------------------------
def _similar_to_selection() -> None:
    session.start_query(selection.ids())
    st.rerun(scope="app")  # the toolbar runs in the results fragment; the query is the whole page's


def _add_anchors(negative: bool) -> None:
    session.add_anchors(selection.ids(), negative)
    selection.clear()
    st.rerun(scope="app")


def _open(name: str, *args) -> None:
    """Open a dialog (drawn by the full page run, outside the results fragment)."""
    open_dialog(name, *args)
    st.rerun(scope="app")


def _select_all(cat) -> None:
    try:
        selection.put(results.all_ids(cat, session.search()))
    except CatalogError as exc:
        session.defer_error("toolbar", exc)


# -- dialogs --------------------------------------------------------------------------------------------------
@st.dialog("Save as slice", width="medium", on_dismiss=close_dialog)
def save_slice_dialog(cat, what: str) -> None:
    s = session.search()
    if what == "search":
        st.caption("A slice is the whole search: embedding, anchors, score range, aggregation and filters. "
                   "It is dynamic: rows added later appear in it when they match.")
        if s.text or s.image:
            st.warning("A text or image query is not stored in a slice; only the row anchors and filters are.")
    else:
        st.caption(f"A slice of the {selection.count():,} selected rows (stored as a filter on their ids: it keeps "
                   "exactly these rows).")
    name = st.text_input("Name", value=s.slice or "", max_chars=60, placeholder="e.g. blurry-sevens")
    description = st.text_area("Description", height=80)
    replace = st.checkbox("Replace the slice of that name if it exists", value=bool(s.slice and what == "search"))
    if st.button("Save slice", type="primary", icon=":material/bookmark_add:", key="dlg_slice_save"):
        if what == "search":
            spec = call(s.slice_spec)
            if spec is None:
                return
            sl = call(cat.save_slice, name.strip(), spec, description=description.strip() or None, replace=replace)
        else:  # the selected ids as they are: no look-up, fast for a 100,000-point lasso
            sl = call(cat.slices.save_rows, name.strip(), selection.ids(), description.strip() or None, replace)
        if sl is not None:
            bump()
            if what == "search":
                session.saved_as_slice(sl.name)
            flash(f"Slice {sl.name!r} saved")
            close_dialog()
            st.rerun()


@st.dialog("Send to batch", width="medium", on_dismiss=close_dialog)
def batch_dialog(cat) -> None:
    n = selection.count()
    st.caption(f"Freezes the {n:,} selected rows into a labeling batch. Rows already in a batch of the same "
               "project are skipped.")
    project = st.text_input("Project", placeholder="e.g. digits-v2")
    name = st.text_input("Batch name", placeholder="e.g. sevens-round-1")
    priority = st.slider("Priority", 1, 5, 3, help="1 is the most urgent")
    if st.button("Create batch", type="primary", icon=":material/send:", key="dlg_batch_create"):
        batch = call(cat.create_batch, name.strip(), project.strip(), ids=selection.ids(), priority=priority)
        if batch is not None:
            bump()
            msg = f"Batch {batch.name!r} created in project {batch.project!r} with {batch.size:,} rows"
            if batch.skipped:
                msg += f"; {len(batch.skipped):,} rows already in a batch of this project were skipped"
            flash(msg)
            close_dialog()
            st.rerun()


@st.dialog("Set metadata", width="medium", on_dismiss=close_dialog)
def metadata_dialog(cat) -> None:
    n = selection.count()
    st.caption(f"Sets metadata fields on the {n:,} selected rows in one transaction.")
    text = st.text_area("Fields (one KEY=VALUE per line)", placeholder="quality=blurry\nreviewed_by=\"ana\"\nscore=3",
                        height=110)
    unset = st.text_input("Remove fields (comma-separated)", placeholder="e.g. old_tag")
    if st.button("Apply", type="primary", icon=":material/sell:", key="dlg_meta_apply"):
        try:
            values = parse_assignment_lines(text)
        except CatalogError as exc:
            show_error(exc)
            return
        keys = [k.strip() for k in unset.split(",") if k.strip()]
        if not values and not keys:
            st.error("Nothing to do: give at least one KEY=VALUE line or a field to remove.")
            return
        ok = True
        if values:
            ok, _ = attempt(cat.set_metadata, values, ids=selection.ids())
        if ok and keys:
            ok, _ = attempt(cat.unset_metadata, keys, ids=selection.ids())
        if ok:
            bump()
            flash(f"Metadata updated on {n:,} rows")
            close_dialog()
            st.rerun()


LABEL_LOOKUP_ROWS = 20_000


@st.dialog("Label the selection", width="medium", on_dismiss=close_dialog)
def label_dialog(cat, mode: str) -> None:
    ids, n = selection.ids(), selection.count()
    if mode == "add":
        st.caption(f"Gives each of the {n:,} selected rows the labels (manual and reviewed, so they join the "
                   "labeled pool) in one transaction.")
        known = call(cat.label_counts)
        names = st.multiselect("Labels", list(known or {}), key="dlg_label_add", accept_new_options=True,
                               placeholder="Pick a label or type a new one")
        if st.button("Add labels", type="primary", icon=":material/new_label:", key="dlg_label_add_go",
                     disabled=not names):
            ok, new = attempt(cat.add_labels, ids, names)
            if ok:
                _labeled(f"{_names(names)} added to {n:,} row{'s' if n != 1 else ''} ({new:,} new)")
        return
    if n <= LABEL_LOOKUP_ROWS:  # the labels the selection carries
        got = call(cat.get_labels, ids)
        have = sorted({lab["label"] for labs in (got or {}).values() for lab in labs})
    else:  # a very large selection: every label of the catalog
        got = call(cat.label_counts)
        have = sorted(got or {})
    if got is not None and not have:
        st.info("The selected rows have no labels.")
        return
    st.caption(f"Removes the labels from those of the {n:,} selected rows that carry them, in one transaction.")
    names = st.multiselect("Labels", have, key="dlg_label_remove", placeholder="Pick labels")
    if st.button("Remove labels", type="primary", icon=":material/label_off:", key="dlg_label_remove_go",
                 disabled=not names):
        ok, removed = attempt(cat.remove_labels_from, ids, names)
        if ok:
            _labeled(f"{removed:,} label{'s' if removed != 1 else ''} removed ({_names(names)})")


def _names(names) -> str:
    return ", ".join(f"“{x.strip()}”" for x in names)


def _labeled(message: str) -> None:
    bump()
    flash(message)
    close_dialog()
    st.rerun()


# -- the toolbar -----------------------------------------------------------------------------------------------
def toolbar(cat, s, total: int, select_all=None) -> None:
    """Actions on the selection and on the whole result set, above the gallery (``select_all``: the
    callback of *Select all* where the rows shown are not the search's, as on the Map page)."""
    n = selection.count()
    err = session.take_error("toolbar")
    if err is not None:
        show_error(err)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="toolbar"):
        st.markdown(f"**{n:,} selected**" if n else ":gray[No rows selected]")
        st.button("Select all", key="act_select_all", icon=":material/select_all:",
                  on_click=select_all or _select_all, args=() if select_all else (cat,),
                  help=f"Select all {total:,} rows of the results", disabled=total == 0)
        if n:
            st.button("Clear", key="act_clear_sel", icon=":material/deselect:", on_click=selection.clear)
        none = n == 0
        st.button("Similar to selection", key="act_similar", icon=":material/image_search:", disabled=none,
                  on_click=_similar_to_selection, type="primary" if n else "secondary")
        st.button("Add to anchors", key="act_add_anchor", icon=":material/add_circle:", disabled=none,
                  on_click=_add_anchors, args=(False,))
        st.button("Add as negative", key="act_add_negative", icon=":material/remove_circle:", disabled=none,
                  on_click=_add_anchors, args=(True,))
        st.button("Save as slice", key="act_slice_sel", icon=":material/bookmark_add:", disabled=none,
                  on_click=_open, args=("catalog:slice", "selection"))
        st.button("Send to batch", key="act_batch", icon=":material/send:", disabled=none,
                  on_click=_open, args=("catalog:batch",))
        st.button("Set metadata", key="act_meta", icon=":material/sell:", disabled=none,
                  on_click=_open, args=("catalog:metadata",))
        st.button("Add label", key="act_label_add", icon=":material/new_label:", disabled=none,
                  on_click=_open, args=("catalog:labels", "add"), help="Label the selected rows")
        st.button("Remove label", key="act_label_remove", icon=":material/label_off:", disabled=none,
                  on_click=_open, args=("catalog:labels", "remove"), help="Remove labels from the selected rows")
        if st.button("Label by similarity", key="act_label", icon=":material/auto_awesome:", disabled=none):
            session.hand_to_labeling(selection.ids())
            st.switch_page(session.app_page("labeling"))


def save_search_button(cat, s) -> None:
    label = f"Update slice “{md_text(s.slice)}”" if s.slice else "Save search as slice"  # the name as text
    st.button(label, key="act_save_search", icon=":material/bookmark_add:",
              disabled=not (s.is_similarity or s.where), on_click=open_dialog, args=("catalog:slice", "search"))


def dialogs(cat) -> None:
    """Draw whichever catalog-page dialog is open."""
    args = dialog_args("catalog:slice")
    if args is not None:
        save_slice_dialog(cat, *args)
    if dialog_args("catalog:batch") is not None:
        batch_dialog(cat)
    if dialog_args("catalog:metadata") is not None:
        metadata_dialog(cat)
    args = dialog_args("catalog:labels")
    if args is not None:
        label_dialog(cat, *args)
    args = dialog_args(row_detail.NAME)
    if args is not None:
        row_detail.dialog(cat, *args)


