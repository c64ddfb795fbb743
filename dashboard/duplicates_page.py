"""The duplicates page: near-duplicate (or identical) groups of the current embedding, leaks between
splits, and saving them as slices. One library call per action (``Catalog.duplicates``,
``cat.quality.save``); the report of the last run is kept in the session until the next run. Below
them, uniqueness and the score of two rows (:mod:`dashboard.quality_panel`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalog.filters import parse_filter
from catalog.quality import DEFAULT_MIN_SCORE, KEEPS

from . import quality_panel, session
from .common import attempt, bump, embeddings, flash, get_catalog, md_text, show_flash

REPORT = "duplicates_report"
SHOWN_GROUPS = 50  # groups listed on the page (the saved slices hold them all)


def _groups_table(report) -> pd.DataFrame:
    rows = []
    for n, g in enumerate(report.groups[:SHOWN_GROUPS], start=1):
        for k, m in enumerate(g.members):
            rows.append({"group": n, "global_key": m.global_key, "kept": k == 0, "score to kept row": m.score})
    return pd.DataFrame(rows)


def _leaks_table(report) -> pd.DataFrame:
    return pd.DataFrame([{"score": x.score, "row": x.a.global_key, "its value": str(x.a_value),
                          "other row": x.b.global_key, "other value": str(x.b_value)}
                         for x in report.leaks[:SHOWN_GROUPS]])


def _form(names: list[str]):
    current = session.search().embedding
    c1, c2, c3 = st.columns([3, 1, 1])
    content = c3.toggle("Identical content only", key="dup_content",
                        help="Rows whose image bytes or normalised text are the same (stored hashes); no embedding")
    emb = c1.selectbox("Embedding", names, index=names.index(current) if current in names else 0, key="dup_emb",
                       disabled=content or not names)
    min_score = c2.number_input("Minimum score", 0.5, 1.0, DEFAULT_MIN_SCORE, 0.005, format="%.3f", key="dup_min",
                                disabled=content)
    c1, c2, c3 = st.columns([3, 1, 1])
    where = c1.text_input("Filter (JSON, optional)", key="dup_where", placeholder='{"split": "train"}')
    split = c2.text_input("Split field (leaks)", key="dup_split", placeholder="split")
    keep = c3.selectbox("Keep per group", KEEPS, key="dup_keep")
    return emb, min_score, where, split.strip() or None, keep, content


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    st.subheader("Duplicates")
    show_flash()
    names = [e["name"] for e in embeddings(cat) if e["count"]]
    emb, min_score, where_text, split, keep, content = _form(names)
    if st.button("Find duplicates", type="primary", icon=":material/content_copy:", key="dup_run",
                 disabled=not (names or content)):
        ok, where = attempt(parse_filter, where_text)
        if ok:
            with st.spinner("Comparing every pair of rows…"):
                ok, report = attempt(cat.duplicates, None if content else emb, float(min_score), where, split, keep,
                                     content)
            if ok:
                session.remember(REPORT, (report, where))
    if not names and not content:
        st.info("No embedding has vectors yet; compute or import some on the Embeddings page.")
    got = session.recall(REPORT)
    if got is not None:
        _report(cat, *got)
    st.divider()
    quality_panel.uniqueness(cat, names)
    st.divider()
    quality_panel.compare(cat, names)


def _report(cat, report, where) -> None:
    what = "identical content" if report.method == "content" else f"score ≥ {report.min_score} in {report.embedding}"
    st.markdown(md_text(f"{len(report.groups)} groups of {what} ({report.method}): {report.duplicate_rows} "
                        f"duplicate rows among {report.rows} rows, {report.seconds:.1f} s"))
    if report.pair_recall is not None:
        st.caption(f"Pair recall {report.pair_recall:.4f}, measured against the exact search on "
                   f"{report.recall_sample} sample rows")
    if report.without:
        st.caption(f"{report.without} matching rows were left out (no vector, or no content hash).")
    if report.groups:
        st.dataframe(_groups_table(report), hide_index=True, key="dup_groups")
        if len(report.groups) > SHOWN_GROUPS:
            st.caption(f"The first {SHOWN_GROUPS} groups, biggest first; saving keeps them all.")
    if report.split_field is not None:
        st.markdown(md_text(f"{report.leak_pairs} leaks: pairs whose {report.split_field!r} differs"))
        if report.leaks:
            st.dataframe(_leaks_table(report), hide_index=True, key="dup_leaks")
    if report.groups:
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Save as slices named", key="dup_name", placeholder="near-duplicates")
        replace = c2.checkbox("Replace", key="dup_replace")
        if st.button("Save slices", icon=":material/save:", key="dup_save"):
            ok, saved = attempt(cat.quality.save, report, name.strip(), where=where, replace=replace)
            if ok:
                bump()
                flash(f"Saved slices {saved[0].name!r} (grouped rows) and {saved[1].name!r} (one row per group)")
                st.rerun()

