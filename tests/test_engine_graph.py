"""The HNSW graph parameters of the engine's collections (``engine set --hnsw-m N --hnsw-ef-construct N``):
bounded, stored with the engine, given to the shards it creates (read back from Qdrant Edge's own
shard configuration), used by the index build; and the sync's payload format (check values, payload
groups) as Qdrant Edge holds it."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("qdrant_edge", reason="the qdrant extra (qdrant-edge-py) is not installed")

from catalog import Catalog, CatalogError, Page, SearchSpec  # noqa: E402
from catalog.cli import main  # noqa: E402
from catalog.engine import client, sync  # noqa: E402
from catalog.engine.client import connect  # noqa: E402
from search_support import clustered, make_rows  # noqa: E402

N, DIMS = 1200, 16


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "catalog.duckdb")
    keys = make_rows(c, tmp_path, N)
    c.create_embedding("e", DIMS).import_vectors(keys, clustered(N, DIMS, clusters=8, noise=0.4, seed=3))
    yield c, keys, tmp_path
    c.engines.unset_engine()


def _shard_config(c):
    cfg = c.engines.config()
    return json.loads((cfg.path / cfg.collection(c.get_embedding("e")) / "edge_config.json").read_text())


def test_graph_parameters_reach_the_shard_and_the_index(cat, monkeypatch):
    c, keys, tmp = cat
    monkeypatch.setattr(client, "EDGE_INDEXING_KB", 1)  # a test-sized shard gets an HNSW graph
    shown = c.engines.set_engine(f"edge:{tmp / 'eng'}", hnsw_m=24, hnsw_ef_construct=160)
    assert (shown["hnsw_m"], shown["hnsw_ef_construct"]) == (24, 160)
    c.engines.sync()
    graph = _shard_config(c)["hnsw_config"]
    assert (graph["m"], graph["ef_construct"]) == (24, 160)
    meta = c.engines.index("e")
    assert meta["indexed_vectors"] == N and 0.9 <= meta["recall"] <= 1.0
    res = c.search(SearchSpec("e", anchors=[keys[3]], min_score=0.0), Page(20), backend="qdrant-hnsw")
    want = c.search(SearchSpec("e", anchors=[keys[3]], min_score=0.0), Page(20), backend="exact")
    assert len({h.id for h in res.results} & {h.id for h in want.results}) >= 18


def test_one_parameter_alone_keeps_qdrants_other_default(cat):
    c, keys, tmp = cat
    c.engines.set_engine(f"edge:{tmp / 'eng'}", hnsw_ef_construct=64)
    c.engines.sync()
    graph = _shard_config(c)["hnsw_config"]
    assert (graph["m"], graph["ef_construct"]) == (16, 64)


def test_default_parameters_leave_the_shard_to_qdrant(cat):
    c, keys, tmp = cat
    assert c.engines.set_engine(f"edge:{tmp / 'eng'}")["hnsw_m"] is None
    c.engines.sync()
    assert "hnsw_config" not in _shard_config(c)


def test_other_parameters_start_new_collections_the_same_keep_them(cat):
    c, keys, tmp = cat
    url = f"edge:{tmp / 'eng'}"
    c.engines.set_engine(url, hnsw_m=8)
    c.engines.sync()
    c.engines.set_engine(url, hnsw_m=8)
    (r,) = c.engines.sync()
    assert r.sent == 0
    c.engines.set_engine(url, hnsw_m=12)
    (r,) = c.engines.sync()
    assert r.sent == N and _shard_config(c)["hnsw_config"]["m"] == 12


@pytest.mark.parametrize("kwargs, message", [
    ({"hnsw_m": 3}, "`hnsw_m` must be a whole number from 4 to 128, got 3"),
    ({"hnsw_m": 129}, "`hnsw_m` must be a whole number from 4 to 128, got 129"),
    ({"hnsw_m": True}, "`hnsw_m` must be a whole number from 4 to 128, got True"),
    ({"hnsw_ef_construct": 7}, "`hnsw_ef_construct` must be a whole number from 8 to 2048, got 7"),
    ({"hnsw_ef_construct": 2049}, "`hnsw_ef_construct` must be a whole number from 8 to 2048, got 2049"),
    ({"hnsw_ef_construct": 1.5}, "`hnsw_ef_construct` must be a whole number from 8 to 2048, got 1.5"),
])
def test_parameters_out_of_bounds_write_nothing(cat, kwargs, message):
    c, keys, tmp = cat
    with pytest.raises(CatalogError, match=message) as err:
        c.engines.set_engine(f"edge:{tmp / 'eng'}", **kwargs)
    assert err.value.field == next(iter(kwargs))
    assert c.engines.engine() is None


def test_local_mode_refuses_graph_parameters(cat):
    c, keys, tmp = cat
    with pytest.raises(CatalogError, match="apply to edge: and to a Qdrant server, not to local:"):
        c.engines.set_engine(f"local:{tmp / 'eng'}", hnsw_m=16)
    assert c.engines.engine() is None


def test_the_command_line(cat, capsys):
    c, keys, tmp = cat
    db = str(c.path)
    assert main(["--db", db, "engine", "set", f"edge:{tmp / 'eng'}", "--hnsw-m", "20", "--hnsw-ef-construct", "128"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "engine", "show"]) == 0
    assert "hnsw_m=20 hnsw_ef_construct=128" in capsys.readouterr().out
    assert main(["--db", db, "engine", "set", f"edge:{tmp / 'eng'}", "--hnsw-m", "500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--hnsw-m" in err and "from 4 to 128" in err
    assert c.engines.engine()["hnsw_m"] == 20  # the refused command changed nothing


def test_the_payload_as_the_engine_holds_it(cat, monkeypatch):
    """Rows of a group large in a batch get its payload set in one request, the others inline; both
    read back alike, and a point whose group was never set (an interruption between the two
    requests) is sent again."""
    c, keys, tmp = cat
    c.add_labels(keys[:50], ["cat"])
    c.set_metadata({"colour": "teal"}, ids=keys[:2])  # a group of two rows: inline
    c.engines.set_engine(f"edge:{tmp / 'eng'}")
    c.engines.sync()
    cfg = c.engines.config()
    emb = c.get_embedding("e")
    engine, name = connect(cfg), cfg.collection(emb)
    import qdrant_edge as q
    rows = {r["global_key"]: r for r in c.get_datarows(keys[:60])}
    recs = engine._shard(name).retrieve([rows[k]["id"] for k in keys[:60]], with_payload=True, with_vector=False)
    got = {str(r.id): r.payload for r in recs}
    for k in keys[:60]:
        p = got[rows[k]["id"]]
        assert p["global_key"] == k and isinstance(p["vd"], int) and isinstance(p["gd"], int)
        assert ("labels" in p) == (k in keys[:50]) and "row_id" not in p and "digest" not in p
        assert (p["metadata"].get("colour") == "teal") == (k in keys[:2])
    victim = rows[keys[10]]["id"]
    engine._shard(name).update(q.UpdateOperation.delete_payload([victim], ["gd"]))
    assert c.engines.status()[0]["pending_send"] == 1
    (r,) = c.engines.sync()
    assert r.sent == 1
    res = c.search(SearchSpec("e", anchors=[keys[0]], min_score=0.0, where={"label": "cat"}), Page(None),
                   backend="qdrant")
    assert len(res.results) == 50 - 1  # every labelled row but the anchor, pushed down and exact


def test_groups_below_the_threshold_are_sent_inline(cat, monkeypatch):
    c, keys, tmp = cat
    monkeypatch.setattr(sync, "GROUP_MIN", 10**9)  # every group inline: the same stored payloads
    c.add_labels(keys[:30], ["dog"])
    c.engines.set_engine(f"edge:{tmp / 'eng'}")
    c.engines.sync()
    monkeypatch.setattr(sync, "GROUP_MIN", 1)  # every group in its own request: nothing differs
    (r,) = c.engines.sync()
    assert r.sent == 0
    spec = SearchSpec("e", anchors=[keys[40]], min_score=0.0, where={"label": "dog"})
    got = c.search(spec, Page(None), backend="qdrant")
    want = c.search(spec, Page(None), backend="exact")
    assert [h.id for h in got.results] == [h.id for h in want.results]
    assert np.allclose([h.score for h in got.results], [h.score for h in want.results], atol=1e-6, rtol=0)
