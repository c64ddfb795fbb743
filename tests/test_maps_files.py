"""Map files follow their embedding (deleted with it; never read for other rows), UMAP's exact L1
neighbour graph, and slices of selected rows (a lasso's ids saved as they are)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_maps import fill, planted

from catalog import Catalog, CatalogError, NotFound
from catalog.filters import compile_filter
from catalog.maps import projection


def map_files(cat, emb_id):
    return sorted(p.name for p in (cat.store.cache_dir / "maps").glob(f"{emb_id}-*"))


def test_deleting_an_embedding_removes_its_maps_and_keeps_the_others(cat, tmp_path):
    matrix, _ = planted(n=120)
    emb, keys = fill(cat, tmp_path, matrix)
    other = cat.create_embedding("other", matrix.shape[1])
    other.import_vectors(keys, matrix[::-1].copy())
    cat.maps.compute(emb)
    cat.maps.compute(other)
    assert len(map_files(cat, emb.id)) == 2 and len(map_files(cat, other.id)) == 2  # .npy and .json
    cat.delete_embedding(emb.id)
    assert map_files(cat, emb.id) == []
    assert len(map_files(cat, other.id)) == 2 and len(cat.maps.get(other)) == 120
    again = cat.create_embedding("emb", matrix.shape[1])  # the name again: a new embedding, no map
    again.import_vectors(keys, matrix)
    with pytest.raises(NotFound, match="has no map yet"):
        cat.maps.get(again)


def test_a_map_file_made_for_other_rows_is_never_read(cat, tmp_path):
    """A map left in the cache folder by an earlier catalog file of the same path (or an embedding of
    the same id and version) has other rows: it is refused, in this process and in a fresh one."""
    matrix, _ = planted(n=80)
    emb, keys = fill(cat, tmp_path, matrix)
    made = cat.maps.compute(emb)
    folder = cat.store.cache_dir / "maps"
    saved = tmp_path / "saved-maps"
    shutil.copytree(folder, saved)
    fresh_db = tmp_path / "second" / "catalog.duckdb"
    fresh_db.parent.mkdir()
    second = Catalog(fresh_db)
    emb2, _ = fill(second, fresh_db.parent, matrix, name="emb")
    emb2 = emb2.refresh()
    target = second.store.cache_dir / "maps"
    target.mkdir(parents=True)
    for p in saved.iterdir():  # the old files under the new embedding's id and version
        name = p.name.replace(emb.id, emb2.id).replace(f"-v{emb.refresh().version}-", f"-v{emb2.version}-")
        shutil.copy(p, target / name)
    meta = json.loads((target / f"{emb2.id}-v{emb2.version}-pca.json").read_text())
    assert meta["points"] == len(made) == 80  # same size, other rows
    for reader in (second, Catalog(fresh_db)):
        with pytest.raises(NotFound, match="made for other rows") as err:
            reader.maps.get(emb2)
        assert err.value.field == "embedding" and err.value.hint == "compute the map again"
    remade = second.maps.compute(emb2)
    np.testing.assert_array_equal(Catalog(fresh_db).maps.get(emb2).ids, remade.ids)
    assert "rows_digest" not in second.maps.info(emb2)


def test_exact_knn_graph_matches_brute_force_with_the_row_first():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(300, 12)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    data[7] = data[3]  # an exact copy: it ties with the row itself at distance 0
    idx, dist = projection.exact_knn(data, 6)
    full = np.abs(data[:, None, :] - data[None, :, :]).sum(axis=2)
    assert idx.shape == dist.shape == (300, 6) and (idx[:, 0] == np.arange(300)).all() and (dist[:, 0] == 0).all()
    for r in range(300):
        others = np.delete(full[r], r)
        kth = np.sort(others)[4]
        assert (full[r, idx[r, 1:]] <= kth + 1e-5).all()  # tie-aware: within the 5 nearest other rows' distance
        np.testing.assert_allclose(dist[r, 1:], full[r, idx[r, 1:]], atol=1e-5)
        assert r not in idx[r, 1:]
    assert 7 in idx[3, 1:] and 3 in idx[7, 1:]


def test_umap_with_either_graph_and_a_bad_choice(cat, tmp_path):
    pytest.importorskip("umap", exc_type=ImportError)
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 1, (2, 16))
    matrix = (centres[np.repeat([0, 1], 50)] + rng.normal(0, 0.05, (100, 16))).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    for knn in projection.KNN:
        xy, explained = projection.umap(matrix, knn=knn)
        a, b = xy[:50], xy[50:]
        gap = np.linalg.norm(a.mean(0) - b.mean(0))
        assert explained is None and xy.shape == (100, 2) and gap > max(a.std(0).max(), b.std(0).max())
    with pytest.raises(CatalogError, match="exact or nndescent") as err:
        projection.umap(matrix, knn="annoy")
    assert err.value.field == "knn"


def test_auto_graph_is_exact_up_to_its_bound_then_nndescent(monkeypatch):
    pytest.importorskip("umap", exc_type=ImportError)
    used = []
    real = projection.exact_knn
    monkeypatch.setattr(projection, "exact_knn", lambda *a, **k: used.append(len(a[0])) or real(*a, **k))
    matrix = np.random.default_rng(2).normal(size=(60, 8)).astype(np.float32)
    monkeypatch.setattr(projection, "EXACT_KNN_MAX_ROWS", 60)
    projection.umap(matrix)
    assert used == [60]
    monkeypatch.setattr(projection, "EXACT_KNN_MAX_ROWS", 59)
    projection.umap(matrix)
    assert used == [60]  # above the bound: umap's own graph


def test_a_slice_of_selected_rows_holds_exactly_their_ids(cat, tmp_path):
    matrix, _ = planted(n=200)
    emb, keys = fill(cat, tmp_path, matrix)
    cat.maps.compute(emb)
    ids = cat.maps.select_in_box(emb, -10, -10, 10, 10)[:150]
    sl = cat.slices.save_rows("picked", ids, description="from the map")
    assert sl.query["where"] == {"id": {"$in": ids.tolist()}} and sl.description == "from the map"
    assert sorted(cat.get_slice("picked").row_ids()) == sorted(ids.tolist())
    with pytest.raises(CatalogError, match="already exists"):
        cat.slices.save_rows("picked", ids[:3])
    assert len(cat.slices.save_rows("picked", ids[:3], replace=True).row_ids()) == 3
    with pytest.raises(CatalogError, match="at least one row") as err:
        cat.slices.save_rows("empty-one", [])
    assert err.value.field == "rows" and [s.name for s in cat.get_slices()] == ["picked"]
    cat.delete_datarows([ids[0]])  # a deleted row leaves the slice
    assert len(cat.get_slice("picked").row_ids()) == 2


def test_long_string_lists_are_checked_and_bound_as_one_parameter():
    vals = [f"k{i}" for i in range(1000)]
    sql, params = compile_filter({"global_key": {"$in": vals}})
    assert "unnest" in sql and params == [vals]
    sql, params = compile_filter({"global_key": {"$in": vals[:3]}})
    assert "unnest" not in sql and params == vals[:3]
    for bad, words in ((vals + ["\ud800"], "valid Unicode"), (vals + ["a\x00b"], "NUL")):
        with pytest.raises(CatalogError, match=words):
            compile_filter({"global_key": {"$in": bad}})
    with pytest.raises(CatalogError, match="needs a string"):
        compile_filter({"global_key": {"$in": vals + [3]}})
