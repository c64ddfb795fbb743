"""The anchors panel: what the similarity query is made of (rows, negatives, a prompt, an image)."""

from __future__ import annotations

import html

import streamlit as st

from catalog import thumbnails

from . import results, session
from .common import call

CHIPS_SHOWN = 5  # per strip; the rest are listed compactly, so the panel keeps its height

def _remove(row_id: str, negative: bool) -> None:
    session.remove_anchors([row_id], negative)


def _clear_text() -> None:
    session.update(text=None)
    session.mark_reload()


def _remove_many(key: str, negative: bool) -> None:
    session.remove_anchors(session.widget(key) or [], negative)
    session.set_widget(key, [])


def _strip(cat, ids: list[str], by_id: dict, thumbs: dict, negative: bool) -> None:
    """The first :data:`CHIPS_SHOWN` anchors as chips, then one "+N more" control for the rest."""
    known = [rid for rid in ids if rid in by_id]
    for rid in known[:CHIPS_SHOWN]:
        _chip(cat, by_id[rid], thumbs.get(rid), negative)
    rest = known[CHIPS_SHOWN:]
    if not rest:
        return
    kind = "n" if negative else "p"
    with st.popover(f"+{len(rest):,} more", icon=":material/more_horiz:", key=f"anchors_more_{kind}"):
        st.dataframe({"global_key": [by_id[r]["global_key"] for r in rest]}, hide_index=True, height=240,
                     width="stretch")
        key = f"anchors_pick_{kind}"
        st.multiselect("Remove", rest, key=key, format_func=lambda r: by_id[r]["global_key"],
                       placeholder="Choose anchors to remove")
        st.button("Remove chosen", key=f"anchors_rm_{kind}", icon=":material/close:", on_click=_remove_many,
                  args=(key, negative), disabled=not session.widget(key))


def _chip(cat, row: dict, thumb, negative: bool) -> None:
    with st.container(border=True, width=132, key=f"anchor_{'n' if negative else 'p'}_{row['id']}"):
        uri = thumbnails.data_uri(thumb) if row["media_type"] == "image" and thumb is not None else None
        if uri is not None:
            st.html(f'<img class="cat-chip-img" src="{uri}" alt="{html.escape(row["global_key"][-60:], quote=True)}">')
        else:
            text = row["row_data"] if row["media_type"] == "text" else row["global_key"]
            st.html(f'<div class="cat-chip">{html.escape(text[:70])}</div>')
        st.button("Remove", key=f"rm_{'n' if negative else 'p'}_{row['id']}", icon=":material/close:",
                  type="tertiary", on_click=_remove, args=(row["id"], negative),
                  help=row["global_key"])


def render(cat, s) -> None:
    """The panel above the gallery while a similarity query is active."""
    if not (s.anchors or s.negatives or s.text or s.image):
        return
    ids = list(dict.fromkeys(s.anchors + s.negatives))
    rows = call(results.datarows, cat, ids) if ids else []
    if rows is None:
        return
    by_id = {r["id"]: r for r in rows}
    chips = [by_id[r] for r in ([a for a in s.anchors if a in by_id][:CHIPS_SHOWN]
                                + [a for a in s.negatives if a in by_id][:CHIPS_SHOWN])]
    thumbs = thumbnails.thumbnails(cat.store, chips)  # only what the chips show
    with st.container(border=True, key="anchors_panel"):
        head = st.container(horizontal=True, vertical_alignment="center")
        n = len(s.anchors) + bool(s.text) + bool(s.image)
        head.markdown(f"**Anchors** · {n} positive" + (f" · {len(s.negatives)} negative" if s.negatives else ""))
        head.button("Clear all", key="anchors_clear", icon=":material/delete_sweep:", on_click=session.clear_query)
        with st.container(horizontal=True, gap="small", key="anchors_strip"):
            if s.text:
                with st.container(border=True, width=200, key="anchor_text"):
                    st.markdown(f"**Prompt** \n“{html.escape(s.text[:120])}”")
                    st.button("Remove", key="rm_text", icon=":material/close:", type="tertiary", on_click=_clear_text)
            if s.image:
                with st.container(border=True, width=132, key="anchor_image"):
                    st.image(s.image, width=110, caption=s.image_name)
                    st.button("Remove", key="rm_image", icon=":material/close:", type="tertiary",
                              on_click=session.clear_image)
            _strip(cat, s.anchors, by_id, thumbs, negative=False)
        if s.negatives:
            st.markdown(":red[**Negative anchors**] · results move away from these")
            with st.container(horizontal=True, gap="small", key="negatives_strip"):
                _strip(cat, s.negatives, by_id, thumbs, negative=True)
