"""The vector engine (Qdrant Edge in this process, and qdrant-client's local mode): configuration, the
incremental sync (changes, deletions, interruption and resume), staleness, faults and filter push-down.
Every search through the engine is compared with the exact backend."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")
pytest.importorskip("qdrant_client", reason="the qdrant extra (qdrant-client) is not installed")

from catalog import Catalog, CatalogError, Page, SearchSpec  # noqa: E402
from catalog.cli import main  # noqa: E402
from catalog.engine.client import EngineError, connect  # noqa: E402
from catalog.engine.filters import to_engine_filter  # noqa: E402
from catalog.engine import sync  # noqa: E402
from knn_support import SCORE_ATOL  # noqa: E402
from search_support import clustered, make_rows  # noqa: E402

N, DIMS = 2500, 16
BATCH = 1000  # the sync's batch size in the interruption test


@pytest.fixture(params=["edge", "local"])
def cat(request, tmp_path):
    c = Catalog(tmp_path / "catalog.duckdb")
    keys = make_rows(c, tmp_path, N)
    emb = c.create_embedding("e", DIMS)
    emb.import_vectors(keys, clustered(N, DIMS, clusters=10, noise=0.5, seed=1))
    c.engines.set_engine(f"{request.param}:{tmp_path / 'engine'}")
    yield c, keys
    c.engines.unset_engine()


def _same(cat, spec, backend="qdrant"):
    """The search through the engine equals the exact one (rows, order, scores within 1e-6)."""
    got = cat.search(spec, Page(None), backend=backend)
    want = cat.search(spec, Page(None), backend="exact")
    assert got.backend == "qdrant"
    assert [h.id for h in got.results] == [h.id for h in want.results] and got.total == want.total
    np.testing.assert_allclose([h.score for h in got.results], [h.score for h in want.results], rtol=0, atol=1e-6)
    return got


def _status(cat):
    (row,) = cat.engines.status()
    return row


def test_sync_sends_only_what_changed(cat):
    c, keys = cat
    assert _status(c)["pending_send"] == N and _status(c)["state"] == "never"
    (r,) = c.engines.sync()
    assert (r.sent, r.deleted, r.count) == (N, 0, N)
    assert _status(c)["current"] and _status(c)["pending_send"] == 0
    (r,) = c.engines.sync(["e"])
    assert (r.sent, r.deleted) == (0, 0)
    spec = SearchSpec("e", anchors=[keys[7]], min_score=0.6)
    _same(c, spec)
    c.get_embedding("e").import_vectors(keys[:5], np.random.default_rng(9).standard_normal((5, DIMS)))
    s = _status(c)
    assert s["pending_send"] == 5 and not s["current"] and "version 1" in s["reason"]
    (r,) = c.engines.sync()
    assert (r.sent, r.deleted, r.count, r.version) == (5, 0, N, 2)
    _same(c, spec)
    _same(c, SearchSpec("e", anchors=[keys[0], keys[900]], aggregate="max", min_score=0.6))


def test_a_stale_copy_never_answers(cat):
    c, keys = cat
    c.engines.sync()
    c.get_embedding("e").import_vectors(keys[:1], np.ones((1, DIMS)))
    spec = SearchSpec("e", anchors=[keys[3]], min_score=0.5)
    with pytest.raises(CatalogError, match="holds version 1 of embedding e, the catalog has version 2") as err:
        c.search(spec, backend="qdrant")
    assert err.value.hint == "sync the embedding to the engine first"
    auto = c.search(spec, Page(None))
    assert auto.backend == "exact" and not auto.warnings  # the automatic choice searches locally
    c.engines.sync()
    assert c.search(spec, Page(None)).backend == "qdrant"  # configured and synced: the automatic choice uses it


def test_deletions_propagate(cat):
    c, keys = cat
    c.engines.sync()
    emb = c.get_embedding("e")
    gone = [r["id"] for r in c.get_datarows(keys[10:13])]
    with c.store.transaction() as con:  # rows leave the embedding (the catalog bumps the version with it)
        con.execute("DELETE FROM vectors WHERE embedding_id = ? AND CAST(row_id AS VARCHAR) IN (?, ?, ?)",
                    [emb.id, *gone])
        con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ?", [emb.id])
    assert _status(c)["pending_delete"] == 3
    (r,) = c.engines.sync()
    assert (r.sent, r.deleted, r.count) == (0, 3, N - 3)
    res = _same(c, SearchSpec("e", anchors=[keys[11 + 100]], min_score=0.0))
    assert not {h.id for h in res.results} & set(gone)


def test_an_interrupted_sync_resumes(cat, monkeypatch):
    c, keys = cat
    monkeypatch.setattr(sync, "BATCH", BATCH)  # several batches at this size (the default holds every row)

    def stop(name, done, total):
        if done >= BATCH:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        c.engines.sync(progress=stop)
    s = _status(c)
    assert s["state"] == "syncing" and s["pending_send"] == N - BATCH and "did not finish" in s["reason"]
    spec = SearchSpec("e", anchors=[keys[1]], min_score=0.6)
    with pytest.raises(CatalogError, match="the last sync of embedding e .* did not finish"):
        c.search(spec, backend="qdrant")
    assert c.search(spec).backend == "exact"
    seen = []
    (r,) = c.engines.sync(progress=lambda n, d, t: seen.append((d, t)))
    assert r.sent == N - BATCH and r.count == N and seen[-1] == (N - BATCH, N - BATCH)
    _same(c, spec)


def test_metadata_and_label_changes_are_synced_and_filters_stay_exact(cat):
    c, keys = cat
    c.add_labels(keys[:400], ["cat"])
    c.engines.sync()
    where = [{"label": "cat"}, {"colour": {"$in": ["red", "blue"]}, "camera.iso": {"$gte": 300}},
             {"$or": [{"flagged": True}, {"camera.make": "Canon"}]}, {"flagged": {"$exists": False}},
             {"n": {"$not": {"$lt": 1000}}}, {"global_key": {"$prefix": "row-01"}}, {"labeled": False},
             {"label": {"$ne": "cat"}, "colour": "green"}]
    for w in where:
        _same(c, SearchSpec("e", anchors=[keys[5]], min_score=0.4, where=w))
    c.set_metadata({"colour": "purple"}, ids=keys[:50])
    c.add_labels(keys[400:420], ["cat"])
    s = _status(c)
    assert not s["current"] and s["pending_send"] == 70 and s["reason"] == ""
    for w in ({"colour": "purple"}, {"label": "cat"}):  # a stale payload: no push-down, still exact
        _same(c, SearchSpec("e", anchors=[keys[5]], min_score=0.3, where=w))
    (r,) = c.engines.sync()
    assert r.sent == 70 and _status(c)["current"]
    _same(c, SearchSpec("e", anchors=[keys[5]], min_score=0.3, where={"colour": "purple"}))


def test_pushed_down_filters_keep_every_matching_row(cat):
    """The engine's filter is a superset of the catalog's (equal where it maps exactly)."""
    c, keys = cat
    c.add_labels(keys[::7], ["dog"])
    c.set_metadata({"score": 2.5}, ids=keys[:30])
    c.engines.sync()
    emb = c.get_embedding("e")
    cfg = c.engines.config()
    engine, name = connect(cfg), cfg.collection(emb)
    probe = np.zeros(DIMS, np.float32)
    probe[0] = 1.0
    for w, exact in [({"colour": "red"}, True), ({"camera.iso": {"$gt": 200, "$lte": 600}}, True),
                     ({"n": {"$in": [1, 2, 3, "x"]}}, True), ({"label": {"$in": ["dog", "emu"]}}, True),
                     ({"$nor": [{"colour": "red"}, {"labeled": True}]}, True), ({"score": 2.5}, True),
                     ({"camera": {"$exists": True}, "flagged": {"$ne": True}}, False),
                     ({"$or": [{"colour": "blue"}, {"created_at": {"$gte": "2000-01-01"}}]}, False),
                     ({"$not": {"global_key": {"$prefix": "row-00"}}}, False)]:
        flt = to_engine_filter(w)
        got = set(engine.query(name, probe, 1e9, flt, 10 * N, 0))
        want = set(c.filter_row_ids(w))
        assert want <= got, w
        assert (got == want) if exact else True, w
        if not exact:
            assert flt is None or got != set(), w


def test_a_failing_engine_is_one_line_and_auto_falls_back(cat, tmp_path):
    c, keys = cat
    c.engines.sync()
    cfg = c.engines.config()
    from catalog.engine.client import disconnect
    disconnect(cfg.url)
    import shutil
    shutil.rmtree(cfg.path)
    spec = SearchSpec("e", anchors=[keys[2]], min_score=0.6)
    res = c.search(spec, Page(None))
    assert res.backend == "exact" and len(res.warnings) == 1 and cfg.url in res.warnings[0]
    assert "searched locally instead" in res.warnings[0]
    assert [h.id for h in res.results] == [h.id for h in c.search(spec, Page(None), backend="exact").results]
    with pytest.raises(EngineError, match=f"the vector engine at {cfg.url} ") as err:
        c.search(spec, backend="qdrant")
    assert "\n" not in str(err.value)


def test_configuration_errors_write_nothing(tmp_path, capsys):
    c = Catalog(tmp_path / "c.duckdb")
    for args, message in [
        (("ftp://h",), "engine URL 'ftp://h' is not supported"),
        (("edge:",), "engine URL 'edge:' names no folder"),
        (("http://h:70000",), "has port 70000, outside 1-65535"),
        (("local:/x", 2), "`shards` and `replicas` apply to a Qdrant server"),
        (("http://h:6333", 0), "`shards` must be a whole number from 1 to 1024, got 0"),
    ]:
        with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
            c.engines.set_engine(*args)
        assert c.engines.engine() is None
    with pytest.raises(CatalogError, match="`api_key_env` must name an environment variable"):
        c.engines.set_engine("http://127.0.0.1:1", api_key_env="A-B")
    assert main(["--db", str(tmp_path / "c.duckdb"), "engine", "set", "ftp://h"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: engine URL 'ftp://h' is not supported")
    with pytest.raises(CatalogError, match="no vector engine is configured"):
        c.engines.sync()
    with pytest.raises(CatalogError, match="no vector engine is configured"):
        c.search(SearchSpec("clip-vit-b-32", anchors=[[1.0] * 512], min_score=0.5), backend="qdrant")


def test_an_unreachable_server_names_its_url(tmp_path, monkeypatch, capsys):
    c = Catalog(tmp_path / "c.duckdb")
    keys = make_rows(c, tmp_path, 20)
    c.create_embedding("e", 8).import_vectors(keys, clustered(20, 8))
    monkeypatch.delenv("CATALOG_TEST_KEY", raising=False)
    c.engines.set_engine("http://127.0.0.1:9", api_key_env="CATALOG_TEST_KEY")
    with pytest.raises(CatalogError, match="the API key variable CATALOG_TEST_KEY of the vector engine at "
                                           "http://127.0.0.1:9 is not set"):
        c.engines.sync()
    c.engines.set_engine("http://127.0.0.1:9")
    db = str(tmp_path / "c.duckdb")
    assert main(["--db", db, "engine", "sync"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the vector engine at http://127.0.0.1:9 failed to ") and "\n" not in err
    with c.store.connect() as con:  # nothing was written
        assert con.execute("SELECT count(*) FROM engine_sync").fetchone()[0] == 0
    assert c.search(SearchSpec("e", anchors=[keys[0]], min_score=0.0)).backend == "exact"


def test_the_command_line(tmp_path, capsys):
    c = Catalog(tmp_path / "c.duckdb")
    keys = make_rows(c, tmp_path, 50)
    c.create_embedding("e", 8).import_vectors(keys, clustered(50, 8))
    db = str(tmp_path / "c.duckdb")
    run = lambda *a: (main(["--db", db, *a]), capsys.readouterr())  # noqa: E731
    rc, out = run("engine", "show")
    assert rc == 0 and "no engine is set" in out.out
    rc, out = run("engine", "set", f"edge:{tmp_path / 'eng'}")
    assert rc == 0 and "Engine set: edge:" in out.out
    rc, out = run("engine", "sync")
    assert rc == 0 and "e: version 1, 50 vectors in the engine (50 sent, 0 deleted)" in out.out
    rc, out = run("engine", "status")
    assert rc == 0 and "pending: 0 to send, 0 to delete; current" in out.out
    rc, out = run("search", "-e", "e", "-a", keys[0], "--min", "0", "--backend", "qdrant", "--json")
    rc2, out2 = run("search", "-e", "e", "-a", keys[0], "--min", "0", "--backend", "exact", "--json")
    assert rc == rc2 == 0 and out.out == out2.out
    rc, out = run("engine", "unset")
    assert rc == 0 and "Engine unset" in out.out
    rc, out = run("search", "-e", "e", "-a", keys[0], "--min", "0", "--backend", "qdrant")
    assert rc == 2 and out.err.startswith("error: no vector engine is configured")


def test_a_deleted_embedding_leaves_the_engine_at_the_next_sync(cat, tmp_path):
    c, keys = cat
    other = c.create_embedding("other", 8)
    other.import_vectors(keys[:40], clustered(40, 8, seed=4))
    reports = c.engines.sync()
    assert sorted(r.embedding for r in reports) == ["e", "other"]
    cfg = c.engines.config()
    engine, name = connect(cfg), cfg.collection(other)
    assert engine.exists(name) and engine.count(name) == 40
    c.delete_embedding("other")
    (r,) = c.engines.sync()
    assert r.embedding == "e" and r.sent == 0
    assert not engine.exists(name) and [s["embedding"] for s in c.engines.status()] == ["e"]


def test_an_engine_folder_open_in_another_process_is_one_line(cat, tmp_path):
    """Qdrant Edge and local mode serve one process at a time: the second is told so, nothing changes."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path
    c, keys = cat
    c.engines.sync()
    cfg = c.engines.config()
    code = textwrap.dedent(f"""
        import sys
        from catalog import Catalog, SearchSpec, Page
        cat = Catalog({str(c.path)!r})
        try:
            cat.engines.sync()
        except Exception as exc:
            print(type(exc).__name__, exc)
        res = cat.search(SearchSpec("e", anchors=[{keys[0]!r}], min_score=0.5), Page(None))
        print(res.backend, len(res.warnings))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    lines = out.stdout.strip().splitlines()
    assert lines[0] == (f"EngineError the vector engine at {cfg.url} is open in another process ({cfg.kind}: serves one "
                        "process at a time); close that process (a dashboard, a sync) and run this again, or use a "
                        "Qdrant server"), out.stdout + out.stderr
    assert lines[1] == "exact 1"
    assert _status(c)["current"]


def test_answers_larger_than_a_page_are_whole(cat, monkeypatch):
    """Many tied rows and an answer many times the engine's page: every row comes back once."""
    import catalog.search.backends.qdrant as qb
    c, keys = cat
    v = np.ones((60, DIMS), np.float32)
    c.get_embedding("e").import_vectors(keys[:60], v * np.arange(1, 61, dtype=np.float32)[:, None])  # one direction
    c.engines.sync()
    monkeypatch.setattr(qb, "PAGE", 7)
    res = _same(c, SearchSpec("e", anchors=[keys[0]], min_score=0.3, include_anchors=True))
    assert res.total > 200 and sum(h.score == res.results[0].score for h in res.results) >= 60


def test_setting_the_same_engine_again_keeps_its_collections(cat):
    c, keys = cat
    c.engines.sync()
    url = c.engines.engine()["url"]
    c.engines.set_engine(url)  # the same URL: the next sync has nothing to send
    assert _status(c)["state"] == "never" and _status(c)["pending_send"] == 0
    (r,) = c.engines.sync()
    assert (r.sent, r.count) == (0, N)
