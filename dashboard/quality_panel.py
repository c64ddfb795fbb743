"""The duplicates page's two other tools: each row's uniqueness (compute, the outliers) and the score
between two rows. One library call per action (``cat.uniqueness.compute`` / ``status`` / ``outliers``,
``cat.comparer.compare``); the last answers are kept in the session until the next action."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalog.quality import DEFAULT_NEIGHBOURS, MAX_NEIGHBOURS

from . import session
from .common import attempt, bump, md_text

OUTLIERS = "uniqueness_outliers"
COMPARED = "compared_rows"
SHOWN_OUTLIERS = 1_000  # rows the table may list (the library allows more)


def uniqueness(cat, names: list[str]) -> None:
    st.markdown("#### Uniqueness and outliers")
    if not names:
        st.caption("No embedding has vectors yet.")
        return
    c1, c2, c3 = st.columns([3, 1, 1])
    current = session.search().embedding
    emb = c1.selectbox("Embedding", names, index=names.index(current) if current in names else 0, key="uq_emb")
    k = c2.number_input("Neighbours (K)", 1, MAX_NEIGHBOURS, DEFAULT_NEIGHBOURS, 1, key="uq_k",
                        help="Uniqueness = 1 − the mean score of a row's K nearest other rows")
    n = c3.number_input("Outliers to list", 1, SHOWN_OUTLIERS, 20, 1, key="uq_n")
    ok, run = attempt(cat.uniqueness.status, emb)
    if ok:
        st.caption("Not computed yet." if run is None else
                   f"Computed with K = {run.neighbours} for {run.count:,} rows at vector version {run.version}"
                   + ("" if run.current else " — stale: the vectors changed since"))
    b1, b2 = st.columns(2)
    if b1.button("Compute uniqueness", icon=":material/scatter_plot:", key="uq_compute"):
        with st.spinner("Finding every row's nearest neighbours…"):
            ok, _ = attempt(cat.uniqueness.compute, emb, int(k))
        if ok:
            bump()
            session.remember(OUTLIERS, None)
            st.rerun()
    if b2.button("List outliers", icon=":material/crisis_alert:", key="uq_outliers"):
        with st.spinner("Reading the most unique rows…"):
            ok, rows = attempt(cat.uniqueness.outliers, emb, int(n))
        if ok:
            session.remember(OUTLIERS, (emb, rows))
    got = session.recall(OUTLIERS)
    if got is not None:
        name, rows = got
        st.markdown(md_text(f"The {len(rows)} most unique rows of {name}, most unique first"))
        st.dataframe(pd.DataFrame(rows, columns=["global_key", "uniqueness", "id"]), hide_index=True,
                     key="uq_table")


def compare(cat, names: list[str]) -> None:
    st.markdown("#### Compare two rows")
    c1, c2, c3 = st.columns([2, 2, 2])
    a = c1.text_input("Row A (id or global_key)", key="cmp_a")
    b = c2.text_input("Row B (id or global_key)", key="cmp_b")
    emb = c3.selectbox("Embedding", names, key="cmp_emb") if names else None
    if st.button("Score", icon=":material/compare_arrows:", key="cmp_run", disabled=not names):
        ok, got = attempt(cat.comparer.compare, a.strip(), b.strip(), emb)
        if ok:
            session.remember(COMPARED, (a.strip(), b.strip(), got.embedding, got.score))
    got = session.recall(COMPARED)
    if got is not None:
        a, b, name, score = got
        st.markdown(md_text(f"Score of {a} and {b} in {name}: {score:.4f} (the number a search from {a} shows "
                            f"for {b})"))
