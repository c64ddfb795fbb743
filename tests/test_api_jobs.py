"""Native models, compute jobs, label import/export and label-by-similarity for an uploaded image."""

from __future__ import annotations

import json
import threading

import pytest
from api_support import IMAGE_EMBEDDING, build_api_catalog, image_path
from dashboard_support import build
from starlette.testclient import TestClient

from catalog import Catalog
from catalog.api import create_app


@pytest.fixture
def shapes(tmp_path):
    db, rw, ro = build_api_catalog(tmp_path / "jobs")
    return tmp_path / "jobs", db, rw


def client_for(db, token):
    return TestClient(create_app(Catalog(db)), headers={"X-Auth-token": token}, raise_server_exceptions=False)


def wait_for_job(job_id):
    for t in threading.enumerate():
        if t.name == f"job-{job_id}":
            t.join(timeout=300)


def test_models_and_a_compute_job(tmp_path, cli):
    db = build(tmp_path / "fresh")  # no color-texture vectors yet
    cat = Catalog(db)
    _, token = cat.tokens.create_token("w")
    c = client_for(db, token)
    r = cli("models", "--json", db=db)
    got = c.get("/v1/models").json()

    def without_reason(models):
        return [{k: v for k, v in m.items() if k != "reason"} for m in models]
    assert without_reason(got) == without_reason(json.loads(r.stdout))  # the CLI words reasons with its flags
    assert got == json.loads(json.dumps(cat.list_models(), default=str))  # the API keeps the library's names
    assert c.post("/v1/models/no-such-model/_compute").status_code == 404
    r = c.post(f"/v1/models/{IMAGE_EMBEDDING}/_compute", json={})
    assert r.status_code == 202 and r.json()["state"] == "running"
    job = r.json()["id"]
    wait_for_job(job)
    done = c.get(f"/v1/jobs/{job}").json()
    assert done["state"] == "done" and done["report"]["computed"] == 36 and done["done"] == done["total"]
    assert cat.get_embedding(IMAGE_EMBEDDING).get_imported_vector_count() == 36
    assert c.get("/v1/jobs/nope").status_code == 404


def test_label_export_import_roundtrip(shapes, cli):
    _, db, rw = shapes
    c = client_for(db, rw)
    exported = c.get("/v1/labels/_export").text
    r = cli("labels", "export", db=db)
    assert exported == r.stdout
    body = "id,label\nsports-1,sports\ncooking-1,cooking\n"
    assert c.post("/v1/labels/_import", content=body.encode()).json() == {"labels": 2, "rows": 2}
    bad = c.post("/v1/labels/_import", content=b"id,label\nnope,x\nsports-2,sports\n")
    assert bad.status_code in (404, 422) and "/tmp" not in bad.json()["error"]["message"]
    labels = Catalog(db).get_labels(["sports-2"])
    assert list(labels.values()) == [[]]  # nothing of the bad file was written


def test_label_by_similarity_for_an_uploaded_image(shapes):
    folder, db, rw = shapes
    c = client_for(db, rw)
    data = image_path(folder, "circle/red-1.png").read_bytes()
    r = c.post(f"/v1/label-by-similarity/_image?embedding={IMAGE_EMBEDDING}&threshold=0.1", content=data)
    assert r.status_code == 200
    expected = Catalog(db).label_by_similarity(IMAGE_EMBEDDING, ["circle/red-1.png"], threshold=0.1).to_dict()
    want = expected["results"][0]
    assert [x["label"] for x in r.json()["labels"]] == [x["label"] for x in want["labels"]]
    assert [x["score"] for x in r.json()["labels"]] == pytest.approx([x["score"] for x in want["labels"]], abs=1e-6)
    assert [h["global_key"] for h in r.json()["hits"]] == [h["global_key"] for h in want["hits"]]
