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

from . import row_detail, session
from .session import selection

TEXT_CHARS = 220
KEY = "gallery"
DETAIL = row_detail.NAME

_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let grid = parentElement.querySelector(".cat-grid");
  if (!grid) {
    grid = document.createElement("div");
    grid.className = "cat-grid";
    parentElement.appendChild(grid);
    const boxes = () => [...grid.querySelectorAll("input[data-select]")];
    const mark = (box) => box.closest(".cat-box").classList.toggle("cat-selected", box.checked);
    grid.addEventListener("click", (e) => {
      const select = e.target.closest(".cat-select");
      if (select) {  // remember the modifier for the change event that follows (label click, then the box's)
        if (e.target.tagName !== "INPUT" || e.shiftKey) grid._shift = e.shiftKey;
        return;
      }
      const button = e.target.closest("button[data-similar]");
      if (button) { setTriggerValue("similar", button.dataset.similar); return; }
      const body = e.target.closest(".cat-card[data-open]");
      if (body) setTriggerValue("open", body.dataset.open);
    });
    grid.addEventListener("keydown", (e) => {
      const body = e.target.closest(".cat-card[data-open]");
      if (body && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); setTriggerValue("open", body.dataset.open); }
    });
    grid.addEventListener("change", (e) => {
      const box = e.target.closest("input[data-select]");
      if (!box) return;
      const all = boxes(), here = all.indexOf(box), last = all.findIndex((b) => b.dataset.select === grid._last);
      const shift = grid._shift; grid._shift = false;
      grid._last = box.dataset.select;
      let ids = [box.dataset.select];
      if (shift && last >= 0 && last !== here) {  // shift-click: the whole range takes this box's state
        const range = all.slice(Math.min(last, here), Math.max(last, here) + 1);
        for (const b of range) { b.checked = box.checked; mark(b); }
        ids = range.map((b) => b.dataset.select);
      }
      mark(box);
      setTriggerValue("toggle", { id: box.dataset.select, ids: ids, on: box.checked });
    });
  }
  const cards = (data && data.cards) || [];
  const layout = JSON.stringify(cards.map((c) => [c.id, c.html, c.similar]));
  if (grid.dataset.layout !== layout) {
    const turned = grid.dataset.layout !== undefined && grid.dataset.page !== String(data.page);
    grid.dataset.layout = layout;
    grid.dataset.page = String(data.page);
    grid.innerHTML = cards.map((c) =>
      `<div class="cat-box" data-row="${c.id}">${c.html}<div class="cat-controls">` +
      `<label class="cat-select" title="Select this row (shift-click: select the range)"><input type="checkbox" ` +
      `data-select="${c.id}" aria-label="Select"><span></span></label>` +
      (c.similar ? `<button type="button" class="cat-similar" data-similar="${c.id}" ` +
        `title="Find rows similar to this one"><span class="cat-icon">image_search</span>Similar</button>` :
        `<span class="cat-novector" title="This row has no vector in the chosen embedding">no vector</span>`) +
      `</div></div>`).join("");
    if (turned) {  // a new page of the same results: back to their top
      const head = document.querySelector(".st-key-results_head");
      if (head && head.getBoundingClientRect().top < 0) head.scrollIntoView({ block: "start" });
    }
  }
  for (const c of cards) {
    const box = grid.querySelector(`input[data-select="${c.id}"]`);
    if (box && box.checked !== c.selected) box.checked = c.selected;
    if (box) box.closest(".cat-box").classList.toggle("cat-selected", c.selected);
  }
}
"""

_GALLERY = st.components.v2.component("catalog_gallery", js=_JS, isolate_styles=False)


def find_similar(row_id: str) -> None:
    """Search with ``row_id`` as the only anchor (the whole page re-runs)."""
    session.start_query([row_id])
    st.rerun(scope="app")  # the query changed: the whole page, not only the results fragment


def _event(name: str):
    got = session.widget(KEY)
    return got.get(name) if got is not None else None


def _on_toggle() -> None:
    ev = _event("toggle")
    if not isinstance(ev, dict):
        return
    ids = ev.get("ids") if isinstance(ev.get("ids"), list) else [ev.get("id")]
    for rid in ids:
        if isinstance(rid, str):
            selection.set(rid, bool(ev.get("on")))


def _on_open() -> None:
    rid = _event("open")
    if isinstance(rid, str):
        session.open_dialog(DETAIL, rid)  # drawn by the full page run (the fragment sees the dialog and re-runs it)


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
    if row.get("group_size"):
        meta += (f'<div class="cat-group" title="Rows in this group (the best-scoring one is shown)">'
                 f'{int(row["group_size"]):,} in group</div>')
    if row.get("matched"):
        meta += (f'<div class="cat-matched" title="The anchor this row scores best against">matches '
                 f'<code>{html.escape(row["matched"][-40:])}</code></div>')
    labs = ""
    if labels:
        labs = '<div class="cat-labels">' + "".join(
            f'<span class="cat-badge cat-label">{html.escape(lab)}</span>' for lab in labels[:4]) + "</div>"
    rid = html.escape(row["id"], quote=True)
    return (f'<div class="cat-card" data-open="{rid}" role="button" tabindex="0" '
            f'title="Open the details of this row">{body}{meta}{labs}</div>')


def render(cat, rows: list[dict], labels: dict[str, list[str]] | None = None,
           similar: set[str] | None = None, page: int = 1) -> None:
    """Cards for ``rows`` (dicts from ``get_datarows`` with an optional ``score``) in a grid; only the
    rows in ``similar`` (those with a vector in the chosen embedding) offer *Similar*."""
    if not rows:
        return
    thumbs = thumbnails.thumbnails(cat.store, rows)
    labels = labels or {}
    cards = [{"id": r["id"], "html": card_html(r, thumbs.get(r["id"]), labels.get(r["id"], [])),
              "selected": selection.contains(r["id"]), "similar": r["id"] in (similar or ())} for r in rows]
    _GALLERY(key=KEY, data={"cards": cards, "page": page},
             on_toggle_change=_on_toggle, on_similar_change=_on_similar, on_open_change=_on_open)
