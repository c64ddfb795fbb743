"""Near duplicates on planted data with known groups and splits: the all-pairs range search, groups and
their representatives, leaks, the approximate run's measured recall, saving as tags and slices, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import catalog.search.l1_range as l1_range
from catalog import Catalog, CatalogError
from catalog.scoring import l1_from_score, normalize, score_from_l1
from catalog.search.l1_knn import native_available
from catalog.search.l1_range import range_pairs_l1
from knn_support import L1_RTOL, SCORE_ATOL, exact_l1

KERNELS = [pytest.param("native", marks=pytest.mark.skipif(not native_available(), reason="native kernel not built")),
           "faiss"]
D = 32


def planted(seed=0):
    """40 random directions; groups {0,1,2,3} (a chain: 0~1~2~3), {10,11}, {20,21,22}; the rest alone."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, D))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    step = 0.02 * rng.standard_normal((40, D)) / np.sqrt(D)
    for a, b in [(0, 1), (1, 2), (2, 3), (10, 11), (20, 21), (20, 22)]:
        x[b] = x[a] + step[b]
    return normalize(x)


GROUPS = [{0, 1, 2, 3}, {20, 21, 22}, {10, 11}]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dims", [48, 128])  # 128: the search on summed dimension pairs first (native)
def test_range_pairs_are_every_pair_within_the_distance(kernel, dims):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1500, dims)).astype(np.float32)
    x[1::3] = x[0::3] + 0.15 * rng.standard_normal((500, dims)).astype(np.float32)
    x[:60] = x[0] + 0.001 * rng.standard_normal((60, dims)).astype(np.float32)  # one group beyond the first k
    x = normalize(x)
    cap = l1_from_score(0.9, dims)
    truth = exact_l1(x, x)
    i, j, d = range_pairs_l1(x, cap, kernel_choice=kernel)
    assert np.all(i < j) and np.all(np.diff(i * len(x) + j) > 0)  # once each, sorted
    np.testing.assert_allclose(d, truth[i, j], rtol=L1_RTOL)
    found = set(zip(i.tolist(), j.tolist()))
    sure = {(a, b) for a, b in zip(*np.nonzero(np.triu(truth <= cap * (1 - L1_RTOL), 1)))}
    maybe = {(a, b) for a, b in zip(*np.nonzero(np.triu(truth <= cap * (1 + L1_RTOL), 1)))}
    assert sure <= found <= maybe and len(sure) > 60 * 59 // 2


def test_too_many_pairs_are_refused_with_a_hint(monkeypatch):
    monkeypatch.setattr(l1_range, "MAX_PAIRS", 10)
    x = normalize(np.ones((20, 8)) + 1e-3 * np.random.default_rng(0).standard_normal((20, 8)))
    with pytest.raises(CatalogError, match="more than 10 pairs.*raise the minimum score") as exc:
        range_pairs_l1(x, 1.0)
    assert exc.value.field == "min_score"


@pytest.fixture
def planted_cat(cat, tmp_path):
    x = planted()
    path = tmp_path / "rows.ndjson"
    with open(path, "w") as fh:
        for n in range(40):
            split = "test" if n in (3, 21) else "train"
            fh.write(json.dumps({"global_key": f"row-{n:02d}", "text": f"row {n}", "metadata": {"split": split}}) + "\n")
    cat.import_datarows(path)
    emb = cat.create_embedding("planted", D)
    emb.import_vectors([f"row-{n:02d}" for n in range(40)], x)
    return cat


def _groups(report):
    return [{int(m.global_key[4:]) for m in g.members} for g in report.groups]


def test_planted_groups_representatives_scores_and_leaks(planted_cat):
    rep = planted_cat.duplicates("planted", split_field="split")
    assert rep.method == "exact" and rep.rows == 40 and rep.without == 0
    assert _groups(rep) == GROUPS  # biggest first
    assert [g.representative.global_key for g in rep.groups] == ["row-00", "row-20", "row-10"]  # first imported
    x = planted()
    for g in rep.groups:
        r = int(g.representative.global_key[4:])
        for m in g.members:
            want = score_from_l1(exact_l1(x[r:r + 1], x[int(m.global_key[4:])][None])[0, 0], D)
            assert abs(m.score - want) <= SCORE_ATOL
        assert g.members[0].score == pytest.approx(1.0, abs=SCORE_ATOL)
        assert [m.score for m in g.members[1:]] == sorted((m.score for m in g.members[1:]), reverse=True)
    leaks = {frozenset((x.a.global_key, x.b.global_key)) for x in rep.leaks}
    assert rep.leak_pairs == len(rep.leaks) == len(leaks)
    assert all(x.score >= 0.95 and {x.a_value, x.b_value} == {"train", "test"} for x in rep.leaks)
    assert {frozenset(("row-02", "row-03")), frozenset(("row-20", "row-21"))} <= leaks
    assert all("row-03" in p or "row-21" in p for p in leaks)
    # the filter narrows the rows: only the train rows
    narrow = planted_cat.duplicates("planted", where={"split": "train"})
    assert _groups(narrow) == [{0, 1, 2}, {10, 11}, {20, 22}] and narrow.rows == 38  # same size: by key
    # a threshold above every pair: no groups; the central row of a chain is its middle
    assert planted_cat.duplicates("planted", min_score=0.99999).groups == []
    central = planted_cat.duplicates("planted", keep="central")
    assert central.groups[0].representative.global_key in ("row-01", "row-02")


def test_duplicate_scores_equal_the_search_and_score(planted_cat):
    rep = planted_cat.duplicates("planted", min_score=0.9)
    for g in rep.groups:
        r = g.representative
        res = planted_cat.search("planted", anchors=[r.id], min_score=0.0, max_score=1.0, limit=None)
        shown = {h.global_key: h.score for h in res.results}
        for m in g.members[1:]:
            assert abs(shown[m.global_key] - m.score) <= SCORE_ATOL
            assert abs(planted_cat.score(r.global_key, m.global_key) - m.score) <= SCORE_ATOL


def test_approximate_run_finds_the_same_groups_and_reports_its_recall(planted_cat):
    rep = planted_cat.duplicates("planted", approximate=True)
    assert rep.method == "approximate" and rep.recall_sample == 40
    assert rep.pair_recall == pytest.approx(1.0) and _groups(rep) == GROUPS


def test_save_tags_groups_and_makes_a_deduplicated_slice(planted_cat):
    rep = planted_cat.duplicates("planted")
    groups, dedup = planted_cat.quality.save(rep, "near-dups")
    keys = lambda s: {r.global_key for r in s.rows(limit=None).results}  # noqa: E731
    assert keys(groups) == {f"row-{n:02d}" for g in GROUPS for n in g}
    assert keys(dedup) == {f"row-{n:02d}" for n in range(40)} - {"row-01", "row-02", "row-03", "row-11",
                                                                  "row-21", "row-22"}
    meta = planted_cat.get_datarow("row-02")["metadata"]
    assert meta["duplicates"]["group"] == "row-00" and meta["duplicates"]["keep"] is False
    assert meta["split"] == "train"  # other metadata kept
    # a new run replaces the old tags: at a stricter threshold fewer rows are tagged
    strict = planted_cat.duplicates("planted", min_score=0.9999)
    planted_cat.quality.save(strict, "near-dups", replace=True)
    assert "duplicates" not in planted_cat.get_datarow("row-02")["metadata"] or strict.groups
    # an existing slice name without replace: nothing is tagged or saved
    before = planted_cat.get_datarows([f"row-{n:02d}" for n in range(40)])
    with pytest.raises(CatalogError):
        planted_cat.quality.save(rep, "near-dups")
    assert planted_cat.get_datarows([f"row-{n:02d}" for n in range(40)]) == before
    with pytest.raises(CatalogError, match="one metadata key"):
        planted_cat.quality.save(rep, "other-name", tag="a.b")
    assert "other-name" not in [s.name for s in planted_cat.get_slices()]


def test_bad_arguments_are_refused_with_their_field(planted_cat):
    for kwargs, field in [({"min_score": 0}, "min_score"), ({"min_score": 1.5}, "min_score"),
                          ({"keep": "last"}, "keep"), ({"split_field": "a..b"}, "split_field"),
                          ({"where": {"$bad": 1}}, "where")]:
        with pytest.raises(CatalogError) as exc:
            planted_cat.duplicates("planted", **kwargs)
        assert exc.value.field == field
    with pytest.raises(CatalogError, match="need an embedding"):
        planted_cat.duplicates()


def test_cli_duplicates_text_json_and_save(planted_cat, cli):
    r = cli("duplicates", "planted", "--split-field", "split")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 groups of score ≥ 0.95 in planted (exact): 6 duplicate rows")
    assert "group 1 (4 rows), representative row-00" in r.stdout and "leaks: pairs whose 'split' differs" in r.stdout
    r = cli("duplicates", "planted", "--json", "--approximate", "--save", "dups", "--keep", "central")
    data = json.loads(r.stdout)
    assert data["method"] == "approximate" and data["pair_recall"] == 1.0 and data["groups_count"] == 3
    assert data["slices"] == ["dups", "dups-deduplicated"]
    assert len(Catalog(planted_cat.path).get_slice("dups-deduplicated").row_ids()) == 34
    r = cli("duplicates", "planted", "--min-score", "1.5")
    assert r.returncode != 0 and "minimum score must be a number in (0, 1]" in r.stderr and "Traceback" not in r.stderr
    r = cli("duplicates")
    assert r.returncode != 0 and "--exact-only" in r.stderr
    r = cli("duplicates", "planted", "--save", "dups")  # exists: refused, nothing written
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_cli_score(planted_cat, cli):
    r = cli("score", "row-00", "row-01", "--json")
    data = json.loads(r.stdout)
    assert data["embedding"] == "planted"
    assert abs(data["score"] - planted_cat.score("row-00", "row-01", "planted")) <= SCORE_ATOL
    r = cli("score", "row-00")
    assert r.returncode != 0 and "exactly two" in r.stderr
    r = cli("score", "row-00", "nope")
    assert r.returncode != 0 and "nope" in r.stderr
