"""Anchors given by global_key are found in the vector cache's key table (no database query), with the
same answers and errors as before."""

from __future__ import annotations

import numpy as np
import pytest

from catalog import Catalog, CatalogError, NotFound, SearchSpec
from catalog.search import Page
from catalog.vectors.cache import KeyTable


def test_key_table_find_is_exact_and_case_sensitive():
    keys = ["b", "a", "", "ä/ü.png", "A", "ab", "a" * 300]
    t = KeyTable.from_keys(keys)
    got = t.find(["a", "A", "ab", "ä/ü.png", "a" * 300, "b", "zz", "", "a" * 299, "Ä/ü.png"])
    assert got.tolist() == [1, 4, 5, 3, 6, 0, -1, -1, -1, -1]
    assert KeyTable.from_keys([]).find(["a"]).tolist() == [-1]


def test_key_table_find_matches_a_dict_on_many_keys():
    rng = np.random.default_rng(0)
    keys = [f"k{int(v)}" for v in rng.permutation(5000)]
    t = KeyTable.from_keys(keys)
    want = ["k17", "k4999", "k0", "k5000", "nope"]
    where = {k: i for i, k in enumerate(keys)}
    assert t.find(want).tolist() == [where.get(k, -1) for k in want]


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "c.duckdb")
    rows = tmp_path / "rows.ndjson"
    rows.write_text("".join(f'{{"global_key": "Row-{i}", "text": "t{i}"}}\n' for i in range(60))
                    + '{"global_key": "no-vector", "text": "x"}\n')
    c.import_datarows([rows])
    emb = c.create_embedding("e", 8)
    rng = np.random.default_rng(1)
    emb.import_vectors([f"Row-{i}" for i in range(60)], rng.normal(size=(60, 8)).astype(np.float32))
    return c


def _ids(res):
    return [(h.id, h.global_key, round(h.score, 6)) for h in res.results]


def test_search_by_global_key_equals_search_by_id(cat, monkeypatch):
    rid, rid7 = cat.get_datarow("Row-3")["id"], cat.get_datarow("Row-7")["id"]
    by_id = cat.search(SearchSpec("e", anchors=[rid, "Row-7"], min_score=0.0), Page(20))
    calls = []
    monkeypatch.setattr(cat.datarows, "get_datarows", lambda refs: calls.append(refs) or [])
    by_key = cat.search(SearchSpec("e", anchors=["Row-3", "Row-7"], min_score=0.0), Page(20))
    assert _ids(by_key) == _ids(by_id) and len(by_key.results) == 20
    assert not calls  # resolved from the cache
    by_max = cat.search(SearchSpec("e", anchors=["Row-3", "Row-7"], aggregate="max", min_score=0.0), Page(5))
    assert {h.anchor for h in by_max.results} <= {rid, rid7}  # anchors named by id


def test_unknown_or_vectorless_keys_keep_their_errors(cat):
    with pytest.raises(NotFound, match="row-3"):
        cat.search(SearchSpec("e", anchors=["row-3"], min_score=0.5))  # keys are case-sensitive
    with pytest.raises(CatalogError, match="anchor 'no-vector' has no vector in embedding e") as err:
        cat.search(SearchSpec("e", anchors=["no-vector"], min_score=0.5))
    assert err.value.field == "anchors"
