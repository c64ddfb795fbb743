"""Bulk metadata: set/unset on a slice, ids or a filter; one transaction; library and CLI."""

from __future__ import annotations

import json

import pytest

from catalog import CatalogError
from catalog.metadata import parse_assignments, parse_value

from slices_support import RECORDS, build_catalog, snapshot


@pytest.fixture
def fcat(cat, tmp_path):
    build_catalog(cat, tmp_path)
    cat.save_slice("train rows", where={"split": "train"})
    return cat


def meta(cat) -> dict:
    return {r["global_key"]: r["metadata"] for r in cat.list_datarows(limit=100)}


@pytest.mark.parametrize("text, value", [
    ("12", 12), ("-1.5", -1.5), ("true", True), ("false", False), ("null", None),
    ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}), ("[1, 2]", [1, 2]), ('"42"', "42"),
    ("hello", "hello"), ("hello world", "hello world"), ("", ""), ("NaN", "NaN"), ("{bad", "{bad"), ("2026-11-21", "2026-11-21"),
])
def test_values_are_json_when_they_parse(text, value):
    assert parse_value(text) == value


def test_parse_assignments():
    assert parse_assignments(["a=1", "b.c=x=y", "d="]) == {"a": 1, "b.c": "x=y", "d": ""}
    with pytest.raises(CatalogError, match="'novalue' is not KEY=VALUE"):
        parse_assignments(["novalue"])
    with pytest.raises(CatalogError, match="given twice"):
        parse_assignments(["a=1", "a=2"])


def test_set_on_a_slice(fcat):
    n = fcat.set_metadata({"reviewed_by": "ann", "quality.score": 0.9, "flag": None, "extra": {"k": [1, None]}},
                          slice="train rows")
    assert n == 2
    m = meta(fcat)
    for key in ("a", "c"):
        assert m[key]["reviewed_by"] == "ann" and m[key]["quality"] == {"score": 0.9}
        assert "flag" in m[key] and m[key]["flag"] is None           # null is stored, not a deletion
        assert m[key]["extra"] == {"k": [1, None]}
    assert m["a"]["cam"] == {"make": "Canon", "iso": 400}               # other keys untouched
    for key in ("b", "d", "e"):
        assert m[key] == RECORDS[key]
    # nested set keeps siblings, replaces the leaf
    fcat.set_metadata({"cam.iso": 800}, ids=["a"])
    assert meta(fcat)["a"]["cam"] == {"make": "Canon", "iso": 800}
    # setting an object replaces the value (no deep merge)
    fcat.set_metadata({"cam": {"make": "Leica"}}, ids=["a"])
    assert meta(fcat)["a"]["cam"] == {"make": "Leica"}


def test_set_on_ids_and_where(fcat):
    assert fcat.set_metadata({"batch": 7}, ids=["b", fcat.get_datarow("e")["id"], "b"]) == 2
    assert {k for k, v in meta(fcat).items() if v.get("batch") == 7} == {"b", "e"}
    assert fcat.set_metadata({"hot": True}, where={"label": "cat"}) == 2
    assert {k for k, v in meta(fcat).items() if v.get("hot") is True} == {"a", "c"}
    assert fcat.set_metadata({"all": 1}, where={}) == 5
    assert fcat.set_metadata({"none": 1}, where={"split": "nope"}) == 0
    assert all("none" not in v for v in meta(fcat).values())


def test_updated_rows_are_found_by_filters(fcat):
    fcat.set_metadata({"review.status": "done"}, slice="train rows")
    assert [h.global_key for h in fcat.filter_datarows({"review.status": "done"}).results] == ["a", "c"]


def test_unset(fcat):
    assert fcat.unset_metadata(["cam.iso", "tags", "not-there"], where={}) == 5
    m = meta(fcat)
    assert m["a"]["cam"] == {"make": "Canon"} and "tags" not in m["a"]
    assert m["b"]["cam"] == {"make": "Nikon"}
    assert all("tags" not in v for v in m.values())
    assert fcat.unset_metadata("split", slice="train rows") == 2
    assert "split" not in meta(fcat)["a"] and meta(fcat)["b"]["split"] == "val"


def test_a_failing_bulk_update_changes_no_row(fcat):
    """Row "e" has a string at "name": setting "name.first" cannot work there, so no row changes."""
    before = snapshot(fcat)
    with pytest.raises(CatalogError) as exc:
        fcat.set_metadata({"ok": 1, "name.first": "Zoe"}, where={})
    assert str(exc.value) == ("cannot set 'name.first' on row 'e': its 'name' is not an object; "
                              "unset 'name' there first or choose another key (nothing was changed)")
    assert snapshot(fcat) == before          # the rows updated before the failure were rolled back
    # the same keys on rows where they fit work
    assert fcat.set_metadata({"ok": 1, "name.first": "Zoe"}, where={"split": "train"}) == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(values={"a": 1}), "exactly one of `slice`, `ids` or `where`"),
    (dict(values={"a": 1}, slice="train rows", where={}), "(got `slice`, `where`)"),
    (dict(values={}, where={}), "give at least one metadata key"),
    (dict(values={"a'; DROP TABLE datarows; --": 1}, where={}), "is not allowed"),
    (dict(values={"a": 1, "a.b": 2}, where={}), "keys 'a' and 'a.b' overlap"),
    (dict(values={"a": float("nan")}, where={}), "value for 'a' is not JSON"),
    (dict(values={"a": object()}, where={}), "value for 'a' is not JSON"),
    (dict(values={"a": 1}, ids=["a", "zzz"]), "no data row with id or global_key 'zzz'"),
    (dict(values={"a": 1}, ids=[]), "`ids` needs at least one"),
    (dict(values={"a": 1}, slice="no such"), "no slice named 'no such'"),
    (dict(values={"a": 1}, where={"n": {"$bad": 1}}), "unknown filter operator '$bad'"),
])
def test_bad_requests_change_nothing(fcat, kwargs, message):
    before = snapshot(fcat)
    values = kwargs.pop("values")
    with pytest.raises(CatalogError) as exc:
        fcat.set_metadata(values, **kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert snapshot(fcat) == before


def test_similarity_slice_target(cat, tmp_path):
    from slices_support import vectors_catalog

    emb, _ = vectors_catalog(cat, tmp_path)
    s = cat.save_slice("near k000", embedding=emb.name, anchors=["k000"], min_score=0.6)
    ids = set(s.row_ids())
    assert 0 < len(ids) < 40
    assert cat.set_metadata({"near": True}, slice="near k000") == len(ids)
    tagged = {h.id for h in cat.filter_datarows({"near": True}, limit=None).results}
    assert tagged == ids


# -- CLI -------------------------------------------------------------------------------------------------
def test_cli_set_and_unset(fcat, cli):
    r = cli("metadata", "set", "score=0.25", "owner=ann", "meta.ok=true", "--slice", "train rows")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Set score, owner, meta.ok on 2 rows\n"
    m = meta(fcat)
    assert m["a"]["score"] == 0.25 and m["a"]["owner"] == "ann" and m["c"]["meta"] == {"ok": True}
    r = cli("metadata", "set", "owner=bob", "--ids", "b", "e", "--json")
    assert json.loads(r.stdout) == {"updated": 2, "set": {"owner": "bob"}}
    r = cli("metadata", "set", "--where", '{"owner": "bob"}', "tier=2")
    assert r.returncode == 0 and "on 2 rows" in r.stdout
    assert {k for k, v in meta(fcat).items() if v.get("tier") == 2} == {"b", "e"}
    r = cli("metadata", "unset", "owner", "tier", "--where", "{}")
    assert r.returncode == 0 and r.stdout == "Removed owner, tier from 5 rows\n"
    assert all("owner" not in v and "tier" not in v for v in meta(fcat).values())


@pytest.mark.parametrize("args, message", [
    (["metadata", "set", "a=1", "--ids", "zzz"], "no data row with id or global_key 'zzz'"),
    (["metadata", "set", "oops", "--where", "{}"], "'oops' is not KEY=VALUE"),
    (["metadata", "set", "name.first=x", "--where", "{}"], "cannot set 'name.first' on row 'e'"),
    (["metadata", "set", "a=1", "--where", "{bad"], "--where is not valid JSON"),
    (["metadata", "set", "a=1", "--where", " "], "--where is empty; give '{}' to choose every row"),
    (["metadata", "set", "a=1", "--where", "[]"], "--where must be a JSON object"),
    (["metadata", "unset", "a;b", "--slice", "train rows"], "metadata path 'a;b' is not allowed"),
    (["metadata", "unset", "a", "--slice", "nope"], "no slice named 'nope'"),
])
def test_cli_errors_change_nothing(fcat, cli, args, message):
    before = snapshot(fcat)
    r = cli(*args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert snapshot(fcat) == before


@pytest.mark.cli_process  # argparse's SystemExit(2) in a real process
def test_cli_needs_a_target(fcat, cli):
    r = cli("metadata", "set", "a=1")
    assert r.returncode == 2 and "one of the arguments --slice --ids --where is required" in r.stderr
