"""Everything the dashboard keeps for one browser session, and the transitions between its states.

This is the only module that touches ``st.session_state`` (a test checks it). What it keeps:

* the **search** (a :class:`~dashboard.state.SearchState`, which wraps a ``SearchSpec``), the slice it
  was opened from and what the address bar last showed; it changes only through the transitions below
  (:func:`start_query`, :func:`add_anchors`, :func:`remove_anchors`, :func:`clear_query`,
  :func:`open_slice`, :func:`update`), which also keep the slice's "modified" mark right
  (``dashboard/address.py`` writes the search to the address bar and adopts shared links);
* the **selection** of rows (:data:`selection`), kept across pages of results and of the app;
* the open **dialog**, **flash** messages for the next run, errors deferred from a callback to the page,
  the **generation** of cached listings, the app's pages and where to go next;
* the label-by-similarity **review** (:class:`Labeling`) and small per-page memories (form
  generations, the vector import's target, session-held result caches).

Widgets keep their own values under their ``key=`` (Streamlit's rule); :func:`widget`, :func:`set_widget`
and :func:`forget_widget` are how the pages read or preset them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import streamlit as st

from catalog import CatalogError

from .state import MapView, SearchState

_ss = st.session_state

SEARCH, SLICE_BASE, URL_SEEN = "search", "_slice_base", "_url_seen"
SELECTED, DIALOG, FLASH, GENERATION = "selected", "_dialog", "_flash", "_generation"
RELOAD, IMAGE_GEN, ERRORS, PAGES, GOTO, ENTRY = "_reload_widgets", "_img_gen", "_errors", "_pages_by_name", "_goto", "_app_entry"
OUTSIDE, CACHES, FORMS, LABELING, MEMORY = "_outside", "_caches", "_forms", "_labeling", "_memory"
MAP = "_map"


# -- widgets ----------------------------------------------------------------------------------------------
def widget(key: str, default=None):
    """The value of the widget with ``key`` (``default`` before it was drawn)."""
    return _ss.get(key, default)


def set_widget(key: str, value) -> None:
    """Preset a widget's value (before it is drawn in this run)."""
    _ss[key] = value


def has_widget(key: str) -> bool:
    return key in _ss


def forget_widget(key: str) -> None:
    _ss.pop(key, None)


def mark_reload() -> None:
    """Ask the query widgets to show the search again (after it changed from outside: URL, slice, reset)."""
    _ss[RELOAD] = True


def take_reload() -> bool:
    return bool(_ss.pop(RELOAD, False))


def image_key() -> str:
    """The key of the query-image uploader (a new key empties it)."""
    return f"w_img_{_ss.get(IMAGE_GEN, 0)}"


# -- the search and its transitions -------------------------------------------------------------------------
def search() -> SearchState:
    if SEARCH not in _ss:
        _ss[SEARCH] = SearchState()
    return _ss[SEARCH]


def has_search() -> bool:
    return SEARCH in _ss


def put(state: SearchState) -> None:
    _ss[SEARCH] = state


def update(**changes) -> SearchState:
    """Change the search; any change of the query goes back to page 1."""
    changes.setdefault("page", 1)
    new = replace(search(), **changes)
    put(new)
    return new


def _leave_slice() -> None:
    _ss.pop(SLICE_BASE, None)


def start_query(anchors, negatives=()) -> SearchState:
    """A new similarity query made of rows (*Similar*, *Similar to selection*): prompt and image go, and
    the range is the automatic one again."""
    _ss[IMAGE_GEN] = _ss.get(IMAGE_GEN, 0) + 1
    _leave_slice()
    return update(anchors=list(dict.fromkeys(anchors)), negatives=list(dict.fromkeys(negatives)), text=None,
                  image=None, image_name=None, slice=None, min_score=None, max_score=None)


def add_anchors(ids, negative: bool = False) -> SearchState:
    """Add rows as anchors (or negative anchors); a row is never both."""
    s, ids = search(), list(dict.fromkeys(ids))
    taken = set(ids)
    if negative:
        return update(negatives=list(dict.fromkeys(s.negatives + ids)), anchors=[a for a in s.anchors if a not in taken])
    return update(anchors=list(dict.fromkeys(s.anchors + ids)), negatives=[a for a in s.negatives if a not in taken])


def remove_anchors(ids, negative: bool = False) -> SearchState:
    gone, s = set(ids), search()
    if negative:
        return update(negatives=[a for a in s.negatives if a not in gone])
    return update(anchors=[a for a in s.anchors if a not in gone])


def clear_image() -> SearchState:
    _ss[IMAGE_GEN] = _ss.get(IMAGE_GEN, 0) + 1
    return update(image=None, image_name=None)


def clear_query() -> SearchState:
    """*Clear all*: no anchors, prompt or image; the filter and the embedding stay."""
    clear_image()
    _leave_slice()
    mark_reload()
    return update(anchors=[], negatives=[], text=None, image=None, image_name=None, slice=None)


def open_slice(cat, name: str) -> SearchState:
    """Load a saved slice into the search (the library's :class:`CatalogError` if it does not exist)."""
    sl = cat.get_slice(name)
    state = SearchState.from_slice_query(sl.name, sl.query)
    if state.embedding:  # slices store the embedding's id; the page names embeddings by name
        state.embedding = cat.get_embedding(state.embedding).name
    put(state)
    _ss[SLICE_BASE] = state.slice_key()
    mark_reload()
    return state


def saved_as_slice(name: str) -> None:
    """The search was just saved as slice ``name``: it is that slice, unmodified."""
    put(replace(search(), slice=name))
    _ss[SLICE_BASE] = search().slice_key()


def rebase_slice() -> None:
    """The opened slice's anchors were resolved to row ids: that is still the slice as saved."""
    if _ss.get(SLICE_BASE) is not None:
        _ss[SLICE_BASE] = search().slice_key()


def slice_base():
    return _ss.get(SLICE_BASE)


def slice_modified(s: SearchState) -> bool:
    return _ss.get(SLICE_BASE) != s.slice_key()


# -- the address bar (dashboard/address.py reads and writes it) --------------------------------------------------
def url_seen():
    """The address-bar parameters the dashboard last wrote or adopted."""
    return _ss.get(URL_SEEN)


def set_url_seen(params) -> None:
    _ss[URL_SEEN] = params


def forget_url() -> None:
    """Read the address bar again on the next Catalog run (after a slice was opened on another page)."""
    _ss[URL_SEEN] = None


def leave_slice() -> None:
    """The search is no longer an opened slice."""
    _leave_slice()


# -- the selection ------------------------------------------------------------------------------------------
class _Selection:
    """The rows ticked in the gallery, in the order they were ticked."""

    @staticmethod
    def _store() -> dict[str, None]:
        return _ss.setdefault(SELECTED, {})

    def ids(self) -> list[str]:
        return list(self._store())

    def count(self) -> int:
        return len(self._store())

    def contains(self, row_id: str) -> bool:
        return row_id in self._store()

    def put(self, row_ids) -> None:
        _ss[SELECTED] = dict.fromkeys(row_ids)

    def add(self, row_ids) -> None:
        self._store().update(dict.fromkeys(row_ids))

    def clear(self) -> None:
        self.put([])

    def set(self, row_id: str, on: bool) -> None:
        """Add ``row_id`` to the selection, or take it out (a card's select box)."""
        if on:
            self._store()[row_id] = None
        else:
            self._store().pop(row_id, None)


selection = _Selection()


# -- dialogs, flashes, deferred errors, generation ----------------------------------------------------------
def open_dialog(name: str, *args) -> None:
    """Mark a dialog open (it is drawn on every run until it closes or is dismissed)."""
    _ss[DIALOG] = (name, args)


def close_dialog() -> None:
    _ss.pop(DIALOG, None)


def dialog():
    """``(name, args)`` of the open dialog, or None."""
    return _ss.get(DIALOG)


def dialog_args(name: str):
    """The arguments of dialog ``name`` when it is open, else None."""
    got = _ss.get(DIALOG)
    return got[1] if got and got[0] == name else None


def forget_other_dialogs(prefix: str) -> None:
    """Close a dialog left open on another page."""
    got = _ss.get(DIALOG)
    if got and not got[0].startswith(prefix):
        close_dialog()


def flash(message: str, kind: str = "success") -> None:
    """A message shown once on the next run (after ``st.rerun``)."""
    _ss.setdefault(FLASH, []).append((kind, message))


def has_flashes() -> bool:
    return bool(_ss.get(FLASH))


def take_flashes() -> list[tuple[str, str]]:
    return _ss.pop(FLASH, [])


def defer_error(place: str, exc: CatalogError) -> None:
    """An error raised in a callback, shown by ``place`` when it draws."""
    _ss.setdefault(ERRORS, {})[place] = exc


def take_error(place: str):
    return _ss.get(ERRORS, {}).pop(place, None)


def peek_error(place: str):
    return _ss.get(ERRORS, {}).get(place)


def generation() -> int:
    """Grows whenever the dashboard changed the catalog (cached listings of older generations are stale)."""
    return _ss.get(GENERATION, 0)


def next_generation() -> None:
    _ss[GENERATION] = generation() + 1


def cache(name: str) -> dict:
    """A dict kept for the session under ``name`` (small result caches)."""
    return _ss.setdefault(CACHES, {}).setdefault(name, {})


def set_outside(key) -> None:
    """What the page outside the results fragment was drawn for (the fragment re-runs the page when it changes)."""
    _ss[OUTSIDE] = key


def outside():
    return _ss.get(OUTSIDE)


# -- navigation ---------------------------------------------------------------------------------------------
def set_pages(pages: dict) -> None:
    _ss[PAGES] = pages


def app_page(name: str):
    return _ss[PAGES][name]


def go_to(name: str) -> None:
    """Switch to the app page ``name`` at the start of its next run (``st.switch_page`` can't run in a callback)."""
    _ss[GOTO] = name


def take_go_to() -> str | None:
    return _ss.pop(GOTO, None)


def mark_entry() -> None:
    _ss[ENTRY] = True


def take_entry() -> bool:
    return bool(_ss.pop(ENTRY, False))


# -- small memories of pages ----------------------------------------------------------------------------------
def form_generation(form: str) -> int:
    """The generation of a form's widget keys (a new one starts the form empty)."""
    return _ss.setdefault(FORMS, {}).get(form, 0)


def next_form_generation(form: str) -> None:
    _ss.setdefault(FORMS, {})[form] = form_generation(form) + 1


def remember(name: str, value) -> None:
    _ss.setdefault(MEMORY, {})[name] = value


def recall(name: str, default=None):
    return _ss.get(MEMORY, {}).get(name, default)


# -- label by similarity ----------------------------------------------------------------------------------------
@dataclass
class Labeling:
    """The label-by-similarity page's session: its kept choices, the suggestions under review and the
    reviewer's edits (ticks and unticks ``{(row_id, label): ticked}``, added labels ``{row_id: [label]}``),
    the last evaluation and the rows handed over from the Catalog page."""

    kept: dict = field(default_factory=dict)
    run: int = 0
    rows: list | None = None
    total: int = 0
    params: tuple | None = None
    decided: dict = field(default_factory=dict)
    added: dict = field(default_factory=dict)
    discard: bool = False
    evaluation: tuple | None = None
    handed_rows: list | None = None
    handed_source: str | None = None

    def start_run(self, rows: list, total: int, params: tuple) -> None:
        """New suggestions: the edits of the previous ones go."""
        self.run += 1
        self.rows, self.total, self.params = rows, total, params
        self.decided, self.added = {}, {}

    def end_run(self) -> None:
        self.rows, self.decided, self.added, self.handed_rows = None, {}, {}, None


def labeling() -> Labeling:
    if LABELING not in _ss:
        _ss[LABELING] = Labeling()
    return _ss[LABELING]


def hand_to_labeling(ids: list[str]) -> None:
    """The Catalog page's selection becomes the label-by-similarity page's rows."""
    lab = labeling()
    lab.handed_rows, lab.handed_source = list(ids), "Selected rows"



# -- the map page ---------------------------------------------------------------------------------------------
def map_view() -> MapView:
    """The Map page's session (:class:`~dashboard.state.MapView`)."""
    if MAP not in _ss:
        _ss[MAP] = MapView()
    return _ss[MAP]
