"""SentiSight's routes in-process: the four body kinds, labels and scores equal to
``advtool label-by-similarity --json``, save, similarity search, bad images and SSRF refusals."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import threading

import pytest
from api_support import IMAGE_EMBEDDING, build_api_catalog, image_path
from knn_support import SCORE_ATOL
from starlette.testclient import TestClient

from catalog import Catalog
from catalog.api import ApiSettings, create_app

SCORE_PCT_ATOL = 100 * SCORE_ATOL  # scores in percent: a stored row and the same image as a query differ in float32 rounding

TOL = 1e-6 * 100  # scores in percent; library scores carry float32 rounding


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-sentisight")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw


@pytest.fixture
def client(shapes):
    return TestClient(create_app(Catalog(shapes[1])), raise_server_exceptions=False,
                      headers={"X-Auth-token": shapes[2]})


def cli_suggestions(cli, db, key, *flags):
    r = cli("label-by-similarity", "--embedding", IMAGE_EMBEDDING, "--ids", key, "--json", *flags, db=db)
    assert r.returncode == 0, r.stderr
    labels = json.loads(r.stdout)["results"][0]["labels"]
    return [(s["label"], s["score"] * 100) for s in labels if s["suggested"]]


def same(answer, expected):
    assert [a["label"] for a in answer] == [e[0] for e in expected]
    for a, (_, score) in zip(answer, expected):
        assert a["score"] == pytest.approx(score, abs=TOL)


@pytest.mark.parametrize("prefix", ["/api", "/rs/api"])
def test_four_body_kinds_give_the_cli_labels(client, shapes, cli, prefix):
    folder, db, _ = shapes
    key = "circle/red-1.png"  # unlabeled: an uploaded copy and the row itself have the same neighbours
    expected = cli_suggestions(cli, db, key, "--threshold", "0.1")
    assert expected, "the fixture must give suggestions"
    url = f"{prefix}/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10"
    data = image_path(folder, key).read_bytes()
    answers = [
        client.post(url, content=data, headers={"content-type": "application/octet-stream"}),
        client.post(url, json={"base64": base64.b64encode(data).decode()}),
        client.post(url, json={"base64": "data:image/png;base64," + base64.b64encode(data).decode()}),
        client.post(url, json={"imageName": key}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        same(r.json(), expected)


def test_use_first_and_threshold_follow_the_cli(client, shapes, cli):
    _, db, _ = shapes
    key = "square/blue-2.png"
    top = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&use-first=true", json={"imageName": key})
    same(top.json(), cli_suggestions(cli, db, key, "--top-only"))
    assert len(top.json()) == 1
    default = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}", json={"imageName": key})
    same(default.json(), cli_suggestions(cli, db, key))  # 30 % = the CLI's default 0.30
    k2 = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&limit=2&threshold=5", json={"imageName": key})
    same(k2.json(), cli_suggestions(cli, db, key, "--results", "2", "--threshold", "0.05"))


def test_save_writes_the_suggestions_on_the_named_row(shapes):
    _, db, rw = shapes
    cat = Catalog(db)
    client = TestClient(create_app(cat), headers={"X-Auth-token": rw}, raise_server_exceptions=False)
    key = "triangle/green-2.png"
    assert cat.get_labels([key])[cat.get_datarow(key)["id"]] == []
    r = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10&save=true", json={"imageName": key})
    assert r.status_code == 200
    saved = cat.get_labels([key])[cat.get_datarow(key)["id"]]
    assert sorted(s["label"] for s in saved) == sorted(a["label"] for a in r.json())
    assert all(s["source"] == "similarity" and not s["reviewed"] for s in saved)
    data = image_path(shapes[0], "square/orange-2.png").read_bytes()
    before = cat.count_datarows()
    preview = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10", content=data).json()
    r = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10&save=true", content=data)
    assert r.status_code == 200  # the new row is never its own neighbour: the same suggestions
    assert [a["label"] for a in r.json()] == [a["label"] for a in preview]
    assert [a["score"] for a in r.json()] == pytest.approx([a["score"] for a in preview], abs=SCORE_PCT_ATOL)
    assert cat.count_datarows() == before + 1
    new = cat.get_datarow(f"upload/{hashlib.sha1(data).hexdigest()[:20]}")
    assert new["id"] in cat.rows_with_vectors(IMAGE_EMBEDDING, [new["id"]])
    assert sorted(s["label"] for s in cat.get_labels([new["id"]])[new["id"]]) == sorted(a["label"] for a in preview)
    again = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10&save=true", content=data)
    assert again.status_code == 200 and cat.count_datarows() == before + 1  # the same image: the same row
    bad = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&save=true", content=b"not an image")
    assert bad.status_code == 422 and cat.count_datarows() == before + 1


def test_similarity_search_answers_images_and_percent_scores(client, shapes, cli):
    folder, db, _ = shapes
    key = "circle/red-1.png"
    r = client.post(f"/api/similarity?project={IMAGE_EMBEDDING}&limit=5&threshold=50", json={"imageName": key})
    assert r.status_code == 200
    got = r.json()
    cli_r = cli("search", "-e", IMAGE_EMBEDDING, "--anchor", key, "--min", "0.5", "--limit", "5", "--json", db=db)
    expected = json.loads(cli_r.stdout)["results"]
    assert [g["image"] for g in got] == [e["global_key"] for e in expected]
    assert [g["score"] for g in got] == pytest.approx([e["score"] * 100 for e in expected], abs=TOL)
    assert key not in [g["image"] for g in got]
    data = image_path(folder, key).read_bytes()
    up = client.post(f"/api/similarity?project={IMAGE_EMBEDDING}&limit=1", content=data).json()
    assert up[0]["image"] == key and up[0]["score"] == pytest.approx(100.0, abs=1e-3)


def test_bad_images_and_unknown_projects(client):
    r = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}", content=b"\x89PNG not really")
    assert r.status_code == 400 and r.json()["error"]["field"] == "image"
    assert "not a supported image" in r.json()["error"]["message"]
    r = client.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}", json={"base64": "***"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "`base64` is not valid base64"
    r = client.post("/api/similarity-labels?project=no-such-project", json={"imageName": "circle/red-1.png"})
    assert r.status_code == 404 and r.json()["error"]["field"] == "embedding"
    r = client.post("/api/similarity-labels", json={"imageName": "circle/red-1.png"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "project"
    r = client.post(f"/api/similarity?project={IMAGE_EMBEDDING}", content=b"")
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "http://localhost:9/x.png", "http://10.0.0.1/x.png",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]:9/x.png",
                                 "http://192.168.1.1/x.png"])
def test_private_loopback_and_link_local_urls_are_refused(client, url):
    r = client.post(f"/api/similarity?project={IMAGE_EMBEDDING}", json={"url": url})
    assert r.status_code == 400 and r.json()["error"]["code"] == "UrlRefused"
    assert "private, loopback or link-local" in r.json()["error"]["message"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "/relative.png"])
def test_only_http_and_https_urls(client, url):
    r = client.post(f"/api/similarity?project={IMAGE_EMBEDDING}", json={"url": url})
    assert r.status_code == 400 and "must be http or https" in r.json()["error"]["message"]


@pytest.fixture
def image_host(shapes):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shapes[0] / "shapes"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_allowed_url_host_is_fetched(shapes, image_host, cli):
    folder, db, rw = shapes
    key = "circle/red-1.png"
    allowed = TestClient(create_app(Catalog(db), ApiSettings(allow_url_hosts=("127.0.0.1",))),
                         headers={"X-Auth-token": rw})
    r = allowed.post(f"/api/similarity-labels?project={IMAGE_EMBEDDING}&threshold=10", json={"url": f"{image_host}/{key}"})
    assert r.status_code == 200, r.text
    same(r.json(), cli_suggestions(cli, db, key, "--threshold", "0.1"))
    r = allowed.post(f"/api/similarity?project={IMAGE_EMBEDDING}", json={"url": f"{image_host}/missing.png"})
    assert r.status_code == 400 and "HTTP 404" in r.json()["error"]["message"]
    small = TestClient(create_app(Catalog(db), ApiSettings(allow_url_hosts=("127.0.0.1",), url_max_bytes=100)),
                       headers={"X-Auth-token": rw})
    r = small.post(f"/api/similarity?project={IMAGE_EMBEDDING}", json={"url": f"{image_host}/{key}"})
    assert r.status_code == 400 and "larger than the limit of 100 bytes" in r.json()["error"]["message"]
