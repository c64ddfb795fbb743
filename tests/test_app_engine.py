"""The dashboard with a vector engine (Qdrant Edge): the backend choice offers the engine's backends
only when one is set, a search through it shows the exact backend's rows, and the automatic choice's
fallback warning (the engine failed: searched locally) is shown above the results."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")

from streamlit.testing.v1 import AppTest  # noqa: E402

from catalog import Catalog, Page, SearchSpec  # noqa: E402
from catalog.engine.client import disconnect  # noqa: E402
from dashboard.common import _backends  # noqa: E402
from dashboard_support import ROOT, build  # noqa: E402

APP = str(ROOT / "app.py")
ANCHOR = "circle/red-1.png"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = build(tmp_path / "cat")
    monkeypatch.setenv("CATALOG_DB", str(path))
    monkeypatch.setenv("CATALOG_LOCK_TIMEOUT", "1")
    yield path
    Catalog(path).engines.unset_engine()


def _app(cat) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    rid = cat.get_datarow(ANCHOR)["id"]
    for k, v in {"emb": "shapes", "a": rid, "min": "0.5", "max": "1"}.items():
        at.query_params[k] = v
    return at.run()


def _keys(at) -> list[str]:
    import json
    got = [e for e in at.get("bidi_component") if e.proto.component_name == "catalog_gallery"]
    return [c["id"] for c in json.loads(got[0].proto.json)["cards"]] if got else []


def test_engine_backends_are_offered_only_with_an_engine(db, tmp_path):
    cat = Catalog(db)
    at = _app(cat)
    assert not at.exception
    box = at.selectbox(key="w_backend")
    assert box.value == "auto" and "Qdrant (exact mode)" not in box.options
    cat.engines.set_engine(f"edge:{tmp_path / 'engine'}")
    cat.engines.sync(["shapes"])
    _backends.clear()  # the choices are kept 10 s (as the embeddings); a new session would wait that long
    at = _app(cat)
    box = at.selectbox(key="w_backend")
    assert {"Automatic", "Exact scan", "Qdrant (exact mode)", "Qdrant HNSW (approximate)"} <= set(box.options)
    exact = _keys(at)
    at = box.set_value("qdrant").run()
    assert not at.exception and at.session_state["search"].backend == "qdrant"
    assert _keys(at) == exact and exact
    assert at.query_params["backend"] in ("qdrant", ["qdrant"])  # the choice is in the address
    opened = AppTest.from_file(APP, default_timeout=60)  # a bookmark of that address opens with the choice
    for k, v in {"emb": "shapes", "a": cat.get_datarow(ANCHOR)["id"], "min": "0.5", "max": "1",
                 "backend": "qdrant"}.items():
        opened.query_params[k] = v
    opened = opened.run()
    assert not opened.exception and opened.selectbox(key="w_backend").value == "qdrant"
    want = cat.search(SearchSpec("shapes", anchors=[ANCHOR], min_score=0.5), Page(None), backend="exact")
    assert want.total > 0
    assert not [w.value for w in at.warning]
    at = at.selectbox(key="w_backend").set_value("qdrant-hnsw").run()
    assert not at.exception
    assert any("Approximate answer from the qdrant-hnsw backend (measured recall" in c.value for c in at.caption)
    cat.engines.unset_engine()  # the choice goes back to automatic
    _backends.clear()
    at = _app(cat)
    assert at.selectbox(key="w_backend").value == "auto"


def test_the_fallback_warning_is_shown(db, tmp_path):
    cat = Catalog(db)
    cat.engines.set_engine(f"edge:{tmp_path / 'engine'}")
    cat.engines.sync(["shapes"])
    cfg = cat.engines.config()
    disconnect(cfg.url)
    shutil.rmtree(cfg.path)  # the engine's copy is gone: the automatic choice fails over to the local scan
    at = _app(cat)
    assert not at.exception
    notes = [w.value for w in at.warning]
    assert any(cfg.url in n and "searched locally instead" in n for n in notes), notes
    assert _keys(at)  # the results are still there
