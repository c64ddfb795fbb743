"""Catalog.search / search_row_ids against an independent numpy implementation of the score."""

from __future__ import annotations

import numpy as np
import pytest

from catalog import CatalogError
from catalog.errors import NotFound
from catalog.search.scan import l1_scan
from knn_support import SCORE_ATOL
from search_support import clustered, expected, make_embedding, make_rows, np_scores, np_unit


def _safe_bound(scores, target):
    """A bound near ``target`` that lies halfway between two scores more than ``2·SCORE_ATOL``
    apart, so that no score summed in another float order falls on the other side of it."""
    s = np.sort(scores)
    i = int(np.clip(np.searchsorted(s, target), 1, len(s) - 1))
    wide = np.flatnonzero(np.diff(s) > 2 * SCORE_ATOL) + 1  # s[j - 1] and s[j] far enough apart
    i = int(wide[np.argmin(np.abs(wide - i))])  # the gap at i itself when it is wide enough
    return float((s[i - 1] + s[i]) / 2)


@pytest.fixture
def data(cat, tmp_path):
    emb, keys, x = make_embedding(cat, tmp_path, n=600, dims=16)
    return cat, emb, keys, x


def test_scores_equal_numpy_and_are_sorted(data):
    cat, emb, keys, x = data
    res = cat.search(emb.name, anchors=[keys[7]], min_score=0.0, max_score=1.0, limit=None)
    want = np_scores(x[7], x)
    by_key = dict(zip(keys, want))
    assert res.total == len(keys) - 1 == len(res.results)
    for hit in res.results:
        assert hit.score == pytest.approx(by_key[hit.global_key], abs=1e-5)
    scores = [h.score for h in res.results]
    assert scores == sorted(scores, reverse=True)
    assert keys[7] not in {h.global_key for h in res.results}  # the anchor itself is excluded
    asc = cat.search(emb.name, anchors=[keys[7]], min_score=0.0, order="asc", limit=None)
    assert [h.score for h in asc.results] == sorted(scores)
    assert asc.results[0].global_key == res.results[-1].global_key


def test_range_total_and_inclusive_bounds(data):
    cat, emb, keys, x = data
    want = np_scores(x[3], x)
    others = np.delete(want, 3)
    lo, hi = _safe_bound(others, 0.80), _safe_bound(others, 0.93)
    res = cat.search(emb.id, anchors=[keys[3]], min_score=lo, max_score=hi, limit=None)
    exp = expected(keys, want, lo, hi, exclude={keys[3]})
    assert res.total == len(exp) > 5
    assert {h.global_key for h in res.results} == {k for k, _ in exp}
    # bounds are inclusive: use the exact scores of the first and last hit as the range
    top, bottom = res.results[0].score, res.results[-1].score
    again = cat.search(emb.id, anchors=[keys[3]], min_score=bottom, max_score=top, limit=None)
    assert [h.id for h in again.results] == [h.id for h in res.results]
    only_top = cat.search(emb.id, anchors=[keys[3]], min_score=top, max_score=top, limit=None)
    assert [h.global_key for h in only_top.results] == [res.results[0].global_key]


def test_default_range_and_page(data):
    cat, emb, keys, x = data
    res = cat.search(emb.name, anchors=[keys[0]])  # defaults: [0.85, 1], 50 per page
    want = expected(keys, np_scores(x[0], x), 0.85, 1.0, exclude={keys[0]})
    assert res.total == len(want)
    assert len(res.results) == min(50, len(want))
    assert all(0.85 <= h.score <= 1.0 for h in res.results)
    d = res.to_dict()
    assert set(d) == {"total", "results"}
    assert all(set(r) == {"id", "global_key", "score"} for r in d["results"])


def test_paging_is_consistent(data):
    cat, emb, keys, _ = data
    full = cat.search(emb.name, anchors=[keys[10]], min_score=0.3, limit=None)
    pages = []
    for offset in range(0, full.total + 40, 37):
        page = cat.search(emb.name, anchors=[keys[10]], min_score=0.3, limit=37, offset=offset)
        assert page.total == full.total
        pages.extend(h.id for h in page.results)
    assert pages == [h.id for h in full.results]
    assert cat.search(emb.name, anchors=[keys[10]], min_score=0.3, limit=0).results == []
    assert cat.search(emb.name, anchors=[keys[10]], min_score=0.3, offset=full.total).results == []
    assert cat.search_row_ids(emb.name, anchors=[keys[10]], min_score=0.3) == [h.id for h in full.results]


def test_ties_are_broken_by_row_id(cat, tmp_path):
    keys = make_rows(cat, tmp_path, 12)
    emb = cat.create_embedding("dupes", 8)
    base = np.arange(1, 9, dtype=np.float32)
    vecs = np.tile(base, (12, 1))
    vecs[0] = base[::-1]  # the anchor; every other row has the very same score
    emb.import_vectors(keys, vecs)
    res = cat.search("dupes", anchors=[keys[0]], min_score=0.0, limit=None)
    ids = [h.id for h in res.results]
    assert ids == sorted(ids) and len(ids) == 11
    assert len({h.score for h in res.results}) == 1
    page = cat.search("dupes", anchors=[keys[0]], min_score=0.0, limit=4, offset=3)
    assert [h.id for h in page.results] == ids[3:7]
    asc = cat.search("dupes", anchors=[keys[0]], min_score=0.0, limit=None, order="asc")
    assert [h.id for h in asc.results] == ids


def test_mean_aggregation(data):
    cat, emb, keys, x = data
    anchors = [1, 2, 50, 51]
    q = np_unit(np_unit(x[anchors]).mean(axis=0))
    want = np_scores(q, x)
    res = cat.search(emb.name, anchors=[keys[i] for i in anchors], min_score=0.0, limit=None)
    assert res.total == len(keys) - len(anchors)
    by_key = dict(zip(keys, want))
    assert all(h.score == pytest.approx(by_key[h.global_key], abs=1e-5) for h in res.results)


def test_max_aggregation_many_anchors(data):
    cat, emb, keys, x = data
    anchors = list(range(0, 300, 12))  # 25 anchors: more than the usual limit of 20
    want = np.max([np_scores(x[i], x) for i in anchors], axis=0)
    res = cat.search(emb.name, anchors=[keys[i] for i in anchors], aggregate="max", min_score=0.0, limit=None)
    assert res.total == len(keys) - len(anchors)
    by_key = dict(zip(keys, want))
    assert all(h.score == pytest.approx(by_key[h.global_key], abs=1e-5) for h in res.results)
    scores = [h.score for h in res.results]
    assert scores == sorted(scores, reverse=True)


def test_negative_anchors(data):
    cat, emb, keys, x = data
    pos, neg = [4, 5], [9]
    # Qdrant's average_vector: avg(pos) + (avg(pos) − avg(neg)), normalised
    avg_pos = np_unit(x[pos]).mean(axis=0)
    q = np_unit(avg_pos + (avg_pos - np_unit(x[neg]).mean(axis=0)))
    want = dict(zip(keys, np_scores(q, x)))
    res = cat.search(emb.name, anchors=[keys[i] for i in pos], negative_anchors=[keys[9]], min_score=0.0, limit=None)
    assert keys[9] not in {h.global_key for h in res.results}
    assert all(h.score == pytest.approx(want[h.global_key], abs=1e-5) for h in res.results)
    # max: the same for each positive anchor p alone: p + (p − avg(neg)); the best score wins
    qs = np_unit(2.0 * np_unit(x[pos]) - np_unit(x[neg]).mean(axis=0))
    want_max = dict(zip(keys, np.max([np_scores(v, x) for v in qs], axis=0)))
    res = cat.search(emb.name, anchors=[keys[i] for i in pos], negative_anchors=[keys[9]], aggregate="max",
                     min_score=0.0, limit=None)
    assert all(h.score == pytest.approx(want_max[h.global_key], abs=1e-5) for h in res.results)


@pytest.fixture
def digits(cat, tmp_path):
    """The 1,797 handwritten digits as rows, their 64 pixel values as a custom embedding (clusters by digit)."""
    import json

    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path / "digits.ndjson"
    keys = [f"digit-{i:04d}" for i in range(len(d.target))]
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"global_key": k, "text": f"a handwritten {t}", "metadata": {"digit": int(t)}}) + "\n"
                      for k, t in zip(keys, d.target))
    cat.import_datarows([path])
    emb = cat.create_embedding("pixels", 64)
    emb.import_vectors(keys, d.data + 1e-3)  # no all-zero row
    return cat, emb, keys, d.target


def test_a_negative_like_the_positives_reranks_instead_of_cancelling(digits):
    """Issue 12, bug 5: 7 positive zeros + 1 negative zero gave 0 rows at 0.84 and 1s, 2s and 9s on top."""
    cat, emb, keys, y = digits
    zeros = [keys[i] for i in np.flatnonzero(y == 0)[:8]]
    label = {k: int(t) for k, t in zip(keys, y)}
    for aggregate in ("mean", "max"):
        res = cat.search(emb.name, anchors=zeros[:7], negative_anchors=zeros[7:], aggregate=aggregate,
                         min_score=0.84, limit=20)
        assert res.total >= 20, (aggregate, res.total)  # the positives' neighbourhood is still there
        assert [label[h.global_key] for h in res.results] == [0] * 20, aggregate


def test_a_negative_from_another_cluster_pushes_that_cluster_down(digits):
    cat, emb, keys, y = digits
    zeros = [keys[i] for i in np.flatnonzero(y == 0)[:7]]
    six = keys[int(np.flatnonzero(y == 6)[0])]
    label = {k: int(t) for k, t in zip(keys, y)}

    def ranks_of(digit, **kwargs):
        res = cat.search(emb.name, anchors=zeros, min_score=0.0, limit=None, **kwargs)
        got = [label[h.global_key] for h in res.results]
        return got, np.flatnonzero(np.array(got) == digit)

    _, sixes = ranks_of(6)
    after, sixes_neg = ranks_of(6, negative_anchors=[six])
    assert after[:50] == [0] * 50  # the zeros stay on top
    assert np.median(sixes_neg) > np.median(sixes) + 200  # the 6s move down the ranking
    assert sixes_neg[0] > sixes[0]


def test_include_anchors_and_raw_vector_anchor(data):
    cat, emb, keys, x = data
    res = cat.search(emb.name, anchors=[keys[8]], include_anchors=True, limit=1)
    assert res.results[0].global_key == keys[8] and res.results[0].score == pytest.approx(1.0, abs=1e-6)
    raw = cat.search(emb.name, anchors=[x[8] * 7.0], limit=None, min_score=0.0)  # a vector: nothing excluded
    assert raw.total == len(keys)
    assert raw.results[0].global_key == keys[8]
    as_list = cat.search(emb.name, anchors=[list(map(float, x[8]))], limit=3, min_score=0.0)
    assert [h.id for h in as_list.results] == [h.id for h in raw.results[:3]]


def test_empty_results(data):
    cat, emb, keys, _ = data
    res = cat.search(emb.name, anchors=[keys[0]], min_score=1.0, max_score=1.0)
    assert res.total == 0 and res.results == [] and res.to_dict() == {"total": 0, "results": []}
    assert cat.search_row_ids(emb.name, anchors=[keys[0]], min_score=0.0, max_score=0.01) == []


@pytest.mark.parametrize("dims", [8, 2048])
def test_smallest_and_largest_dims(cat, tmp_path, dims):
    emb, keys, x = make_embedding(cat, tmp_path, n=150, dims=dims, name=f"d{dims}")
    res = cat.search(emb.name, anchors=[keys[2]], min_score=0.0, limit=None)
    want = dict(zip(keys, np_scores(x[2], x)))
    assert res.total == 149
    assert all(h.score == pytest.approx(want[h.global_key], abs=1e-5) for h in res.results)


def test_rows_without_vectors(cat, tmp_path):
    emb, keys, x = make_embedding(cat, tmp_path, n=100, dims=8, missing=10)
    ids = cat.search_row_ids(emb.name, anchors=[keys[0]], min_score=0.0, include_anchors=True)
    assert len(ids) == 90
    without = set(cat.resolve_row_ids(keys[90:]))
    assert not without & set(ids)
    with pytest.raises(CatalogError, match=r"anchors 'row-00095', 'row-00097' have no vector in embedding custom"):
        cat.search(emb.name, anchors=[keys[1], keys[95], keys[97]])
    with pytest.raises(CatalogError, match=r"negative anchor 'row-00099' has no vector"):
        cat.search(emb.name, anchors=[keys[1]], negative_anchors=[keys[99]])


def test_cache_follows_reimport_and_delete(cat, tmp_path):
    emb, keys, x = make_embedding(cat, tmp_path, n=80, dims=8)
    first = cat.search("custom", anchors=[keys[0]], min_score=0.0, limit=None)
    y = clustered(80, 8, seed=99)
    emb.import_vectors(keys[:40], y[:40])  # re-import half the rows: new version, new cache
    x2 = x.copy()
    x2[:40] = y[:40]
    second = cat.search("custom", anchors=[keys[0]], min_score=0.0, limit=None)
    want = dict(zip(keys, np_scores(x2[0], x2)))
    assert all(h.score == pytest.approx(want[h.global_key], abs=1e-5) for h in second.results)
    assert [h.score for h in first.results] != [h.score for h in second.results]
    cat.delete_embedding("custom")
    with pytest.raises(NotFound, match="no embedding with id or name 'custom'"):
        cat.search("custom", anchors=[keys[0]])
    again = cat.create_embedding("custom", 8)  # same name, new vectors: nothing stale is served
    again.import_vectors(keys[:20], y[40:60])
    third = cat.search("custom", anchors=[keys[0]], min_score=0.0, limit=None)
    want = dict(zip(keys[:20], np_scores(y[40], y[40:60])))
    assert third.total == 19
    assert all(h.score == pytest.approx(want[h.global_key], abs=1e-5) for h in third.results)


def test_threaded_scan_equals_single_thread():
    x = np_unit(clustered(20_000, 32, seed=3)).astype(np.float32)
    q = x[:11]
    one = l1_scan(x, q, n_threads=1)
    two = l1_scan(x, q, n_threads=2)
    assert np.array_equal(one, two)
    assert np.allclose(one, np.min([np.abs(x - v).sum(axis=1) for v in q], axis=0), atol=1e-4)


# -- filters ----------------------------------------------------------------------------------------
FILTERS = [
    ({"colour": "red"}, lambda i: i % 3 == 0),
    ({"colour": {"$eq": "green"}}, lambda i: i % 3 == 1),
    ({"colour": {"$ne": "green"}}, lambda i: i % 3 != 1),
    ({"colour": {"$in": ["red", "blue"]}}, lambda i: i % 3 != 1),
    ({"colour": {"$nin": ["red", "blue"]}}, lambda i: i % 3 == 1),
    ({"n": {"$gt": 300}}, lambda i: i > 300),
    ({"n": {"$gte": 300}}, lambda i: i >= 300),
    ({"n": {"$lt": 120}}, lambda i: i < 120),
    ({"n": {"$lte": 120}}, lambda i: i <= 120),
    ({"flagged": {"$exists": True}}, lambda i: i % 5 == 0),
    ({"flagged": {"$exists": False}}, lambda i: i % 5 != 0),
    ({"camera.make": "Canon"}, lambda i: i % 2 == 1),
    ({"camera.iso": {"$gte": 400}}, lambda i: 100 * (i % 8) >= 400),
    ({"$and": [{"colour": "red"}, {"n": {"$lt": 300}}]}, lambda i: i % 3 == 0 and i < 300),
    ({"$or": [{"colour": "red"}, {"camera.make": "Canon"}]}, lambda i: i % 3 == 0 or i % 2 == 1),
]


@pytest.mark.parametrize("where,keep", FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filters(data, where, keep):
    cat, emb, keys, x = data
    want = np_scores(x[6], x)
    allowed = {k for i, k in enumerate(keys) if keep(i)}
    lo = _safe_bound(np.delete(want, 6), 0.5)
    res = cat.search(emb.name, anchors=[keys[6]], min_score=lo, where=where, limit=None)
    exp = expected(keys, want, lo, 1.0, exclude={keys[6]}, allowed=allowed)
    assert res.total == len(exp) > 0
    assert {h.global_key for h in res.results} == {k for k, _ in exp}
    page = cat.search(emb.name, anchors=[keys[6]], min_score=lo, where=where, limit=5, offset=2)
    assert page.total == res.total and [h.id for h in page.results] == [h.id for h in res.results[2:7]]


def test_unknown_filter_operator(data):
    cat, emb, keys, _ = data
    with pytest.raises(CatalogError, match=r"\$regex"):
        cat.search(emb.name, anchors=[keys[0]], where={"colour": {"$regex": "r.*"}})


# -- argument errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    ({"min_score": 0.9, "max_score": 0.8}, "min score 0.9 is greater than max score 0.8"),
    ({"min_score": -0.1}, r"min score -0.1 is outside \[0, 1\]"),
    ({"max_score": 1.5}, r"max score 1.5 is outside \[0, 1\]"),
    ({"aggregate": "median"}, "aggregate 'median' is not supported"),
    ({"order": "random"}, "order 'random' is not supported"),
    ({"limit": -1}, "limit must be a whole number"),
    ({"offset": -5}, "offset must be a whole number"),
    ({"backend": "hnsw"}, "backend 'hnsw' is not supported"),
])
def test_bad_arguments(data, kwargs, message):
    cat, emb, keys, _ = data
    with pytest.raises(CatalogError, match=message):
        cat.search(emb.name, anchors=[keys[0]], **kwargs)


def test_bad_anchors(data):
    cat, emb, keys, x = data
    with pytest.raises(CatalogError, match="search needs at least one anchor"):
        cat.search(emb.name, anchors=[])
    with pytest.raises(CatalogError, match="search needs at least one anchor"):
        cat.search(emb.name, negative_anchors=[keys[1]])
    with pytest.raises(NotFound, match="no data row with id or global_key 'nope'"):
        cat.search(emb.name, anchors=[keys[0], "nope"])
    with pytest.raises(NotFound, match="no embedding with id or name 'missing'"):
        cat.search("missing", anchors=[keys[0]])
    with pytest.raises(CatalogError, match="anchor vector 1 has 3 values, embedding custom has 16 dims"):
        cat.search(emb.name, anchors=[np.ones(3)])
    with pytest.raises(CatalogError, match="anchor vector 1 is all zeros"):
        cat.search(emb.name, anchors=[np.zeros(16)])
    with pytest.raises(CatalogError, match="anchors cancel out"):
        cat.search(emb.name, anchors=[x[0], -x[0]])
    # negatives re-rank (2·avg(pos) − avg(neg)): the only way left to cancel is avg(neg) = 2·avg(pos)
    a, b = np.zeros(16), np.zeros(16)
    a[:2], b[:2] = (0.5, 3 ** 0.5 / 2), (0.5, -(3 ** 0.5) / 2)  # 120° apart: ‖avg‖ = ½ along e0
    with pytest.raises(CatalogError, match="anchors cancel out"):
        cat.search(emb.name, anchors=[a, b], negative_anchors=[np.eye(16)[0]])
    same = cat.search(emb.name, anchors=[keys[0]], negative_anchors=[keys[0]], min_score=0.0, limit=3)
    alone = cat.search(emb.name, anchors=[keys[0]], min_score=0.0, limit=3)
    assert [h.global_key for h in same.results] == [h.global_key for h in alone.results]


def test_text_query_on_custom_embedding_is_an_error(data):
    cat, emb, _, _ = data
    with pytest.raises(CatalogError):
        cat.search(emb.name, text="a red car")


def test_off_the_shelf_embedding_without_vectors(data):
    cat, _, keys, _ = data
    with pytest.raises(CatalogError, match="has no vector in embedding all-minilm-l6-v2"):
        cat.search("all-minilm-l6-v2", anchors=[keys[0]])
    res = cat.search("all-minilm-l6-v2", anchors=[np.ones(384)], min_score=0.0)
    assert res.total == 0 and res.results == []
