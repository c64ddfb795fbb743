"""The rows a user has ticked in the gallery (kept across pages of results and across pages of the app)."""

from __future__ import annotations

import streamlit as st


def _store() -> dict[str, None]:
    return st.session_state.setdefault("selected", {})


def ids() -> list[str]:
    return list(_store())


def count() -> int:
    return len(_store())


def contains(row_id: str) -> bool:
    return row_id in _store()


def put(row_ids) -> None:
    st.session_state["selected"] = dict.fromkeys(row_ids)


def add(row_ids) -> None:
    _store().update(dict.fromkeys(row_ids))


def clear() -> None:
    put([])


def set(row_id: str, on: bool) -> None:  # noqa: A001 - selection.set(row, on) reads well at call sites
    """Add ``row_id`` to the selection, or take it out (a card's select box)."""
    if on:
        _store()[row_id] = None
    else:
        _store().pop(row_id, None)
