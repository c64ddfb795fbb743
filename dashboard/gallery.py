"""The gallery: one page of data rows as thumbnail and text cards, with select and "Similar" on each.

The whole grid is one element: a small component that draws the cards from the page's data and sends
back two events, ``toggle`` (a card's select box) and ``similar`` (a card's "Similar" button). A rerun
therefore sends and lays out one element instead of four Streamlit elements per card, and when only the
selection changed, the browser just ticks boxes. Thumbnails travel inline as ``data:`` addresses from
an in-process cache, so a new page needs no extra image requests.
"""

from __future__ import annotations

import html

import streamlit as st

from catalog import thumbnails

from . import selection
from . import state as search_state

TEXT_CHARS = 220
KEY = "gallery"

_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let grid = parentElement.querySelector(".cat-grid");
  if (!grid) {
    grid = document.createElement("div");
    grid.className = "cat-grid";
    parentElement.appendChild(grid);
    grid.addEventListener("change", (e) => {
      const box = e.target.closest("input[data-select]");
      if (box) setTriggerValue("toggle", { id: box.dataset.select, on: box.checked });
    });
    grid.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-similar]");
      if (button) setTriggerValue("similar", button.dataset.similar);
    });
  }
  const cards = (data && data.cards) || [];
  const layout = JSON.stringify(cards.map((c) => [c.id, c.html, c.similar]));
  if (grid.dataset.layout !== layout) {
    grid.dataset.layout = layout;
    grid.innerHTML = cards.map((c) =>
      `<div class="cat-box" data-row="${c.id}">${c.html}<div class="cat-controls">` +
      `<label class="cat-select" title="Select this row"><input type="checkbox" data-select="${c.id}" ` +
      `aria-label="Select"><span></span></label>` +
      (c.similar ? `<button type="button" class="cat-similar" data-similar="${c.id}" ` +
        `title="Find rows similar to this one"><span class="cat-icon">image_search</span>Similar</button>` :
        `<span class="cat-novector" title="This row has no vector in the chosen embedding">no vector</span>`) +
      `</div></div>`).join("");
  }
  for (const c of cards) {
    const box = grid.querySelector(`input[data-select="${c.id}"]`);
    if (box && box.checked !== c.selected) box.checked = c.selected;
  }
}
"""

_GALLERY = st.components.v2.component("catalog_gallery", js=_JS, isolate_styles=False)


def find_similar(row_id: str) -> None:
    """Search with ``row_id`` as the only anchor (the whole page re-runs)."""
    s = search_state.get()
    search_state.update(anchors=[row_id], negatives=[], text=None, image=None, image_name=None, slice=None)
    st.session_state.pop("_slice_base", None)
    if s.embedding is None:
        st.session_state["_need_default_embedding"] = True
    st.rerun(scope="app")  # the query changed: the whole page, not only the results fragment


def _event(name: str):
    got = st.session_state.get(KEY)
    return got.get(name) if got is not None else None


def _on_toggle() -> None:
    ev = _event("toggle")
    if isinstance(ev, dict) and isinstance(ev.get("id"), str):
        selection.set(ev["id"], bool(ev.get("on")))


def _on_similar() -> None:
    rid = _event("similar")
    if isinstance(rid, str):
        find_similar(rid)


def score_class(score: float) -> str:
    return "green" if score >= 0.9 else "blue" if score >= 0.8 else "orange" if score >= 0.6 else "gray"


def score_badge(score: float | None) -> str:
    """The score as a coloured badge (HTML)."""
    if score is None:
        return ""
    return f'<span class="cat-badge cat-{score_class(score)}">{score:.3f}</span>'


def text_block(text: str) -> str:
    shown = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS].rstrip() + "…"
    return f'<div class="cat-text">{html.escape(shown)}</div>'


def image_block(path, row: dict) -> str:
    uri = thumbnails.data_uri(path) if path is not None else None
    if uri is not None:
        return f'<img class="cat-thumb" src="{uri}" alt="{html.escape(row["global_key"][-60:], quote=True)}">'
    where = row.get("row_data", "")
    return f'<div class="cat-missing">image not available<br><small>{html.escape(where[-60:])}</small></div>'


def card_html(row: dict, thumb, labels: list[str]) -> str:
    """What a card shows above its two controls, as HTML (every value escaped)."""
    body = image_block(thumb, row) if row["media_type"] == "image" else text_block(row["row_data"])
    key = html.escape(row["global_key"][-40:])
    meta = (f'<div class="cat-meta">{score_badge(row.get("score"))}'
            f'<code title="{html.escape(row["global_key"], quote=True)}">{key}</code></div>')
    labs = ""
    if labels:
        labs = '<div class="cat-labels">' + "".join(
            f'<span class="cat-badge cat-label">{html.escape(lab)}</span>' for lab in labels[:4]) + "</div>"
    return f'<div class="cat-card">{body}{meta}{labs}</div>'


def render(cat, rows: list[dict], labels: dict[str, list[str]] | None = None,
           similar: set[str] | None = None) -> None:
    """Cards for ``rows`` (dicts from ``get_datarows`` with an optional ``score``) in a grid; only the
    rows in ``similar`` (those with a vector in the chosen embedding) offer *Similar*."""
    if not rows:
        return
    thumbs = thumbnails.thumbnails(cat.store, rows)
    labels = labels or {}
    cards = [{"id": r["id"], "html": card_html(r, thumbs.get(r["id"]), labels.get(r["id"], [])),
              "selected": selection.contains(r["id"]), "similar": r["id"] in (similar or ())} for r in rows]
    _GALLERY(key=KEY, data={"cards": cards},
             on_toggle_change=_on_toggle, on_similar_change=_on_similar)
