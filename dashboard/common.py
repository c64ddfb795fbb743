"""What every page shares: the open catalog, error display, cached listings and small widgets.

The dashboard is a client of the ``catalog`` library: pages call its methods and show the results;
there is no SQL and no scoring here.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import streamlit as st

from catalog import Catalog, CatalogBusy, CatalogError, ValidationError

from . import session
from .session import close_dialog, dialog_args, flash, forget_other_dialogs, generation, open_dialog  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
DEMO_DB = ROOT / "demo" / "catalog.duckdb"


def catalog_path() -> Path:
    """``$CATALOG_DB``, else the demo catalog."""
    env = os.environ.get("CATALOG_DB")
    return Path(env).expanduser().absolute() if env else DEMO_DB


@st.cache_resource(show_spinner=False)
def _open(path: str) -> Catalog:
    return Catalog(path)


def get_catalog() -> Catalog | None:
    """The catalog of this server process (opened once; its vector caches live as long as the server)."""
    path = catalog_path()
    if not path.exists():
        st.title("Embedding catalog")
        if path == DEMO_DB:
            st.info(
                "The demo catalog has not been built yet. Build it with "
                "`python tools/build_demo.py`, or point the dashboard at a catalog file with "
                "`CATALOG_DB=path/to/catalog.duckdb streamlit run app.py`."
            )
        else:
            st.error(f"Catalog file {path} does not exist. Create it with `advtool --db {path} datarows import ...` "
                     "or set CATALOG_DB to an existing catalog.")
        return None
    return _open(str(path))


# the library's input names (backticked in its messages) as this dashboard's widgets call them
LABELS = {
    "where": "the filter", "min_score": "the score range's minimum", "max_score": "the score range's maximum",
    "anchors": "the anchors", "negatives": "the negative anchors", "text": "the text prompt",
    "image": "the query image", "embedding": "the embedding", "aggregate": "the aggregation",
    "order": "the order", "limit": "the page size", "offset": "the page", "replace": "“Replace”",
    "slice": "the slice", "ids": "the selection", "results": "“Number of results”",
    "threshold": "“Threshold”", "top_only": "“Mark only top scoring label”", "batch_size": "the batch size",
    "device": "the device", "weights": "the weights folder", "pretrained": "the pretrained tag",
    "dims": "“Dims”", "name": "the name", "project": "the project",
}
HINTS: dict[str, str] = {}


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~$:&^])")  # special anywhere in a line
_MD_LINE_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))", re.M)  # lists, setext headings: only first in a line


def md_text(text, keep_code: bool = False) -> str:
    """``text`` escaped for Streamlit Markdown, so it shows as typed: a user's ``![x](http://host/p.png)``
    is text, not an image every viewer's browser fetches (nor a link, colour, icon or formula).

    Streamlit has no escape helper; this backslash-escapes the ASCII punctuation Markdown and Streamlit's
    directives use (``- + =`` and ``1.`` only where they begin a line). Line breaks stay line breaks.
    ``keep_code``: keep balanced `code` spans of a message as code (their content shows literally anyway).
    """
    text = "" if text is None else str(text)
    if keep_code and text.count("`") % 2 == 0 and "`" in text:
        parts = text.split("`")
        return "`".join(p if i % 2 else md_text(p) for i, p in enumerate(parts))
    out = _MD_SPECIAL.sub(r"\\\1", text)
    out = _MD_LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit()
                                                      else m.group(2) + "\\"), out)
    return out.replace("\r\n", "\n").replace("\n", "  \n")


def worded(exc: CatalogError) -> str:
    """A library error in this dashboard's words."""
    return exc.worded(LABELS, HINTS)


def show_error(exc: CatalogError) -> None:
    """A library error as a message (never a traceback); busy catalogs get a gentler warning."""
    if isinstance(exc, CatalogBusy):
        st.warning(f"{md_text(worded(exc), keep_code=True)}. The page will work again as soon as the other "
                   "process is done; try again.", icon=":material/hourglass_top:")
    elif isinstance(exc, ValidationError) and exc.errors:
        st.error(md_text(worded(exc), keep_code=True), icon=":material/block:")
        st.code(exc.report(), language=None)
    else:
        st.error(md_text(worded(exc), keep_code=True), icon=":material/block:")


@contextlib.contextmanager
def guard():
    """Show a :class:`CatalogError` raised in the block as a message and carry on with the page."""
    try:
        yield
    except CatalogError as exc:
        show_error(exc)


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after showing its :class:`CatalogError`."""
    try:
        return fn(*args, **kwargs)
    except CatalogError as exc:
        show_error(exc)
        return None


def attempt(fn, *args, **kwargs) -> tuple[bool, object]:
    """``(True, fn(...))``, or ``(False, None)`` after showing its :class:`CatalogError`."""
    try:
        return True, fn(*args, **kwargs)
    except CatalogError as exc:
        show_error(exc)
        return False, None


def show_flash() -> None:
    for kind, message in session.take_flashes():
        message = md_text(message, keep_code=True)  # messages name slices, embeddings, labels: text
        if kind == "success":
            st.toast(message, icon=":material/check_circle:")
        elif kind == "warning":
            st.warning(message)
        else:
            st.info(message)


def bump() -> None:
    """Forget cached listings after the dashboard changed the catalog."""
    session.next_generation()
    _embeddings.clear()


@st.cache_data(ttl=10, show_spinner=False)
def _embeddings(path: str) -> list[dict]:
    cat = _open(path)
    counts = cat.embedding_counts()
    return [dict(e.to_dict(count=counts.get(e.id, 0)), version=e.version) for e in cat.get_embeddings()]


@st.cache_data(ttl=10, show_spinner=False)
def _backends(path: str) -> tuple[str, ...]:
    return _open(path).searcher.backends()


def backends(cat: Catalog) -> tuple[str, ...]:
    """The search backend choices ("auto" first; the vector engine's when one is set; cached a few seconds)."""
    return _backends(str(cat.path))


def embeddings(cat: Catalog) -> list[dict]:
    """Every embedding as a dict with its vector count (cached for a few seconds)."""
    return _embeddings(str(cat.path))


def embedding_label(e: dict) -> str:
    kind = "custom" if e["custom"] else "off-the-shelf"
    return f"{e['name']} · {e['dims']}-d · {kind} · {e['count']:,} vectors"


class Timer:
    """Wall time of a block, for the small timing notes shown under results."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False


# -- dialogs that stay open across reruns (kept by the session) ----------------------------------------------
def delete_buttons(key: str, delete, target, done) -> None:
    """The Delete / Cancel row of a confirmation dialog: Delete runs ``delete(target)`` and, when it
    succeeds, flashes ``done(result)`` and closes the dialog; keys ``{key}_confirm`` / ``{key}_cancel``."""
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary", icon=":material/delete:", key=f"{key}_confirm", width="stretch"):
        ok, result = attempt(delete, target)
        if ok:
            bump()
            flash(done(result))
            close_dialog()
            st.rerun()
    if c2.button("Cancel", key=f"{key}_cancel", width="stretch"):
        close_dialog()
        st.rerun()


def run_page(fn) -> None:
    """Run a page; a catalog error that escaped the page's own handling still shows as a message."""
    try:
        fn()
    except CatalogError as exc:
        show_error(exc)
