"""The pooled first level of the codes (catalog/vectors/pooled.py): its bound holds for every row,
every SAD kernel (AVX-512 BW, AVX2, portable C, numpy) selects the same rows with it, and a search
with it gives the float32 scan's rows, order, scores and totals on adversarial data: values at
quantisation steps (of the codes and of the pooled sums), ties, every row in range, 1, 20 and 100
anchors, and 8, 12 (not a multiple of 4), 13, 512 and 2048 dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.scoring import normalize
from catalog.search.codes_scan import codes_search, distance_window
from catalog.vectors import codes as cm
from catalog.vectors import pooled as pm
from search_support import tied_catalog
from test_search_codes import _at_steps, _check, _data

ISAS = ["numpy"] + ([] if not cm.native_available() else ["portable", "avx2", "avx512bw"])
RANGES = [(0.85, 1.0), (0.6, 0.9), (0.0, 1.0), (0.5, 1.0), (0.999, 1.0), (0.0, 0.3)]


def _true_min_l1(x, q):
    x64 = x.astype(np.float64)
    return np.min([np.abs(x64 - v.astype(np.float64)).sum(axis=1) for v in q], axis=0)


def _queries(x, m, seed=0):
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), size=m, replace=False))]


@pytest.mark.parametrize("dims", [8, 12, 13, 512, 2048])
def test_pooled_bound_holds_for_every_row(dims):
    x = _data(1200 if dims < 2048 else 300, dims)
    p = pm.build(x)
    assert p.codes.shape == (len(x), cm.dims_padded(pm.groups(dims))) and p.resid.dtype == np.float32
    for m in (1, 20, 100):
        q = _queries(x, m)
        pq, peq = p.encode(q)
        lbp = cm.lower_bounds(p, pq, peq, upper=False)[0]
        assert np.all(lbp <= _true_min_l1(x, q) + 1e-12)


def test_pooled_bound_at_quantisation_steps_and_with_clipping():
    x = _at_steps(600, 64)  # multiples of 2⁻⁸: the sums of 4 are exact too, and lie on or between steps
    for step in (2.0 ** -6, 2.0 ** -9):  # the second clips most sums: the residual must carry it
        p = pm.Pooled(*cm.quantise_numpy(pm.sums(x), np.zeros(16), step), step, np.zeros(16))
        for m in (1, 20):
            q = x[:m]
            lbp = cm.lower_bounds(p, *p.encode(q), upper=False)[0]
            assert np.all(lbp <= _true_min_l1(x, q) + 1e-12)
    # the pooled bound is a real bound, not the full one: about half of L1 for unstructured rows
    xs = _data(2000, 512)
    p = pm.build(xs)
    lbp = cm.lower_bounds(p, *p.encode(xs[:1]), upper=False)[0]
    true = _true_min_l1(xs, xs[:1])
    assert np.median(lbp[1:] / true[1:]) < 0.9


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dims", [12, 96, 2048])
def test_every_kernel_selects_the_same_rows_with_the_pooled_level(isa, dims):
    x = _data(5000 if dims < 2048 else 900, dims)
    c, p = cm.build(x), pm.build(x)
    for m in (1, 20, 100):
        q = _queries(x, m, seed=m)
        qc, eq = c.encode(q)
        pooled = (p, *p.encode(q))
        for lo_s, hi_s in RANGES:
            lo, hi, clo, chi = distance_window(lo_s, hi_s, dims)
            lo, hi = cm.l1_window(lo, hi, dims)
            clo, chi = cm.certain_window(clo, chi, dims)
            for kk in (0, 1, 50):
                want = cm.scan(c, qc, eq, lo, hi, clo, chi, kk, "numpy", pooled)
                got = cm.scan(c, qc, eq, lo, hi, clo, chi, kk, isa, pooled)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
                assert got[2:] == want[2:]


@pytest.mark.parametrize("dims", [8, 12, 512, 2048])
def test_pooled_search_equals_the_float32_scan(dims):
    n = {8: 5000, 12: 5000, 512: 2500, 2048: 500}[dims]
    x = _data(n, dims)
    c, p = cm.build(x), pm.build(x)
    for m in (1, 20, 100):
        q = _queries(x, m, seed=dims + m)
        if m == 1:
            q = x[9:10]  # a row with four exact copies: tied scores at the top
        for lo, hi in RANGES:
            _check(c, x, q, lo, hi, pooled=p)
            for k in (1, 60):
                _check(c, x, q, lo, hi, k=k, pooled=p)
        _check(c, x, q, 0.0, 1.0, k=3, exclude=np.array([9, 10, 11, 400]), pooled=p)


def test_pooled_search_at_quantisation_steps_and_ties():
    x = _at_steps(3000, 64)
    x[100:110] = x[99]
    c = cm.build(x, step=2.0 ** -7, offsets=np.zeros(64))
    p = pm.build(x)
    for q in (x[99:100], x[:20], x[:100]):
        for lo, hi in [(0.0, 1.0), (0.5, 1.0), (0.7, 0.95)]:
            _check(c, x, q, lo, hi, pooled=p)
            _check(c, x, q, lo, hi, k=7, pooled=p)
            _check(c, x, q, lo, hi, k=7, exclude=np.array([99, 100]), pooled=p)


def test_all_rows_in_range_with_the_pooled_level_counts_without_listing():
    x = _data(20000, 64)
    c, p = cm.build(x), pm.build(x)
    for m in (1, 20):
        pos, _, _, unlisted = codes_search(c, x, x[:m], 64, 0.0, 1.0, k=10, nearest=m > 1, pooled=p)
        assert len(pos) < 4000 and len(pos) + unlisted == len(x)
        _check(c, x, x[:m], 0.0, 1.0, k=10, pooled=p)


def test_when_the_pooled_level_is_used(monkeypatch):
    monkeypatch.delenv(pm.POOL_ENV, raising=False)
    big = pm.TOPK_MIN_ROWS
    assert pm.wanted(pm.MIN_ROWS, 512, 1, narrow=True) and pm.wanted(big, 512, 20, narrow=False)
    assert not pm.wanted(pm.MIN_ROWS - 1, 512, 20, narrow=True)
    assert pm.wanted(pm.TOPK_MANY_MIN_ROWS, 512, pm.TOPK_MANY_QUERIES, narrow=False)
    assert not pm.wanted(pm.TOPK_MANY_MIN_ROWS - 1, 512, pm.TOPK_MANY_QUERIES, narrow=False)
    assert not pm.wanted(big - 1, 512, 20, narrow=False) and not pm.wanted(big, 512, 1, narrow=False)
    assert not pm.wanted(big, pm.MIN_DIMS - 1, 20, narrow=True)
    assert pm.wanted(pm.MIN_ROWS, pm.MIN_DIMS, 1, narrow=True)
    assert not pm.wanted(big, pm.TOPK_MIN_DIMS - 1, 100, narrow=False)
    monkeypatch.setenv(pm.POOL_ENV, "off")
    assert not pm.wanted(big, 512, 20, narrow=True)
    monkeypatch.setenv(pm.POOL_ENV, "ON ")
    assert pm.wanted(10, 8, 1, narrow=False)
    monkeypatch.setenv(pm.POOL_ENV, "bogus")
    assert pm.wanted(big, 512, 20, narrow=True) and not pm.wanted(big, 512, 1, narrow=False)


def test_auto_uses_the_codes_only_where_they_win(monkeypatch):
    monkeypatch.delenv(cm.CODES_ENV, raising=False)
    native = cm.native_available()
    assert cm.use_codes(1_000_000, 512, 20, False) == native
    assert cm.use_codes(cm.AUTO_MIN_ROWS, 12, 1, False) == native
    assert cm.use_codes(100_000, 8, 20, True) == native  # many anchors: the codes win even at 8 dims
    assert cm.use_codes(1000, 512, 1, True) == native  # a range: the codes win on small caches too
    assert not cm.use_codes(cm.AUTO_MIN_ROWS - 1, 512, 1, False) and not cm.use_codes(100_000, 8, 1, True)
    assert cm.use_codes(10, 8, 1, False, choice="on")
    assert not cm.use_codes(10**7, 512, 1, True, choice="off")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return tied_catalog(tmp_path_factory.mktemp("pooled"), "pooled", 136, seed=7)


@pytest.mark.parametrize("spec", [
    dict(anchors=["row-00000"], min_score=0.6),
    dict(anchors=[f"row-{i:05d}" for i in range(0, 400, 20)], aggregate="max", min_score=0.7),
    dict(anchors=[f"row-{i:05d}" for i in range(0, 400, 20)], aggregate="max", min_score=0.0),
    dict(anchors=[f"row-{i:05d}" for i in range(0, 3000, 30)], aggregate="max", min_score=0.8),
    dict(anchors=["row-00002"], negative_anchors=["row-00013", "row-00020"], aggregate="max", min_score=0.4),
], ids=["one", "twenty", "twenty-topk", "hundred", "negatives"])
def test_catalog_search_is_the_same_with_the_pooled_level(catalog, spec, monkeypatch):
    from catalog import Page, SearchSpec

    cat, _ = catalog
    s = SearchSpec.from_kwargs("pooled", **spec)
    got = {}
    for codes, pool in (("off", "off"), ("on", "off"), ("on", "on")):
        monkeypatch.setenv(cm.CODES_ENV, codes)
        monkeypatch.setenv(pm.POOL_ENV, pool)
        got[codes, pool] = [cat.search(s, page=Page(lim, off)).to_dict(details=True)
                            for off, lim in ((0, 10), (5, 30), (0, None))] + [cat.search_row_ids(s)]
    assert got["on", "on"] == got["off", "off"] == got["on", "off"]


def test_pooled_files_live_beside_the_codes_and_follow_the_version(catalog, monkeypatch):
    cat, keys = catalog
    monkeypatch.setenv(cm.CODES_ENV, "on")
    monkeypatch.setenv(pm.POOL_ENV, "on")
    emb = cat.get_embedding("pooled")
    cat.search("pooled", anchors=keys[:3], aggregate="max", min_score=0.5)
    folder = cat.store.cache_dir / f"{emb.id}-v{emb.version}"
    for name in ("codes_pool.npy", "codes_pool_resid.npy", "codes_pool_params.npy"):
        assert (folder / name).exists()
    p = pm.load(cat.cache, emb)
    assert p.codes.shape == (3000, 64) and len(p.offsets) == 34
    (folder / "codes_pool.npy").write_bytes(b"not an array")  # a damaged file is rebuilt, not trusted
    cm.forget(cat.store.path, emb.id)
    again = pm.load(cat.cache, emb)
    np.testing.assert_array_equal(np.asarray(again.codes), np.asarray(p.codes))
    emb.import_vectors(keys[:1], np.ones((1, 136), np.float32))
    emb = emb.refresh()
    cat.search("pooled", anchors=keys[:3], aggregate="max", min_score=0.5)
    assert not folder.exists() and (cat.store.cache_dir / f"{emb.id}-v{emb.version}" / "codes_pool.npy").exists()


def test_a_forced_kernel_is_capped_at_the_cpu_and_gives_the_same_rows(monkeypatch):
    x = _data(3000, 256)
    c, p = cm.build(x), pm.build(x)
    q = x[:20]
    qc, eq = c.encode(q)
    pooled = (p, *p.encode(q))
    lo, hi = cm.l1_window(*distance_window(0.7, 1.0, 256)[:2], 256)
    monkeypatch.delenv(cm.ISA_ENV, raising=False)
    best = cm.kernel_isa()
    want = cm.scan(c, qc, eq, lo, hi, -np.inf, np.inf, 0, "numpy", pooled)
    for forced in cm.ISAS + ("bogus",):
        monkeypatch.setenv(cm.ISA_ENV, forced)
        ran = cm.kernel_isa()
        assert ran == (best if forced == "bogus" or cm.ISAS.index(forced) < cm.ISAS.index(best) else forced)
        got = cm.scan(c, qc, eq, lo, hi, -np.inf, np.inf, 0, None, pooled)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[2:] == want[2:]
