"""Labelbox's ADV REST paths against a real ``advtool serve``, called the way advtool (advlib) calls them:
JSON requests under ``{LABELBOX_API_URL}/adv/adv/v1/`` with ``Authorization: Bearer``, vector files
in chunks of 1,000 lines (``X-Content-Lines``, a trailing newline) under ``{LABELBOX_API_URL}adv/v1/``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from api_support import ApiServer, build_api_catalog

from catalog import Catalog


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-labelbox")
    db, rw, ro = build_api_catalog(folder)
    return folder, db, rw


@pytest.fixture(scope="module")
def server(shapes, tmp_path_factory):
    srv = ApiServer(shapes[1], tmp_path_factory.mktemp("labelbox-log") / "serve.log", "--share")  # the test reads the file beside it
    yield srv
    srv.stop()


class AdvCalls:
    """The HTTP calls advtool makes, with LABELBOX_API_URL = ``endpoint`` (ending in ``/``)."""

    def __init__(self, endpoint, key):
        self.endpoint, self.key = endpoint, key

    def _headers(self, extra=None):
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}", **(extra or {})}

    def request(self, method, path, body=None):
        url = f"{self.endpoint}/adv/{path}"  # the JSON requests: endpoint + "/adv/" + "adv/v1/..."
        return getattr(requests, method)(url, data=None if body is None else json.dumps(body), headers=self._headers())

    def send_ndjson(self, path, file_path, callback):
        def upload(buf, count):
            buf.write(b"\n")
            headers = {"Content-Type": "application/x-ndjson", "X-Content-Lines": str(count),
                       "Content-Length": str(buf.tell())}
            buf.seek(0)
            rsp = requests.put(f"{self.endpoint}{path}", headers=self._headers(headers), data=buf)
            rsp.raise_for_status()
            callback(rsp.json())

        buf, count = io.BytesIO(), 0
        with open(file_path, "rb") as fh:
            for line in fh:
                buf.write(line)
                count += 1
                if count >= 1000:
                    upload(buf, count)
                    buf, count = io.BytesIO(), 0
        if count:
            upload(buf, count)


def test_advtool_calls(shapes, server, tmp_path):
    _, db, token = shapes
    adv = AdvCalls(server.url + "/", token)
    created = adv.request("post", "adv/v1/embeddings", {"name": "lb-emb", "dims": 8})
    assert created.status_code == 200 and created.json()["name"] == "lb-emb"
    eid = created.json()["id"]
    listed = adv.request("get", "adv/v1/embeddings").json()["results"]
    assert {"id": eid, "name": "lb-emb", "dims": 8} .items() <= next(e for e in listed if e["id"] == eid).items()
    records = tmp_path / "more.ndjson"
    records.write_text("".join(json.dumps({"global_key": f"t{i}", "text": f"text {i}"}) + "\n" for i in range(2500)))
    Catalog(db).import_datarows([records])  # more than two chunks of rows
    keys = [r["global_key"] for r in Catalog(db).iter_datarows()]
    rng = np.random.default_rng(1)
    path = tmp_path / "vectors.ndjson"
    lines = [json.dumps({"id": k, "vector": rng.normal(size=8).round(4).tolist()}) for k in keys]
    path.write_text("\n".join(lines) + "\n")
    answers = []
    adv.send_ndjson(f"adv/v1/embeddings/{eid}/_import_ndjson", path, answers.append)
    assert len(answers) == (len(lines) + 999) // 1000
    assert sum(a["importedFileSizeOfBytes"] for a in answers) == path.stat().st_size + len(answers)
    count = adv.request("get", f"adv/v1/embeddings/{eid}/vectors/_count")
    assert count.json() == {"count": len(keys)}
    gone = adv.request("delete", f"adv/v1/embeddings/{eid}")
    assert gone.status_code == 200
    missing = adv.request("get", f"adv/v1/embeddings/{eid}/vectors/_count")
    assert missing.status_code == 404 and "no embedding" in missing.json()["message"]


def test_a_bad_chunk_imports_nothing_and_says_which_line(shapes, server):
    _, db, token = shapes
    adv = AdvCalls(server.url + "/", token)
    eid = adv.request("post", "adv/v1/embeddings", {"name": "lb-bad", "dims": 8}).json()["id"]
    key = Catalog(db).list_datarows(limit=1)[0]["global_key"]
    body = (json.dumps({"id": key, "vector": [1.0] * 8}) + "\n" + json.dumps({"id": key, "vector": [1.0] * 3}) + "\n\n")
    r = requests.put(f"{server.url}/adv/v1/embeddings/{eid}/_import_ndjson", data=body.encode(),
                     headers={"Authorization": f"Bearer {token}", "X-Content-Lines": "2"})
    assert r.status_code == 422
    assert r.json()["error"]["errors"] == [{"line": 2, "reason": "vector has 3 values, expected 8"}]
    assert "nothing was imported" in r.json()["message"]
    assert adv.request("get", f"adv/v1/embeddings/{eid}/vectors/_count").json() == {"count": 0}
    r = requests.put(f"{server.url}/adv/v1/embeddings/{eid}/_import_ndjson", data=body.encode(),
                     headers={"Authorization": f"Bearer {token}", "X-Content-Lines": "5"})
    assert r.status_code == 400 and "X-Content-Lines says 5 lines but the chunk has 2" in r.json()["message"]
    r = requests.get(f"{server.url}/adv/adv/v1/embeddings", headers={"Authorization": "Bearer adv_wrong"})
    assert r.status_code == 401 and r.json()["status"] == 401


def test_labelbox_sdk_runs_unmodified(shapes, server, tmp_path):
    import labelbox
    from lbox.exceptions import AuthenticationError

    _, db, token = shapes
    client = labelbox.Client(api_key=token, endpoint=f"{server.url}/graphql", rest_endpoint=f"{server.url}/api/v1")
    emb = client.create_embedding("sdk-emb", 8)
    assert emb.custom and emb.dims == 8 and emb.name == "sdk-emb"
    assert emb.id in [e.id for e in client.get_embeddings()]
    assert client.get_embedding_by_id(emb.id).name == "sdk-emb"
    assert client.get_embedding_by_name("sdk-emb").id == emb.id
    keys = [r["global_key"] for r in Catalog(db).list_datarows(limit=30)]
    path = tmp_path / "sdk.ndjson"
    rng = np.random.default_rng(2)
    path.write_text("".join(json.dumps({"id": k, "vector": rng.normal(size=8).tolist()}) + "\n" for k in keys))
    seen = []
    emb.import_vectors_from_file(str(path), seen.append)
    assert seen and seen[0]["importedFileSizeOfBytes"] > 0
    assert emb.get_imported_vector_count() == len(keys)
    with pytest.raises(Exception, match="already"):
        client.create_embedding("sdk-emb", 8)
    emb.delete()
    assert "sdk-emb" not in [e.name for e in client.get_embeddings()]
    bad = labelbox.Client(api_key="adv_wrong", endpoint=f"{server.url}/graphql", rest_endpoint=f"{server.url}/api/v1")
    with pytest.raises(AuthenticationError):
        bad.get_embeddings()
