"""The automatic score range and the score distribution (PRODUCT.md §3), in the library and the CLI.

Float tolerance: scores from the catalog (float32 faiss L1 kernels, summation order depends on SIMD)
are compared with the float64 reference of ``search_support.np_scores`` within ``SCORE_ATOL``
(knn_support); histogram counts are compared bin by bin only for reference scores farther than
``SCORE_ATOL`` from a bin edge. Nothing here depends on the exact summation order: scores taken from
the catalog itself (a search's top score, the distribution's best) are compared with each other
within ``SCORE_ATOL`` too.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from catalog.errors import CatalogError
from catalog.search import Page, SearchSpec
from catalog.search.auto_range import (DEFAULT_BINS, TOP_N, RangeChoice, ScoreDistribution, choose_range,
                                       distribution_from_scores, floor_step)
from knn_support import SCORE_ATOL
from search_support import make_embedding, np_scores

DIMS = 16


# -- the rule, on synthetic distributions ------------------------------------------------------------
def _dist(scores):
    return distribution_from_scores(np.asarray(scores, dtype=np.float64))


def _spread(n, lo, hi, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, n)


def test_top_n_is_100():
    assert TOP_N == 100 and DEFAULT_BINS == 50


def test_rule_text_prompt_opens_on_the_best_rows_even_when_the_default_range_has_rows():
    scores = np.concatenate([_spread(500, 0.2, 0.7), [0.9, 0.95]])
    d = _dist(scores)
    c = choose_range(d, text_prompt=True)
    nth = np.sort(scores)[::-1][TOP_N - 1]
    assert (c.reason, c.automatic, c.max_score, c.top_n) == ("top", True, 1.0, TOP_N)
    assert c.min_score == floor_step(nth) and c.min_score <= nth < c.min_score + 0.01 + 1e-12
    assert (scores >= c.min_score).sum() >= TOP_N
    assert c.message.startswith("A text prompt opens on its best matches; showing the best 100 rows (scores ")


def test_rule_default_range_when_a_row_scores_in_it():
    d = _dist(np.concatenate([_spread(500, 0.2, 0.7), [0.851]]))
    c = choose_range(d, text_prompt=False)
    assert (c.min_score, c.max_score, c.reason, c.automatic) == (0.85, 1.0, "default", True)
    assert "0.85" in c.message


def test_rule_top_n_when_no_row_scores_in_the_default_range():
    scores = _spread(1000, 0.30, 0.62, seed=3)
    c = choose_range(_dist(scores))
    nth = np.sort(scores)[::-1][TOP_N - 1]
    assert c.reason == "top" and c.max_score == 1.0
    assert c.min_score == math.floor(nth * 100) / 100 or c.min_score == floor_step(nth)
    assert (scores >= c.min_score).sum() >= TOP_N
    assert c.message == f"No row scores 0.85 or more; showing the best 100 rows (scores {c.min_score:.2f}–1.00)"


def test_rule_fewer_rows_than_n_starts_at_the_lowest_score():
    scores = [0.31, 0.5, 0.62]
    c = choose_range(_dist(scores))
    assert (c.min_score, c.max_score, c.reason) == (0.31, 1.0, "top")
    assert "all 3 rows" in c.message
    c = choose_range(_dist([0.8449]), text_prompt=False)
    assert c.min_score == 0.84 and "all 1 row " in c.message


def test_rule_without_rows():
    c = choose_range(_dist([]))
    assert (c.min_score, c.max_score, c.reason) == (0.0, 1.0, "top")
    assert _dist([]).best is None and _dist([]).nth_best(5) is None


def test_floor_step_never_exceeds_the_score():
    for s in np.random.default_rng(1).uniform(0, 1, 5000).tolist() + [0.0, 1.0, 0.58, 0.29, 0.57, 0.999999]:
        f = floor_step(s)
        assert f <= s < f + 0.01 + 1e-9 and round(f, 2) == f
    assert floor_step(0.58) == 0.58 and floor_step(0.5799) == 0.57 and floor_step(1.0) == 1.0


def test_distribution_from_scores():
    scores = _spread(777, 0.013, 0.987, seed=2)
    d = _dist(scores)
    assert d.bins == 50 and len(d.edges) == 51 and d.edges[0] == 0.0 and d.edges[-1] == 1.0
    assert sum(d.counts) == d.total == 777 and all(isinstance(c, int) for c in d.counts)
    assert d.best == pytest.approx(scores.max(), abs=1e-12)
    assert list(d.top_scores) == sorted(d.top_scores, reverse=True) and len(d.top_scores) == TOP_N
    assert d.nth_best(1) == d.best and d.nth_best(10_000) == d.top_scores[-1]
    assert distribution_from_scores([1.0, 0.0], bins=4).counts == (1, 0, 0, 1)  # 1.0 is in the last bin
    js = json.loads(json.dumps(d.to_dict()))
    assert set(js) == {"edges", "counts", "total", "best", "top_scores"} and sum(js["counts"]) == 777
    for bad in (0, -1, 1001, 2.5, True, "50"):
        with pytest.raises(CatalogError) as exc:
            distribution_from_scores(scores, bins=bad)
        assert exc.value.field == "bins"


def test_dataclasses_are_frozen():
    d, c = _dist([0.5]), choose_range(_dist([0.5]))
    assert isinstance(d, ScoreDistribution) and isinstance(c, RangeChoice)
    with pytest.raises(AttributeError):
        d.total = 3
    with pytest.raises(AttributeError):
        c.min_score = 0.1
    assert set(c.to_dict()) == {"min_score", "max_score", "automatic", "reason", "top_n", "message"}


# -- the spec --------------------------------------------------------------------------------------
def test_spec_without_range_is_automatic_and_round_trips():
    spec = SearchSpec("emb", anchors=["row-1"])
    assert spec.auto_range and spec.min_score is None and spec.max_score is None
    js = spec.to_json()
    assert js["min_score"] is None and js["max_score"] is None and js["auto_range"] is True
    assert SearchSpec.from_json(js) == spec
    assert SearchSpec.from_kwargs("emb", anchors=["row-1"]) == spec


def test_one_bound_fills_the_other_from_the_default_range():
    assert (SearchSpec("emb", anchors=["r"], min_score=0.5).max_score, SearchSpec("emb", anchors=["r"],
            max_score=0.95).min_score) == (1.0, 0.85)
    assert not SearchSpec("emb", anchors=["r"], min_score=0.5).auto_range
    with pytest.raises(CatalogError, match="greater than max score"):
        SearchSpec("emb", anchors=["r"], max_score=0.5)  # min stays 0.85, as it always did


def test_stored_json_reads_as_before():
    old = {"embedding": "e", "anchors": ["r"], "negative_anchors": [], "text": None, "min_score": 0.7,
           "max_score": 0.9, "aggregate": "mean", "where": None, "order": "desc", "include_anchors": False}
    spec = SearchSpec.from_json(old)
    assert (spec.min_score, spec.max_score, spec.auto_range) == (0.7, 0.9, False)
    assert spec.to_json() == old  # no new key for an explicit range
    nulls = dict(old, min_score=None, max_score=None)
    assert (SearchSpec.from_json(nulls).min_score, SearchSpec.from_json(nulls).max_score) == (0.85, 1.0)
    filt = SearchSpec(where={"a": 1})
    assert not filt.auto_range and "auto_range" not in filt.to_json()


# -- the library, on a custom embedding ------------------------------------------------------------
@pytest.fixture
def data(cat, tmp_path):
    emb, keys, x = make_embedding(cat, tmp_path, n=300, dims=DIMS)
    return cat, emb, keys, x


def _far_vector(x):
    """A query direction whose best match scores well below 0.85."""
    for seed in range(100):
        v = np.random.default_rng(seed).standard_normal(DIMS)
        if np_scores(v, x).max() < 0.8:
            return v
    raise AssertionError("no far vector")


def _near_anchor(x):
    """A row whose best other row scores clearly above 0.85."""
    for i in range(len(x)):
        s = np.delete(np_scores(x[i], x), i)
        if s.max() > 0.86:
            return i
    raise AssertionError("no near anchor")


def _check_histogram(dist, ref):
    """Each bin holds the reference scores clearly inside it (and sums match exactly)."""
    assert sum(dist.counts) == dist.total == len(ref)
    edges = np.asarray(dist.edges)
    for i, c in enumerate(dist.counts):
        lo, hi = edges[i], edges[i + 1]
        inside = ((ref >= lo + SCORE_ATOL) & (ref < hi - SCORE_ATOL)).sum()
        near = ((ref >= lo - SCORE_ATOL) & (ref < hi + SCORE_ATOL)).sum()
        assert inside <= c <= near, (i, inside, c, near)


def test_distribution_counts_every_row_matching_the_filter(data):
    cat, emb, keys, x = data
    v = _far_vector(x)
    d = cat.score_distribution(SearchSpec(emb.name, anchors=[v]))
    _check_histogram(d, np_scores(v, x))
    assert d.total == 300
    red = [i for i in range(300) if i % 3 == 0]  # colour red (make_rows)
    spec = SearchSpec(emb.name, anchors=[v], where={"colour": "red"}, min_score=0.99)  # the range is ignored
    d = cat.score_distribution(spec, bins=20)
    assert d.bins == 20 and d.total == sum(d.counts) == len(red) == 100
    _check_histogram(d, np_scores(v, x[red]))
    assert d.best == pytest.approx(np_scores(v, x[red]).max(), abs=SCORE_ATOL)
    # the keyword form, and row anchors: the anchor itself is not a result, unless included
    assert cat.score_distribution(emb.name, anchors=[keys[0]]).total == 299
    assert cat.score_distribution(emb.name, anchors=[keys[0]], include_anchors=True).total == 300


def test_best_score_equals_the_top_result(data):
    cat, emb, keys, x = data
    for spec in (SearchSpec(emb.name, anchors=[keys[7]]), SearchSpec(emb.name, anchors=[_far_vector(x)]),
                 SearchSpec(emb.name, anchors=[keys[1], keys[2]], aggregate="max", where={"colour": "green"})):
        d = cat.score_distribution(spec)
        top = cat.search(spec.replace(min_score=0.0, max_score=1.0), Page(1)).results[0].score
        assert d.best == pytest.approx(top, abs=SCORE_ATOL)
        assert cat.search(spec, Page(1)).results[0].score == pytest.approx(d.best, abs=SCORE_ATOL)


def test_anchor_with_rows_in_the_default_range_gets_the_default_range(data):
    cat, emb, keys, x = data
    i = _near_anchor(x)
    res = cat.search(emb.name, anchors=[keys[i]], limit=None)
    r = res.score_range
    assert (r.min_score, r.max_score, r.automatic, r.reason) == (0.85, 1.0, True, "default")
    explicit = cat.search(emb.name, anchors=[keys[i]], min_score=0.85, max_score=1.0, limit=None)
    assert res.to_dict() == explicit.to_dict() and res.total > 0
    assert res.distribution is not None and res.distribution.total == 299
    assert explicit.score_range.automatic is False and explicit.score_range.reason == "given"
    assert explicit.distribution is None


def test_no_row_in_the_default_range_gets_the_best_100(data):
    cat, emb, keys, x = data
    v = _far_vector(x)
    res = cat.search(SearchSpec(emb.name, anchors=[v]), Page(None))
    r = res.score_range
    assert r.automatic and r.reason == "top" and r.max_score == 1.0 and r.top_n == TOP_N
    assert r.min_score == floor_step(res.distribution.nth_best(TOP_N))
    assert res.total >= TOP_N and all(h.score >= r.min_score for h in res.results)
    ref = np.sort(np_scores(v, x))[::-1]
    assert r.min_score <= ref[TOP_N - 1] + SCORE_ATOL and r.min_score > ref[TOP_N - 1] - 0.01 - SCORE_ATOL
    # exactly the search with that range given
    same = cat.search(SearchSpec(emb.name, anchors=[v], min_score=r.min_score, max_score=1.0), Page(None))
    assert same.to_dict() == res.to_dict()
    assert cat.search_row_ids(SearchSpec(emb.name, anchors=[v])) == [h.id for h in res.results]
    d = res.to_dict(details=True)
    assert d["score_range"]["reason"] == "top" and sum(d["distribution"]["counts"]) == 300
    assert set(res.to_dict()) == {"total", "results"}


def test_fewer_rows_than_n(data):
    cat, emb, keys, x = data
    v = _far_vector(x)
    where = {"n": {"$lt": 30}}
    res = cat.search(SearchSpec(emb.name, anchors=[v], where=where), Page(None))
    assert res.score_range.reason == "top" and res.total == 30
    assert res.score_range.min_score == floor_step(min(h.score for h in res.results))
    assert "all 30 rows" in res.score_range.message


def test_explicit_ranges_are_unchanged(data):
    cat, emb, keys, x = data
    for kw in (dict(min_score=0.5), dict(min_score=0.85, max_score=1.0), dict(min_score=0.3, max_score=0.7),
               dict(max_score=0.99)):
        res = cat.search(emb.name, anchors=[keys[3]], limit=None, **kw)
        lo, hi = kw.get("min_score", 0.85), kw.get("max_score", 1.0)
        assert (res.score_range.min_score, res.score_range.max_score, res.score_range.automatic) == (lo, hi, False)
        ref = np.delete(np_scores(x[3], x), 3)
        clear = ((ref >= lo + SCORE_ATOL) & (ref <= hi - SCORE_ATOL)).sum()
        loose = ((ref >= lo - SCORE_ATOL) & (ref <= hi + SCORE_ATOL)).sum()
        assert clear <= res.total <= loose
        assert all(lo <= h.score <= hi for h in res.results)


def test_explicit_backend_with_automatic_range(data):
    cat, emb, keys, x = data
    v = _far_vector(x)
    a = cat.search(SearchSpec(emb.name, anchors=[v]), Page(None), backend="exact")
    b = cat.search(SearchSpec(emb.name, anchors=[v]), Page(None))
    assert a.to_dict() == b.to_dict() and a.score_range == b.score_range


def test_slice_saved_from_an_automatic_spec_stores_the_resolved_range(data):
    cat, emb, keys, x = data
    v = _far_vector(x)
    spec = SearchSpec(emb.name, anchors=[v])
    want = cat.search(spec, Page(None))
    s = cat.save_slice("auto slice", spec)
    assert (s.query["min_score"], s.query["max_score"]) == (want.score_range.min_score, 1.0)
    assert "auto_range" not in s.query and not s.spec.auto_range
    got = s.rows(limit=None)
    assert got.total == want.total
    assert [h.id for h in got.results] == [h.id for h in want.results]  # the stored vector is re-normalised:
    assert [h.score for h in got.results] == pytest.approx([h.score for h in want.results], abs=SCORE_ATOL)
    i = _near_anchor(x)
    s = cat.save_slice("auto default", embedding=emb.name, anchors=[keys[i]])
    assert (s.query["min_score"], s.query["max_score"]) == (0.85, 1.0)
    s = cat.save_slice("filter only", where={"colour": "red"})
    assert s.is_filter_only and s.rows().total == 100


# -- a text prompt (the offline MiniLM model) and an image prompt ----------------------------------
def test_text_prompt_always_opens_on_the_best_rows(cat, text_records):
    cat.import_datarows([text_records])
    cat.compute_embeddings("all-minilm-l6-v2")
    # the prompt is one of the rows: that row scores 1, in the default range, and still the rule is top-N
    res = cat.search("all-minilm-l6-v2", text="The striker scored twice in the final", limit=None)
    r = res.score_range
    assert r.automatic and r.reason == "top" and res.total == 8
    assert res.results[0].global_key == "sports-0" and res.results[0].score == pytest.approx(1.0, abs=1e-4)
    assert r.min_score == floor_step(min(h.score for h in res.results))
    assert r.message.startswith("A text prompt opens on its best matches; showing all 8 rows")
    other = cat.search("all-minilm-l6-v2", text="baking a cake in the kitchen", limit=None)
    assert other.total == 8 and other.results[0].score < 0.85 and other.score_range.reason == "top"


def test_image_prompt_uses_the_default_range_when_rows_score_in_it(cat, image_folder):
    cat.import_datarows([image_folder])
    cat.compute_embeddings("color-texture")
    res = cat.search("color-texture", image=str(image_folder / "red" / "r1.png"), limit=None)
    assert res.score_range.reason == "default" and (res.score_range.min_score, res.score_range.max_score) == (0.85, 1.0)
    assert res.results[0].global_key == "red/r1.png"


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_note_for_an_automatic_range(data, cli):
    cat, emb, keys, x = data
    i = _near_anchor(x)
    r = cli("search", "--embedding", "custom", "--anchor", keys[i], "--limit", "3")
    assert r.returncode == 0, r.stderr
    lib = cat.search("custom", anchors=[keys[i]], limit=3)
    assert r.stdout.strip().splitlines()[-1].startswith(f"{lib.total} row") and "in [0.85, 1]" in r.stdout
    note = r.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: no score range given; using 0.85-1.00.")
    assert "--min/--max" in note[0]
    r = cli("search", "--embedding", "custom", "--anchor", keys[i], "--where", '{"n": {"$gte": 290}}', "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["score_range"]["automatic"] is True and "note:" in r.stderr
    lib = cat.search("custom", anchors=[keys[i]], where={"n": {"$gte": 290}})
    assert {k: out[k] for k in ("total", "results")} == lib.to_dict()
    assert out["score_range"] == lib.score_range.to_dict()


def test_cli_top_n_note(data, cli):
    cat, emb, keys, x = data
    # a row with no neighbour at 0.85 or more, if one exists in this data set
    far = [i for i in range(len(x)) if np.delete(np_scores(x[i], x), i).max() < 0.84]
    if not far:
        pytest.skip("every row has a close neighbour in this data")
    r = cli("search", "--embedding", "custom", "--anchor", keys[far[0]], "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert "No row scores 0.85 or more; showing the best 100 rows" in r.stderr


def test_cli_explicit_range_prints_no_note(data, cli):
    cat, emb, keys, x = data
    for flags in (["--min", "0.5"], ["--min-score", "0.5"], ["--min", "0.85", "--max", "1"], ["--max", "0.95"]):
        r = cli("search", "--embedding", "custom", "--anchor", keys[0], *flags, "--json")
        assert r.returncode == 0 and r.stderr == "", r.stderr
        out = json.loads(r.stdout)
        assert set(out) == {"total", "results"}


def test_cli_histogram(data, cli):
    cat, emb, keys, x = data
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--min", "0.9", "--histogram")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("score distribution: 299 rows, best "))
    bins = [line.split() for line in lines[at + 1:]]
    assert sum(int(b[1]) for b in bins) == 299 and all(b[0][4] == "-" for b in bins)
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--histogram", "--bins", "10", "--json")
    out = json.loads(r.stdout)
    assert len(out["distribution"]["counts"]) == 10 and sum(out["distribution"]["counts"]) == 299
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--histogram", "--bins", "0")
    assert r.returncode != 0 and "--bins" in r.stderr and "`bins`" not in r.stderr


def test_cli_slice_save_without_range_notes_the_stored_range(data, cli):
    cat, emb, keys, x = data
    r = cli("slices", "save", "cli auto", "--embedding", "custom", "--anchor", keys[0])
    assert r.returncode == 0, r.stderr
    s = cat.get_slice("cli auto")
    assert s.query["min_score"] is not None and "auto_range" not in s.query
    assert f"{s.query['min_score']:.2f}-{s.query['max_score']:.2f}" in r.stderr
    r = cli("slices", "save", "cli given", "--embedding", "custom", "--anchor", keys[0], "--min", "0.4")
    assert r.returncode == 0 and r.stderr == ""
    assert cat.get_slice("cli given").query["min_score"] == 0.4
