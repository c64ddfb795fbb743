"""The review list of label-by-similarity: each query row beside its nearest labeled rows and its
suggested labels as checkboxes; Apply hands the reviewer's ticks to the library
(:meth:`catalog.Catalog.apply_review`), which decides what is written."""

from __future__ import annotations

import html

import streamlit as st

from catalog import CatalogError, ReviewDecision, thumbnails
from catalog.labeling import RowSuggestions

from . import session
from .common import md_text, show_error

ROWS_PER_PAGE = 10
HITS_SHOWN = 10


def tick_key(run: int, row_id: str, label: str) -> str:
    return f"lbs_{run}_{row_id}_{label}"


def added() -> dict[str, list[str]]:
    """Labels the reviewer added to rows of the suggestions on screen."""
    return session.labeling().added


def decided() -> dict[tuple[str, str], bool]:
    """The reviewer's ticks and unticks of the suggestions on screen, ``{(row_id, label): ticked}``: kept by
    the session, not as widget state, so that they survive paging (Streamlit forgets the state of a
    checkbox that a run does not draw, and the review list draws one page of rows at a time)."""
    return session.labeling().decided


def _on_tick(run: int, row_id: str, label: str) -> None:
    decided()[(row_id, label)] = bool(session.widget(tick_key(run, row_id, label)))


def ticks(rows: list[RowSuggestions]) -> dict[tuple[str, str], bool]:
    """The reviewer's ticks on every page (a label never touched keeps its suggestion; an added label is
    ticked until unticked)."""
    out = {}
    extra = added()
    done = decided()
    for r in rows:
        for s in r.labels:
            out[(r.id, s.label)] = bool(done.get((r.id, s.label), s.suggested))
        for lab in extra.get(r.id, []):
            out[(r.id, lab)] = bool(done.get((r.id, lab), True))
    return out


def edited(rows: list[RowSuggestions]) -> bool:
    """Whether the reviewer changed anything (a tick or an added label)."""
    if any(added().values()):
        return True
    done = decided()
    return any((r.id, s.label) in done and done[(r.id, s.label)] != s.suggested for r in rows for s in r.labels)


def _add_label(run: int, row_id: str) -> None:
    key = f"lbs_new_{run}_{row_id}"
    name = (session.widget(key) or "").strip()
    if name:
        lst = added().setdefault(row_id, [])
        if name not in lst:
            lst.append(name)
        decided()[(row_id, name)] = True
    session.set_widget(key, "")


def _tick_box(run: int, row_id: str, label: str, caption: str, default: bool) -> None:
    """A checkbox drawn from (and writing to) :func:`decided`, whichever page it was last seen on."""
    st.checkbox(md_text(caption), value=bool(decided().get((row_id, label), default)), key=tick_key(run, row_id, label),
                on_change=_on_tick, args=(run, row_id, label))


def _media(cat, row: dict | None, thumb, width: int) -> None:
    if row is None:
        st.caption("(row not found)")
    elif row["media_type"] == "image" and thumb is not None:
        st.image(str(thumb), width=width)
    else:
        text = row["row_data"] if row["media_type"] == "text" else row["global_key"]
        st.markdown(f'<div class="cat-chip" style="width:{width}px">{html.escape(text[:160])}</div>',
                    unsafe_allow_html=True)


def render_row(cat, run: int, r: RowSuggestions, rows_by_id: dict, thumbs: dict, hit_labels: dict,
               k_shown: int) -> None:
    with st.container(border=True, key=f"lbs_row_{run}_{r.id}"):
        c_query, c_hits, c_labels = st.columns([1.2, 4.2, 1.8], gap="medium")
        with c_query:
            _media(cat, rows_by_id.get(r.id), thumbs.get(r.id), 120)
            st.caption(f"`{r.global_key[-40:]}`")
        with c_hits:
            st.caption(f"Nearest labeled rows ({min(len(r.hits), k_shown)})")
            with st.container(horizontal=True, gap="small"):
                for h in r.hits[:k_shown]:
                    with st.container(width=84, gap=None):
                        _media(cat, rows_by_id.get(h.id), thumbs.get(h.id), 76)
                        names = [lab["label"] for lab in hit_labels.get(h.id, [])]
                        st.markdown(f"**{h.score:.3f}**  \n" + ", ".join(md_text(n) for n in names[:2]))
        with c_labels:
            _labels(run, r)


@st.fragment
def _labels(run: int, r: RowSuggestions) -> None:
    """A row's label checkboxes and its "add a label" box: a fragment of its own, so a tick or an added
    label re-runs only this column (the ticks live in the session, where Apply reads them)."""
    st.caption("Labels (ticked = suggested)")
    if not r.labels and not added().get(r.id):
        st.markdown(":gray[no labels among the neighbours]")
    for s in r.labels:
        _tick_box(run, r.id, s.label, f"{s.label} · {s.score * 100:.0f}%", s.suggested)
    for lab in added().get(r.id, []):
        _tick_box(run, r.id, lab, f"{lab} · added", True)
    st.text_input("Add a label", key=f"lbs_new_{run}_{r.id}", placeholder="add a label, Enter",
                  label_visibility="collapsed", on_change=_add_label, args=(run, r.id))


@st.fragment
def render(cat, run: int, rows: list[RowSuggestions], k_shown: int) -> None:
    """One page of the review list (rows of the page fetched in one call, thumbnails from the cache).

    A fragment: a page of the list re-runs only the list; a tick or an added label re-runs only that
    row's labels (:func:`_labels`), not the page."""
    try:
        _render(cat, run, rows, k_shown)
    except CatalogError as exc:
        show_error(exc)


def _render(cat, run: int, rows: list[RowSuggestions], k_shown: int) -> None:
    pages = max(1, -(-len(rows) // ROWS_PER_PAGE))
    page = int(session.widget("lbs_page") or 1)
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * ROWS_PER_PAGE: page * ROWS_PER_PAGE]
    ids = list(dict.fromkeys([r.id for r in shown] + [h.id for r in shown for h in r.hits[:k_shown]]))
    rows_by_id = {d["id"]: d for d in cat.get_datarows(ids)} if ids else {}
    thumbs = thumbnails.thumbnails(cat.store, list(rows_by_id.values()), size=thumbnails.THUMB_SIZE)
    hit_ids = list(dict.fromkeys(h.id for r in shown for h in r.hits[:k_shown]))
    hit_labels = cat.get_labels(hit_ids) if hit_ids else {}
    for r in shown:
        render_row(cat, run, r, rows_by_id, thumbs, hit_labels, k_shown)
    if pages > 1:
        with st.container(horizontal=True, horizontal_alignment="center"):
            st.pagination(pages, key="lbs_page")


def apply(cat, rows: list[RowSuggestions]) -> int:
    """Write the review (the library decides what each tick means); returns how many labels were accepted."""
    per_row: dict[str, dict[str, bool]] = {}
    for (row_id, label), on in ticks(rows).items():
        per_row.setdefault(row_id, {})[label] = on
    extra = added()
    decisions = [ReviewDecision.from_suggestions(r, per_row.get(r.id), extra.get(r.id, [])) for r in rows]
    return cat.apply_review(decisions).accepted
