"""Uniqueness and outliers (library and ``advtool uniqueness``): known answers on planted dense clusters
and isolated points, the formula against a float64 reference, staleness when vectors change, sorting
and filtering searches by uniqueness, and the limits."""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pytest

from catalog import Catalog, Page, SearchSpec
from catalog.errors import CatalogError
from catalog.filters import compile_filter
from catalog.quality import MAX_NEIGHBOURS, MAX_OUTLIERS, uniqueness_scores
from catalog.quality.uniqueness import UniquenessStale
from knn_support import SCORE_ATOL
from search_support import make_rows

DIMS, CLUSTERS, PER_CLUSTER, ISOLATED = 32, 3, 20, 6


def planted(seed=0):
    """Three tight clusters of 20 rows, then 6 isolated random directions (the outliers)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIMS))
    dense = np.repeat(centres, PER_CLUSTER, axis=0) + 0.01 * rng.standard_normal((CLUSTERS * PER_CLUSTER, DIMS))
    lone = rng.standard_normal((ISOLATED, DIMS))
    return np.vstack([dense, lone]).astype(np.float32)


@pytest.fixture
def filled(cat, tmp_path):
    x = planted()
    keys = make_rows(cat, tmp_path, len(x))
    emb = cat.create_embedding("planted", DIMS)
    emb.import_vectors(keys, x)
    return cat, emb, keys, x


def reference(x, k):
    """1 − mean of the k best scores against the other rows, in float64 (PRODUCT.md §3)."""
    u = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    s = 1.0 - np.abs(u[:, None, :] - u[None, :, :]).sum(axis=2) / (2 * math.sqrt(x.shape[1]))
    np.fill_diagonal(s, -np.inf)
    k = min(k, len(x) - 1)
    return 1.0 - np.sort(s, axis=1)[:, ::-1][:, :k].mean(axis=1)


def table_count(db, table) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_outliers_are_the_isolated_points(filled):
    cat, emb, keys, x = filled
    run = cat.uniqueness.compute("planted", neighbours=5)
    assert (run.count, run.neighbours, run.version, run.current) == (len(x), 5, emb.refresh().version, True)
    top = cat.uniqueness.outliers("planted", ISOLATED)
    assert {r["global_key"] for r in top} == set(keys[-ISOLATED:])
    assert [r["uniqueness"] for r in top] == sorted((r["uniqueness"] for r in top), reverse=True)
    scores = cat.uniqueness.scores("planted", [r["id"] for r in cat.get_datarows(keys)])
    by_key = {r["global_key"]: scores[r["id"]] for r in cat.get_datarows(keys)}
    dense = [by_key[k] for k in keys[:-ISOLATED]]
    lone = [by_key[k] for k in keys[-ISOLATED:]]
    assert max(dense) < 0.01 and min(lone) > 0.4  # near copies score ~1, random directions ~0.44


@pytest.mark.parametrize("k", [1, 5, 19, 40])
def test_the_formula_against_a_float64_reference(filled, k):
    cat, emb, keys, x = filled
    cat.uniqueness.compute("planted", neighbours=k)
    rows = cat.get_datarows(keys)
    scores = cat.uniqueness.scores("planted", [r["id"] for r in rows])
    got = np.array([scores[r["id"]] for r in rows])
    assert np.abs(got - reference(x, k)).max() <= SCORE_ATOL
    assert ((got >= 0) & (got <= 1)).all()


def test_exact_copies_score_zero_and_small_catalogs():
    x = np.tile(np.arange(1, 9, dtype=np.float32), (7, 1))  # seven identical rows: the self may not come first
    assert np.allclose(uniqueness_scores(x, 3), 0.0, atol=1e-12)
    assert uniqueness_scores(x[:1], 10).tolist() == [1.0]  # alone: nothing is like it
    two = np.eye(2, 8, dtype=np.float32)
    expect = np.abs(two[0] - two[1]).sum() / (2 * math.sqrt(8))  # 1 − score
    assert np.allclose(uniqueness_scores(two, 10), expect, atol=1e-7)


def test_stale_after_the_vectors_change_and_recomputed(filled, tmp_path, monkeypatch):
    monkeypatch.setenv("CATALOG_UNIQUENESS_AUTO_ROWS", "0")  # never recomputed by itself: the stale answers
    cat, emb, keys, x = filled
    spec = SearchSpec("planted", anchors=[keys[0]], min_score=0.0, sort="uniqueness")
    with pytest.raises(UniquenessStale, match="was not computed") as err:
        cat.search(spec)
    assert err.value.field == "sort"
    cat.uniqueness.compute("planted", neighbours=5)
    assert cat.search(spec, Page(3)).results[0].global_key in keys[-ISOLATED:]
    emb.import_vectors([keys[0]], x[-1:])  # row 0 becomes a copy of the last outlier
    status = cat.uniqueness.status("planted")
    assert status.current is False and status.version < emb.refresh().version
    for call in (lambda: cat.search(spec), lambda: cat.uniqueness.outliers("planted", 3),
                 lambda: cat.search(spec.replace(sort="score", where={"uniqueness": {"$gte": 0.1}}))):
        with pytest.raises(UniquenessStale, match="is stale: its vectors changed") as err:
            call()
        assert "compute the embedding's uniqueness" in str(err.value)
        assert "it is not recomputed by itself (at most 0: $CATALOG_UNIQUENESS_AUTO_ROWS)" in str(err.value)
    cat.uniqueness.compute("planted", neighbours=1)
    top = {r["global_key"] for r in cat.uniqueness.outliers("planted", ISOLATED - 1)}
    assert top == set(keys[-ISOLATED:-1])  # the last outlier now has a copy (row 0): its nearest scores 1


def test_search_sorts_and_filters_by_uniqueness(filled):
    cat, emb, keys, x = filled
    cat.uniqueness.compute("planted", neighbours=5)
    rows = cat.get_datarows(keys)
    u = cat.uniqueness.scores("planted", [r["id"] for r in rows])
    spec = SearchSpec("planted", anchors=[keys[0]], min_score=0.0)
    plain = cat.search(spec, Page(None))
    ranked = cat.search(spec.replace(sort="uniqueness", order=None), Page(None))
    assert ranked.total == plain.total and {h.id for h in ranked} == {h.id for h in plain}
    values = [u[h.id] for h in ranked]
    assert values == sorted(values, reverse=True)
    asc = cat.search(spec.replace(sort="uniqueness", order="asc"), Page(None))
    assert [u[h.id] for h in asc] == sorted(values)
    pages = [cat.search(spec.replace(sort="uniqueness"), Page(7, off)) for off in (0, 7, 14)]
    assert [h.id for p in pages for h in p.results] == [h.id for h in ranked][:21]
    high = cat.search(spec.replace(where={"uniqueness": {"$gte": 0.4}}), Page(None))
    assert {h.global_key for h in high} == set(keys[-ISOLATED:])
    both = cat.search(spec.replace(where={"$and": [{"uniqueness": {"$lt": 0.4}}, {"colour": "red"}]}), Page(None))
    assert {h.global_key for h in both} == {k for i, k in enumerate(keys[1:-ISOLATED], 1) if i % 3 == 0}
    assert {h.id for h in cat.search(spec.replace(where={"uniqueness": {"$exists": True}}), Page(None))} == \
        {h.id for h in plain}


def test_a_slice_sorted_by_uniqueness_round_trips(filled):
    cat, emb, keys, x = filled
    cat.uniqueness.compute("planted")
    spec = SearchSpec("planted", anchors=[keys[0]], min_score=0.0, sort="uniqueness",
                      where={"uniqueness": {"$gt": 0.3}})
    assert SearchSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    s = cat.save_slice("rare", spec)
    assert s.spec.sort == "uniqueness" and {h.global_key for h in s.rows(None)} == set(keys[-ISOLATED:])


def test_uniqueness_needs_a_similarity_search_and_an_embedding():
    with pytest.raises(CatalogError, match="needs a similarity search") as err:
        SearchSpec(where={"uniqueness": {"$gt": 0.5}})
    assert err.value.field == "where"
    with pytest.raises(CatalogError, match="needs a similarity search") as err:
        SearchSpec(sort="uniqueness")
    assert err.value.field == "sort"
    with pytest.raises(CatalogError, match="'uniqueness' needs an embedding"):
        compile_filter({"uniqueness": {"$gt": 0.5}})
    with pytest.raises(CatalogError, match="needs a number"):
        SearchSpec("e", anchors=["a"], where={"uniqueness": {"$gt": "high"}})
    sql, params = compile_filter({"metadata.uniqueness": 3})  # a metadata key of that name stays reachable
    assert "uniqueness __u" not in sql


def test_limits_and_nothing_written_on_error(filled, db_path):
    cat, emb, keys, x = filled
    for bad in (0, MAX_NEIGHBOURS + 1, 2.5, True):
        with pytest.raises(CatalogError, match="`neighbours` must be a whole number from 1 to 1,000") as err:
            cat.uniqueness.compute("planted", neighbours=bad)
        assert err.value.field == "neighbours"
    assert table_count(db_path, "uniqueness_runs") == 0 and table_count(db_path, "uniqueness") == 0
    empty = cat.create_embedding("empty", 8)
    with pytest.raises(CatalogError, match="has no vectors"):
        cat.uniqueness.compute(empty.name)
    cat.uniqueness.compute("planted", neighbours=MAX_NEIGHBOURS)  # more than the rows: all the others
    assert table_count(db_path, "uniqueness") == len(x)
    for bad in (0, MAX_OUTLIERS + 1):
        with pytest.raises(CatalogError, match="`outliers` must be a whole number from 1 to 100,000"):
            cat.uniqueness.outliers("planted", bad)
    assert len(cat.uniqueness.outliers("planted", MAX_OUTLIERS)) == len(x)


def test_deleting_rows_and_embeddings_removes_their_scores(filled, db_path):
    cat, emb, keys, x = filled
    cat.uniqueness.compute("planted")
    cat.delete_datarows([keys[0]])
    assert table_count(db_path, "uniqueness") == len(x) - 1
    assert cat.uniqueness.status("planted").current is False  # the row was someone's neighbour
    cat.delete_embedding("planted")
    assert table_count(db_path, "uniqueness") == 0 and table_count(db_path, "uniqueness_runs") == 0


def test_the_cli_computes_lists_outliers_and_words_errors(filled, cli):
    cat, emb, keys, x = filled
    r = cli("uniqueness", "planted", "--neighbours", "5")
    assert r.returncode == 0, r.stderr
    assert f"uniqueness of {len(x)} rows computed (embedding planted, 5 neighbours" in r.stdout
    r = cli("uniqueness", "planted", "--outliers", str(ISOLATED), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["run"]["neighbours"] == 5 and data["run"]["current"] is True  # kept: not computed again
    assert {o["global_key"] for o in data["outliers"]} == set(keys[-ISOLATED:])
    r = cli("uniqueness", "planted", "--outliers", "2", "--where", '{"colour": "red"}')
    assert r.returncode == 0 and "uniqueness  global_key" in r.stdout
    assert len(r.stdout.strip().splitlines()) == 3
    r = cli("search", "-e", "planted", "-a", keys[0], "--min", "0", "--sort", "uniqueness", "--json", "--limit", "3")
    assert r.returncode == 0 and {h["global_key"] for h in json.loads(r.stdout)["results"]} <= set(keys[-ISOLATED:])
    emb.import_vectors([keys[1]], x[-2:-1])
    r = cli("search", "-e", "planted", "-a", keys[0], "--min", "0", "--sort", "uniqueness",
            env={"CATALOG_UNIQUENESS_AUTO_ROWS": "0"})
    assert r.returncode == 2 and "is stale" in r.stderr and "advtool uniqueness EMBEDDING" in r.stderr
    r = cli("uniqueness", "planted", "--outliers", "1", "--json")  # stale: computed again first
    assert r.returncode == 0 and json.loads(r.stdout)["run"]["current"] is True
    r = cli("uniqueness", "planted", "--neighbours", "0")
    assert r.returncode == 2 and "--neighbours must be a whole number" in r.stderr and "Traceback" not in r.stderr
    r = cli("uniqueness", "planted", "--outliers", "0")
    assert r.returncode == 2 and "--outliers must be a whole number" in r.stderr
    r = cli("uniqueness", "nope")
    assert r.returncode != 0 and "no embedding" in r.stderr


def test_the_schema_step_creates_the_tables(tmp_path):
    cat = Catalog(tmp_path / "fresh.duckdb")
    cat.count_datarows()  # the file is made (and migrated) when first used
    with duckdb.connect(str(cat.path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"uniqueness", "uniqueness_runs"} <= tables


def test_a_stale_run_of_a_small_embedding_is_recomputed_by_the_read_that_needs_it(filled, monkeypatch):
    cat, emb, keys, x = filled
    cat.uniqueness.compute("planted", neighbours=5)
    emb.import_vectors([keys[0]], x[-1:])  # row 0 becomes a copy of the last outlier
    assert cat.uniqueness.status("planted").current is False
    top = {r["global_key"] for r in cat.uniqueness.outliers("planted", ISOLATED - 1)}  # recomputed here
    run = cat.uniqueness.status("planted")
    assert run.current is True and run.neighbours == 5 and run.version == emb.refresh().version
    assert top <= set(keys[-ISOLATED:-1]) | {keys[-1]} and keys[-1] not in top
    emb.import_vectors([keys[1]], x[-2:-1])
    spec = SearchSpec("planted", anchors=[keys[2]], min_score=0.0, sort="uniqueness")
    assert cat.search(spec, Page(3)).results and cat.uniqueness.status("planted").current is True
    emb.import_vectors([keys[3]], x[-3:-2])
    monkeypatch.setenv("CATALOG_UNIQUENESS_AUTO_ROWS", "many")
    with pytest.raises(CatalogError, match="CATALOG_UNIQUENESS_AUTO_ROWS='many' must be a whole number"):
        cat.uniqueness.outliers("planted", 1)
    assert cat.uniqueness.status("planted").current is False  # nothing was computed
