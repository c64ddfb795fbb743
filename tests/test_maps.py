"""Embedding maps (issue #17): PCA with known answers, the cache per vector version and its
staleness, point-in-polygon selection (boundary rule included), colours and export."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from catalog import CatalogError, NotFound
from catalog.maps import MAX_VERTICES, points_in_polygon, projection
from catalog.search import SearchSpec

ATOL = 1e-4  # float32 projections of unit vectors: coordinates agree to this


def planted(n=600, dims=16, seed=1):
    """Rows spread mostly along e1 (three clusters there), less along e2, barely elsewhere; a big
    constant e0 keeps every direction's norm near 1 so the normalisation changes little."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 3, n)
    m = np.zeros((n, dims), np.float32)
    m[:, 0] = 10.0
    m[:, 1] = (cluster - 1) * 3.0 + rng.normal(0, 0.2, n)
    m[:, 2] = rng.normal(0, 1.0, n)
    m[:, 3:] = rng.normal(0, 0.05, (n, dims - 3))
    return m, cluster


def fill(cat, tmp_path, matrix, labels=None, meta=None, name="emb"):
    keys = [f"row-{i:05d}" for i in range(len(matrix))]
    path = tmp_path / "rows.ndjson"
    with open(path, "w") as fh:
        for i, k in enumerate(keys):
            fh.write(json.dumps({"global_key": k, "text": f"text {i}", "metadata": (meta or {}).get(k, {})}) + "\n")
    cat.import_datarows([path])
    emb = cat.create_embedding(name, matrix.shape[1])
    emb.import_vectors(keys, matrix)
    for k, lab in (labels or {}).items():
        cat.set_labels(k, [lab])
    return emb, keys


def exact_pca(unit):
    c = unit.astype(np.float64) - unit.mean(axis=0, dtype=np.float64)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    axes = vt[:2].T
    big = np.argmax(np.abs(axes), axis=0)
    axes *= np.where(axes[big, [0, 1]] < 0, -1.0, 1.0)
    return c @ axes


def test_pca_of_planted_data_is_the_exact_pca(cat, tmp_path):
    matrix, cluster = planted()
    emb, keys = fill(cat, tmp_path, matrix)
    seen = []
    made = cat.maps.compute(emb, progress=lambda d, t: seen.append((d, t)))
    ids, unit = cat.cache.load(emb.refresh())
    assert made.method == "pca" and len(made) == 600 and list(made.ids) == list(ids)
    np.testing.assert_allclose(made.xy, exact_pca(np.asarray(unit)), atol=ATOL)
    assert made.explained[0] > 0.8 > made.explained[1] > 0.05  # e1 carries most of the variance, e2 the next
    x_by_cluster = [made.xy[:, 0][np.isin(made.ids, np.array(cat.resolve_row_ids(keys))[cluster == c])]
                    for c in range(3)]
    assert x_by_cluster[0].max() < x_by_cluster[1].min() and x_by_cluster[1].max() < x_by_cluster[2].min()
    assert seen[0] == (0, 600) and seen[-1] == (600, 600)


def test_pca_above_the_fit_sample_projects_every_row(monkeypatch):
    matrix, _ = planted(n=5000)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    monkeypatch.setattr(projection, "PCA_FIT_ROWS", 2000)
    monkeypatch.setattr(projection, "BLOCK_ROWS", 700)
    xy, explained = projection.pca(unit)
    full = exact_pca(unit)
    assert xy.shape == (5000, 2)
    corr = [abs(np.corrcoef(xy[:, i], full[:, i])[0, 1]) for i in range(2)]
    assert min(corr) > 0.999  # axes fitted on a sample of 2,000 agree with the full PCA
    np.testing.assert_array_equal(projection.pca(unit)[0], xy)  # seeded: the same picture every time


def test_tiny_embeddings_and_errors(cat, tmp_path):
    emb, keys = fill(cat, tmp_path, planted(n=1)[0])
    assert cat.maps.compute(emb).xy.tolist() == [[0.0, 0.0]]
    with pytest.raises(CatalogError, match="not known; use pca or umap") as err:
        cat.maps.compute(emb, method="tsne")
    assert err.value.field == "method"
    with pytest.raises(CatalogError, match="UMAP needs at least 10 rows") as err:
        cat.maps.compute(emb, method="umap")
    empty = cat.create_embedding("empty", 8)
    with pytest.raises(CatalogError, match="has no vectors"):
        cat.maps.compute(empty)
    with pytest.raises(NotFound, match="has no map yet"):
        cat.maps.get(empty)
    assert not (cat.store.cache_dir / "maps" / f"{empty.id}-v0-pca.npy").exists()


def test_cached_per_version_and_stale_after_a_vector_import(cat, tmp_path):
    matrix, _ = planted(n=200)
    emb, keys = fill(cat, tmp_path, matrix)
    made = cat.maps.compute(emb)
    emb = emb.refresh()
    path = cat.store.cache_dir / "maps" / f"{emb.id}-v{emb.version}-pca.npy"
    assert path.exists() and json.loads(path.with_suffix(".json").read_text())["points"] == 200
    from catalog import Catalog
    again = Catalog(cat.path).maps.get(emb.name)  # another Catalog of the same file reads the file
    np.testing.assert_array_equal(again.xy, made.xy)
    assert cat.maps.info(emb)["current"] is True
    emb.import_vectors(keys[:5], matrix[:5] * -1)  # the vectors change: the map is stale
    assert cat.maps.info(emb)["current"] is False
    with pytest.raises(NotFound, match=r"made from older vectors \(version \d+, now \d+\)") as err:
        cat.maps.get(emb)
    assert err.value.hint == "compute the map again"
    with pytest.raises(NotFound, match="older vectors"):
        cat.maps.select_in_polygon(emb, [(0, 0), (1, 0), (1, 1)])
    fresh = cat.maps.compute(emb)
    assert not path.exists() and fresh.version == emb.refresh().version  # the old version's map is gone
    assert cat.maps.get(emb).version == fresh.version


def test_polygon_rule_points_on_edges_and_vertices_are_inside():
    pts = np.array([[0, 0], [2, 0], [2, 2], [0, 2],  # the square's vertices
                    [1, 0], [2, 1], [1, 2], [0, 1],  # points on its edges
                    [1, 1], [0.5, 1.5],               # inside
                    [3, 1], [-1e-3, 1], [1, 2.001], [2.5, 2.5]], dtype=np.float32)  # outside
    square = [(0, 0), (2, 0), (2, 2), (0, 2)]
    assert points_in_polygon(pts, square).tolist() == [True] * 10 + [False] * 4
    tri = [(0, 0), (4, 0), (0, 4)]  # a slanted edge x + y = 4
    on = np.array([[1, 3], [2, 2], [3, 1], [2.5, 1.5], [2, 2.01], [0.1, 0.1]])
    assert points_in_polygon(on, tri).tolist() == [True, True, True, True, False, True]
    bow = [(0, 0), (2, 2), (2, 0), (0, 2)]  # self-crossing: the even-odd rule fills both triangles
    assert points_in_polygon(np.array([[0.2, 1], [1.8, 1], [1, 0.2], [1, 1.8]]), bow).tolist() == \
        [True, True, False, False]
    assert points_in_polygon(np.array([[0, 0], [1, 1]]), {"x": [0, 1, 1], "y": [0, 0, 1]}).tolist() == [True, True]


def test_polygon_selection_matches_a_brute_force_count():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1, 1, (20_000, 2)).astype(np.float32)
    t = np.linspace(0, 2 * np.pi, 301)[:-1]
    r = 0.6 + 0.25 * np.sin(5 * t)  # a star-like lasso
    poly = np.c_[r * np.cos(t), r * np.sin(t)]
    got = points_in_polygon(xy, poly)
    ang = np.arctan2(xy[:, 1], xy[:, 0]) % (2 * np.pi)
    rad = np.hypot(xy[:, 0], xy[:, 1])
    k = np.floor(ang / (2 * np.pi / 300)).astype(int) % 300  # the edge each point's angle falls in
    p1, p2 = poly[k], poly[(k + 1) % 300]
    side = (p2[:, 0] - p1[:, 0]) * (xy[:, 1] - p1[:, 1]) - (p2[:, 1] - p1[:, 1]) * (xy[:, 0] - p1[:, 0])
    assert (got == (side >= 0)).mean() == 1.0 and 2000 < got.sum() < 18_000
    assert rad[got].max() <= 0.85 + 1e-6


def test_polygon_errors_name_the_polygon():
    xy = np.zeros((3, 2))
    for bad, msg in [([(0, 0), (1, 1)], "at least 3 vertices"), ("abc", "list of"),
                     ([(0, 0), (1, np.nan), (1, 0)], "finite"),
                     ([(0, 0)] * (MAX_VERTICES + 1), f"at most {MAX_VERTICES:,} vertices")]:
        with pytest.raises(CatalogError, match=msg) as err:
            points_in_polygon(xy, bad)
        assert err.value.field == "polygon"


def test_select_in_polygon_and_box_give_row_ids(cat, tmp_path):
    matrix, cluster = planted(n=300)
    emb, keys = fill(cat, tmp_path, matrix)
    made = cat.maps.compute(emb)
    x = made.xy[:, 0]
    cut = float((np.sort(x)[99] + np.sort(x)[100]) / 2)
    lo, hi = float(made.xy[:, 1].min()) - 1, float(made.xy[:, 1].max()) + 1
    got = cat.maps.select_in_polygon(emb, [(float(x.min()) - 1, lo), (cut, lo), (cut, hi), (float(x.min()) - 1, hi)])
    assert isinstance(got, np.ndarray) and len(got) == 100
    assert set(got) == set(made.ids[x <= cut])
    assert list(cat.maps.select_in_box(emb, cut, hi, float(x.min()) - 1, lo)) == list(got)


def test_point_values_label_metadata_score(cat, tmp_path):
    matrix, cluster = planted(n=50)
    keys = [f"row-{i:05d}" for i in range(50)]
    labels = {keys[0]: "cat", keys[1]: "dog"}
    meta = {keys[0]: {"split": "train", "q": {"n": 3}}, keys[2]: {"split": "test"}}
    emb, _ = fill(cat, tmp_path, matrix, labels=labels, meta=meta)
    cat.set_labels(keys[0], ["ant"])  # several labels: the first A-Z
    made = cat.maps.compute(emb)
    at = {k: int(np.flatnonzero(made.ids == rid)[0]) for k, rid in zip(keys, cat.resolve_row_ids(keys))}
    lab = cat.maps.point_values(emb, "label")
    assert (lab[at[keys[0]]], lab[at[keys[1]]], lab[at[keys[2]]]) == ("ant", "dog", None)
    split = cat.maps.point_values(emb, "metadata", "split")
    assert (split[at[keys[0]]], split[at[keys[2]]], split[at[keys[3]]]) == ("train", "test", None)
    assert cat.maps.point_values(emb, "metadata", "metadata.q.n")[at[keys[0]]] == "3"
    spec = SearchSpec(embedding=emb.name, anchors=[keys[0]])
    score = cat.maps.point_values(emb, "score", spec=spec)
    assert np.isnan(score[at[keys[0]]])  # the anchor itself is left out
    want = {h.global_key: h.score for h in cat.search(emb.name, anchors=[keys[0]], min_score=0.0, max_score=1.0, limit=None).results}
    assert all(abs(score[at[k]] - s) <= 1e-6 for k, s in want.items()) and len(want) == 49
    for by, fld, msg in [("size", None, "coloured by"), ("metadata", 'a"b', "dotted name"), ("score", None, "needs a search")]:
        with pytest.raises(CatalogError, match=msg):
            cat.maps.point_values(emb, by, fld)


def test_export_csv_and_ndjson(cat, tmp_path):
    matrix, _ = planted(n=20)
    emb, keys = fill(cat, tmp_path, matrix)
    made = cat.maps.compute(emb)
    buf = io.StringIO()
    assert cat.maps.export(emb, buf) == 20
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["id"] for r in lines] == list(made.ids) and sorted(r["global_key"] for r in lines) == keys
    assert abs(lines[0]["x"] - float(made.xy[0, 0])) <= 1e-6
    out = tmp_path / "map.csv"
    assert cat.maps.export(emb, out, fmt="csv") == 20
    assert out.read_text().splitlines()[0] == "id,global_key,x,y"
    with pytest.raises(CatalogError, match="not supported") as err:
        cat.maps.export(emb, tmp_path / "no.txt", fmt="xml")
    assert err.value.field == "fmt" and not (tmp_path / "no.txt").exists()


def test_umap_separates_planted_clusters(cat, tmp_path):
    pytest.importorskip("umap", exc_type=ImportError)
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 1, (3, 16))
    cluster = np.repeat(np.arange(3), 60)
    matrix = (centres[cluster] + rng.normal(0, 0.05, (180, 16))).astype(np.float32)
    emb, keys = fill(cat, tmp_path, matrix)
    made = cat.maps.compute(emb, method="umap")
    assert made.method == "umap" and made.xy.shape == (180, 2) and made.explained is None
    rid = np.array(cat.resolve_row_ids(keys))
    groups = [made.xy[np.isin(made.ids, rid[cluster == c])] for c in range(3)]
    centre = [g.mean(axis=0) for g in groups]
    spread = max(np.linalg.norm(g - c, axis=1).max() for g, c in zip(groups, centre))
    gap = min(np.linalg.norm(centre[a] - centre[b]) for a in range(3) for b in range(a + 1, 3))
    assert gap > spread  # each cluster is its own island
    assert cat.maps.get(emb).method == "umap"
    with pytest.raises(NotFound, match="has no pca map yet"):
        cat.maps.get(emb, "pca")
    cat.maps.compute(emb)  # both methods kept for one version; the latest is the default
    assert cat.maps.get(emb).method == "pca" and cat.maps.get(emb, "umap").method == "umap"


def test_umap_limits(cat, tmp_path, monkeypatch):
    emb, keys = fill(cat, tmp_path, planted(n=30)[0])
    monkeypatch.setattr(projection, "UMAP_MAX_ROWS", 20)
    with pytest.raises(CatalogError, match="UMAP is limited to 20 rows") as err:
        cat.maps.compute(emb, method="umap")
    assert err.value.field == "method"


def reference_inside(x, y, poly) -> bool:
    """One point, plainly: on an edge (exactly, in float64) or inside by the even-odd rule."""
    inside = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
        if (x2 - x1) * (y - y1) == (y2 - y1) * (x - x1) and min(x1, x2) <= x <= max(x1, x2) \
                and min(y1, y2) <= y <= max(y1, y2):
            return True
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_point_index_matches_a_plain_reference():
    rng = np.random.default_rng(8)
    xy = rng.normal(0, 1, (5000, 2)).astype(np.float32)
    xy[:50] = np.round(xy[:50])  # ties in y and points on integer edges
    from catalog.maps import PointIndex
    index = PointIndex(xy)
    for poly in ([(-1, -1), (1, -1), (1, 1), (-1, 1)], [(0, -2), (2, 0), (0, 2), (-2, 0)],
                 [(-3, -3), (3, -3), (0, 0.5)], [(5, 5), (6, 5), (6, 6)]):
        got = index.select(poly)
        assert list(got) == [i for i, (x, y) in enumerate(xy.astype(float)) if reference_inside(x, y, poly)]
        assert list(got) == sorted(got)
    assert len(PointIndex(np.zeros((0, 2), np.float32)).select([(0, 0), (1, 0), (1, 1)])) == 0


def test_global_keys_of_ids_for_a_selection_slice(cat, tmp_path):
    emb, keys = fill(cat, tmp_path, planted(n=30)[0])
    ids = cat.resolve_row_ids(keys[::-1])
    assert cat.datarows.global_keys(ids) == keys[::-1] and cat.datarows.global_keys([]) == []
    with pytest.raises(NotFound, match="no data row with id 'nope'"):
        cat.datarows.global_keys([ids[0], "nope"])


def test_umap_available_looks_up_without_importing():
    """The Map page asks on every draw; importing umap compiles numba code (up to a minute when fresh)."""
    import subprocess
    import sys
    code = ("import sys; from catalog.maps import umap_available; ok = umap_available(); "
            "print(ok, 'umap' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]
    assert out[0] == str(all(__import__("importlib.util").util.find_spec(m) is not None
                              for m in ("umap", "numba", "pynndescent")))
