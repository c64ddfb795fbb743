"""Label-by-similarity through the vector engine (``backend="qdrant"``, Qdrant Edge and local mode):
the same neighbours, scores and suggestions as the exact backend, including ties among identical
vectors (which make the engine's first answer uncertain and its second, wider one decide), the query
row's own exclusion and a pool smaller than k; and its errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")
pytest.importorskip("qdrant_client", reason="the qdrant extra (qdrant-client) is not installed")

from catalog import Catalog, CatalogError  # noqa: E402
from catalog.cli import main  # noqa: E402
from search_support import clustered, make_rows  # noqa: E402

N, DIMS = 1500, 16
SCORE_TOL = 1e-6  # float32 L1 sums in different orders (the native kernel against faiss)
TWINS = 60  # identical vectors, all labeled: more tied rows than the engine's first answer holds


@pytest.fixture(scope="module", params=["edge", "local"])
def cat(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("lbs-" + request.param)
    c = Catalog(tmp_path / "catalog.duckdb")
    keys = make_rows(c, tmp_path, N)
    x = clustered(N, DIMS, clusters=8, noise=0.6, seed=2)
    x[100:100 + TWINS] = x[99]
    c.create_embedding("e", DIMS).import_vectors(keys, x)
    rng = np.random.default_rng(3)
    pool = sorted(set(rng.choice(N, 500, replace=False).tolist()) | set(range(100, 100 + TWINS)))
    for j in range(5):
        c.add_labels([keys[i] for i in pool if i % 5 == j], [f"c{j}"])
    c.add_labels(keys[100:100 + TWINS], ["twin"])
    c.set_labels(keys[5], ["wolf"], source="similarity", score=0.9)  # unreviewed: never in the pool
    c.engines.set_engine(f"{request.param}:{tmp_path / 'engine'}")
    c.engines.sync(["e"])
    yield c, keys
    c.engines.unset_engine()


def _same(got, want):
    assert [r.id for r in got.results] == [r.id for r in want.results]
    for g, w in zip(got.results, want.results):
        gs, ws = [h.score for h in g.hits], [h.score for h in w.hits]
        np.testing.assert_allclose(gs, ws, rtol=0, atol=SCORE_TOL)
        for a, b, s in zip(g.hits, w.hits, ws):  # the same rows, but for float32 near-ties
            assert a.id == b.id or sum(abs(t - s) <= 2 * SCORE_TOL for t in ws) > 1
        if [h.id for h in g.hits] == [h.id for h in w.hits]:
            assert [(s.label, s.suggested) for s in g.labels] == [(s.label, s.suggested) for s in w.labels]
            np.testing.assert_allclose([s.score for s in g.labels], [s.score for s in w.labels], rtol=0, atol=SCORE_TOL)


@pytest.mark.parametrize("k", [1, 10, 40])
def test_unlabeled_rows_get_the_exact_suggestions(cat, k):
    c, keys = cat
    want = c.label_by_similarity("e", "unlabeled", results=k, threshold=0.2)
    got = c.label_by_similarity("e", "unlabeled", results=k, threshold=0.2, backend="qdrant")
    assert len(got.results) == len(want.results) > 500
    _same(got, want)


def test_pool_rows_leave_themselves_out_and_ties_go_to_the_smaller_id(cat):
    c, keys = cat
    rows = [keys[i] for i in (99, 100, 101, 130, 159)] + keys[1000:1040]
    want = c.label_by_similarity("e", rows, results=10)
    got = c.label_by_similarity("e", rows, results=10, backend="qdrant")
    _same(got, want)
    twin = got.results[1]  # keys[100]: 60 identical vectors in the pool, itself left out
    assert twin.id not in {h.id for h in twin.hits} and all(h.score == 1.0 for h in twin.hits)
    assert [h.id for h in twin.hits] == sorted(h.id for h in twin.hits)
    assert twin.suggested[:1] == ["twin"]


def test_a_pool_smaller_than_k(cat):
    c, keys = cat
    want = c.label_by_similarity("e", keys[:30], results=800)
    got = c.label_by_similarity("e", keys[:30], results=800, backend="qdrant")
    assert all(len(r.hits) <= 560 for r in got.results)
    _same(got, want)


def test_saving_through_the_engine_writes_the_same_labels(cat):
    c, keys = cat
    got = c.label_by_similarity("e", keys[1100:1120], results=5, backend="qdrant", save=True)
    assert got.saved > 0
    again = c.label_by_similarity("e", keys[1100:1120], results=5, save=True)
    assert again.saved == 0  # the exact backend finds nothing new to write


def test_errors(cat, capsys):
    c, keys = cat
    with pytest.raises(CatalogError, match="not supported for label-by-similarity") as exc:
        c.label_by_similarity("e", keys[:3], backend="approximate")
    assert exc.value.field == "backend"
    before = [c.get_labels(k) for k in keys[:3]]
    c.get_embedding("e").import_vectors(keys[:2], np.ones((2, DIMS)))
    with pytest.raises(CatalogError, match="label-by-similarity cannot use the qdrant backend: the engine at") as exc:
        c.label_by_similarity("e", keys[:3], backend="qdrant", save=True)
    assert exc.value.field == "backend"
    assert [c.get_labels(k) for k in keys[:3]] == before  # nothing was written
    db = str(c.path)
    assert main(["--db", db, "label-by-similarity", "-e", "e", "--ids", keys[3], "--backend", "qdrant"]) != 0
    assert "sync" in capsys.readouterr().err
    c.engines.sync(["e"])
    assert main(["--db", db, "label-by-similarity", "-e", "e", "--ids", keys[3], "--backend", "qdrant", "--json"]) == 0
    c.engines.unset_engine()
    with pytest.raises(CatalogError, match="no vector engine is configured"):
        c.label_by_similarity("e", keys[:3], backend="qdrant")
