"""Ximilar's routes driven by the PyPI ``ximilar-client`` (``SimilarityPhotosClient``) against a real
``advtool serve``: insert (vectors from the collection's model), get, update, k-NN by id and by image,
filters, random, paging, delete; plus refusals in-process."""

from __future__ import annotations

import base64

import pytest
from api_support import IMAGE_EMBEDDING, ApiServer, build_api_catalog, image_path
from starlette.testclient import TestClient
from ximilar.client import SimilarityPhotosClient

from catalog import Catalog
from catalog.api import create_app


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-ximilar")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw, ro


@pytest.fixture(scope="module")
def server(shapes, tmp_path_factory):
    srv = ApiServer(shapes[1], tmp_path_factory.mktemp("ximilar-log") / "serve.log", "--share")  # the test reads the file beside it
    yield srv
    srv.stop()


def client(server, token, collection=IMAGE_EMBEDDING):
    return SimilarityPhotosClient(token, collection, endpoint=f"http://localhost:{server.port}/similarity/photos/v2/")


def test_ximilar_client_roundtrip(shapes, server):
    folder, db, rw, _ = shapes
    c = client(server, rw)
    assert c.ping()["status"]["code"] == 200
    src = image_path(folder, "circle/red-0.png")
    r = c.insert([{"_id": "copy-of-red", "_file": str(src), "colour": "red", "shop": "a"}])
    assert r["answer_records"] == [{"_id": "copy-of-red", "colour": "red", "shop": "a"}]
    cat = Catalog(db)
    rid = cat.get_datarow("copy-of-red")["id"]
    assert cat.rows_with_vectors(IMAGE_EMBEDDING, [rid]) == {rid}
    got = c.get_records([{"_id": "copy-of-red"}], fields_to_return=["_id", "colour"])
    assert got["answer_records"] == [{"_id": "copy-of-red", "colour": "red"}]
    c.update([{"_id": "copy-of-red", "colour": "crimson"}])
    assert c.get_records([{"_id": "copy-of-red"}], fields_to_return=["*"])["answer_records"][0]["colour"] == "crimson"
    near = c.search({"_id": "copy-of-red"}, k=2)["answer_records"]
    assert near[0]["_id"] == "circle/red-0.png" and near[0]["_score"] == pytest.approx(1.0, abs=1e-6)
    assert near[0]["_distance"] == pytest.approx(0.0, abs=1e-6) and len(near) == 2
    by_image = c.search({"_file": str(src)}, k=2)["answer_records"]
    assert {h["_id"] for h in by_image} == {"copy-of-red", "circle/red-0.png"}
    filtered = c.search({"_file": str(src)}, k=5, filter={"shop": "a"})["answer_records"]
    assert [h["_id"] for h in filtered] == ["copy-of-red"]
    assert len(c.random(count=3)["answer_records"]) == 3
    assert c.random(count=3, filter={"colour": "crimson"})["answer_records"] == [{"_id": "copy-of-red"}]
    everything = list(c.all_records_iter(batch_size=10))
    assert len(everything) == 37 and len({r["_id"] for r in everything}) == 37  # 36 images + the copy
    assert c.remove([{"_id": "copy-of-red"}])["answer_count"] == 1
    assert "error" in c.get_records([{"_id": "copy-of-red"}])


def test_read_only_and_wrong_tokens(shapes, server):
    folder, _, _, ro = shapes
    r = client(server, ro).insert([{"_id": "nope", "_file": str(image_path(folder, "circle/red-0.png"))}])
    assert r["error"]["code"] == "Forbidden"
    assert client(server, "adv_wrong").ping()["error"]["code"] == "Unauthorized"


def test_refusals_write_nothing(shapes):
    folder, db, rw, _ = shapes
    cat = Catalog(db)
    app = TestClient(create_app(cat), headers={"Authorization": f"Token {rw}", "collection-id": IMAGE_EMBEDDING},
                     raise_server_exceptions=False)
    before = cat.count_datarows()
    good = image_path(folder, "circle/red-0.png").read_bytes()
    recs = [{"_id": "ok-1", "_base64": "data:image/png;base64," + base64.b64encode(good).decode()},
            {"_id": "bad-1", "_base64": base64.b64encode(b"not an image").decode()}]
    r = app.post("/similarity/photos/v2/insert", json={"records": recs})
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["record"] == 2
    assert cat.count_datarows() == before
    r = app.post("/similarity/photos/v2/insert", json={"records": [{"_id": "u", "_url": "http://127.0.0.1:9/x.png"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "UrlRefused"
    r = app.post("/similarity/products/v2/visualKNN", json={"query_record": {"_id": "circle/red-0.png"}, "k": 2},
                 headers={"collection-id": "shapes"})
    assert r.status_code == 400 and "no image model" in r.json()["error"]["message"]
    r = app.post("/similarity/custom/v2/visualKNN", json={"query_record": {}, "k": 2})
    assert r.status_code == 400 and r.json()["error"]["field"] == "query_record"
    assert cat.count_datarows() == before
