"""Exact search on the 8-bit codes (catalog/vectors/codes.py, catalog/search/codes_scan.py): the
bound holds for every row, every SAD kernel (AVX-512 BW, AVX2, portable C, numpy) selects the same
rows, and the codes path gives the float32 scan's rows, order, scores and totals on adversarial data
(values exactly at quantisation steps, ties, all rows in range, 8 and 2048 dims, several anchors,
negatives and the mean of anchors)."""

from __future__ import annotations

import numpy as np
import pytest

from catalog import SearchSpec
from catalog.scoring import normalize
from catalog.search.backends.base import Query
from catalog.search.backends.exact import ExactBackend
from catalog.search.codes_scan import bounds, codes_search, distance_window
from catalog.vectors import codes as cm
from search_support import clustered, tied_catalog

ISAS = ["numpy"] + ([] if not cm.native_available() else ["portable", "avx2", "avx512bw"])
RANGES = [(0.85, 1.0), (0.6, 0.9), (0.0, 1.0), (0.5, 1.0), (0.999, 1.0), (0.0, 0.3)]


class _Emb:
    id, version = "e", 1

    def __init__(self, dims):
        self.dims = dims


def _data(n, dims, seed=0):
    x = normalize(clustered(n, dims, clusters=8, noise=0.4, seed=seed))
    x[10:14] = x[9]           # exact ties: the same vector five times
    x[20] = -x[21]            # antipodal rows (score 0 against each other)
    return x


def _at_steps(n, dims, seed=1):
    """Values exactly halfway between two codes (step 2⁻⁷, offset 0: exact in float32), and on codes."""
    rng = np.random.default_rng(seed)
    k = rng.integers(-20, 20, size=(n, dims)).astype(np.float32)
    half = (rng.random((n, dims)) < 0.5).astype(np.float32) * 0.5
    return np.ascontiguousarray((k + half) * np.float32(2.0 ** -7), dtype=np.float32)


def _float32(x, queries, lo, hi):
    be = ExactBackend(_Emb(x.shape[1]), np.arange(len(x)).astype("U36"), x)
    return be.scan(Query(queries, lo, hi))


def _top(pos, scores, k):
    o = np.lexsort((pos, -scores))[:k]
    return pos[o], scores[o]


def _check(c, x, queries, lo, hi, k=None, exclude=None, isa=None, pooled=None):
    ref = _float32(x, queries, lo, hi)
    several = len(np.atleast_2d(queries)) > 1
    pos, scores, which, unlisted = codes_search(c, x, queries, x.shape[1], lo, hi, k, exclude, nearest=several,
                                                isa=isa, pooled=pooled)
    if k is None:
        assert unlisted == 0
        np.testing.assert_array_equal(pos, ref.positions)
        np.testing.assert_array_equal(scores, ref.scores)
        if several:
            np.testing.assert_array_equal(which, ref.anchors)
        return
    drop = np.zeros(len(x), bool)
    if exclude is not None:
        drop[exclude] = True
    assert len(pos) - drop[pos].sum() + unlisted == len(ref.positions) - drop[ref.positions].sum()
    keep_ref, keep = ~drop[ref.positions], ~drop[pos]
    want = _top(ref.positions[keep_ref], ref.scores[keep_ref], k)
    got = _top(pos[keep], scores[keep], k)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("dims", [8, 100, 2048])
def test_bound_holds_for_every_row(dims):
    x = _data(1500 if dims < 2048 else 400, dims)
    c = cm.build(x)
    for q in (x[:3], normalize(x[:5].mean(axis=0, keepdims=True)), normalize(2 * x[:1] - x[30:33].mean(0))):
        qc, eq = c.encode(q)
        lb, ub = bounds(c, qc, eq, np.arange(len(x)))
        true = np.abs(x[:, None, :].astype(np.float64) - q[None].astype(np.float64)).sum(axis=2).min(axis=1)
        assert np.all(lb <= true + 1e-12) and np.all(true <= ub + 1e-12)
        assert np.all(ub - lb <= 2 * (eq.max() + c.resid.max()) + 1e-9)  # and it is no wider than (1) says


def test_bound_holds_at_quantisation_steps_and_with_clipping():
    x = _at_steps(800, 64)
    for step in (2.0 ** -7, 2.0 ** -9):  # the second clips most values: the residual must carry it
        c = cm.build(x, step=step, offsets=np.zeros(64))
        q = x[:2]
        qc, eq = c.encode(q)
        lb, ub = bounds(c, qc, eq, np.arange(len(x)))
        true = np.abs(x[:, None, :].astype(np.float64) - q[None]).sum(axis=2).min(axis=1)
        assert np.all(lb <= true + 1e-12) and np.all(true <= ub + 1e-12)


@pytest.mark.parametrize("isa", ISAS)
def test_every_kernel_selects_the_same_rows(isa):
    x = _data(9000, 96)
    c = cm.build(x)
    for queries in (x[:1], x[:7]):
        qc, eq = c.encode(queries)
        for lo_s, hi_s in RANGES:
            lo, hi, clo, chi = distance_window(lo_s, hi_s, 96)
            lo, hi = cm.l1_window(lo, hi, 96)
            clo, chi = cm.certain_window(clo, chi, 96)
            for kk in (0, 1, 50):
                want = cm.scan(c, qc, eq, lo, hi, clo, chi, kk, "numpy")
                got = cm.scan(c, qc, eq, lo, hi, clo, chi, kk, isa)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
                assert got[2:] == want[2:]


@pytest.mark.parametrize("dims", [8, 512, 2048])
def test_codes_equal_the_float32_scan(dims):
    n = {8: 6000, 512: 3000, 2048: 700}[dims]
    x = _data(n, dims)
    c = cm.build(x)
    queries = [x[:1], x[9:10], x[:4], normalize(x[:6].mean(axis=0, keepdims=True)),
               normalize(2 * x[:3].mean(axis=0, keepdims=True) - x[40:42].mean(axis=0))]
    for q in queries:
        for lo, hi in RANGES:
            _check(c, x, q, lo, hi)
            for k in (1, 5, 60):
                _check(c, x, q, lo, hi, k=k)
        _check(c, x, q, 0.0, 1.0, k=3, exclude=np.array([9, 10, 11, 500]))


def test_codes_equal_the_float32_scan_at_quantisation_steps():
    x = _at_steps(3000, 64)
    x[100:110] = x[99]
    c = cm.build(x, step=2.0 ** -7, offsets=np.zeros(64))
    for q in (x[99:100], x[:3]):
        for lo, hi in [(0.0, 1.0), (0.5, 1.0), (0.7, 0.95)]:
            _check(c, x, q, lo, hi)
            _check(c, x, q, lo, hi, k=7)
            _check(c, x, q, lo, hi, k=7, exclude=np.array([99, 100]))


def test_all_rows_in_range_counts_without_listing():
    x = _data(20000, 32)
    c = cm.build(x)
    pos, scores, _, unlisted = codes_search(c, x, x[:1], 32, 0.0, 1.0, k=10)
    assert len(pos) < 2000 and len(pos) + unlisted == len(x)


# -- through the catalog: codes on and off give the same results ---------------------------------------
@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return tied_catalog(tmp_path_factory.mktemp("codes"), "codes", 48, seed=5)


SPECS = [
    dict(anchors=["row-00000"]),
    dict(anchors=["row-00000"], min_score=0.0, max_score=1.0),
    dict(anchors=["row-00005"], min_score=0.6, max_score=0.9),
    dict(anchors=["row-00000", "row-00007", "row-00011"], min_score=0.5),
    dict(anchors=["row-00000", "row-00007", "row-00011"], aggregate="max", min_score=0.0),
    dict(anchors=["row-00000", "row-00007"], aggregate="max", min_score=0.7),
    dict(anchors=["row-00002", "row-00009"], negative_anchors=["row-00013"], min_score=0.0),
    dict(anchors=["row-00002"], negative_anchors=["row-00013", "row-00020"], aggregate="max", min_score=0.4),
    dict(anchors=["row-00000"], min_score=0.0, include_anchors=True),
    dict(anchors=["row-00000"], min_score=0.3, where={"colour": "red"}),
    dict(anchors=["row-00000"], min_score=0.0, order="asc"),
]


@pytest.mark.parametrize("spec", SPECS, ids=[str(i) for i in range(len(SPECS))])
def test_catalog_search_is_the_same_with_and_without_codes(catalog, spec, monkeypatch):
    cat, _ = catalog
    s = SearchSpec.from_kwargs("codes", **spec)
    pages = [(0, 10), (0, 1), (7, 25), (0, None)]
    got = {}
    for m in ("off", "on"):
        monkeypatch.setenv(cm.CODES_ENV, m)
        got[m] = [cat.search(s, page=_page(o, lim)).to_dict(details=True) for o, lim in pages]
        got[m].append(cat.search_row_ids(s))
    assert got["on"] == got["off"]


def _page(offset, limit):
    from catalog import Page
    return Page(limit, offset)


def test_codes_files_live_beside_the_cache_and_follow_the_version(catalog, monkeypatch):
    cat, keys = catalog
    monkeypatch.setenv(cm.CODES_ENV, "on")
    emb = cat.get_embedding("codes")
    cat.search("codes", anchors=[keys[0]])
    folder = cat.store.cache_dir / f"{emb.id}-v{emb.version}"
    assert (folder / "codes.npy").exists() and (folder / "codes_resid.npy").exists()
    c = cm.load(cat.cache, emb)
    assert c.codes.shape == (3000, 64) and c.resid.dtype == np.float32
    emb.import_vectors(keys[:1], np.ones((1, 48), np.float32))
    emb = emb.refresh()
    res = cat.search("codes", anchors=[keys[0]], min_score=0.99, include_anchors=True)
    assert [h.global_key for h in res.results][:1] == [keys[0]]
    assert not folder.exists() and (cat.store.cache_dir / f"{emb.id}-v{emb.version}" / "codes.npy").exists()


def test_switch_words(monkeypatch):
    monkeypatch.setenv(cm.CODES_ENV, "off")
    assert cm.mode() == "off"
    monkeypatch.setenv(cm.CODES_ENV, "on")
    assert cm.mode() == "on"
    monkeypatch.setenv(cm.CODES_ENV, "bogus")
    assert cm.mode() == ("auto" if cm.native_available() else "off")
    assert cm.kernel_isa() in ("avx512bw", "avx2", "portable", "numpy")


def test_more_anchors_than_a_codes_scan_takes_use_the_float32_scan(catalog, monkeypatch):
    cat, keys = catalog
    monkeypatch.setenv(cm.CODES_ENV, "on")
    want = cat.search("codes", anchors=keys[:3], aggregate="max", min_score=0.6).to_dict(details=True)
    calls = []
    real = cm.scan
    monkeypatch.setattr(cm, "scan", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(cm, "MAX_QUERIES", 2)
    assert cat.search("codes", anchors=keys[:3], aggregate="max", min_score=0.6).to_dict(details=True) == want
    assert calls == []
    monkeypatch.setattr(cm, "MAX_QUERIES", 3)
    assert cat.search("codes", anchors=keys[:3], aggregate="max", min_score=0.6).to_dict(details=True) == want
    assert calls == [1]


@pytest.mark.parametrize("seed", range(40))
def test_random_shapes_equal_the_float32_scan(seed):
    """Random dims (odd ones too), clusters, ranges, k, anchor counts and exclusions."""
    rng = np.random.default_rng(seed)
    dims = int(rng.choice([8, 13, 64, 130]))
    x = normalize(clustered(int(rng.integers(500, 5000)), dims, clusters=int(rng.integers(1, 30)),
                            noise=float(rng.uniform(0.05, 1.5)), seed=seed))
    c = cm.build(x)
    for _ in range(4):
        q = x[rng.choice(len(x), size=int(rng.integers(1, 6)), replace=False)]
        lo = float(rng.choice([0.0, rng.uniform(0.3, 0.95)]))
        hi = float(rng.choice([1.0, rng.uniform(lo, 1.0)]))
        _check(c, x, q, lo, hi)
        _check(c, x, q, lo, hi, k=int(rng.integers(1, 80)),
               exclude=rng.choice(len(x), size=int(rng.integers(0, 4)), replace=False))
