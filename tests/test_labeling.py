"""Label-by-similarity: the §4 rule on a hand-computed example, the pool, save, review, evaluate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from catalog import CatalogError, ReviewDecision
from catalog.errors import NotFound
from catalog.labeling import LabelSuggestion, RowSuggestions
from catalog.search.l1_knn import knn_l1
from knn_support import assert_knn_matches, exact_l1

D = 8


def s_from_l1(l1: float) -> float:
    """The product's score written out by hand: 1 - L1 / (2 * sqrt(D))."""
    return 1.0 - l1 / (2.0 * math.sqrt(D))


def unit(*xs) -> list[float]:
    v = list(xs) + [0.0] * (D - len(xs))
    return v


# query q = e0; every vector below has norm 1, so their L1 distances to q are exact by hand
VECTORS = {
    "q": unit(1, 0),
    "h1": unit(1, 0),  # L1 0    -> score 1
    "h3": unit(0.8, 0.6),  # L1 0.2 + 0.6 = 0.8
    "h2": unit(0.6, 0.8),  # L1 0.4 + 0.8 = 1.2
    "h5": unit(-1, 0),  # L1 2
    "h4": unit(-0.6, 0.8),  # L1 1.6 + 0.8 = 2.4
    "u": unit(1, 0),  # only an unreviewed suggestion: never in the pool
    "x": unit(0, 0, 1),  # unlabeled
    "novec": None,  # a row without a vector
}
L1 = {"h1": 0.0, "h3": 0.8, "h2": 1.2, "h5": 2.0, "h4": 2.4}
LABELS = {"h1": ["cat"], "h2": ["cat", "dog"], "h3": ["dog"], "h4": ["bird"], "h5": ["bird"]}


@pytest.fixture
def toy(cat, tmp_path):
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": k, "text": k}) + "\n" for k in VECTORS))
    cat.import_datarows([path])
    emb = cat.create_embedding("toy", D)
    keys = [k for k, v in VECTORS.items() if v is not None]
    emb.import_vectors(keys, np.array([VECTORS[k] for k in keys]))
    for key, names in LABELS.items():
        cat.set_labels(key, names)
    cat.set_labels("u", ["wolf"], source="similarity", score=0.9)
    return cat


def labels_of(row) -> dict:
    return {s.label: (s.score, s.suggested) for s in row.labels}


def test_label_scores_equal_hand_computed_example(toy):
    res = toy.label_by_similarity("toy", ["q"], results=4)
    row = res.results[0]
    assert [h.global_key for h in row.hits] == ["h1", "h3", "h2", "h5"]
    for h in row.hits:
        assert h.score == pytest.approx(s_from_l1(L1[h.global_key]), abs=1e-6)
    got = labels_of(row)
    assert set(got) == {"cat", "dog", "bird"}  # h4 (bird, 5th) is outside k=4 but h5 carries bird
    assert got["cat"][0] == pytest.approx((s_from_l1(0.0) + s_from_l1(1.2)) / 4, abs=1e-6)
    assert got["dog"][0] == pytest.approx((s_from_l1(0.8) + s_from_l1(1.2)) / 4, abs=1e-6)
    assert got["bird"][0] == pytest.approx(s_from_l1(2.0) / 4, abs=1e-6)
    assert [s.label for s in row.labels] == ["cat", "dog", "bird"]  # best first
    # default threshold 0.30: cat (0.447) and dog (0.412) ticked, bird (0.162) shown unticked
    assert {k: v[1] for k, v in got.items()} == {"cat": True, "dog": True, "bird": False}


def test_hit_scores_match_search(toy):
    row = toy.label_by_similarity("toy", ["q"], results=5).results[0]
    found = {h.global_key: h.score for h in toy.search("toy", anchors=["q"], min_score=0.0, limit=None).results}
    for h in row.hits:
        assert h.score == pytest.approx(found[h.global_key], abs=1e-6)


def test_threshold_and_top_only(toy):
    row = toy.label_by_similarity("toy", ["q"], results=4, threshold=0.42).results[0]
    assert row.suggested == ["cat"]
    cat_score = (s_from_l1(0.0) + s_from_l1(1.2)) / 4
    row = toy.label_by_similarity("toy", ["q"], results=4, threshold=cat_score).results[0]
    assert row.suggested == ["cat"]  # a score equal to the threshold is suggested
    row = toy.label_by_similarity("toy", ["q"], results=4, threshold=0.99).results[0]
    assert row.suggested == []
    assert len(row.labels) == 3  # unticked labels are still returned
    row = toy.label_by_similarity("toy", ["q"], results=4, threshold=0.99, top_only=True).results[0]
    assert row.suggested == ["cat"]
    row = toy.label_by_similarity("toy", ["q"], results=4, threshold=0.0).results[0]
    assert row.suggested == ["cat", "dog", "bird"]


def test_small_pool_still_divides_by_k(toy):
    row = toy.label_by_similarity("toy", ["q"], results=10).results[0]
    assert len(row.hits) == 5  # the whole pool
    assert labels_of(row)["cat"][0] == pytest.approx((s_from_l1(0.0) + s_from_l1(1.2)) / 10, abs=1e-6)
    assert labels_of(row)["bird"][0] == pytest.approx((s_from_l1(2.0) + s_from_l1(2.4)) / 10, abs=1e-6)


def test_pool_excludes_query_row_and_unreviewed_labels(toy):
    # h1 is in the pool; as a query it must not find itself (score 1) but still finds q? q is unlabeled
    row = toy.label_by_similarity("toy", ["h1"], results=2).results[0]
    assert "h1" not in [h.global_key for h in row.hits]
    assert [h.global_key for h in row.hits] == ["h3", "h2"]
    # "u" has the same vector as q, but only an unreviewed suggestion: it is not a hit, wolf never appears
    row = toy.label_by_similarity("toy", ["q"], results=5).results[0]
    assert "u" not in [h.global_key for h in row.hits]
    assert "wolf" not in labels_of(row)


def test_review_moves_labels_into_pool(toy):
    toy.review_labels(["u"], accept=True)
    row = toy.label_by_similarity("toy", ["q"], results=2).results[0]
    assert {h.global_key for h in row.hits} == {"u", "h1"}
    assert "wolf" in labels_of(row)


def test_save_is_idempotent_and_never_overrides_manual(toy):
    toy.set_labels("x", ["dog"])  # manual label on x; dog will also be suggested for q
    res = toy.label_by_similarity("toy", ["q", "x"], results=4, save=True)
    assert res.saved >= 2
    first = toy.get_labels(["q", "x"])
    q_id = res.results[0].id
    assert {(l["label"], l["source"], l["reviewed"]) for l in first[q_id]} == {
        ("cat", "similarity", False), ("dog", "similarity", False)}
    cat_label = next(l for l in first[q_id] if l["label"] == "cat")
    assert cat_label["score"] == pytest.approx((s_from_l1(0.0) + s_from_l1(1.2)) / 4, abs=1e-6)
    x_labels = first[res.results[1].id]
    assert any(l["label"] == "dog" and l["source"] == "manual" and l["reviewed"] for l in x_labels)
    again = toy.label_by_similarity("toy", ["q", "x"], results=4, save=True)
    assert again.saved == 0
    second = toy.get_labels(["q", "x"])
    strip = lambda d: {k: sorted((l["label"], l["source"], l["score"], l["reviewed"]) for l in v) for k, v in d.items()}  # noqa: E731
    assert strip(first) == strip(second)


def test_saved_suggestions_stay_out_of_pool_until_accepted(toy):
    toy.label_by_similarity("toy", ["q"], results=4, save=True)
    row = toy.label_by_similarity("toy", ["h1"], results=5).results[0]
    assert "q" not in [h.global_key for h in row.hits]
    toy.review_labels(["q"], accept=True, labels=["cat"])
    row = toy.label_by_similarity("toy", ["h1"], results=5).results[0]
    assert row.hits[0].global_key == "q"
    # q's pending "dog" suggestion does not count: dog comes from h3 and h2 only
    assert labels_of(row)["dog"][0] == pytest.approx((s_from_l1(0.8) + s_from_l1(1.2)) / 5, abs=1e-6)
    q_labels = next(iter(toy.get_labels(["q"]).values()))
    assert {(l["label"], l["reviewed"]) for l in q_labels} == {("cat", True), ("dog", False)}
    toy.review_labels(["q"], accept=False)  # rejects the remaining dog suggestion
    q_labels = next(iter(toy.get_labels(["q"]).values()))
    assert [(l["label"], l["source"], l["reviewed"]) for l in q_labels] == [("cat", "similarity", True)]


def test_row_sources_unlabeled_slice_and_search_result(toy):
    res = toy.label_by_similarity("toy", "unlabeled", results=2)
    assert {r.global_key for r in res.results} == {"q", "x"}  # u has a (pending) label, novec no vector
    toy.save_slice("q-and-x", where={"global_key": {"$in": ["q", "x"]}})
    via_slice = toy.label_by_similarity("toy", slice="q-and-x", results=2)
    assert sorted(r.global_key for r in via_slice.results) == ["q", "x"]
    assert toy.label_by_similarity("toy", toy.get_slice("q-and-x"), results=2).to_dict() == via_slice.to_dict()
    sr = toy.search("toy", anchors=["q"], min_score=0.99, limit=None)
    via_search = toy.label_by_similarity("toy", sr, results=2)
    assert [r.id for r in via_search.results] == [h.id for h in sr.results]


def test_to_dict_shape(toy):
    d = toy.label_by_similarity("toy", ["q"], results=2).to_dict()
    assert list(d) == ["results"]
    r = d["results"][0]
    assert set(r) == {"id", "global_key", "hits", "labels"}
    assert set(r["hits"][0]) == {"id", "global_key", "score"}
    assert set(r["labels"][0]) == {"label", "score", "suggested"}
    json.dumps(d)


def test_errors_write_nothing(toy, cat):
    before = cat.get_labels()
    with pytest.raises(CatalogError, match="no vector in embedding toy: 'novec'"):
        cat.label_by_similarity("toy", ["q", "novec"], save=True)
    with pytest.raises(CatalogError, match="'nope'"):
        cat.label_by_similarity("toy", ["q", "nope"], save=True)
    with pytest.raises(CatalogError, match="results"):
        cat.label_by_similarity("toy", ["q"], results=0)
    with pytest.raises(CatalogError, match="threshold"):
        cat.label_by_similarity("toy", ["q"], threshold=1.5)
    with pytest.raises(CatalogError, match="no embedding"):
        cat.label_by_similarity("missing", ["q"])
    assert cat.get_labels() == before


def test_empty_pool(cat, tmp_path):
    path = tmp_path / "r.ndjson"
    path.write_text("".join(json.dumps({"global_key": f"r{i}", "text": "t"}) + "\n" for i in range(3)))
    cat.import_datarows([path])
    emb = cat.create_embedding("e", D)
    emb.import_vectors(["r0", "r1"], np.eye(D)[:2])
    with pytest.raises(CatalogError, match="labeled pool is empty: no row has a manual or reviewed label"):
        cat.label_by_similarity("e", ["r0"])
    cat.set_labels("r2", "a")  # labeled, but no vector
    with pytest.raises(CatalogError, match="none of the 1 rows with manual or reviewed labels has a vector"):
        cat.label_by_similarity("e", ["r0"])


def test_knn_l1_is_exact_across_blocks(monkeypatch):
    import catalog.search.l1_knn as mod

    monkeypatch.setattr(mod, "BLOCK_BYTES", 256 * 4 * 16)  # force many small blocks
    rng = np.random.default_rng(3)
    pool = rng.standard_normal((2000, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    d, i = knn_l1(queries, pool, 7)
    assert_knn_matches((d, i), exact_l1(queries, pool))  # the exact 7 nearest, up to float ties
    d, i = knn_l1(queries, pool[:3], 5)  # fewer pool rows than k
    assert (i[:, 3:] == -1).all() and np.isinf(d[:, 3:]).all()


# -- evaluate --------------------------------------------------------------------------------------
@pytest.fixture
def clusters(cat, tmp_path):
    """Two tight, far-apart clusters of 4 rows each: leave-one-out is perfect at k=1..3."""
    keys = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    path = tmp_path / "c.ndjson"
    path.write_text("".join(json.dumps({"global_key": k, "text": k}) + "\n" for k in keys))
    cat.import_datarows([path])
    emb = cat.create_embedding("cl", D)
    rng = np.random.default_rng(0)
    vecs = np.vstack([np.eye(D)[0] + 0.01 * rng.standard_normal((4, D)),
                      np.eye(D)[1] + 0.01 * rng.standard_normal((4, D))])
    emb.import_vectors(keys, vecs)
    for k in keys:
        cat.set_labels(k, "A" if k.startswith("a") else "B")
    return cat


def test_evaluate_toy_known_answer(clusters):
    ev = clusters.evaluate_label_by_similarity("cl", results=(1, 3, 5), thresholds=(0.3, 0.9))
    assert ev.pool_size == 8 and ev.labels == {"A": 4, "B": 4}
    by = {(g["k"], g["threshold"]): g for g in ev.grid}
    for k in (1, 3):  # 1 or 3 neighbours: all from the own cluster (3 other members)
        assert by[(k, 0.3)]["accuracy"] == 1.0
        assert by[(k, 0.3)]["precision"] == 1.0 and by[(k, 0.3)]["coverage"] == 1.0
    # k=5: 3 own-cluster hits (score ~0.99) + 2 of the other (score ~0.65): own label ~0.59, other ~0.26
    assert by[(5, 0.3)]["accuracy"] == 1.0
    assert by[(5, 0.3)]["precision"] == 1.0
    assert by[(5, 0.9)]["coverage"] == 0.0 and by[(5, 0.9)]["precision"] is None
    # at k=1 the label score is the best hit's score (~0.99), so 0.9 still covers every row
    assert by[(1, 0.9)]["coverage"] == 1.0
    assert ev.recommended == {**by[(1, 0.9)]}  # precision 1, coverage 1, smallest k, higher threshold
    json.dumps(ev.to_dict())


def test_evaluate_precision_and_coverage_by_hand(clusters):
    # with threshold 0.2 at k=5, both labels are suggested for every row: precision 1/2, coverage 1
    ev = clusters.evaluate_label_by_similarity("cl", results=[5], thresholds=[0.2])
    g = ev.grid[0]
    assert g["precision"] == pytest.approx(0.5) and g["coverage"] == 1.0 and g["recall"] == 1.0
    assert g["suggestions_per_row"] == 2.0


def test_evaluate_says_when_no_pair_reaches_coverage(clusters):
    ev = clusters.evaluate_label_by_similarity("cl", results=[5], thresholds=[0.95])
    assert ev.recommended is None
    assert any("no (k, threshold) pair reaches coverage 0.8" in n for n in ev.notes)
    assert any("small k (1-2)" in n for n in ev.notes)  # 4 examples per label


def test_evaluate_needs_two_pool_rows(cat, tmp_path):
    path = tmp_path / "r.ndjson"
    path.write_text(json.dumps({"global_key": "r0", "text": "t"}) + "\n")
    cat.import_datarows([path])
    cat.create_embedding("e", D).import_vectors(["r0"], np.eye(D)[:1])
    cat.set_labels("r0", "a")
    with pytest.raises(CatalogError, match="at least 2 labeled rows"):
        cat.evaluate_label_by_similarity("e")


# -- review ----------------------------------------------------------------------------------------
def _labels(cat, key) -> dict:
    (labs,) = cat.get_labels([key]).values()
    return {lab["label"]: (lab["source"], lab["score"], lab["reviewed"]) for lab in labs}


def test_review_decision_from_suggestions_keeps_unseen_ticks():
    row = RowSuggestions("id-1", "r1", [], [LabelSuggestion("cat", 0.4, True), LabelSuggestion("bird", 0.1, False)])
    d = ReviewDecision.from_suggestions(row)
    assert (d.row, dict(d.accepted), d.added) == ("id-1", {"cat": 0.4}, ())
    d = ReviewDecision.from_suggestions(row, {"cat": False, "bird": True, "x": False}, ["pet", "x", "pet"])
    assert (dict(d.accepted), d.added) == ({"bird": 0.1}, ("pet",))


def test_apply_review_accepts_ticked_rejects_the_rest_and_adds_manual(toy):
    toy.label_by_similarity("toy", ["q"], results=4, save=True)  # pending cat and dog on q
    toy.set_labels("q", "wolf", source="similarity", score=0.2)  # pending, not in this result
    (row,) = toy.label_by_similarity("toy", ["q"], results=4).results
    assert row.suggested == ["cat", "dog"] and [s.label for s in row.labels] == ["cat", "dog", "bird"]
    cat_score = labels_of(row)["cat"][0]
    decision = ReviewDecision.from_suggestions(row, {"dog": False}, ["pet"])
    report = toy.apply_review([decision])
    assert (report.rows, report.accepted, report.rejected) == (1, 2, 2)
    got = _labels(toy, "q")
    assert set(got) == {"cat", "pet"}  # dog unticked and wolf pending: rejected; bird unticked, never saved
    assert got["cat"][0] == "similarity" and got["cat"][2] is True
    assert got["cat"][1] == pytest.approx(cat_score, abs=1e-6)
    assert got["pet"] == ("manual", None, True)
    # accepted labels join the pool: q (same vector as h1) is now a neighbour carrying cat and pet
    (again,) = toy.label_by_similarity("toy", ["h1"], results=1).results
    assert again.hits[0].global_key == "q" and {s.label for s in again.labels} == {"cat", "pet"}


def test_apply_review_writes_unsaved_suggestions_and_leaves_pool_labels(toy):
    toy.set_labels("x", "cat")  # already in the pool: left as it is, not counted
    decisions = [ReviewDecision("x", {"cat": 0.5, "dog": 1.7}),  # dog: never saved, score clamped to 1
                 ReviewDecision("q", {}, ("  bird ",))]
    report = toy.apply_review(decisions)
    assert (report.rows, report.accepted, report.rejected) == (2, 2, 0)
    assert _labels(toy, "x") == {"cat": ("manual", None, True), "dog": ("similarity", 1.0, True)}
    assert _labels(toy, "q") == {"bird": ("manual", None, True)}
    assert toy.apply_review([]).rows == 0


def test_apply_review_errors_write_nothing(toy):
    toy.label_by_similarity("toy", ["q"], results=4, save=True)
    before = toy.get_labels()
    cases = [
        ([ReviewDecision("q", {"cat": 0.4}), ReviewDecision("x", {}, ("y" * 101,))], CatalogError, "at most 100"),
        ([ReviewDecision("q", {"cat": 0.4}), ReviewDecision("nope", {"dog": 0.3})], NotFound, "'nope'"),
        ([ReviewDecision("q", {"cat": 0.4}), ReviewDecision("q", {})], CatalogError, "more than one review decision"),
        ([{"row": "q"}], CatalogError, "must be a ReviewDecision"),
    ]
    for decisions, kind, text in cases:
        with pytest.raises(kind, match=text):
            toy.apply_review(decisions)
    assert toy.get_labels() == before


def test_apply_review_is_one_transaction(toy, monkeypatch):
    toy.label_by_similarity("toy", ["q", "x"], results=4, threshold=0.0, save=True)
    before = toy.get_labels()
    rows = toy.label_by_similarity("toy", ["q", "x"], results=4, threshold=0.0).results
    calls = []
    real = toy.labels.review_labels

    def failing(rows_, accept, labels=None):
        calls.append(accept)
        if len(calls) == 2:  # the second write of the review fails: the first is rolled back too
            raise CatalogError("disk full")
        return real(rows_, accept, labels)

    monkeypatch.setattr(toy.labels, "review_labels", failing)
    with pytest.raises(CatalogError, match="disk full"):
        toy.apply_review([ReviewDecision.from_suggestions(r) for r in rows])
    assert len(calls) == 2
    assert toy.get_labels() == before
