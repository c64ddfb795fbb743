"""A real ``advtool serve`` subprocess on 127.0.0.1: the SentiSight ``requests`` samples (host and token
filled in, nothing else changed) give the labels and scores of ``advtool label-by-similarity --json``."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from api_support import IMAGE_EMBEDDING, ROOT, ApiServer, build_api_catalog, image_path

SAMPLES = Path(__file__).parent / "data" / "sentisight"
KEY = "circle/red-1.png"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-server")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw


@pytest.fixture(scope="module")
def own_shapes(tmp_path_factory):
    """A second catalog for the servers a test starts itself (the module's server holds the first open)."""
    folder = tmp_path_factory.mktemp("api-server-own")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw


@pytest.fixture(scope="module")
def image_host(shapes):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shapes[0] / "shapes"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def advtool(db, *args, timeout=120, **env):
    """``advtool ARGS --db DB`` in a subprocess (another process than the server's)."""
    return subprocess.run([sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
                           *args, "--db", str(db)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def expected(shapes):
    """What ``advtool label-by-similarity --json`` says, asked before the server holds the file open."""
    r = advtool(shapes[1], "label-by-similarity", "--embedding", IMAGE_EMBEDDING, "--ids", KEY,
                "--threshold", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    labels = json.loads(r.stdout)["results"][0]["labels"]
    return [(s["label"], s["score"] * 100) for s in labels if s["suggested"]]


@pytest.fixture(scope="module")
def server(shapes, expected, tmp_path_factory):
    log = tmp_path_factory.mktemp("api-server-log") / "serve.log"
    srv = ApiServer(shapes[1], log, "--allow-url-host", "127.0.0.1", "--workers", "1")
    yield srv
    srv.stop()


def run_sample(name, tmp_path, server, token, **fill) -> str:
    text = (SAMPLES / name).read_text().replace("BASE", server.url)
    text = text.replace('"your_token"', json.dumps(token)).replace('"your_project_id"', json.dumps(IMAGE_EMBEDDING))
    for placeholder, value in fill.items():
        text = text.replace(f'"your_{placeholder}"', json.dumps(str(value)))
    script = tmp_path / name
    script.write_text(text)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("sample", ["image_bytes.py", "image_url.py", "image_base64.py", "image_name.py"])
def test_sentisight_samples_run_against_advtool_serve(sample, shapes, server, image_host, expected, tmp_path):
    folder, db, token = shapes
    fill = {"image_path": image_path(folder, KEY), "image_url": f"{image_host}/{KEY}", "image_name": KEY}
    out = run_sample(sample, tmp_path, server, token, **fill)
    answer = json.loads(out)
    assert expected and [a["label"] for a in answer] == [e[0] for e in expected]
    assert [a["score"] for a in answer] == pytest.approx([e[1] for e in expected], abs=1e-4)


def test_sample_with_a_wrong_token_prints_the_401(shapes, server, tmp_path):
    out = run_sample("image_name.py", tmp_path, server, "adv_wrong", image_name=KEY)
    assert "Status code: 401" in out and "unknown or was revoked" in out


def test_server_refuses_loopback_urls_not_allowed(own_shapes, image_host, tmp_path):
    shapes = own_shapes
    srv = ApiServer(shapes[1], tmp_path / "serve.log")
    try:
        req = urllib.request.Request(f"{srv.url}/api/similarity?project={IMAGE_EMBEDDING}",
                                     data=json.dumps({"url": f"{image_host}/{KEY}"}).encode(),
                                     headers={"X-Auth-token": shapes[2], "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 400
        body = json.loads(err.value.read())
        assert body["error"]["code"] == "UrlRefused" and "--allow-url-host 127.0.0.1" in body["error"]["message"]
    finally:
        srv.stop()
    assert srv.proc.returncode is not None


def test_several_workers_answer(own_shapes, tmp_path):
    shapes = own_shapes
    srv = ApiServer(shapes[1], tmp_path / "workers.log", "--workers", "2")
    try:
        for _ in range(4):
            req = urllib.request.Request(f"{srv.url}/api/similarity?project={IMAGE_EMBEDDING}&limit=2",
                                         data=json.dumps({"imageName": KEY}).encode(),
                                         headers={"X-Auth-token": shapes[2], "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                assert resp.status == 200 and len(json.loads(resp.read())) == 2
    finally:
        srv.stop()
    assert "Started parent process" in (tmp_path / "workers.log").read_text()


def test_the_server_holds_the_file_and_says_so_to_other_processes(shapes, server):
    """One worker holds the catalog open; another process waits, then its busy message names the server."""
    r = advtool(shapes[1], "embeddings", "list", CATALOG_LOCK_TIMEOUT="0.5")
    assert r.returncode == 3, r.stderr
    assert f"the catalog server at {server.url} (process {server.proc.pid}) holds it open" in r.stderr
    assert "shared mode" in r.stderr and "Traceback" not in r.stderr


def test_in_shared_mode_the_command_line_works_beside_the_server(own_shapes, tmp_path):
    shapes = own_shapes
    srv = ApiServer(shapes[1], tmp_path / "share.log", "--share")
    try:
        for _ in range(2):
            r = advtool(shapes[1], "tokens", "list", "--json")
            assert r.returncode == 0, r.stderr
            assert {t["name"] for t in json.loads(r.stdout)} >= {"writer"}
            req = urllib.request.Request(f"{srv.url}/api/similarity?project={IMAGE_EMBEDDING}&limit=2",
                                         data=json.dumps({"imageName": KEY}).encode(),
                                         headers={"X-Auth-token": shapes[2], "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                assert resp.status == 200 and len(json.loads(resp.read())) == 2
        assert not Path(f"{shapes[1]}.server.json").exists()  # only a server that holds the file says so
    finally:
        srv.stop()
