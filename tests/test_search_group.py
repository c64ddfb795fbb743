"""``SearchSpec.group_by``: one result per metadata group with its size and best score, known answers on
planted groups, paging and totals over groups, rows without the field, slices, the CLI and the REST API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalog import Page, SearchSpec
from catalog.errors import CatalogError
from knn_support import SCORE_ATOL
from search_support import np_scores

DIMS = 8
# (global_key, product, angle): row vectors at known angles from the query direction e0
ROWS = [("a1", "A", 0.10), ("a2", "A", 0.30), ("a3", "A", 0.50), ("b1", "B", 0.20), ("b2", "B", 0.60),
        ("c1", "C", 0.40), ("n1", None, 0.15), ("n2", None, 0.70), ("d1", 7, 0.35), ("d2", 7.0, 0.45),
        ("s1", "7", 0.55)]


def vec(angle):
    v = np.zeros(DIMS, np.float32)
    v[0], v[1] = np.cos(angle), np.sin(angle)
    return v


@pytest.fixture
def grouped(cat, tmp_path):
    path = tmp_path / "rows.ndjson"
    lines = []
    for key, product, _ in [("q", None, 0.0), *ROWS]:
        meta = {"split": "train" if key in ("a1", "b2") else "val"}
        if product is not None:
            meta["product"] = {"id": product}
        lines.append(json.dumps({"global_key": key, "text": key, "metadata": meta}))
    path.write_text("\n".join(lines) + "\n")
    cat.import_datarows([path])
    emb = cat.create_embedding("g", DIMS)
    emb.import_vectors(["q", *(r[0] for r in ROWS)], np.vstack([vec(0.0), *(vec(r[2]) for r in ROWS)]))
    ref = dict(zip([r[0] for r in ROWS], np_scores(vec(0.0), np.vstack([vec(r[2]) for r in ROWS]))))
    return cat, ref


SPEC = SearchSpec("g", anchors=["q"], min_score=0.0, group_by="product.id")


def test_each_group_is_its_best_row_with_its_size(grouped):
    cat, ref = grouped
    res = cat.search(SPEC, Page(None))
    got = [(h.global_key, h.group, h.group_size) for h in res]
    # 7 and 7.0 are one number; "7" is a string; rows without the field are groups of one
    assert got == [("a1", "A", 3), ("n1", None, 1), ("b1", "B", 2), ("d1", 7, 2), ("c1", "C", 1),
                   ("s1", "7", 1), ("n2", None, 1)]
    assert res.total == 7
    for h in res:
        assert abs(h.score - ref[h.global_key]) <= SCORE_ATOL
    assert [h.to_dict() for h in res][0] == {"id": res.results[0].id, "global_key": "a1", "score": res.results[0].score,
                                             "group": "A", "group_size": 3}
    assert set(cat.search(SPEC.replace(group_by=None), Page(1)).results[0].to_dict()) == {"id", "global_key", "score"}


def test_paging_and_totals_count_groups(grouped):
    cat, _ = grouped
    whole = [h.global_key for h in cat.search(SPEC, Page(None))]
    pages = [cat.search(SPEC, Page(3, off)) for off in (0, 3, 6, 9)]
    assert [h.global_key for p in pages for h in p.results] == whole
    assert [len(p.results) for p in pages] == [3, 3, 1, 0] and {p.total for p in pages} == {7}
    assert cat.search_row_ids(SPEC) == [r["id"] for r in cat.get_datarows(whole)]


def test_range_filter_and_sort_apply_before_grouping(grouped):
    cat, ref = grouped
    lo = float(ref["a2"])  # a3, b2, c1, ... fall out: A keeps a1 and a2, B keeps b1
    res = cat.search(SPEC.replace(min_score=lo), Page(None))
    assert {(h.global_key, h.group_size) for h in res} == {("a1", 2), ("b1", 1), ("n1", 1)}
    val = cat.search(SPEC.replace(where={"split": "val"}), Page(None))  # a1 is train: a2 leads A
    assert ("a2", "A", 2) in [(h.global_key, h.group, h.group_size) for h in val]
    assert ("b1", "B", 1) in [(h.global_key, h.group, h.group_size) for h in val]
    by_key = cat.search(SPEC.replace(sort="global_key", order="asc"), Page(None))
    assert [h.global_key for h in by_key] == ["a1", "b1", "c1", "d1", "n1", "n2", "s1"]
    worst = cat.search(SPEC.replace(order="asc"), Page(2))  # still each group's best row, lowest first
    assert [h.global_key for h in worst] == ["n2", "s1"]


def test_group_by_is_checked_and_stored(grouped, tmp_path):
    cat, _ = grouped
    for bad in ("bad key!", "a..b", 3):
        with pytest.raises(CatalogError) as err:
            SPEC.replace(group_by=bad)
        assert err.value.field == "group_by"
    with pytest.raises(CatalogError, match="needs a similarity search") as err:
        SearchSpec(where={"split": "val"}, group_by="product.id")
    assert err.value.field == "group_by"
    assert SPEC.replace(group_by="  ").group_by is None
    assert SearchSpec.from_json(json.loads(json.dumps(SPEC.to_json()))) == SPEC
    s = cat.save_slice("one per product", SPEC)
    again = cat.get_slice("one per product")
    assert again.spec.group_by == "product.id" and s.rows(None).total == 7
    assert [h.global_key for h in again.rows(2, 1)] == ["n1", "b1"]
    kw = cat.save_slice("keywords", embedding="g", anchors=["q"], min_score=0.0, group_by="product.id")
    assert kw.spec.group_by == "product.id"
    assert cat.search("g", anchors=["q"], min_score=0.0, group_by="product.id", limit=None).total == 7


def test_the_cli_groups_search_and_slices(grouped, cli):
    cat, _ = grouped
    flags = ["-e", "g", "-a", "q", "--min", "0", "--group-by", "product.id"]
    r = cli("search", *flags, "--json", "--limit", "3", "--offset", "3")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["total"] == 7 and [(h["global_key"], h["group_size"]) for h in data["results"]] == \
        [("d1", 2), ("c1", 1), ("s1", 1)]
    text = cli("search", *flags, "--limit", "2")
    assert text.returncode == 0 and "7 groups in [0, 1]; showing 1-2" in text.stdout
    assert '"A"' in text.stdout and "size  group" in text.stdout
    saved = cli("slices", "save", "grouped", *flags)
    assert saved.returncode == 0, saved.stderr
    assert cat.get_slice("grouped").spec.group_by == "product.id"
    shown = json.loads(cli("slices", "show", "grouped", "--json", "--limit", "100").stdout)
    assert shown == json.loads(cli("search", *flags, "--json", "--limit", "100").stdout)
    bad = cli("search", "-e", "g", "-a", "q", "--group-by", "bad key!")
    assert bad.returncode == 2 and "not allowed" in bad.stderr and "Traceback" not in bad.stderr


def test_the_native_api_passes_group_by_through(grouped, db_path):
    from starlette.testclient import TestClient  # noqa: PLC0415 - the API's test client
    from catalog import Catalog  # noqa: PLC0415
    from catalog.api import create_app  # noqa: PLC0415

    cat, _ = grouped
    _, token = cat.tokens.create_token("writer")
    client = TestClient(create_app(Catalog(db_path)), raise_server_exceptions=False,
                        headers={"X-Auth-token": token})
    body = {**SPEC.to_json(), "limit": 2, "offset": 1}
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cat.search(SPEC, Page(2, 1)).to_dict()
    assert r.json()["total"] == 7 and r.json()["results"][0]["group_size"] == 1
    bad = client.post("/v1/search", json={**body, "group_by": "bad key!"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "group_by"
    saved = client.put("/v1/slices/api-grouped", json=SPEC.to_json())
    assert saved.status_code == 200, saved.text
    assert cat.get_slice("api-grouped").spec.group_by == "product.id"
