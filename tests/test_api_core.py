"""The REST server's core, in-process (Starlette TestClient): docs without outside assets, JSON errors
with fitting statuses, token auth, body caps, a busy catalog, and the token and serve commands."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import duckdb
import pytest
from api_support import build_api_catalog
from starlette.testclient import TestClient

from catalog import Catalog
from catalog.api import ApiSettings, create_app


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-core")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw, ro


@pytest.fixture
def client(shapes):
    _, db, _, _ = shapes
    return TestClient(create_app(Catalog(db)), raise_server_exceptions=False)


def row_body(key="circle/red-1.png"):
    return {"imageName": key}


def test_docs_and_schema_need_no_outside_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text), "the docs page must not load anything from outside"
    for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert re.findall(r'src="(/docs/assets/[^"]+)"', page.text)
    schema = client.get("/openapi.json").json()
    assert "/api/similarity-labels" in schema["paths"] and "/api/similarity" in schema["paths"]


@pytest.mark.parametrize("header", ["X-Auth-token", "Bearer", "Token"])
def test_each_token_header_form_is_accepted(client, shapes, header):
    token = shapes[2]
    headers = {"X-Auth-token": token} if header == "X-Auth-token" else {"Authorization": f"{header} {token}"}
    r = client.post("/api/similarity?project=shapes&limit=2", json=row_body(), headers=headers)
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2


def test_missing_wrong_and_revoked_tokens_are_401_and_read_only_writes_403(shapes):
    _, db, rw, ro = shapes
    cat = Catalog(db)
    client = TestClient(create_app(cat), raise_server_exceptions=False)
    url = "/api/similarity-labels?project=shapes&threshold=10"
    r = client.post(url, json=row_body())
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
    assert "token is required" in r.json()["error"]["message"]
    r = client.post(url, json=row_body(), headers={"X-Auth-token": rw + "x"})
    assert r.status_code == 401 and "unknown or was revoked" in r.json()["error"]["message"]
    assert client.post(url, json=row_body(), headers={"X-Auth-token": ro}).status_code == 200
    before = cat.get_labels(["circle/red-1.png"])
    r = client.post(url + "&save=true", json=row_body(), headers={"X-Auth-token": ro})
    assert r.status_code == 403 and "read-only" in r.json()["error"]["message"]
    assert cat.get_labels(["circle/red-1.png"]) == before  # nothing was written
    _, temp = cat.tokens.create_token("temporary")
    assert client.post(url, json=row_body(), headers={"X-Auth-token": temp}).status_code == 200
    cat.tokens.revoke_token("temporary")
    assert client.post(url, json=row_body(), headers={"X-Auth-token": temp}).status_code == 401


def test_no_auth_lets_requests_through(shapes):
    client = TestClient(create_app(Catalog(shapes[1]), ApiSettings(auth=False)))
    assert client.post("/api/similarity?project=shapes", json=row_body()).status_code == 200


def test_errors_are_json_with_fitting_status(client, shapes):
    h = {"X-Auth-token": shapes[2]}
    r = client.post("/api/similarity?project=nope", json=row_body(), headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "NotFound", "message": "no embedding with id or name 'nope'",
                                 "field": "embedding", "hint": "list the embeddings to see them"}
    r = client.post("/api/similarity?project=shapes", json=row_body("no-such-row"), headers=h)
    assert r.status_code == 404 and "no-such-row" in r.json()["error"]["message"]
    r = client.post("/api/similarity?project=shapes&limit=lots", json=row_body(), headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"
    r = client.post("/api/similarity?project=shapes&threshold=150", json=row_body(), headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "threshold"
    r = client.get("/no/such/path", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
    r = client.get("/api/similarity", headers=h)
    assert r.status_code == 405 and r.json()["error"]["code"] == "MethodNotAllowed"
    r = client.post("/api/similarity?project=shapes", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadJson"
    r = client.post("/api/similarity?project=shapes", json={"url": "x", "base64": "y"}, headers=h)
    assert r.status_code == 400 and "exactly one" in r.json()["error"]["message"]


def test_unexpected_errors_are_500_without_details(shapes, monkeypatch):
    cat = Catalog(shapes[1])
    client = TestClient(create_app(cat), raise_server_exceptions=False)

    def broken(*a, **k):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(cat, "search", broken)
    r = client.post("/api/similarity?project=shapes", json=row_body(), headers={"X-Auth-token": shapes[2]})
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "InternalError", "field": None,
                                  "message": "internal server error; the server log has the details"}}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_bodies_over_the_cap_are_413(shapes):
    client = TestClient(create_app(Catalog(shapes[1]), ApiSettings(max_body_bytes=1000)),
                        raise_server_exceptions=False)
    h = {"X-Auth-token": shapes[2], "content-type": "application/octet-stream"}
    r = client.post("/api/similarity?project=color-texture", content=b"x" * 1001, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "BodyTooLarge"
    assert "1,000 bytes" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b"y" * 300

    r = client.post("/api/similarity?project=color-texture", content=chunks(), headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "BodyTooLarge"


def test_busy_catalog_is_503_with_retry_after(shapes, tmp_path):
    db = shapes[1]
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        client = TestClient(create_app(Catalog(db, lock_timeout=0)), raise_server_exceptions=False)
        r = client.post("/api/similarity?project=shapes", json=row_body(), headers={"X-Auth-token": shapes[2]})
        assert r.status_code == 503
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["error"]["code"] == "CatalogBusy" and "busy" in r.json()["error"]["message"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_tokens_commands_store_only_a_hash(cli, db_path):
    r = cli("tokens", "create", "ci-bot", "--read-only")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert re.fullmatch(r"adv_[A-Za-z0-9_-]{32}", token) and len(token) < 70
    assert "shown only this once" in r.stderr
    listed = cli("tokens", "list")
    assert "ci-bot" in listed.stdout and "read-only" in listed.stdout and token not in listed.stdout
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute("SELECT * FROM api_tokens").fetchall()
    assert token not in repr(rows)
    assert rows[0][1] == hashlib.sha256(token.encode()).hexdigest()
    assert Catalog(db_path).tokens.check_token(token).read_only is True
    dup = cli("tokens", "create", "ci-bot")
    assert dup.returncode == 2 and "already exists" in dup.stderr and dup.stdout == ""
    assert len(Catalog(db_path).tokens.list_tokens()) == 1
    bad = cli("tokens", "create", "bad name!")
    assert bad.returncode == 2 and "token name 'bad name!'" in bad.stderr
    assert cli("tokens", "revoke", "ci-bot").returncode == 0
    assert Catalog(db_path).tokens.check_token(token) is None
    gone = cli("tokens", "revoke", "ci-bot")
    assert gone.returncode == 2 and "no token named 'ci-bot'" in gone.stderr and "advtool tokens list" in gone.stderr


def test_serve_refuses_to_start_without_a_token_or_with_no_auth_off_loopback(cli):
    r = cli("serve", "--port", "1")
    assert r.returncode == 2 and "no API token" in r.stderr and "advtool tokens create" in r.stderr
    r = cli("serve", "--no-auth", "--host", "0.0.0.0")
    assert r.returncode == 2 and "only allowed on a loopback address" in r.stderr
    r = cli("serve", "--no-auth", "--port", "70000")
    assert r.returncode == 2 and "--port" in r.stderr


def test_token_lookups_are_remembered_until_a_commit_and_bounded(tmp_path):
    from catalog.tokens import MEMO_SIZE
    cat = Catalog(tmp_path / "tokens.duckdb")
    _, token = cat.tokens.create_token("w")
    cat.store.hold()
    try:
        assert cat.tokens.check_token(token).name == "w"
        assert cat.tokens.check_token(token).name == "w"  # from the memo
        cat.tokens.revoke_token("w")  # a commit: the memo is dropped
        assert cat.tokens.check_token(token) is None
        for i in range(MEMO_SIZE + 10):
            assert cat.tokens.check_token(f"adv_wrong{i}") is None
        assert len(cat.tokens._memo[1]) <= MEMO_SIZE
    finally:
        cat.store.release()
