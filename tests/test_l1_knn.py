"""Exact batched L1 k-nearest neighbours: the native 8-bit-prefilter kernel and the faiss path give
the brute-force answer (same neighbours, same order, same distances up to float32 rounding, compared
tie-aware by ``knn_support``), ties going to the smaller index."""

from __future__ import annotations

import json

import numpy as np
import pytest

import catalog.search.l1_knn as mod
from catalog.errors import CatalogError
from catalog.search.l1_knn import knn_l1, knn_l1_faiss, knn_l1_native
from catalog.scoring import normalize
from knn_support import L1_RTOL, SCORE_ATOL, assert_knn_matches, assert_same_ranking, exact_l1

needs_native = pytest.mark.skipif(not mod.native_available(), reason="native L1 kernel not built (no C compiler?)")
KERNELS = [pytest.param("native", marks=needs_native), "faiss"]


def brute_force(queries, pool, k):
    """numpy reference: every distance (float64), order by (distance, index)."""
    dist = exact_l1(queries, pool)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, order, axis=1)
    if k > dist.shape[1]:
        order = np.pad(order, ((0, 0), (0, k - dist.shape[1])), constant_values=-1)
        d = np.pad(d, ((0, 0), (0, k - dist.shape[1])), constant_values=np.inf)
    return d, order


def assert_same(got, queries, pool):
    """``got`` is the brute-force answer for ``queries`` against ``pool``, up to float ties."""
    d, i = got
    assert i.dtype == np.int64 and d.dtype == np.float32
    assert_knn_matches(got, exact_l1(queries, pool))


def clustered(n, d, classes, rng, noise=0.8):
    centres = rng.standard_normal((classes, d))
    return normalize(centres[rng.integers(0, classes, n)] + noise * rng.standard_normal((n, d)))


def dataset(name, rng):
    if name == "random":
        x = normalize(rng.standard_normal((1700, 64)))
    elif name == "clustered":
        x = clustered(3200, 128, 20, rng)
    elif name == "dims8":
        x = normalize(rng.standard_normal((900, 8)))
    elif name == "dims2048":
        x = clustered(700, 2048, 10, rng)
    elif name == "odd-dims":
        x = clustered(800, 37, 5, rng, noise=0.3)
    return x[:200], x[200:]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("data", ["random", "clustered", "dims8", "dims2048", "odd-dims"])
@pytest.mark.parametrize("k", [1, 10, 150])
def test_same_as_brute_force(kernel, data, k):
    rng = np.random.default_rng(7)
    queries, pool = dataset(data, rng)
    got = knn_l1(queries, pool, k, kernel_choice=kernel)
    assert_same(got, queries, pool)


@needs_native
@pytest.mark.parametrize("data", ["random", "clustered", "dims8", "dims2048", "odd-dims"])
def test_native_equals_faiss_exactly(data):
    rng = np.random.default_rng(11)
    queries, pool = dataset(data, rng)
    nd, ni = knn_l1_native(queries, pool, 10)
    fd, fi = knn_l1_faiss(queries, pool, 10)
    for row in range(len(queries)):  # faiss sums in its own order; each is within L1_RTOL of the exact value
        assert_same_ranking(ni[row], nd[row], fi[row], fd[row], 2 * L1_RTOL * float(fd[row, -1]), what=f"query {row}")
    # the portable (non-AVX2) path gives bit-identical results
    pd, pi = knn_l1_native(queries, pool, 10, avx2=False)
    np.testing.assert_array_equal(pi, ni)
    np.testing.assert_array_equal(pd, nd)


def dyadic_ties(rng, n_pool=300, d=16):
    """Vectors of multiples of 1/8: every L1 sum is exact in float32, so equal distances are real ties.
    Duplicated rows and rows at equal distance (sign flips of a query's coordinates) everywhere."""
    base = rng.integers(-3, 4, size=(40, d)).astype(np.float32) / 8
    pool = base[rng.integers(0, len(base), n_pool)]  # many exact duplicates
    queries = base[:25].copy()
    shifted = queries.copy()
    shifted[:, 0] += 0.125  # pairs at the same distance: one step up and one step down in dimension 0
    lowered = queries.copy()
    lowered[:, 0] -= 0.125
    pool = np.vstack([pool, shifted, queries, lowered])
    return queries, pool


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 5, 30])
def test_ties_and_duplicates_go_to_the_smaller_index(kernel, k):
    queries, pool = dyadic_ties(np.random.default_rng(3))
    d, i = knn_l1(queries, pool, k, kernel_choice=kernel)
    rd, ri = brute_force(queries, pool, k)
    # exact on purpose: multiples of 1/8 sum exactly in float32 in any order, so the ties are real
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd.astype(np.float32))
    # there really are ties: many equal distances inside each top-k list
    if k > 1:
        assert (np.diff(d, axis=1) == 0).sum() > len(queries)
    # each query's own copies come first, at distance 0, in index order
    first = i[:, 0]
    assert (d[:, 0] == 0).all() and np.array_equal(pool[first], queries)


@pytest.mark.parametrize("kernel", KERNELS)
def test_k_larger_than_the_pool(kernel):
    rng = np.random.default_rng(5)
    queries, pool = normalize(rng.standard_normal((9, 24))), normalize(rng.standard_normal((4, 24)))
    d, i = knn_l1(queries, pool, 7, kernel_choice=kernel)
    assert d.shape == i.shape == (9, 7)
    assert_same((d, i), queries, pool)
    assert (i[:, 4:] == -1).all() and np.isinf(d[:, 4:]).all()
    assert sorted(i[0, :4]) == [0, 1, 2, 3]


@pytest.mark.parametrize("kernel", KERNELS)
def test_empty_inputs(kernel):
    pool = normalize(np.random.default_rng(0).standard_normal((5, 8)))
    d, i = knn_l1(np.empty((0, 8), np.float32), pool, 3, kernel_choice=kernel)
    assert d.shape == i.shape == (0, 3)
    d, i = knn_l1(pool[:2], np.empty((0, 8), np.float32), 3, kernel_choice=kernel)
    assert (i == -1).all() and np.isinf(d).all()


@needs_native
def test_native_prefilter_rescored_few_rows_on_clustered_data():
    rng = np.random.default_rng(2)
    x = clustered(6100, 256, 50, rng)
    stats = {}
    d, i = knn_l1_native(x[:100], x[100:], 10, stats=stats)
    assert_same((d, i), x[:100], x[100:])
    # the bounds did their job: a small share of the pool is re-scored in float32
    assert stats["rescored"] < 0.1 * stats["pairs"]
    assert stats["full_compares"] < stats["pairs"]


@needs_native
def test_non_finite_input_falls_back_to_faiss():
    rng = np.random.default_rng(4)
    queries, pool = normalize(rng.standard_normal((6, 16))), normalize(rng.standard_normal((50, 16)))
    pool[3, 2] = np.nan
    assert knn_l1_native(queries, pool, 5) is None
    d, i = knn_l1(queries, pool, 5, kernel_choice="native")
    fd, fi = knn_l1_faiss(queries, pool, 5)
    np.testing.assert_array_equal(i, fi)
    np.testing.assert_array_equal(d, fd)


def test_kernel_choice_from_the_environment(monkeypatch):
    monkeypatch.setenv(mod.KERNEL_ENV, "faiss")
    assert mod.kernel() == "faiss"
    monkeypatch.setenv(mod.KERNEL_ENV, "Auto")
    assert mod.kernel() == ("native" if mod.native_available() else "faiss")
    monkeypatch.setenv(mod.KERNEL_ENV, "gpu")
    with pytest.raises(CatalogError, match="CATALOG_L1_KERNEL='gpu' is not a known L1 kernel; use native, faiss"):
        knn_l1(np.ones((1, 4), np.float32), np.ones((2, 4), np.float32), 1)


def test_without_the_native_build_faiss_is_used(monkeypatch):
    monkeypatch.setattr(mod, "_l1kernel", None)
    monkeypatch.delenv(mod.KERNEL_ENV, raising=False)
    assert mod.kernel() == "faiss"
    rng = np.random.default_rng(8)
    queries, pool = normalize(rng.standard_normal((20, 32))), normalize(rng.standard_normal((300, 32)))
    assert_same(knn_l1(queries, pool, 4), queries, pool)
    monkeypatch.setenv(mod.KERNEL_ENV, "native")
    with pytest.raises(CatalogError, match="native L1 kernel .* is not built here; it needs a C compiler"):
        knn_l1(queries, pool, 4)


@needs_native
def test_label_by_similarity_is_the_same_with_both_kernels(cat, tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    n, dims = 400, 48
    x = clustered(n, dims, 6, rng, noise=0.6)
    keys = [f"r{i:03d}" for i in range(n)]
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": k, "text": k}) + "\n" for k in keys))
    cat.import_datarows([path])
    emb = cat.create_embedding("e", dims)
    emb.import_vectors(keys, x)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"{k},c{int(np.argmax(v[:6]))}\n" for k, v in zip(keys[::3], x[::3])))
    cat.import_labels(labels)
    out = {}
    for kernel in ("native", "faiss"):
        monkeypatch.setenv(mod.KERNEL_ENV, kernel)
        out[kernel] = cat.label_by_similarity("e", "unlabeled", results=5).to_dict()
    assert len(out["native"]["results"]) == n - len(keys[::3])
    tol = 2 * SCORE_ATOL  # two kernels, each within SCORE_ATOL of the exact score
    for a, b in zip(out["native"]["results"], out["faiss"]["results"]):
        assert a["id"] == b["id"]
        assert_same_ranking([h["id"] for h in a["hits"]], [h["score"] for h in a["hits"]],
                            [h["id"] for h in b["hits"]], [h["score"] for h in b["hits"]], tol, what=a["id"])
        if {h["id"] for h in a["hits"]} != {h["id"] for h in b["hits"]}:
            continue  # a tie at the k-th place went to another row: its labels count instead
        assert_same_ranking([s["label"] for s in a["labels"]], [s["score"] for s in a["labels"]],
                            [s["label"] for s in b["labels"]], [s["score"] for s in b["labels"]], tol, what=a["id"])
        assert {s["label"]: s["suggested"] for s in a["labels"]} == {s["label"]: s["suggested"] for s in b["labels"]}
