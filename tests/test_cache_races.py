"""The vector cache under concurrent change: a search that meets new vectors starts again on them
(never an error), and dropping an embedding's cache never removes a copy that is being built."""

from __future__ import annotations

import threading
import time

import numpy as np
from search_support import clustered, make_embedding

from catalog import Catalog
from catalog.search.service import SEARCH_ATTEMPTS


def test_invalidate_keeps_folders_being_built_and_drops_finished_versions(tmp_path):
    cat = Catalog(tmp_path / "c.duckdb")
    emb, keys, _ = make_embedding(cat, tmp_path, n=50, dims=8)
    cat.search(emb.name, anchors=[keys[0]], min_score=0.0, limit=1)  # builds <id>-v<N>
    cache_dir = cat.store.cache_dir
    built = cache_dir / f"{emb.id}-v{cat.get_embedding(emb.name).version}"
    assert (built / "ids.npy").exists()
    building = cache_dir / f"{emb.id}-v99.tmp4242-1"  # another process's build in progress
    building.mkdir()
    (building / "vectors.npy").write_bytes(b"partial")
    cat.cache.invalidate(emb.id)
    assert not built.exists()
    assert building.exists() and (building / "vectors.npy").read_bytes() == b"partial"


def test_searches_while_the_vectors_change_all_answer(tmp_path):
    cat = Catalog(tmp_path / "c.duckdb")
    emb, keys, x = make_embedding(cat, tmp_path, n=3000, dims=32)
    cat.store.hold()  # the server's way: threads share one open database
    errors, answered, stop = [], [], threading.Event()

    def writer():
        for i in range(4):
            cat.get_embedding(emb.name).import_vectors(keys[:200], clustered(200, 32, seed=100 + i))
            time.sleep(0.1)  # imports a moment apart, as clients send them

    def reader():
        while not stop.is_set():
            try:
                r = cat.search(emb.name, anchors=[keys[-1]], min_score=0.0, limit=5)
                assert len(r.results) == 5
                answered.append(1)
            except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
                errors.append(repr(exc))
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join(300)
    stop.set()
    for t in readers:
        t.join(300)
    cat.store.release()
    assert errors == [] and answered
    assert SEARCH_ATTEMPTS >= 2
    final = cat.search(emb.name, anchors=[keys[0]], min_score=0.0, limit=None)
    assert final.total == 2999 and np.isfinite([h.score for h in final.results]).all()


def test_a_search_that_keeps_meeting_changes_gives_up_with_the_busy_message(tmp_path, monkeypatch):
    """After SEARCH_ATTEMPTS tries the search says the vectors changed (a CatalogBusy: 503 in the API)."""
    from catalog import CatalogBusy
    from catalog.errors import VectorsChanged
    cat = Catalog(tmp_path / "c.duckdb")
    emb, keys, _ = make_embedding(cat, tmp_path, n=50, dims=8)
    tries = []

    def always_changed(*args, **kwargs):
        tries.append(1)
        raise VectorsChanged(f"the vectors of embedding {emb.name} changed during the search; run it again")
    monkeypatch.setattr(cat.searcher, "_search", always_changed)
    try:
        cat.search(emb.name, anchors=[keys[0]], min_score=0.0, limit=1)
        raise AssertionError("expected VectorsChanged")
    except CatalogBusy as exc:
        assert isinstance(exc, VectorsChanged)
        assert str(exc.message) == f"the vectors of embedding {emb.name} changed during the search; run it again"
    assert len(tries) == SEARCH_ATTEMPTS


def test_a_new_catalog_at_a_used_path_drops_the_derived_files_left_there(tmp_path):
    """Built-in embeddings have fixed ids, so an old `<db>.cache` could pass for a new file's cache."""
    path = tmp_path / "c.duckdb"
    cat = Catalog(path)
    emb, keys, _ = make_embedding(cat, tmp_path, n=50, dims=8)
    cat.search(emb.name, anchors=[keys[0]], min_score=0.0, limit=1)
    built = cat.store.cache_dir / f"{emb.id}-v{cat.get_embedding(emb.name).version}"
    assert (built / "ids.npy").exists()
    Catalog(path).count_datarows()  # the same catalog opened again keeps its cache
    assert (built / "ids.npy").exists()
    (cat.store.cache_dir / "maps").mkdir(exist_ok=True)
    (cat.store.cache_dir / "maps" / "left.npy").write_bytes(b"old")
    del cat
    path.unlink()
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    fresh = Catalog(path)
    assert fresh.count_datarows() == 0
    assert not fresh.store.cache_dir.exists()
