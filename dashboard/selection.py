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


def _toggle(row_id: str) -> None:
    store = _store()
    if st.session_state.get(f"sel_{row_id}"):
        store[row_id] = None
    else:
        store.pop(row_id, None)


def checkbox(row_id: str) -> bool:
    """The card's select box, showing whether the row is in the selection."""
    key = f"sel_{row_id}"
    st.session_state[key] = contains(row_id)
    return st.checkbox("Select", key=key, on_change=_toggle, args=(row_id,), label_visibility="collapsed",
                       help="Select this row")
