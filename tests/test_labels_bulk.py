"""Labels on many rows at once (the dashboard's "Add label" / "Remove label" on a selection)."""

from __future__ import annotations

import json

import pytest

from catalog import CatalogError
from catalog.errors import NotFound


@pytest.fixture
def rows(cat, tmp_path):
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": f"r{i}", "text": f"text {i}"}) + "\n" for i in range(5)))
    cat.import_datarows([path])
    return cat


def names(cat, keys):
    got = cat.get_labels(keys)
    ids = cat.resolve_row_ids(keys)
    return [[lab["label"] for lab in got[i]] for i in ids]


def test_add_labels_to_many_rows_counts_new_pairs(rows):
    cat = rows
    cat.set_labels("r0", ["cat"])
    assert cat.add_labels(["r0", "r1", "r2"], [" cat", "pet"]) == 5  # r0 already had "cat"
    assert names(cat, ["r0", "r1", "r2", "r3"]) == [["cat", "pet"]] * 3 + [[]]
    (lab,) = [lab for lab in cat.get_labels(["r1"])[cat.resolve_row_ids(["r1"])[0]] if lab["label"] == "cat"]
    assert (lab["source"], lab["reviewed"]) == ("manual", True)
    assert cat.add_labels(["r0"], ["cat"]) == 0


def test_add_labels_is_all_or_nothing(rows):
    cat = rows
    with pytest.raises(NotFound, match="nope"):
        cat.add_labels(["r0", "nope"], ["cat"])
    with pytest.raises(CatalogError, match="no labels given"):
        cat.add_labels(["r0"], [])
    with pytest.raises(CatalogError, match="source"):
        cat.add_labels(["r0"], ["cat"], source="robot")
    assert names(cat, ["r0"]) == [[]]


def test_add_similarity_suggestions_keep_manual_labels(rows):
    cat = rows
    cat.set_labels("r0", ["cat"])
    cat.add_labels(["r0", "r1"], ["cat"], source="similarity", score=0.4)
    got = cat.get_labels(["r0", "r1"])
    r0, r1 = cat.resolve_row_ids(["r0", "r1"])
    assert got[r0][0]["source"] == "manual"
    assert (got[r1][0]["source"], got[r1][0]["score"], got[r1][0]["reviewed"]) == ("similarity", 0.4, False)


def test_remove_labels_from_skips_rows_without_them(rows):
    cat = rows
    cat.add_labels(["r0", "r1"], ["cat", "pet"])
    cat.set_labels("r2", ["dog"])
    assert cat.remove_labels_from(["r0", "r1", "r2"], ["cat", "unknown"]) == 2
    assert names(cat, ["r0", "r1", "r2"]) == [["pet"], ["pet"], ["dog"]]
    with pytest.raises(NotFound):
        cat.remove_labels_from(["r0", "nope"], ["pet"])
    assert names(cat, ["r0"]) == [["pet"]]
    with pytest.raises(CatalogError, match="no labels given"):
        cat.remove_labels_from(["r0"], [])
