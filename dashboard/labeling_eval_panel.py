"""The evaluation panel: leave-one-out accuracy, precision and coverage per (k, threshold), the
recommended parameters, and a chart."""

from __future__ import annotations

import streamlit as st

from . import session
from .common import attempt, generation

RESULTS = (1, 2, 3, 5, 10, 20)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _use(k: int, threshold: float) -> None:
    values = {"lbs_k": int(k), "lbs_thr": int(round(threshold * 100)), "lbs_top": False}
    for key, value in values.items():
        session.set_widget(key, value)
    session.labeling().kept.update(values)


def render(cat, embedding: str | None) -> None:
    with st.expander("How well will it work? Leave-one-out evaluation on the labeled pool",
                     expanded=session.labeling().evaluation is not None, icon=":material/insights:"):
        st.caption("Each labeled row is predicted from the other labeled rows, for several numbers of results (k) "
                   "and thresholds. Precision: share of suggested labels that are right; coverage: share of rows "
                   "that get a suggestion; accuracy: the top label is right.")
        if st.button("Evaluate", icon=":material/insights:", key="lbs_eval_go", disabled=not embedding):
            ok, ev = attempt(cat.evaluate_label_by_similarity, embedding, results=RESULTS, thresholds=THRESHOLDS)
            if ok:
                session.labeling().evaluation = (embedding, generation(), ev.to_dict())
        got = session.labeling().evaluation
        if not got or got[0] != embedding:
            return
        if got[1] != generation():  # labels were applied or changed since: the numbers are of another pool
            st.info("The labeled pool changed since this evaluation; evaluate again.", icon=":material/update:")
            return
        ev = got[2]
        grid = ev.get("grid") or []
        rec = ev.get("recommended")
        c1, c2, c3 = st.columns(3)
        c1.metric("Labeled rows in the pool", f"{ev.get('pool_size', 0):,}")
        c2.metric("Labels", f"{len(ev.get('labels') or {}):,}")
        if rec:
            c3.metric("Recommended", f"k = {rec['k']}, threshold {rec['threshold'] * 100:.0f}%",
                      f"precision {rec['precision']:.2f} · coverage {rec['coverage']:.2f}", delta_color="off")
            st.button(f"Use k = {rec['k']} and threshold {rec['threshold'] * 100:.0f}%", key="lbs_use_rec",
                      icon=":material/check:", on_click=_use, args=(rec["k"], rec["threshold"]))
        else:
            c3.metric("Recommended", "none", "no pair reaches the coverage target", delta_color="off")
        for note in ev.get("notes") or []:
            st.info(note)
        if not grid:
            return
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.dataframe(
                [{"k": g["k"], "threshold": f"{g['threshold'] * 100:.0f}%", "accuracy": g.get("accuracy"),
                  "precision": g.get("precision"), "coverage": g.get("coverage"), "recall": g.get("recall"),
                  "labels / row": g.get("suggestions_per_row")} for g in grid],
                hide_index=True, width="stretch", height=320,
                column_config={c: st.column_config.NumberColumn(format="%.3f")
                               for c in ("accuracy", "precision", "coverage", "recall", "labels / row")})
        with right:
            ks = sorted({g["k"] for g in grid})
            ks = [k for k in ks if k in {1, 10, rec["k"] if rec else ks[0]}] or ks[:3]
            chart = {"threshold": [g["threshold"] for g in grid if g["k"] == ks[0]]}
            for k in ks:
                chart[f"precision k={k}"] = [g.get("precision") for g in grid if g["k"] == k]
                chart[f"coverage k={k}"] = [g.get("coverage") for g in grid if g["k"] == k]
            st.line_chart(chart, x="threshold", height=320, x_label="threshold", y_label="precision / coverage")
