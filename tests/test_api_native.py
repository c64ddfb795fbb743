"""The native ``/v1`` routes in-process: their JSON equals the CLI's ``--json``; writes need a
read-write token; a bad vector file imports nothing."""

from __future__ import annotations

import json

import pytest
from api_support import build_api_catalog
from starlette.testclient import TestClient

from catalog import Catalog
from catalog.api import ApiSettings, create_app


@pytest.fixture
def shapes(tmp_path):
    db, rw, ro = build_api_catalog(tmp_path / "native")
    return db, rw, ro


@pytest.fixture
def client(shapes):
    return TestClient(create_app(Catalog(shapes[0])), raise_server_exceptions=False,
                      headers={"X-Auth-token": shapes[1]})


def cli_json(cli, db, *args):
    r = cli(*args, "--json", db=db)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_reads_equal_the_cli_json(client, shapes, cli):
    db = shapes[0]
    assert client.get("/v1/embeddings").json() == cli_json(cli, db, "embeddings", "list")
    assert client.get("/v1/datarows?limit=5&offset=3").json() == cli_json(cli, db, "datarows", "list", "--limit", "5",
                                                                            "--offset", "3")
    body = {"embedding": "shapes", "anchors": ["circle/red-1.png"], "min_score": 0.5, "limit": 4, "offset": 1}
    assert client.post("/v1/search", json=body).json() == cli_json(
        cli, db, "search", "-e", "shapes", "--anchor", "circle/red-1.png", "--min", "0.5", "--limit", "4", "--offset", "1")
    auto = {"embedding": "shapes", "anchors": ["circle/red-1.png"]}
    assert client.post("/v1/search", json=auto).json() == cli_json(cli, db, "search", "-e", "shapes", "--anchor",
                                                                   "circle/red-1.png")
    assert client.get("/v1/labels", params={"ids": ["circle/red-0.png", "sports-0"]}).json() == cli_json(
        cli, db, "labels", "list", "circle/red-0.png", "sports-0")
    lbs = {"embedding": "shapes", "ids": ["circle/red-1.png", "square/blue-2.png"], "threshold": 0.2, "results": 3}
    assert client.post("/v1/label-by-similarity", json=lbs).json() == cli_json(
        cli, db, "label-by-similarity", "-e", "shapes", "--ids", "circle/red-1.png", "square/blue-2.png",
        "--threshold", "0.2", "--results", "3")
    where = {"topic": "sports"}
    r = client.get("/v1/datarows", params={"where": json.dumps(where), "limit": 2}).json()
    assert r["total"] == 4 and len(r["results"]) == 2


def test_slices_roundtrip_matches_the_cli(client, shapes, cli):
    db = shapes[0]
    r = client.put("/v1/slices/reds", json={"embedding": "shapes", "anchors": ["circle/red-1.png"], "min_score": 0.9,
                                           "description": "red circles"})
    assert r.status_code == 200 and r.json()["description"] == "red circles"
    assert client.get("/v1/slices").json() == cli_json(cli, db, "slices", "list")
    assert client.get("/v1/slices/reds/rows?limit=10").json() == cli_json(cli, db, "slices", "show", "reds")
    dup = client.put("/v1/slices/reds", json={"embedding": "shapes", "anchors": ["circle/red-1.png"]})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "AlreadyExists"
    assert client.delete("/v1/slices/reds").json() == {"deleted": "reds"}
    assert client.get("/v1/slices/reds").status_code == 404


def test_embedding_lifecycle_and_all_or_nothing_import(client, shapes):
    db = shapes[0]
    r = client.post("/v1/embeddings", json={"name": "e8", "dims": 8})
    assert r.status_code == 201 and r.json()["count"] == 0
    keys = [row["global_key"] for row in Catalog(db).list_datarows(limit=3)]
    good = "\n".join(json.dumps({"id": k, "vector": [0.1 * (i + 1)] * 7 + [1.0]}) for i, k in enumerate(keys))
    assert client.put("/v1/embeddings/e8/_import", content=good.encode()).json() == {"imported": 3}
    bad = good + "\n" + json.dumps({"id": keys[0], "vector": [1.0, 2.0]}) + "\n"
    r = client.put("/v1/embeddings/e8/_import", content=bad.encode())
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "ValidationError" and "the request body" in err["message"] and "/tmp" not in err["message"]
    assert err["errors"] == [{"line": 4, "reason": "vector has 2 values, expected 8"}]
    assert client.get("/v1/embeddings/e8/count").json() == {"count": 3}
    assert client.post("/v1/embeddings", json={"name": "e8", "dims": 8}).status_code == 409
    assert client.post("/v1/embeddings", json={"name": "tiny", "dims": 2}).json()["error"]["field"] == "dims"
    assert client.delete("/v1/embeddings/e8").json()["deleted"] is True
    assert client.get("/v1/embeddings/e8").status_code == 404


def test_import_cap_is_separate_from_the_body_cap(shapes):
    settings = ApiSettings(max_body_bytes=100, max_import_bytes=50)
    client = TestClient(create_app(Catalog(shapes[0]), settings), headers={"X-Auth-token": shapes[1]})
    client.post("/v1/embeddings", json={"name": "e8", "dims": 8})
    r = client.put("/v1/embeddings/e8/_import", content=b"x" * 60)
    assert r.status_code == 413 and "50 bytes" in r.json()["error"]["message"]


def test_datarows_insert_get_delete(client, shapes):
    r = client.post("/v1/datarows", json={"records": [{"global_key": "note-1", "text": "a short note",
                                                       "metadata": {"topic": "misc"}}]})
    assert r.status_code == 201 and r.json()["created"] == 1
    row = client.get("/v1/datarows/note-1").json()
    assert row["row_data"] == "a short note" and row["metadata"] == {"topic": "misc"}
    assert client.delete("/v1/datarows/note-1").json()["deleted"] == 1
    assert client.get("/v1/datarows/note-1").status_code == 404
    r = client.post("/v1/datarows/_delete", json={"ids": ["circle/red-1.png", "nope"]})
    assert r.status_code == 404 and "'nope'" in r.json()["error"]["message"]
    assert client.get("/v1/datarows/circle/red-1.png").status_code == 200  # nothing was deleted
    assert client.post("/v1/datarows", json={"records": []}).json()["error"]["field"] == "records"


def test_labels_set_and_remove_and_read_only_tokens(client, shapes):
    ro = TestClient(create_app(Catalog(shapes[0])), headers={"X-Auth-token": shapes[2]},
                    raise_server_exceptions=False)
    assert ro.get("/v1/embeddings").status_code == 200
    for method, path, body in [("put", "/v1/labels", {"id": "sports-1", "labels": ["x"]}),
                               ("post", "/v1/embeddings", {"name": "e9", "dims": 8}),
                               ("delete", "/v1/datarows/sports-1", None),
                               ("post", "/v1/label-by-similarity", {"embedding": "shapes", "ids": ["sports-1"],
                                                                    "save": True})]:
        r = ro.request(method, path, json=body)
        assert r.status_code == 403, (path, r.text)
    assert client.put("/v1/labels", json={"id": "sports-1", "labels": ["x", " y "]}).json() == {"id": "sports-1",
                                                                                            "labels": ["x", "y"]}
    assert client.post("/v1/labels/_remove", json={"id": "sports-1", "labels": ["x"]}).json()["removed"] == 1
    r = client.post("/v1/labels/_remove", json={"id": "sports-1", "labels": ["zzz"]})
    assert r.status_code in (400, 404) and "zzz" in r.json()["error"]["message"]


def test_an_uploaded_image_becomes_a_row_and_a_corrupt_one_writes_nothing(client, shapes):
    from api_support import image_path
    folder = shapes[0].parent
    data = image_path(folder, "circle/red-1.png").read_bytes()
    before = Catalog(shapes[0]).count_datarows()
    r = client.post("/v1/datarows/_image?global_key=upload/red.png&metadata=" + json.dumps({"source": "phone"}),
                    content=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201 and r.json()["created"] == 1, r.text
    row = client.get("/v1/datarows/upload/red.png").json()
    assert row["media_type"] == "image" and row["metadata"]["source"] == "phone"
    from pathlib import Path
    assert Path(row["row_data"]).read_bytes() == data  # a copy kept with the catalog
    r = client.post("/v1/datarows/_image?global_key=upload/bad.png", content=b"not an image at all",
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400 and r.json()["created"] == 0, r.text
    assert "image" in r.json()["skipped"][0]["reason"], r.text
    r = client.post("/v1/datarows/_image?global_key=upload/x.png&metadata=[1]", content=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "metadata"
    r = client.post("/v1/datarows/_image?global_key=upload/y.png", json={"imageName": "circle/red-1.png"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "imageName"
    assert Catalog(shapes[0]).count_datarows() == before + 1  # only the good upload was written


def test_label_by_similarity_of_an_image_by_bytes_base64_or_row_name(client, shapes):
    import base64
    from api_support import IMAGE_EMBEDDING, image_path
    data = image_path(shapes[0].parent, "circle/red-1.png").read_bytes()
    url = f"/v1/label-by-similarity/_image?embedding={IMAGE_EMBEDDING}&threshold=0.1"
    by_bytes = client.post(url, content=data, headers={"Content-Type": "application/octet-stream"})
    by_b64 = client.post(url, json={"base64": base64.b64encode(data).decode()})
    by_name = client.post(url, json={"imageName": "circle/red-1.png"})
    for r in (by_bytes, by_b64, by_name):
        assert r.status_code == 200, r.text
    assert by_bytes.json() == by_b64.json()
    assert by_bytes.json()["labels"] and by_name.json()["labels"]
    # the row itself scores 1 against its own bytes, so the best label is the same either way
    assert by_bytes.json()["labels"][0]["label"] == by_name.json()["labels"][0]["label"]
    r = client.post(url, json={"url": "ftp://example.com/x.png"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "UrlRefused", r.text
    r = client.post("/v1/label-by-similarity/_image?embedding=nope", content=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
