"""Label by similarity: suggest labels from the nearest labeled rows, review them, apply; evaluate; export."""

from __future__ import annotations

import io

import streamlit as st

from . import labeling_eval_panel, labeling_review, results, session
from .session import selection
from .common import (attempt, bump, embeddings, flash, forget_other_dialogs, get_catalog, show_error, show_flash,
                     worded)

from catalog import CatalogError

SOURCES = ["Current results", "Selected rows", "A slice", "All unlabeled rows"]
# the page's choices, kept in the session (Labeling.kept): Streamlit forgets a widget's value when another
# page runs, so each widget starts from its kept value and writes it back on every change
KEPT = {"lbs_emb": None, "lbs_source": "All unlabeled rows", "lbs_slice": None, "lbs_k": 10, "lbs_thr": 30,
        "lbs_top": False, "lbs_limit": 50}


def _restore() -> None:
    kept = session.labeling().kept
    for key, default in KEPT.items():
        if not session.has_widget(key) and (key in kept or default is not None):
            session.set_widget(key, kept.get(key, default))


def _keep() -> None:
    session.labeling().kept = {key: session.widget(key) for key in KEPT if session.has_widget(key)}


def _restore_params() -> None:
    """Put the parameters of the suggestions on screen back (the reviewer keeps the edits)."""
    old = session.labeling().params
    if old:
        for key, value in zip(("lbs_emb", "lbs_k", "lbs_thr", "lbs_top", "lbs_source", "lbs_slice"), old):
            session.set_widget(key, value)
    _keep()


def _discard_edits() -> None:
    session.labeling().discard = True


def _rows_for(cat, source: str, slice_name: str | None, emb: str):
    """The rows to label, as ``label_by_similarity`` takes them."""
    if source == "Current results":
        s = session.search()
        if not (s.is_similarity or s.where):
            raise CatalogError("there is no current search: on the Catalog page find similar rows or filter first, "
                               "or choose another source")
        return results.all_ids(cat, s)
    if source == "Selected rows":
        ids = session.labeling().handed_rows or selection.ids()
        if not ids:
            raise CatalogError("no rows are selected: tick rows on the Catalog page first, or choose another source")
        return ids
    if source == "A slice":
        if not slice_name:
            raise CatalogError("no slice chosen; save one on the Catalog page first")
        return cat.get_slice(slice_name)
    return "unlabeled"


def _export(cat, fmt: str):
    def make() -> str:
        buf = io.StringIO()
        try:
            cat.export_labels(buf, fmt)
        except CatalogError as exc:
            return f"error: {worded(exc)}\n"
        return buf.getvalue()
    return make


def _params() -> tuple:
    """What the suggestions on screen were made from: embedding, k, threshold %, top only, source, slice."""
    w = session.widget
    source = w("lbs_source")
    return (w("lbs_emb"), int(w("lbs_k") or 10), int(w("lbs_thr") if w("lbs_thr") is not None else 30),
            bool(w("lbs_top")), source, w("lbs_slice") if source == "A slice" else None)


def _run(cat, rows_arg, params: tuple, limit: int) -> None:
    emb, k, thr, top = params[:4]
    res = cat.label_by_similarity(emb, rows_arg, results=k, threshold=thr / 100.0, top_only=top)
    parsed = list(res.results)
    total = len(parsed)
    parsed = parsed[:limit]
    session.labeling().start_run(parsed, total, params)
    session.set_widget("lbs_page", 1)


def _controls(cat, embs: list[dict]) -> tuple:
    lab = session.labeling()
    names = [e["name"] for e in embs if e["count"] > 0] or [e["name"] for e in embs]
    if session.widget("lbs_emb") not in names:
        s = session.search()
        session.set_widget("lbs_emb", s.embedding if s.embedding in names else names[0])
    if lab.handed_source in SOURCES:  # rows handed over from the Catalog page
        session.set_widget("lbs_source", lab.handed_source)
        lab.handed_source = None
    c1, c2, c3 = st.columns([2, 2, 1.3], gap="medium")
    with c1:
        st.selectbox("Embedding", names, key="lbs_emb", on_change=_keep)
        source = st.segmented_control("Rows to label", SOURCES, key="lbs_source", required=True, on_change=_keep)
        slice_name = None
        if source == "A slice":
            names_sl = [sl.name for sl in cat.get_slices()]
            if session.widget("lbs_slice") not in names_sl:
                session.forget_widget("lbs_slice")
            slice_name = st.selectbox("Slice", names_sl, key="lbs_slice", placeholder="no slices yet", on_change=_keep)
        elif source == "Selected rows":
            n = len(lab.handed_rows or selection.ids())
            st.caption(f"{n:,} rows selected on the Catalog page")
    with c2:
        st.number_input("Number of results", min_value=1, max_value=100, step=1, key="lbs_k", on_change=_keep,
                        help="How many nearest labeled rows vote (k). With very few examples per label, 1–2 works best.")
        st.slider("Threshold (%)", 0, 100, step=1, key="lbs_thr", format="%d%%", on_change=_keep,
                  help="A label is suggested when its score (the summed similarity of the neighbours carrying it, "
                       "divided by k) reaches this.")
        st.checkbox("Mark only top scoring label", key="lbs_top", on_change=_keep,
                    help="Tick only the best label of each row; the threshold is then not used.")
    with c3:
        st.number_input("Rows per batch", min_value=1, max_value=1000, step=10, key="lbs_limit", on_change=_keep,
                        help="Review this many rows at a time; apply, then run again for the next batch.")
        go = st.button("Suggest labels", type="primary", icon=":material/auto_awesome:", key="lbs_go",
                       width="stretch")
    return source, slice_name, go


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    show_flash()
    forget_other_dialogs("labeling:")
    st.title("Label by similarity", anchor=False)
    st.caption("Each row gets the labels of its nearest labeled rows: label score = (1/k) · Σ score over the k "
               "nearest labeled rows that carry the label. Review the ticks, add or remove labels, then Apply.")
    try:
        embs = embeddings(cat)
    except CatalogError as exc:
        show_error(exc)
        return
    if not embs:
        st.info("No embeddings yet.")
        return
    lab = session.labeling()
    _restore()
    with st.container(border=True, key="lbs_controls"):
        try:
            source, slice_name, go = _controls(cat, embs)
        except CatalogError as exc:
            show_error(exc)
            return
    params = _params()
    rows = lab.rows
    recompute = rows is not None and lab.params != params
    edited = recompute and labeling_review.edited(rows)
    discard, lab.discard = lab.discard, False
    if edited and not go and not discard:
        # ask first: the reviewer's ticks and added labels belong to the suggestions on screen
        with st.container(border=True, key="lbs_ask"):
            st.warning("The parameters changed. New suggestions would discard your ticks and added labels.",
                       icon=":material/restart_alt:")
            with st.container(horizontal=True):
                st.button("Recompute and discard my edits", key="lbs_ask_discard", icon=":material/restart_alt:",
                          on_click=_discard_edits)
                st.button("Keep my edits", key="lbs_ask_keep", type="primary", icon=":material/undo:",
                          on_click=_restore_params)
        recompute = False
    if go or recompute:
        try:
            with st.spinner("Finding the nearest labeled rows…"):
                _run(cat, _rows_for(cat, source, slice_name, params[0]), params, int(session.widget("lbs_limit") or 50))
        except CatalogError as exc:
            show_error(exc)
            lab.rows, lab.params = None, params
    rows = lab.rows
    if rows is not None:
        run = lab.run
        total = lab.total
        with st.container(horizontal=True, vertical_alignment="center", key="lbs_head"):
            st.subheader(f"Review {len(rows):,} rows" + (f" (of {total:,})" if total > len(rows) else ""), anchor=False)
            n_sugg = sum(s.suggested for r in rows for s in r.labels)
            st.caption(f"{n_sugg:,} suggested labels")
            if st.button(f"Apply to {len(rows):,} rows", type="primary", icon=":material/done_all:", key="lbs_apply",
                         disabled=not rows):
                ok, n = attempt(labeling_review.apply, cat, rows)
                if ok:
                    bump()
                    lab.end_run()
                    flash(f"{n:,} labels saved as reviewed on {len(rows):,} rows; they now join the labeled pool")
                    st.rerun()
        if not rows:
            st.info("Nothing to review: no rows to label from this source.")
        else:
            labeling_review.render(cat, run, rows, params[1])

    labeling_eval_panel.render(cat, params[0])

    with st.container(border=True, key="lbs_export"):
        st.markdown("**Export labels** · id, global_key, label, source, score, reviewed")
        with st.container(horizontal=True):
            st.download_button("Labels CSV", _export(cat, "csv"), file_name="labels.csv", mime="text/csv",
                               icon=":material/download:", key="lbs_export_csv", on_click="ignore")
            st.download_button("Labels NDJSON", _export(cat, "ndjson"), file_name="labels.ndjson",
                               mime="application/x-ndjson", icon=":material/download:", key="lbs_export_ndjson",
                               on_click="ignore")
