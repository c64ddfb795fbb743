"""The dashboard's session state lives in one module (``dashboard/session.py``), and its transitions do
what the pages rely on."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def test_only_the_session_module_touches_session_state():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "dashboard").glob("*.py"))]
    offenders = [f"{f.relative_to(ROOT)}:{i}" for f in files if f.name != "session.py"
                 for i, line in enumerate(f.read_text().splitlines(), 1) if re.search(r"\bsession_state\b", line)]
    assert offenders == [], "use dashboard.session instead of st.session_state: " + ", ".join(offenders)


def _transitions():
    import streamlit as st

    from dashboard import session

    out = {}
    s = session.update(embedding="e", min_score=0.5, text="a prompt", page=3)
    out["update keeps page"] = s.page
    session.update(aggregate="max")
    out["a change goes to page 1"] = session.search().page
    session.start_query(["r1", "r2", "r1"])
    s = session.search()
    out["start"] = (s.anchors, s.negatives, s.text, s.embedding, s.min_score)
    session.add_anchors(["r2", "r3"], negative=True)
    s = session.search()
    out["negative"] = (s.anchors, s.negatives)
    session.add_anchors(["r3"])
    s = session.search()
    out["positive again"] = (s.anchors, s.negatives)
    session.remove_anchors(["r1"])
    out["removed"] = session.search().anchors
    session.saved_as_slice("mine")
    out["saved unmodified"] = session.slice_modified(session.search())
    session.update(min_score=0.6)
    out["changed is modified"] = session.slice_modified(session.search())
    key = session.image_key()
    session.clear_query()
    s = session.search()
    out["cleared"] = (s.anchors, s.negatives, s.text, s.slice, s.where, s.embedding, session.slice_base(),
                      session.image_key() != key, session.take_reload())
    session.selection.put(["a", "b"])
    session.selection.set("a", False)
    session.selection.add(["c", "b"])
    out["selection"] = session.selection.ids()
    lab = session.labeling()
    lab.decided[("r", "x")] = False
    lab.start_run(["row"], 1, ("e", 10))
    out["new run forgets edits"] = (lab.run, lab.decided, lab.params)
    st.session_state["out"] = out


def test_transitions():
    at = AppTest.from_function(_transitions).run()
    assert not at.exception
    out = at.session_state["out"]
    assert out["update keeps page"] == 3 and out["a change goes to page 1"] == 1
    assert out["start"] == (["r1", "r2"], [], None, "e", None)  # a new query: the automatic range
    assert out["negative"] == (["r1"], ["r2", "r3"])
    assert out["positive again"] == (["r1", "r3"], ["r2"])
    assert out["removed"] == ["r3"]
    assert out["saved unmodified"] is False and out["changed is modified"] is True
    assert out["cleared"] == ([], [], None, None, None, "e", None, True, True)
    assert out["selection"] == ["b", "c"]
    assert out["new run forgets edits"] == (1, {}, ("e", 10))
