"""The native L1 kNN kernel's SAD kernels (AVX-512 BW, AVX2, portable) and comparison levels (pooled
first, full alone, chosen per pool tile) all give the exhaustive answer, on adversarial data too:
exact ties, duplicates, all-equal rows, clipped coordinates, k larger than the pool, pools and query
counts that do not fill a SIMD block or a pool tile."""

from __future__ import annotations

import numpy as np
import pytest

import catalog.search.l1_knn as mod
from catalog.scoring import normalize
from catalog.search.l1_knn import knn_l1_native
from knn_support import assert_knn_matches, exact_l1

pytestmark = pytest.mark.skipif(not mod.native_available(), reason="native L1 kernel not built (no C compiler?)")

COMBOS = [(simd, level) for simd in ("best", "avx2", "portable") for level in ("auto", "pooled", "full")]


def brute_force(queries, pool, k):
    """float64 distances ordered by (distance, index), padded with inf / -1 past the pool."""
    dist = exact_l1(queries, pool)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, order, axis=1)
    pad = k - dist.shape[1]
    if pad > 0:
        order = np.pad(order, ((0, 0), (0, pad)), constant_values=-1)
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.inf)
    return d, order


def all_combos(queries, pool, k):
    """Every SAD kernel x level; asserts they agree bit for bit and returns one answer."""
    ref = None
    for simd, level in COMBOS:
        got = knn_l1_native(queries, pool, k, simd=simd, level=level)
        assert got is not None
        if ref is None:
            ref = got
            continue
        # all re-score in the same summation order: identical distances and indices
        np.testing.assert_array_equal(got[1], ref[1], err_msg=f"{simd}/{level}")
        np.testing.assert_array_equal(got[0], ref[0], err_msg=f"{simd}/{level}")
    return ref


def dyadic(rng, n, d, values=7):
    """Multiples of 1/8: every L1 sum is exact in float32, so equal distances are real ties."""
    return (rng.integers(-(values // 2), values // 2 + 1, size=(n, d)) / 8).astype(np.float32)


@pytest.mark.parametrize("n_pool", [1, 2, 3, 4, 5, 7, 13])
@pytest.mark.parametrize("n_queries", [1, 3, 4, 6])
def test_tiny_pools_and_query_counts_off_the_block_size(n_pool, n_queries):
    rng = np.random.default_rng(n_pool * 10 + n_queries)
    x = dyadic(rng, n_pool + n_queries, 40)
    queries, pool = x[:n_queries], x[n_queries:]
    for k in (1, 4, n_pool + 3):  # k larger than the pool: padded with inf / -1
        d, i = all_combos(queries, pool, k)
        rd, ri = brute_force(queries, pool, k)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(d, rd.astype(np.float32))


def test_ties_and_duplicates_across_tiles_go_to_the_smaller_index():
    rng = np.random.default_rng(3)
    base = dyadic(rng, 30, 16, values=3)
    pool = base[rng.integers(0, len(base), 5000)]  # d = 16: more than two pool tiles of exact duplicates
    queries = np.vstack([base[:9], dyadic(rng, 6, 16, values=3)])
    for k in (1, 7, 40):
        d, i = all_combos(queries, pool, k)
        rd, ri = brute_force(queries, pool, k)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(d, rd.astype(np.float32))
        if k > 1:  # there really are ties inside the lists
            assert (np.diff(d, axis=1) == 0).sum() > len(queries)
    # a query equal to a pool row finds its copies first, at distance 0, in index order
    d, i = all_combos(base[:1], pool, 5)
    copies = np.flatnonzero((pool == base[0]).all(axis=1))
    assert list(i[0]) == list(copies[:5]) and (d[0] == 0).all()


def test_all_equal_rows_return_the_first_indices():
    pool = np.full((700, 33), 0.25, dtype=np.float32)
    queries = np.vstack([pool[:5], np.full((2, 33), -0.5, dtype=np.float32)])
    d, i = all_combos(queries, pool, 12)
    assert (i == np.arange(12)).all()
    np.testing.assert_array_equal(d[:5], 0)
    np.testing.assert_array_equal(d[5:], np.float32(0.75 * 33))


def test_zero_rows_and_a_constant_pool():
    pool = np.zeros((50, 8), dtype=np.float32)
    d, i = all_combos(np.zeros((3, 8), np.float32), pool, 60)
    assert (i[:, :50] == np.arange(50)).all() and (i[:, 50:] == -1).all()
    assert (d[:, :50] == 0).all() and np.isinf(d[:, 50:]).all()


def test_clipped_coordinates_keep_the_bounds_valid():
    """One huge coordinate per row sets a coarse step and clips the rest; still exact."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1500, 64)).astype(np.float32) * 0.01
    x[::7, 3] = 40.0
    x[5::11, 10] = -25.0
    queries, pool = x[:40], x[40:]
    got = all_combos(queries, pool, 9)
    assert_knn_matches(got, exact_l1(queries, pool))


@pytest.mark.parametrize("dims", [96, 600])  # rows of at most 256 bytes use the packed 16-bit reduction
@pytest.mark.parametrize("kind", ["noise", "clustered"])
def test_random_and_clustered_data_match_brute_force(kind, dims):
    rng = np.random.default_rng(12)
    if kind == "noise":  # distances all alike: the tile choice goes to the full SAD
        x = normalize(rng.standard_normal((2600, dims)))
    else:  # tight clusters: the pooled level prunes most pairs
        centres = rng.standard_normal((30, dims))
        x = normalize(centres[rng.integers(0, 30, 2600)] + 0.2 * rng.standard_normal((2600, dims)))
    queries, pool = x[:130], x[130:]  # 130 queries: one full chunk of 128 and a remainder
    got = all_combos(queries, pool, 11)
    assert_knn_matches(got, exact_l1(queries, pool))


def test_the_tile_choice_follows_the_pass_rate():
    """Random directions: nearly every pair passes the pooled bound, so ``auto`` runs most tiles on the
    full SAD alone (far fewer full comparisons counted than with the pooled level forced)."""
    rng = np.random.default_rng(13)
    x = normalize(rng.standard_normal((9000, 128)))
    counts = {}
    for level in ("pooled", "auto", "full"):
        stats = {}
        knn_l1_native(x[:64], x[64:], 10, stats=stats, level=level)
        counts[level] = stats["full_compares"]
    assert counts["pooled"] > 0.5 * 64 * (9000 - 64)
    assert counts["auto"] < 0.5 * counts["pooled"]


def test_unknown_simd_or_level_is_refused():
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(ValueError, match="simd must be one of"):
        knn_l1_native(x, x, 2, simd="avx1024")
    with pytest.raises(ValueError, match="level one of"):
        knn_l1_native(x, x, 2, level="quarter")
    with pytest.raises(ValueError, match="simd must be 0, 1 or 2 and level 0, 1 or 2"):
        mod._l1kernel.knn_l1(x, x, 4, 4, 8, 2, np.zeros((4, 2), np.float32), np.zeros((4, 2), np.int64), 1, 5)


def test_stats_name_the_sad_kernel():
    x = normalize(np.random.default_rng(1).standard_normal((60, 16)))
    for simd in ("best", "avx2", "portable"):
        stats = {}
        knn_l1_native(x[:5], x, 3, stats=stats, simd=simd)
        assert stats["isa"] in ("avx512bw", "avx2", "portable")
        if simd == "portable":
            assert stats["isa"] == "portable" and not stats["avx2"]
        if simd == "avx2":
            assert stats["isa"] != "avx512bw"
