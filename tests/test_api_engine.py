"""The native /v1 routes with a vector engine: search, slice rows and label-by-similarity take the
backend (qdrant, qdrant-hnsw) and answer the exact backend's rows; the automatic choice's fallback
warning and an approximate answer's recall are in the JSON; an unreachable engine (a Qdrant server
URL with nothing listening) is a JSON error naming the URL (502), never a 500."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")
pytest.importorskip("qdrant_client", reason="the qdrant extra (qdrant-client) is not installed")

from starlette.testclient import TestClient  # noqa: E402

from catalog import Catalog  # noqa: E402
from catalog.api import create_app  # noqa: E402
from catalog.engine.client import disconnect  # noqa: E402
from catalog.engine.config import SyncRecord, payload_token, write_sync  # noqa: E402
from dashboard_support import build, free_port  # noqa: E402

ANCHOR = "circle/red-1.png"


@pytest.fixture
def api(tmp_path):
    db = build(tmp_path / "cat")
    cat = Catalog(db)
    _, rw = cat.tokens.create_token("writer")
    cat.engines.set_engine(f"edge:{tmp_path / 'engine'}")
    cat.engines.sync(["shapes"])
    client = TestClient(create_app(Catalog(db)), raise_server_exceptions=False, headers={"X-Auth-token": rw})
    yield cat, client
    cat.engines.unset_engine()


def _search(client, **extra):
    return client.post("/v1/search", json={"embedding": "shapes", "anchors": [ANCHOR], "min_score": 0.5,
                                           "limit": 20, **extra})


def test_search_and_slices_take_the_backend(api):
    cat, client = api
    exact = _search(client, backend="exact").json()
    got = _search(client, backend="qdrant")
    assert got.status_code == 200 and got.json() == exact  # the same rows and scores, no notes
    hnsw = _search(client, backend="qdrant-hnsw").json()
    assert hnsw["complete"] is False and hnsw["backend"] == "qdrant-hnsw" and 0 < hnsw["recall"] <= 1
    assert {h["id"] for h in hnsw["results"]} <= {h["id"] for h in _search(client, limit=None).json()["results"]}
    bad = _search(client, backend="hnsw")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "backend"
    assert _search(client, backend=["qdrant"]).json()["error"]["field"] == "backend"
    saved = client.put("/v1/slices/reds", json={"embedding": "shapes", "anchors": [ANCHOR], "min_score": 0.5})
    assert saved.status_code == 200
    rows = client.get("/v1/slices/reds/rows", params={"limit": 20, "backend": "qdrant"})
    assert rows.status_code == 200 and rows.json() == client.get("/v1/slices/reds/rows?limit=20&backend=exact").json()


def test_label_by_similarity_takes_the_backend(api):
    cat, client = api
    body = {"embedding": "shapes", "ids": [ANCHOR, "square/blue-2.png"], "threshold": 0.2, "results": 3}
    want = client.post("/v1/label-by-similarity", json=body).json()
    got = client.post("/v1/label-by-similarity", json={**body, "backend": "qdrant"})
    assert got.status_code == 200 and got.json() == want
    bad = client.post("/v1/label-by-similarity", json={**body, "backend": "approximate"})
    assert bad.status_code == 400 and "label-by-similarity" in bad.json()["error"]["message"]


def test_the_fallback_warning_is_in_the_json(api):
    cat, client = api
    want = _search(client, backend="exact").json()
    cfg = cat.engines.config()
    disconnect(cfg.url)
    shutil.rmtree(cfg.path)
    got = _search(client)
    assert got.status_code == 200
    body = got.json()
    assert body["results"] == want["results"] and len(body["warnings"]) == 1
    assert cfg.url in body["warnings"][0] and "searched locally instead" in body["warnings"][0]
    named = _search(client, backend="qdrant")
    assert named.status_code == 502 and named.json()["error"]["code"] == "EngineError"


def test_an_unreachable_engine_is_a_json_error(api):
    cat, client = api
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cat.engines.set_engine(url)
    cfg, emb = cat.engines.config(), cat.get_embedding("shapes")
    with cat.store.transaction() as con:  # as if a sync had finished before the server went away
        write_sync(con, SyncRecord(emb.id, url, cfg.collection(emb), "synced", emb.version, payload_token(con),
                                   cat.embedding_counts()[emb.id]))
    lbs = {"embedding": "shapes", "ids": [ANCHOR], "backend": "qdrant"}
    for r in (_search(client, backend="qdrant"), client.post("/v1/label-by-similarity", json=lbs)):
        assert r.status_code == 502, r.text
        err = r.json()["error"]
        assert err["code"] == "EngineError" and url in err["message"] and err["field"] == "engine"
    auto = _search(client)
    assert auto.status_code == 200 and url in auto.json()["warnings"][0]
