"""The gallery: one page of data rows as thumbnail and text cards, with select and "Similar" on each."""

from __future__ import annotations

import html

import streamlit as st

from catalog import thumbnails

from . import selection
from . import state as search_state

COLUMNS = 6
TEXT_CHARS = 220


def _find_similar(row_id: str) -> None:
    s = search_state.get()
    search_state.update(anchors=[row_id], negatives=[], text=None, image=None, image_name=None, slice=None)
    st.session_state.pop("_slice_base", None)
    if s.embedding is None:
        st.session_state["_need_default_embedding"] = True


def score_badge(score: float | None) -> str:
    if score is None:
        return ""
    colour = "green" if score >= 0.9 else "blue" if score >= 0.8 else "orange" if score >= 0.6 else "gray"
    return f":{colour}-badge[{score:.3f}]"


def text_card(text: str) -> None:
    shown = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS].rstrip() + "…"
    st.markdown(f'<div class="cat-text">{html.escape(shown)}</div>', unsafe_allow_html=True)


def image_card(path, row: dict) -> None:
    if path is not None:
        st.image(str(path), width="stretch")
    else:
        where = row.get("row_data", "")
        st.markdown(f'<div class="cat-missing">image not available<br><small>{html.escape(where[-60:])}</small></div>',
                    unsafe_allow_html=True)


def card(cat, row: dict, thumb, labels: list[str], similar: bool = True) -> None:
    rid = row["id"]
    with st.container(border=True, key=f"card_{rid}"):
        if row["media_type"] == "image":
            image_card(thumb, row)
        else:
            text_card(row["row_data"])
        parts = [score_badge(row.get("score"))] if row.get("score") is not None else []
        parts.append(f"`{row['global_key'][-40:]}`")
        st.markdown(" ".join(parts))
        if labels:
            st.markdown(" ".join(f":violet-badge[{html.escape(lab)}]" for lab in labels[:4]))
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            selection.checkbox(rid)
            if similar:
                st.button("Similar", key=f"sim_{rid}", icon=":material/image_search:", type="tertiary",
                          on_click=_find_similar, args=(rid,), help="Find rows similar to this one")


def render(cat, rows: list[dict], labels: dict[str, list[str]] | None = None, similar: bool = True) -> None:
    """Cards for ``rows`` (dicts from ``get_datarows`` with an optional ``score``), six to a row."""
    if not rows:
        return
    thumbs = thumbnails.thumbnails(cat, rows)
    labels = labels or {}
    for start in range(0, len(rows), COLUMNS):
        cols = st.columns(COLUMNS, gap="small")
        for col, row in zip(cols, rows[start:start + COLUMNS]):
            with col:
                card(cat, row, thumbs.get(row["id"]), labels.get(row["id"], []), similar)
