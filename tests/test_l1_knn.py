"""Exact batched L1 k-nearest neighbours: the native 8-bit-prefilter kernel and the faiss path give
the brute-force answer (same neighbours, same order, same scores), ties going to the smaller index."""

from __future__ import annotations

import json

import numpy as np
import pytest

import catalog.l1_knn as mod
from catalog.errors import CatalogError
from catalog.l1_knn import knn_l1, knn_l1_faiss, knn_l1_native
from catalog.scoring import normalize, score_from_l1

needs_native = pytest.mark.skipif(not mod.native_available(), reason="native L1 kernel not built (no C compiler?)")
KERNELS = [pytest.param("native", marks=needs_native), "faiss"]


def l1_float32(q, x):
    """float32 L1 distances summed in faiss's order (8 lanes, folded to 4, a 4-lane tail, pairwise,
    then a scalar tail), so that equal float32 sums are the same ties for every implementation."""
    a = np.abs(q[:, None, :] - x[None, :, :])  # float32
    d = a.shape[-1]
    n8 = d // 8 * 8
    acc = np.zeros(a.shape[:2] + (8,), np.float32)
    for i in range(0, n8, 8):
        acc = acc + a[..., i:i + 8]
    m = acc[..., 4:] + acc[..., :4]
    i = n8
    if i + 4 <= d:
        m = m + a[..., i:i + 4]
        i += 4
    out = (m[..., 2] + m[..., 0]) + (m[..., 3] + m[..., 1])
    for j in range(i, d):
        out = out + a[..., j]
    return out


def brute_force(queries, pool, k):
    """numpy reference: every distance, order by (distance, index)."""
    q = np.asarray(queries, dtype=np.float32)
    x = np.asarray(pool, dtype=np.float32)
    dist = np.vstack([l1_float32(q[s:s + 8], x) for s in range(0, len(q), 8)])
    exact = np.vstack([np.abs(q[s:s + 8, None, :].astype(np.float64) - x[None]).sum(-1) for s in range(0, len(q), 8)])
    np.testing.assert_allclose(dist, exact, rtol=2e-6)  # the float32 sums are the real distances
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, order, axis=1)
    if k > len(x):
        order = np.pad(order, ((0, 0), (0, k - len(x))), constant_values=-1)
        d = np.pad(d, ((0, 0), (0, k - len(x))), constant_values=np.inf)
    return d, order


def assert_same(got, ref, dims):
    (d, i), (rd, ri) = got, ref
    assert i.dtype == np.int64 and d.dtype == np.float32
    np.testing.assert_array_equal(i, ri)
    ok = ri >= 0
    assert np.isinf(d[~ok]).all()
    np.testing.assert_allclose(score_from_l1(d[ok], dims), score_from_l1(rd[ok], dims), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(d[ok], rd[ok])


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
    assert_same(got, brute_force(queries, pool, k), queries.shape[1])


@needs_native
@pytest.mark.parametrize("data", ["random", "clustered", "dims8", "dims2048", "odd-dims"])
def test_native_equals_faiss_exactly(data):
    rng = np.random.default_rng(11)
    queries, pool = dataset(data, rng)
    nd, ni = knn_l1_native(queries, pool, 10)
    fd, fi = knn_l1_faiss(queries, pool, 10)
    np.testing.assert_array_equal(ni, fi)
    np.testing.assert_allclose(nd, fd, rtol=1e-6)
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
    assert_same((d, i), brute_force(queries, pool, 7), 24)
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
    assert_same((d, i), brute_force(x[:100], x[100:], 10), 256)
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
    assert_same(knn_l1(queries, pool, 4), brute_force(queries, pool, 4), 32)
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
    for a, b in zip(out["native"]["results"], out["faiss"]["results"]):
        assert a["id"] == b["id"]
        assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
        np.testing.assert_allclose([h["score"] for h in a["hits"]], [h["score"] for h in b["hits"]], atol=1e-6)
        assert [(s["label"], s["suggested"]) for s in a["labels"]] == [(s["label"], s["suggested"]) for s in b["labels"]]
        np.testing.assert_allclose([s["score"] for s in a["labels"]], [s["score"] for s in b["labels"]], atol=1e-6)
