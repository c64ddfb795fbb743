"""The native quality and map routes in-process: duplicates, score, uniqueness (a job), maps (a job,
points, export, polygon selection → ids or a slice) and grouped search. Answers equal the CLI's
``--json``; writes need a read-write token (403 for a read-only one); errors name their ``field`` and
write nothing."""

from __future__ import annotations

import base64
import json

import pytest
from api_support import IMAGE_EMBEDDING, build_api_catalog, image_path
from starlette.testclient import TestClient
from test_api_jobs import wait_for_job

from catalog import Catalog
from catalog.api import create_app

SCORE_ATOL = 1e-6


@pytest.fixture
def shapes(tmp_path):
    db, rw, ro = build_api_catalog(tmp_path / "quality")
    return tmp_path / "quality", db, rw, ro


def client_for(db, token):
    return TestClient(create_app(Catalog(db)), headers={"X-Auth-token": token}, raise_server_exceptions=False)


def cli_json(cli, db, *args):
    r = cli(*args, "--json", db=db)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def without_seconds(report):
    return {k: v for k, v in report.items() if k != "seconds"}


def error_of(r, status, field):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message"], err
    return err


def job_result(c, r):
    assert r.status_code == 202 and r.json()["state"] == "running", r.text
    wait_for_job(r.json()["id"])
    return c.get(f"/v1/jobs/{r.json()['id']}").json()


def test_duplicates_equal_the_cli_and_save_needs_a_writer(shapes, cli):
    _, db, rw, ro = shapes
    c, reader = client_for(db, rw), client_for(db, ro)
    got = reader.post("/v1/duplicates", json={"embedding": "shapes", "min_score": 0.9, "split_field": "topic"})
    assert got.status_code == 200
    want = cli_json(cli, db, "duplicates", "shapes", "--min-score", "0.9", "--split-field", "topic")
    assert without_seconds(got.json()) == without_seconds(want) and want["groups_count"] > 0
    content = reader.post("/v1/duplicates", json={"exact_only": True}).json()
    assert without_seconds(content) == without_seconds(cli_json(cli, db, "duplicates", "--exact-only"))
    error_of(reader.post("/v1/duplicates", json={"embedding": "shapes", "save": "dups"}), 403, None)
    error_of(c.post("/v1/duplicates", json={}), 400, "embedding")
    error_of(c.post("/v1/duplicates", json={"embedding": "shapes", "min_score": 2}), 400, "min_score")
    error_of(c.post("/v1/duplicates", json={"embedding": "shapes", "keep": "last"}), 400, "keep")
    error_of(c.post("/v1/duplicates", json={"embedding": "shapes", "limit": 3}), 400, "limit")
    error_of(c.post("/v1/duplicates", json={"embedding": "nope"}), 404, "embedding")
    error_of(c.post("/v1/duplicates", json={"embedding": "shapes", "save": "x"}), 400, "name")
    error_of(c.post("/v1/duplicates", json={"embedding": "shapes", "save": "dups", "tag": "a.b"}), 400, "tag")
    cat = Catalog(db)
    assert cat.get_slices() == [] and "duplicates" not in cat.get_datarow("sports-1")["metadata"]
    saved = c.post("/v1/duplicates", json={"embedding": "shapes", "min_score": 0.9, "save": "dups"})
    assert saved.status_code == 200 and saved.json()["slices"] == ["dups", "dups-deduplicated"]
    assert [s.name for s in cat.get_slices()] == ["dups", "dups-deduplicated"]
    grouped = sum(g["size"] for g in saved.json()["groups"])
    assert cat.get_slice("dups").rows(limit=0).total == grouped


def test_score_of_rows_texts_and_images(shapes, cli):
    folder, db, rw, ro = shapes
    c = client_for(db, ro)
    got = c.post("/v1/score", json={"a": "circle/red-1.png", "b": "circle/red-2.png", "embedding": "shapes"})
    want = cli_json(cli, db, "score", "circle/red-1.png", "circle/red-2.png", "--embedding", "shapes")
    assert got.json()["embedding"] == want["embedding"] == "shapes"
    assert got.json()["score"] == pytest.approx(want["score"], abs=SCORE_ATOL)
    data = base64.b64encode(image_path(folder, "circle/red-1.png").read_bytes()).decode()
    same = c.post("/v1/score", json={"a": "circle/red-1.png", "b": {"base64": data}, "embedding": IMAGE_EMBEDDING})
    assert same.status_code == 200 and same.json()["score"] == pytest.approx(1.0, abs=1e-4)
    error_of(c.post("/v1/score", json={"a": "circle/red-1.png"}), 400, "b")
    error_of(c.post("/v1/score", json={"a": "circle/red-1.png", "b": {"image": "/etc/passwd"}}), 400, "b")
    error_of(c.post("/v1/score", json={"a": {"base64": "%%%"}, "b": "sports-1"}), 400, "a")
    error_of(c.post("/v1/score", json={"a": "circle/red-1.png", "b": {"text": "a red circle"}}), 400, "embedding")
    error_of(c.post("/v1/score", json={"a": "no-such-row", "b": "sports-1", "embedding": "shapes"}), 404, None)


def test_uniqueness_job_run_and_outliers(shapes, cli):
    _, db, rw, ro = shapes
    c, reader = client_for(db, rw), client_for(db, ro)
    assert reader.get("/v1/uniqueness/shapes").json() == {"run": None}
    error_of(reader.get("/v1/uniqueness/shapes/outliers"), 400, "embedding")  # never computed
    error_of(reader.post("/v1/uniqueness/shapes/_compute", json={}), 403, None)
    error_of(c.post("/v1/uniqueness/shapes/_compute", json={"neighbours": 0}), 400, "neighbours")
    error_of(c.post("/v1/uniqueness/shapes/_compute", json={"k": 3}), 400, "k")
    error_of(c.post("/v1/uniqueness/nope/_compute", json={}), 404, "embedding")
    assert Catalog(db).uniqueness.status("shapes") is None  # nothing computed by the refused calls
    done = job_result(c, c.post("/v1/uniqueness/shapes/_compute", json={"neighbours": 3}))
    assert done["state"] == "done" and done["kind"] == "uniqueness" and done["embedding"] == "shapes"
    assert done["report"]["neighbours"] == 3 and done["report"]["count"] == 44 and done["done"] == done["total"] == 44
    run = reader.get("/v1/uniqueness/shapes").json()["run"]
    assert run == done["report"]
    got = reader.get("/v1/uniqueness/shapes/outliers", params={"n": 5, "where": json.dumps({"topic": "sports"})})
    want = cli_json(cli, db, "uniqueness", "shapes", "--outliers", "5", "--where", '{"topic": "sports"}')
    assert got.json() == want and len(want["outliers"]) == 4
    error_of(reader.get("/v1/uniqueness/shapes/outliers", params={"where": "{"}), 400, "where")
    error_of(reader.get("/v1/uniqueness/shapes/outliers", params={"n": 0}), 422, "n")


def test_map_job_points_export_and_selection(shapes, cli):
    _, db, rw, ro = shapes
    c, reader = client_for(db, rw), client_for(db, ro)
    error_of(reader.get("/v1/maps/shapes"), 404, "embedding")
    error_of(reader.get("/v1/maps/shapes/points"), 404, "embedding")
    error_of(reader.post("/v1/maps/shapes/_compute", json={}), 403, None)
    error_of(c.post("/v1/maps/shapes/_compute", json={"method": "tsne"}), 400, "method")
    error_of(c.post("/v1/maps/nope/_compute", json={}), 404, "embedding")
    done = job_result(c, c.post("/v1/maps/shapes/_compute", json={"method": "pca"}))
    assert done["state"] == "done" and done["kind"] == "map" and done["report"]["points"] == 44
    cat = Catalog(db)
    assert reader.get("/v1/maps/shapes").json() == cat.maps.info("shapes")
    pts = reader.get("/v1/maps/shapes/points").json()
    made = cat.maps.get("shapes")
    assert pts["ids"] == made.ids.tolist() and pts["info"]["current"] is True
    assert pts["x"] == pytest.approx(made.xy[:, 0].tolist(), abs=1e-6)
    r = cli("map", "export", "shapes", "--format", "csv", db=db)
    exported = reader.get("/v1/maps/shapes/_export", params={"format": "csv"})  # the CLI's text, its line ends read
    assert exported.text.splitlines() == r.stdout.splitlines() and exported.headers["content-type"].startswith("text/csv")
    (x0, y0), (x1, y1) = made.xy.min(axis=0) - 1, made.xy.max(axis=0) + 1
    box = [[float(x0), float(y0)], [float(x1), float(y0)], [float(x1), float(y1)], [float(x0), float(y1)]]
    sel = reader.post("/v1/maps/shapes/_select", json={"polygon": box})
    assert sel.json() == {"count": 44, "ids": made.ids.tolist()}
    error_of(reader.post("/v1/maps/shapes/_select", json={"polygon": box, "save": "lasso"}), 403, None)
    error_of(c.post("/v1/maps/shapes/_select", json={"polygon": [[0, 0], [1, 1]], "save": "lasso"}), 400, "polygon")
    error_of(c.post("/v1/maps/shapes/_select", json={"polygon": box, "save": "no"}), 400, "name")
    error_of(c.post("/v1/maps/shapes/_select", json={}), 400, "polygon")
    assert cat.get_slices() == []
    saved = c.post("/v1/maps/shapes/_select", json={"polygon": box, "save": "lasso", "description": "all of it"})
    assert saved.status_code == 200 and saved.json()["count"] == 44 and saved.json()["slice"]["name"] == "lasso"
    assert sorted(cat.get_slice("lasso").row_ids()) == sorted(made.ids.tolist())
    cat.get_embedding("shapes").import_vectors(["sports-1"], [[1.0] * 16])  # the map is now stale
    err = error_of(reader.get("/v1/maps/shapes/points"), 404, "embedding")
    assert "older vectors" in err["message"]


def test_search_body_carries_group_by(shapes, cli):
    _, db, rw, ro = shapes
    c = client_for(db, ro)
    body = {"embedding": "shapes", "anchors": ["sports-1"], "min_score": 0.0, "group_by": "topic", "limit": 50}
    got = c.post("/v1/search", json=body)
    want = cli_json(cli, db, "search", "-e", "shapes", "--anchor", "sports-1", "--min", "0", "--group-by", "topic",
                    "--limit", "50")
    assert got.status_code == 200 and got.json() == want
    keys = [h["global_key"] for h in want["results"]]
    assert sum(k.startswith("sports") for k in keys) == 1 and sum(k.startswith("cooking") for k in keys) == 1
    error_of(c.post("/v1/search", json={**body, "group_by": 'a"b'}), 400, "group_by")
