"""The Map page: an embedding's points in 2-D, coloured, with lasso or box selection and the gallery's actions.

The map is the library's cached projection (``Catalog.maps.compute`` / ``maps.get``); a lasso or a box
comes back from the browser as its polygon and the rows in it are chosen by the library
(``Catalog.maps.select_in_polygon``), then they are the session's selection, which the toolbar acts on as
on the Catalog page (anchors, slice, batch, labels, metadata). Colours: each row's label, a metadata
field, the score against the current search, or whatever else the library can colour by
(``catalog.maps.COLOUR_BY``). The map, toolbar and legend run as one fragment, keyed "map".
"""

from __future__ import annotations

import hashlib
import html
import time

import numpy as np
import streamlit as st

from catalog import CatalogError, thumbnails
from catalog.maps import COLOUR_BY, umap_available
from catalog.vectors.cache import find_rows

from . import actions, gallery, map_view, row_detail, session
from .common import (call, embeddings, forget_other_dialogs, generation, get_catalog, md_text, show_error,
                     show_flash)
from .session import selection

KEY = "map_canvas"
CATEGORIES = 10  # distinct values drawn in their own colour; the rest share "other"
PALETTE = ["#4f46e5", "#f97316", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#eab308", "#ec4899",
           "#14b8a6", "#84cc16"]
OTHER = "#78716c"
GRADIENT = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
            "#b5de2b", "#fde725"]  # low to high score
WORDS = {"label": "Label", "metadata": "Metadata field", "score": "Score against the current search"}


def _emb_name():
    return session.widget("map_emb")


def _event(name: str):
    got = session.widget(KEY)
    return got.get(name) if got is not None else None


def _on_select(cat) -> None:
    ev = _event("select")
    if not isinstance(ev, dict):
        return
    t0 = time.perf_counter()
    try:
        ids = cat.maps.select_in_polygon(_emb_name(), ev.get("polygon"))
    except CatalogError as exc:
        session.defer_error("map", exc)
        return
    if ev.get("add"):
        selection.add(ids.tolist())
    else:
        selection.put(ids.tolist())
    ms = (time.perf_counter() - t0) * 1000
    shape = "box" if ev.get("shape") == "box" else "lasso"
    session.map_view().note = f"{len(ids):,} points in the {shape} ({ms:.0f} ms)"


def _on_hover() -> None:
    i = _event("hover")
    session.map_view().hover = i if isinstance(i, int) else None


def _on_open(ids) -> None:
    i = _event("open")
    if isinstance(i, int) and 0 <= i < len(ids):
        session.open_dialog(row_detail.NAME, str(ids[i]))


def _on_clear() -> None:
    selection.clear()
    session.map_view().note = None


def _select_all(ids) -> None:
    selection.put(ids.tolist())


# -- colours ---------------------------------------------------------------------------------------------------
def _categorical(values: np.ndarray) -> tuple[np.ndarray, list[str], list[tuple[str, str, int]]]:
    have = values != None  # noqa: E711 - an object array: None marks no value
    names, counts = np.unique(values[have].astype(str), return_counts=True) if have.any() else ([], [])
    order = np.argsort(-np.asarray(counts), kind="stable")[:CATEGORIES]
    top = [str(names[i]) for i in order]
    colour = np.full(len(values), map_view.NO_VALUE, dtype=np.uint8)
    if have.any():
        colour[have] = CATEGORIES  # "other" until one of the top values
        text = values[have].astype(str)
        for k, name in enumerate(top):
            sub = np.flatnonzero(have)[text == name]
            colour[sub] = k
    legend = [(name, PALETTE[k], int(counts[order[k]])) for k, name in enumerate(top)]
    rest = int(have.sum()) - sum(c for _, _, c in legend)
    if rest:
        legend.append(("other", OTHER, rest))
    if (~have).sum():
        legend.append(("no value", "#c4c4cc", int((~have).sum())))
    return colour, PALETTE + [OTHER], legend


def _gradient(values: np.ndarray) -> tuple[np.ndarray, list[str], list[tuple[str, str, int]]]:
    have = np.isfinite(values)
    colour = np.full(len(values), map_view.NO_VALUE, dtype=np.uint8)
    legend = []
    if have.any():
        lo, hi = float(values[have].min()), float(values[have].max())
        step = (hi - lo) / len(GRADIENT) or 1.0
        colour[have] = np.clip(((values[have] - lo) / step).astype(int), 0, len(GRADIENT) - 1)
        legend = [(f"{lo + k * step:.3f}–{lo + (k + 1) * step:.3f}", c, int((colour == k).sum()))
                  for k, c in enumerate(GRADIENT)]
    if (~have).sum():
        legend.append(("not scored", "#c4c4cc", int((~have).sum())))
    return colour, GRADIENT, legend


def _colours(cat, made, by: str | None, field: str | None) -> tuple[str, np.ndarray, list[str], list]:
    s = session.search()
    key = (made.embedding_id, made.version, made.method, made.computed_at, by, field, generation(),
           s.query_key() if by == "score" else None)
    view = session.map_view()
    if view.colours is not None and view.colours[0] == key:
        return view.colours
    if by is None or (by == "metadata" and not field):
        got = (np.zeros(len(made), np.uint8), [PALETTE[0]], [])
    elif by == "score":
        if not s.is_similarity:
            raise CatalogError("colouring by score needs a search: pick anchors, a text or an image on the "
                               "Catalog page (or select points and use *Similar to selection*)")
        got = _gradient(cat.maps.point_values(made.embedding_id, "score", spec=s.spec()).astype(np.float64))
    else:
        got = _categorical(cat.maps.point_values(made.embedding_id, by, field))
    view.colours = (key, *got)
    return view.colours


def _legend(legend) -> None:
    if not legend:
        return
    items = "".join(f'<span style="margin-right:14px;white-space:nowrap"><span style="display:inline-block;'
                    f'width:10px;height:10px;border-radius:50%;background:{c};margin-right:5px"></span>'
                    f'{html.escape(name)} <span style="color:#6b7280">{n:,}</span></span>' for name, c, n in legend)
    st.html(f'<div class="cat-map-legend" style="font-size:0.85rem">{items}</div>')


def _preview(cat, made) -> dict | None:
    i = session.map_view().hover
    if i is None or not 0 <= i < len(made):
        return None
    try:
        row = cat.get_datarow(str(made.ids[i]))
    except CatalogError:
        return None
    if row["media_type"] == "image":
        body = gallery.image_block(thumbnails.thumbnails(cat.store, [row]).get(row["id"]), row)
    else:
        body = gallery.text_block(row["row_data"])
    return {"i": i, "html": f'{body}<div><code>{html.escape(row["global_key"][-50:])}</code></div>'}


# -- the page ---------------------------------------------------------------------------------------------------
def _outside() -> tuple:
    return (_emb_name(), session.dialog(), generation(), session.has_flashes(), session.search().query_key())


@st.fragment(key="map")
def _map(cat) -> None:
    try:
        with cat.reading():  # the catalog file is opened once for every call of the run
            _draw_map(cat)
    except CatalogError as exc:
        show_error(exc)


def _draw_map(cat) -> None:
    if session.outside() != _outside():
        st.rerun(scope="app")  # a toolbar action opened a dialog or changed the search
    err = session.take_error("map")
    if err is not None:
        show_error(err)
    made = call(cat.maps.get, _emb_name())
    if made is None:
        return
    by = session.widget("map_by")
    by = None if by in (None, "none") else by
    try:
        key, colour, palette, legend = _colours(cat, made, by, (session.widget("map_field") or "").strip() or None)
    except CatalogError as exc:
        show_error(exc)
        key, colour, palette, legend = "none", np.zeros(len(made), np.uint8), [PALETTE[0]], []
    mask = np.zeros(len(made), bool)
    if selection.count():  # the map's ids are sorted: a binary search per selected row
        at = find_rows(made.ids, selection.ids())
        mask[at[at >= 0]] = True
    packed = np.packbits(mask, bitorder="little")
    actions.toolbar(cat, session.search(), len(made), select_all=lambda: _select_all(made.ids))
    note = session.map_view().note
    status = f"{len(made):,} points · {made.method.upper()}" + (f" · {note}" if note else "")
    data_key = f"{made.embedding_id}-{made.version}-{made.method}-{made.computed_at}"
    map_view.render(KEY, xy=made.xy, data_key=data_key, colour=colour, palette=palette,
                    colour_key=hashlib.md5(repr(key).encode()).hexdigest(),
                    selected=mask, sel_key=hashlib.md5(packed.tobytes()).hexdigest(), status=status,
                    preview=_preview(cat, made), bounds_key=data_key,
                    on_select=lambda: _on_select(cat), on_hover=_on_hover, on_open=lambda: _on_open(made.ids),
                    on_clear=_on_clear)
    _legend(legend)


def _compute(cat, name: str, method: str) -> None:
    bar = st.progress(0.0, text=f"Computing the {method.upper()} map…")

    def progress(done, total):
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"Projecting {done:,} / {total:,} rows")

    t0 = time.perf_counter()
    made = call(cat.maps.compute, name, method=method, progress=progress)
    bar.empty()
    if made is not None:
        session.map_view().colours = None
        session.flash(f"Map of {name} computed: {len(made):,} points in {time.perf_counter() - t0:.1f} s")
        st.rerun()


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    try:
        with cat.reading():  # the file is opened once for the run (the dialogs' writes included)
            _page(cat)
    except CatalogError as exc:
        show_error(exc)


def _page(cat) -> None:
    show_flash()
    forget_other_dialogs("catalog:")
    embs = [e for e in embeddings(cat) if e["count"] > 0]
    if not embs:
        st.info("No embedding has vectors yet: import or compute some on the Embeddings page.")
        return
    names = [e["name"] for e in embs]
    if _emb_name() not in names:
        chosen = session.search().embedding
        session.set_widget("map_emb", chosen if chosen in names else names[0])
    with st.sidebar:
        name = st.selectbox("Embedding", names, key="map_emb")
        st.selectbox("Colour by", ["none", *COLOUR_BY], key="map_by",
                     format_func=lambda b: "Nothing" if b == "none" else WORDS.get(b, b.capitalize()))
        if session.widget("map_by") == "metadata":
            st.text_input("Metadata field", key="map_field", placeholder="e.g. split")
        methods = ["pca", "umap"] if umap_available() else ["pca"]
        method = st.radio("Projection", methods, key="map_method", horizontal=True, format_func=str.upper,
                          help="PCA: fast at any size. UMAP (Manhattan metric): clusters stand out; at most "
                               "250,000 rows; needs the umap-learn package" if len(methods) > 1 else
                               "PCA. UMAP appears here once the umap-learn package is installed.")
    try:
        info = cat.maps.info(name)
    except CatalogError as exc:
        show_error(exc)
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.subheader(f"Map of {md_text(name)}", anchor=False)
        label = "Compute map" if info is None or not info["current"] else "Recompute"
        go = st.button(label, key="map_compute", icon=":material/scatter_plot:",
                       type="primary" if info is None or not info["current"] else "secondary")
    if go:
        _compute(cat, name, method)
    if info is None:
        st.info("This embedding has no map yet: compute one (PCA: about a second for 200,000 rows).")
        return
    if not info["current"]:
        st.warning("The map was made from older vectors of this embedding (they changed since): compute it again.")
        return
    st.caption(f"{info['method'].upper()} of {info['points']:,} points, computed {info['computed_at']}. "
               "Pan: drag · zoom: wheel · Lasso or Box: draw to select (shift adds) · click a point to open it.")
    session.set_outside(_outside())
    _map(cat)
    actions.dialogs(cat)
