"""The qdrant-hnsw backend: searches through Qdrant Edge's HNSW graph (a real one: the shard's indexing
threshold is lowered so that a test-sized collection is indexed), flagged incomplete with the recall
measured when the index was calibrated, every row scored exactly; by name only, never the automatic
choice; a stale copy never answers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")

from catalog import Catalog, CatalogError, Page, SearchSpec  # noqa: E402
from catalog.cli import main  # noqa: E402
from catalog.engine import client  # noqa: E402
from catalog.engine.hnsw import EFS  # noqa: E402
from catalog.search.backends import registry  # noqa: E402
from catalog.search.backends.qdrant_hnsw import QdrantHnswBackend  # noqa: E402
from search_support import clustered, make_rows  # noqa: E402

N, DIMS = 3000, 16
SCORE_TOL = 1e-6


@pytest.fixture
def cat(tmp_path, monkeypatch):
    monkeypatch.setattr(client, "EDGE_INDEXING_KB", 1)  # index from 1 KB: a 3,000-point shard gets an HNSW graph
    c = Catalog(tmp_path / "catalog.duckdb")
    keys = make_rows(c, tmp_path, N)
    c.create_embedding("e", DIMS).import_vectors(keys, clustered(N, DIMS, clusters=15, noise=0.4, seed=4))
    c.engines.set_engine(f"edge:{tmp_path / 'engine'}")
    c.engines.sync(["e"])
    yield c, keys
    c.engines.unset_engine()


def test_index_builds_a_graph_and_measures_recall(cat):
    c, keys = cat
    emb = c.get_embedding("e")
    assert not QdrantHnswBackend.ready(c.searcher.context, emb)
    meta = c.engines.index("e")
    assert meta["indexed_vectors"] == N and meta["ef"] in EFS and meta["count"] == N
    assert 0.9 <= meta["recall"] <= 1.0 and meta["calibration_queries"] == 64
    assert QdrantHnswBackend.ready(c.searcher.context, emb)
    assert c.engines.index_info(emb) == meta


def test_results_are_flagged_and_scored_exactly(cat):
    c, keys = cat
    found = []
    for a in (3, 400, 2100):
        spec = SearchSpec("e", anchors=[keys[a]], min_score=0.0)
        got = c.search(spec, Page(50), backend="qdrant-hnsw")  # the first search indexes and calibrates
        want = c.search(spec, Page(50), backend="exact")
        assert got.backend == "qdrant-hnsw" and not got.complete
        assert got.recall == c.engines.index_info(c.get_embedding("e"))["recall"]
        assert len(got.results) == 50 and keys[a] not in {h.global_key for h in got.results}
        exact = {h.id: h.score for h in c.search(spec, Page(None), backend="exact").results}
        for h in got.results:  # every score is the exact backend's
            assert abs(h.score - exact[h.id]) <= SCORE_TOL
        scores = [h.score for h in got.results]
        assert scores == sorted(scores, reverse=True)
        found.append(len({h.id for h in got.results} & {h.id for h in want.results}) / 50)
        rng = SearchSpec("e", anchors=[keys[a]], min_score=want.results[29].score)
        ranged = c.search(rng, Page(None), backend="qdrant-hnsw")
        assert all(h.score >= want.results[29].score for h in ranged.results) and not ranged.complete
        found.append(len({h.id for h in ranged.results} & {h.id for h in want.results[:30]}) / 30)
    assert np.mean(found) >= 0.9


def test_exact_answers_are_not_flagged(cat):
    c, keys = cat
    res = c.search(SearchSpec("e", anchors=[keys[3]], min_score=0.5), Page(10), backend="qdrant")
    assert res.complete and res.recall is None and res.backend == "qdrant"


def test_automatic_choice_never_uses_hnsw(cat):
    c, keys = cat
    c.engines.index("e")
    res = c.search(SearchSpec("e", anchors=[keys[3]], min_score=0.5), Page(10))
    assert res.backend == "qdrant" and res.complete
    assert registry.QdrantHnswBackend.name not in registry.ENGINE_ORDER + registry.AUTO_ORDER


def test_a_stale_copy_never_answers(cat):
    c, keys = cat
    c.engines.index("e")
    emb = c.get_embedding("e")
    emb.import_vectors(keys[:3], np.ones((3, DIMS)))
    stale = "the qdrant-hnsw backend cannot answer: .* holds version 1 of embedding e"
    with pytest.raises(CatalogError, match=stale) as exc:
        c.search(SearchSpec("e", anchors=[keys[5]], min_score=0.5), Page(10), backend="qdrant-hnsw")
    assert exc.value.field == "backend"
    assert not QdrantHnswBackend.ready(c.searcher.context, c.get_embedding("e"))
    with pytest.raises(CatalogError, match="sync"):
        c.engines.index("e")
    c.engines.sync(["e"])
    assert c.engines.index_info(c.get_embedding("e")) is None  # measured on the old copy: measured again
    assert c.search(SearchSpec("e", anchors=[keys[5]], min_score=0.5), Page(10),
                    backend="qdrant-hnsw").recall is not None


def test_cli_index_and_search_note(cat, capsys):
    c, keys = cat
    db = str(c.path)
    assert main(["--db", db, "engine", "index", "e"]) == 0
    out = capsys.readouterr().out
    assert f"e: {N} vectors indexed" in out and "measured recall" in out
    assert main(["--db", db, "search", "-e", "e", "--anchor", keys[3], "--min", "0.5", "--backend", "qdrant-hnsw",
                 "--limit", "5"]) == 0
    err = capsys.readouterr().err
    assert "the qdrant-hnsw backend is approximate (measured recall" in err and "lower bound" in err
    c.save_slice("near-three", SearchSpec("e", anchors=[keys[3]], min_score=0.5))
    assert main(["--db", db, "slices", "show", "near-three", "--backend", "qdrant-hnsw", "--limit", "5"]) == 0
    assert "the qdrant-hnsw backend is approximate" in capsys.readouterr().err
    assert main(["--db", db, "slices", "show", "near-three", "--backend", "qdrant", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and '"total"' in captured.out
