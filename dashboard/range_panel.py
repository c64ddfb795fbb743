"""The score range in the sidebar: the slider, what the automatic range chose, and a histogram of the
scores of every row against the current query (from the library's ``ScoreDistribution``).

A fragment, keyed "range": moving the slider re-runs it and the results fragment, nothing else. Without
a chosen range the library picks one (0.85–1, else the best rows; always the best rows for a text
prompt) and the slider shows that choice; moving the slider chooses a range, *Automatic* gives it back.
"""

from __future__ import annotations

import html

import streamlit as st

from catalog import CatalogError

from . import results, session
from .state import DEFAULT_MAX, DEFAULT_MIN

HELP = ("Only rows whose similarity score to the query falls in this range (inclusive). "
        "score = 1 − ‖â − b̂‖₁ / (2·√D); 0.85 is about cosine 0.93. Without a chosen range it opens on 0.85–1, "
        "or on the best 100 rows when 0.85–1 holds none (and always for a text prompt).")


def _on_range() -> None:
    lo, hi = session.widget("w_range")
    session.update(min_score=round(float(lo), 4), max_score=round(float(hi), 4))
    # only the results and this panel depend on the range
    st.rerun(["results", "range"])


def _on_automatic() -> None:
    session.update(min_score=None, max_score=None)
    st.rerun(["results", "range"])


_CSS = ("<style>.cat-hist-bars {display: flex; align-items: flex-end; gap: 1px; height: 2.6rem;}"
        ".cat-hist-bars span {flex: 1 1 0; min-width: 0; background: rgba(128, 128, 128, 0.45);}"
        ".cat-hist-bars span.in {background: var(--primary-color, #4f46e5);}"
        ".cat-hist-axis {display: flex; justify-content: space-between; font-size: 0.7rem; opacity: 0.7;}"
        ".cat-hist-caption {font-size: 0.75rem; opacity: 0.75;}</style>")


def histogram_html(dist, lo: float, hi: float) -> str:
    """The distribution as small bars (square-root heights, so thin tails show); bars inside the range
    ``lo``–``hi`` in the primary colour (class ``in``); each bar's range and count in its tooltip."""
    counts, edges = dist.counts, dist.edges
    top = max(counts) if counts and max(counts) > 0 else 1
    bars = []
    for i, c in enumerate(counts):
        height = 0.0 if c == 0 else max(3.0, 100.0 * (c / top) ** 0.5)
        inside = edges[i + 1] > lo + 1e-9 and edges[i] < hi + 1e-9
        tip = f"{edges[i]:.2f}–{edges[i + 1]:.2f}: {c:,} row{'s' if c != 1 else ''}"
        bars.append(f'<span class="{"in" if inside else "out"}" style="height: {height:.1f}%" '
                    f'title="{html.escape(tip, quote=True)}"></span>')
    best = "" if dist.best is None else f" · best {dist.best:.2f}"
    return (_CSS + '<div class="cat-hist" role="img" aria-label="Score histogram">'
            f'<div class="cat-hist-bars">{"".join(bars)}</div>'
            '<div class="cat-hist-axis"><span>0</span><span>0.5</span><span>1</span></div>'
            f'<div class="cat-hist-caption">Scores of all {dist.total:,} rows against this query{best}</div></div>')


@st.fragment(key="range")
def render(cat) -> None:
    s = session.search()
    page = None
    if s.is_similarity:
        try:
            page = results.cached_fetch(cat, s)
        except CatalogError:
            page = None  # the results say why
    used = page.score_range if page is not None else None
    if s.auto_range:  # the slider shows what the library chose
        shown = (used.min_score, used.max_score) if used is not None else (DEFAULT_MIN, DEFAULT_MAX)
        session.set_widget("w_range", (float(shown[0]), float(shown[1])))
    elif session.widget("w_range") != (s.min_score, s.max_score):
        session.set_widget("w_range", (float(s.min_score), float(s.max_score)))
    st.slider("Score range", 0.0, 1.0, step=0.01, key="w_range", on_change=_on_range, format="%.2f",
              disabled=not s.is_similarity, help=HELP)
    if page is None:
        return
    with st.container(horizontal=True, vertical_alignment="center", key="range_note"):
        if used is not None and used.automatic and used.reason == "top":
            st.caption(f":material/auto_mode: {used.message}")
        elif not s.auto_range:
            st.button("Automatic", key="range_auto", icon=":material/auto_mode:", type="tertiary",
                      on_click=_on_automatic, help="Let the catalog choose the range for this query again")
    try:
        dist = results.distribution(cat, s, page)
    except CatalogError:
        return
    lo, hi = session.widget("w_range")
    st.html(histogram_html(dist, lo, hi))
