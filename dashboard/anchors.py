"""The anchors panel: what the similarity query is made of (rows, negatives, a prompt, an image)."""

from __future__ import annotations

import html

import streamlit as st

from catalog import thumbnails

from . import query_panel, results
from . import state as search_state
from .common import call


def _remove(row_id: str, negative: bool) -> None:
    s = search_state.get()
    if negative:
        search_state.update(negatives=[a for a in s.negatives if a != row_id])
    else:
        search_state.update(anchors=[a for a in s.anchors if a != row_id])


def _clear() -> None:
    query_panel.clear_image()
    search_state.update(anchors=[], negatives=[], text=None, image=None, image_name=None, slice=None)
    st.session_state.pop("_slice_base", None)
    query_panel.mark_reload()


def _clear_text() -> None:
    search_state.update(text=None)
    query_panel.mark_reload()


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
    thumbs = thumbnails.thumbnails(cat.store, rows)
    with st.container(border=True, key="anchors_panel"):
        head = st.container(horizontal=True, vertical_alignment="center")
        n = len(s.anchors) + bool(s.text) + bool(s.image)
        head.markdown(f"**Anchors** · {n} positive" + (f" · {len(s.negatives)} negative" if s.negatives else ""))
        head.button("Clear all", key="anchors_clear", icon=":material/delete_sweep:", on_click=_clear)
        with st.container(horizontal=True, gap="small", key="anchors_strip"):
            if s.text:
                with st.container(border=True, width=200, key="anchor_text"):
                    st.markdown(f"**Prompt** \n“{html.escape(s.text[:120])}”")
                    st.button("Remove", key="rm_text", icon=":material/close:", type="tertiary", on_click=_clear_text)
            if s.image:
                with st.container(border=True, width=132, key="anchor_image"):
                    st.image(s.image, width=110, caption=s.image_name)
                    st.button("Remove", key="rm_image", icon=":material/close:", type="tertiary",
                              on_click=query_panel.clear_image)
            for rid in s.anchors:
                if rid in by_id:
                    _chip(cat, by_id[rid], thumbs.get(rid), negative=False)
        if s.negatives:
            st.markdown(":red[**Negative anchors**] · results move away from these")
            with st.container(horizontal=True, gap="small", key="negatives_strip"):
                for rid in s.negatives:
                    if rid in by_id:
                        _chip(cat, by_id[rid], thumbs.get(rid), negative=True)
