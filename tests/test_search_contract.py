"""The search contract, run over every registered backend: paging, inclusive bounds, ties by id,
mean/max (and which anchor each row matched), negatives, filters, order, the sorts (score, global_key,
created), grouping by a metadata field (one row per group, its size, paging over groups) and totals.

Each backend is compared with an independent float64 implementation of PRODUCT.md §3. An exact
backend must return exactly the reference rows (scores within ``SCORE_TOL``; rows whose reference
score lies within ``SCORE_TOL`` of a bound may fall on either side, and rows with scores within
``SCORE_TOL`` of each other may swap); an inexact backend is held to the recall it declares
(:attr:`Capabilities.recall`) and must never return a row outside the range or with a wrong score.
"""

from __future__ import annotations

import numpy as np
import pytest

from catalog import Catalog, Page, SearchSpec
from catalog.search import BACKENDS
from knn_support import SCORE_ATOL
from search_support import clustered, make_rows, np_scores

SCORE_TOL = SCORE_ATOL  # float32 L1 sums in any SIMD order against a float64 reference (see knn_support)
N, DIMS = 2400, 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    cat = Catalog(tmp / "catalog.duckdb")
    keys = make_rows(cat, tmp, N)
    x = clustered(N, DIMS, clusters=12, noise=0.5, seed=3)
    x[1:4] = x[0] * np.array([[2.0], [0.5], [4.0]], dtype=np.float32)  # scaled by powers of two: the same unit vector, tied scores
    emb = cat.create_embedding("contract", DIMS)
    emb.import_vectors(keys, x)
    cat.build_search_index("contract")
    ids = [r["id"] for r in cat.get_datarows(keys)]
    return cat, keys, ids, x


ENGINE_KINDS = ("edge", "local")  # the qdrant backends run on Qdrant Edge (the real engine) and local mode


def _backend_params():
    out = []
    for name in sorted(BACKENDS):
        kinds = ENGINE_KINDS if name.startswith("qdrant") else (None,)
        out += [pytest.param((name, kind), id=name if kind is None else f"{name}-{kind}") for kind in kinds]
    return out


@pytest.fixture(scope="module", params=_backend_params())
def backend(request, data, tmp_path_factory):
    """A backend name; for the qdrant backend the catalog is pointed at a fresh engine and synced first
    (and the engine is unset afterwards)."""
    name, kind = request.param
    if kind is None:
        yield name
        return
    cat = data[0]
    cat.engines.set_engine(f"{kind}:{tmp_path_factory.mktemp('engine-' + kind)}")
    (report,) = cat.engines.sync(["contract"])
    assert report.count == N and report.sent == N
    yield name
    cat.engines.unset_engine()


def _reference(x, keys, anchors, negatives=(), aggregate="mean"):
    """Reference scores (float64) for row-anchor indices, as the product defines them."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pos = unit[list(anchors)].astype(np.float64)
    neg = unit[list(negatives)].astype(np.float64)
    # negatives: Qdrant's average_vector, avg(pos) + (avg(pos) − avg(neg)); for max, per positive p
    shift = neg.mean(axis=0) if len(neg) else None
    if aggregate == "mean":
        avg = pos.mean(axis=0)
        return np_scores(avg if shift is None else avg + (avg - shift), x)
    return np.max([np_scores(p if shift is None else p + (p - shift), x) for p in pos], axis=0)


def _check(backend, result, ref, keys, lo, hi, exclude=(), allowed=None, order="desc"):
    """The result against the reference: scores, order (ties by id), range, and membership."""
    caps = BACKENDS[backend].capabilities
    by_key = {k: i for i, k in enumerate(keys)}
    got = [(h.global_key, h.score) for h in result.results]
    for k, s in got:
        assert lo <= s <= hi, f"{k} scored {s}, outside [{lo}, {hi}]"
        assert abs(s - ref[by_key[k]]) <= SCORE_TOL, f"{k}: {s} vs reference {ref[by_key[k]]}"
        assert k not in exclude and (allowed is None or k in allowed)
    sign = -1.0 if order == "desc" else 1.0
    for h1, h2 in zip(result.results, result.results[1:]):
        assert sign * h1.score <= sign * h2.score, "not in score order"
        if h1.score == h2.score:
            assert h1.id < h2.id, "equal scores must be ordered by row id"
    sure = {k for k, s in zip(keys, ref) if lo + SCORE_TOL <= s <= hi - SCORE_TOL
            and k not in exclude and (allowed is None or k in allowed)}
    maybe = {k for k, s in zip(keys, ref) if lo - SCORE_TOL <= s <= hi + SCORE_TOL
             and k not in exclude and (allowed is None or k in allowed)}
    keys_got = {k for k, _ in got}
    assert keys_got <= maybe
    if caps.exact:
        assert sure <= keys_got or len(got) < len(sure)  # a page may hold fewer than all
        assert len(sure) <= result.total <= len(maybe)
    elif sure:
        assert len(sure & keys_got) / min(len(sure), max(len(got), 1)) >= caps.recall - 1e-9 or len(got) < len(sure)
    return got


def test_all_in_range_exact_or_at_declared_recall(data, backend):
    cat, keys, ids, x = data
    for a in (0, 777, 1500):
        ref = _reference(x, keys, [a])
        lo = float(np.sort(ref)[-60])  # about 60 rows in range
        res = cat.search(SearchSpec("contract", anchors=[keys[a]], min_score=lo), Page(None), backend=backend)
        got = _check(backend, res, ref, keys, lo, 1.0, exclude={keys[a]})
        if BACKENDS[backend].capabilities.exact:
            assert res.complete and len(got) == res.total


def test_paging_concatenates_to_the_whole(data, backend):
    cat, keys, ids, x = data
    spec = SearchSpec("contract", anchors=[keys[10]], min_score=0.5)
    whole = cat.search(spec, Page(None), backend=backend)
    pages = [cat.search(spec, Page(7, off), backend=backend) for off in range(0, 35, 7)]
    joined = [h.id for p in pages for h in p.results]
    assert joined == [h.id for h in whole.results][:35]
    if BACKENDS[backend].capabilities.exact:
        assert {p.total for p in pages} == {whole.total}


def test_bounds_are_inclusive(data, backend):
    cat, keys, ids, x = data
    top = cat.search(SearchSpec("contract", anchors=[keys[5]], min_score=0.0), Page(20), backend="exact").results
    lo, hi = top[15].score, top[2].score
    res = cat.search(SearchSpec("contract", anchors=[keys[5]], min_score=lo, max_score=hi), Page(None),
                     backend=backend)
    got = {h.id for h in res.results}
    assert top[15].id in got and top[2].id in got
    assert all(lo <= h.score <= hi for h in res.results)


def test_ties_are_ordered_by_id(data, backend):
    cat, keys, ids, x = data
    res = cat.search(SearchSpec("contract", anchors=[keys[0]], min_score=0.999, include_anchors=True), Page(None),
                     backend=backend)
    tied = [h for h in res.results if h.score == res.results[0].score]
    assert {h.global_key for h in tied} >= {keys[0], keys[1], keys[2], keys[3]}
    assert [h.id for h in tied] == sorted(h.id for h in tied)


def test_anchors_are_left_out_unless_asked(data, backend):
    cat, keys, ids, x = data
    without = cat.search(SearchSpec("contract", anchors=[keys[0]], min_score=0.99), Page(None), backend=backend)
    assert keys[0] not in {h.global_key for h in without.results}
    with_ = cat.search(SearchSpec("contract", anchors=[keys[0]], min_score=0.99, include_anchors=True), Page(None),
                       backend=backend)
    assert keys[0] in {h.global_key for h in with_.results}


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_mean_and_max(data, backend, aggregate):
    cat, keys, ids, x = data
    anchors = [20, 900, 1800]
    ref = _reference(x, keys, anchors, aggregate=aggregate)
    lo = float(np.sort(ref)[-80])
    res = cat.search(SearchSpec("contract", anchors=[keys[i] for i in anchors], aggregate=aggregate, min_score=lo),
                     Page(None), backend=backend)
    _check(backend, res, ref, keys, lo, 1.0, exclude={keys[i] for i in anchors})


def test_negatives_rerank_but_keep_the_positives_neighbourhood(data, backend):
    cat, keys, ids, x = data
    ref = _reference(x, keys, [30], negatives=[31])
    lo = float(np.sort(ref)[-50])
    res = cat.search(SearchSpec("contract", anchors=[keys[30]], negatives=[keys[31]], min_score=lo), Page(None),
                     backend=backend)
    _check(backend, res, ref, keys, lo, 1.0, exclude={keys[30], keys[31]})
    near = cat.search(SearchSpec("contract", anchors=[keys[30]], min_score=0.0), Page(60), backend="exact")
    assert res.results and res.results[0].global_key in {h.global_key for h in near.results}


def test_filters_apply_to_every_backend(data, backend):
    cat, keys, ids, x = data
    ref = _reference(x, keys, [44])
    allowed = {k for i, k in enumerate(keys) if i % 3 == 1}  # colour green (see make_rows)
    lo = float(np.sort(ref)[-150])
    res = cat.search(SearchSpec("contract", anchors=[keys[44]], min_score=lo, where={"colour": "green"}),
                     Page(None), backend=backend)
    _check(backend, res, ref, keys, lo, 1.0, exclude={keys[44]}, allowed=allowed)


def test_ascending_order(data, backend):
    cat, keys, ids, x = data
    ref = _reference(x, keys, [100])
    hi = float(np.sort(ref)[40])
    res = cat.search(SearchSpec("contract", anchors=[keys[100]], min_score=0.0, max_score=hi, order="asc"),
                     Page(None), backend=backend)
    _check(backend, res, ref, keys, 0.0, hi, exclude={keys[100]}, order="asc")


def test_the_spec_round_trips_through_json(data):
    cat, keys, ids, x = data
    spec = SearchSpec("contract", anchors=[ids[1], [0.5] * DIMS], negatives=[ids[2]], text=None, min_score=0.4,
                      max_score=0.9, aggregate="max", where={"colour": "red"}, order="asc", include_anchors=True)
    assert SearchSpec.from_json(spec.to_json()) == spec
    grouped = spec.replace(group_by="camera.make")
    assert grouped.to_json()["group_by"] == "camera.make" and "group_by" not in spec.to_json()
    assert SearchSpec.from_json(grouped.to_json()) == grouped
    filter_only = SearchSpec(where={"flagged": True})
    assert filter_only.to_json()["min_score"] is None
    assert SearchSpec.from_json(filter_only.to_json()) == filter_only


@pytest.mark.parametrize("sort,order", [("global_key", "asc"), ("global_key", "desc"), ("created", "desc"),
                                        ("created", "asc"), ("score", "desc")])
def test_sort_keeps_the_rows_in_range_and_orders_them(data, backend, sort, order):
    cat, keys, ids, x = data
    ref = _reference(x, keys, [60])
    lo = float(np.sort(ref)[-70])
    spec = SearchSpec("contract", anchors=[keys[60]], min_score=lo, where={"colour": "green"})
    allowed = {k for i, k in enumerate(keys) if i % 3 == 1}
    res = cat.search(spec.replace(sort=sort, order=order), Page(None), backend=backend)
    by_score = cat.search(spec, Page(None), backend="exact")
    if sort != "score":  # a sort the backend does not declare is answered by the exact scan
        assert {h.id for h in res.results} == {h.id for h in by_score.results}
        assert res.total == by_score.total and res.complete
    got = [(h.global_key, h.score) for h in res.results]
    for k, s in got:
        assert lo <= s <= 1.0 and abs(s - ref[keys.index(k)]) <= SCORE_TOL and k in allowed
    if sort == "global_key":  # unique keys: no ties
        assert [k for k, _ in got] == sorted((k for k, _ in got), reverse=order == "desc")
    elif sort == "created":  # one import: every row ties, so the order is by row id
        assert [h.id for h in res.results] == sorted(h.id for h in res.results)
    pages = [cat.search(spec.replace(sort=sort, order=order), Page(6, off), backend=backend) for off in (0, 6, 12)]
    assert [h.id for p in pages for h in p.results] == [h.id for h in res.results][:18]


def test_max_says_which_anchor_matched(data, backend):
    cat, keys, ids, x = data
    anchors = [20, 900, 1800]
    per = [_reference(x, keys, [a]) for a in anchors]
    ref = np.max(per, axis=0)
    lo = float(np.sort(ref)[-90])
    res = cat.search(SearchSpec("contract", anchors=[keys[i] for i in anchors], aggregate="max", min_score=lo),
                     Page(None), backend=backend)
    _check(backend, res, ref, keys, lo, 1.0, exclude={keys[i] for i in anchors})
    by_key = {k: i for i, k in enumerate(keys)}
    named = 0
    for h in res.results:
        col = np.array([p[by_key[h.global_key]] for p in per])
        top = np.sort(col)
        if top[-1] - top[-2] <= 2 * SCORE_TOL:
            assert h.anchor in {ids[a] for a in anchors}  # too close to call: either of the nearest
            continue
        assert h.anchor == ids[anchors[int(np.argmax(col))]]
        named += 1
    assert named > 0 and len({h.anchor for h in res.results}) >= 2


def _meta_value(i, field):
    """The metadata value of row ``i`` (see make_rows), None where the row has no such key."""
    if field == "colour":
        return ["red", "green", "blue"][i % 3]
    if field == "camera.iso":
        return 100 * (i % 8)
    if field == "flagged":
        return True if i % 5 == 0 else None
    raise AssertionError(field)


@pytest.mark.parametrize("field", ["colour", "camera.iso", "flagged"])
def test_group_by_gives_each_groups_best_row_and_size(data, backend, field):
    cat, keys, ids, x = data
    a = 70
    ref = _reference(x, keys, [a])
    lo = float(np.sort(ref)[-300])
    res = cat.search(SearchSpec("contract", anchors=[keys[a]], min_score=lo, group_by=field), Page(None),
                     backend=backend)
    exact = BACKENDS[backend].capabilities.exact
    by_key = {k: i for i, k in enumerate(keys)}

    def members(value, slack):  # rows in range (within ``slack`` of the bound) of the group
        return [i for i in range(N) if i != a and ref[i] >= lo + slack and _meta_value(i, field) == value]

    seen = set()
    for h in res.results:
        i = by_key[h.global_key]
        assert h.group == _meta_value(i, field)
        assert abs(h.score - ref[i]) <= SCORE_TOL and h.score >= lo
        if h.group is None:  # a row without the field is a group of its own
            assert h.group_size == 1
            continue
        assert h.group not in seen, "one result per group"
        seen.add(h.group)
        sure, maybe = members(h.group, SCORE_TOL), members(h.group, -SCORE_TOL)
        assert h.group_size <= len(maybe)
        if exact:
            assert len(sure) <= h.group_size
            assert h.score >= max(ref[j] for j in maybe) - 2 * SCORE_TOL, "the group's best row"
    sign_sorted = [(-h.score, h.id) for h in res.results]
    for (s1, i1), (s2, i2) in zip(sign_sorted, sign_sorted[1:]):
        assert s1 <= s2 and (s1 != s2 or i1 < i2)
    assert res.total == len(res.results)
    if exact:
        in_range = [i for i in range(N) if i != a and ref[i] >= lo + SCORE_TOL]
        values = {_meta_value(i, field) for i in in_range} - {None}
        assert {h.group for h in res.results} - {None} >= values
        singles = sum(1 for i in in_range if _meta_value(i, field) is None)
        assert res.total >= len(values) + singles


def test_group_by_pages_and_totals_count_groups(data, backend):
    cat, keys, ids, x = data
    spec = SearchSpec("contract", anchors=[keys[80]], min_score=0.3, group_by="camera.iso")
    whole = cat.search(spec, Page(None), backend=backend)
    assert whole.total == len(whole.results) <= 8
    pages = [cat.search(spec, Page(3, off), backend=backend) for off in (0, 3, 6)]
    assert [h.id for p in pages for h in p.results] == [h.id for h in whole.results]
    assert all(len(p.results) <= 3 for p in pages)
    if BACKENDS[backend].capabilities.exact:
        assert whole.total == 8 and {p.total for p in pages} == {8}
        assert sum(h.group_size for h in whole.results) == cat.search(spec.replace(group_by=None), Page(0),
                                                                      backend=backend).total
    by_key = cat.search(spec.replace(sort="global_key", order="asc"), Page(None), backend=backend)
    assert [h.global_key for h in by_key.results] == sorted(h.global_key for h in by_key.results)
    assert {h.group for h in by_key.results} == {h.group for h in whole.results}
