"""Labeling batches: frozen rows, duplicates skipped per project, unique names, list/show/export (library and CLI)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from catalog import AlreadyExists, CatalogError, NotFound

from slices_support import build_catalog, snapshot, write_records


@pytest.fixture
def fcat(cat, tmp_path):
    build_catalog(cat, tmp_path)
    cat.save_slice("train rows", where={"split": "train"})
    return cat


def test_batch_freezes_the_slice_rows(fcat, tmp_path):
    b = fcat.create_batch("first pass", "animals", slice="train rows", priority=2)
    assert (b.name, b.project, b.priority, b.size, b.skipped) == ("first pass", "animals", 2, 2, [])
    assert [r["global_key"] for r in b.rows()] == ["a", "c"]
    # a row that joins the slice later does not join the batch
    fcat.import_datarows([write_records(tmp_path / "later.ndjson", {"f": {"split": "train"}})])
    assert [h.global_key for h in fcat.get_slice("train rows").rows().results] == ["a", "c", "f"]
    assert [r["global_key"] for r in fcat.get_batch("first pass", "animals").rows()] == ["a", "c"]


def test_rows_already_in_a_batch_of_the_project_are_skipped(fcat):
    fcat.create_batch("first pass", "animals", slice="train rows")
    b = fcat.create_batch("second pass", "animals", ids=["a", "b", "e", "b"])
    assert [r["global_key"] for r in b.rows()] == ["b", "e"]
    assert b.skipped == [{"id": fcat.get_datarow("a")["id"], "global_key": "a", "batch": "first pass"}]
    # another project is independent
    other = fcat.create_batch("first pass", "vehicles", slice="train rows")
    assert other.size == 2 and other.skipped == []
    # everything already sent: an error, nothing created
    before = snapshot(fcat)
    with pytest.raises(CatalogError, match="all 2 rows of slice 'train rows' are already in batches of project 'animals'"):
        fcat.create_batch("third pass", "animals", slice="train rows")
    assert snapshot(fcat) == before
    # deleting a batch frees its rows
    fcat.get_batch("first pass", "animals").delete()
    assert fcat.create_batch("third pass", "animals", slice="train rows").size == 2


def test_names_unique_per_project_and_listing(fcat):
    fcat.create_batch("pass one", "animals", ids=["a"], priority=4)
    fcat.create_batch("pass two", "animals", ids=["b"], priority=1)
    fcat.create_batch("pass one", "plants", ids=["a"])
    before = snapshot(fcat)
    with pytest.raises(AlreadyExists, match="project 'animals' already has a batch named 'pass one'"):
        fcat.create_batch("pass one", "animals", ids=["c"])
    assert snapshot(fcat) == before
    assert [(b.project, b.name) for b in fcat.get_batches()] == [
        ("animals", "pass two"), ("animals", "pass one"), ("plants", "pass one")]   # by project, then priority
    assert [b.name for b in fcat.get_batches(project="plants")] == ["pass one"]
    assert fcat.get_batches(project="nobody") == []
    with pytest.raises(NotFound, match="project 'plants' has no batch named 'pass two'"):
        fcat.get_batch("pass two", "plants")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="b", project="p", slice="train rows", ids=["a"]), "exactly one of `slice` or `ids`"),
    (dict(name="b", project="p"), "exactly one of `slice` or `ids`"),
    (dict(name="b", project="p", ids=[]), "`ids` needs at least one"),
    (dict(name="b", project="p", ids=["zzz"]), "no data row with id or global_key 'zzz'"),
    (dict(name="b", project="p", slice="no slice"), "no slice named 'no slice'"),
    (dict(name="b", project="", ids=["a"]), "needs a `project`"),
    (dict(name="", project="p", ids=["a"]), "batch name '' must be 1 to 100"),
    (dict(name="b", project="p", ids=["a"], priority=0), "priority 0 must be a whole number from 1"),
    (dict(name="b", project="p", ids=["a"], priority=6), "priority 6"),
])
def test_bad_batches_write_nothing(fcat, kwargs, message):
    before = snapshot(fcat)
    with pytest.raises(CatalogError) as exc:
        fcat.create_batch(**kwargs)
    assert message in str(exc.value)
    assert snapshot(fcat) == before


def test_empty_slice_makes_no_batch(fcat):
    fcat.save_slice("nothing here", where={"split": "nope"})
    before = snapshot(fcat)
    with pytest.raises(CatalogError, match="slice 'nothing here' has no rows"):
        fcat.create_batch("empty", "p", slice="nothing here")
    assert snapshot(fcat) == before


def test_export(fcat):
    b = fcat.create_batch("export me", "animals", ids=["c", "a"])
    buf = io.StringIO()
    assert b.export(buf, "ndjson") == 2
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [x["global_key"] for x in lines] == ["a", "c"]
    assert lines[0]["row_data"] == "text of a" and lines[0]["media_type"] == "text"
    assert lines[0]["metadata"]["cam"]["make"] == "Canon"
    assert [lb["label"] for lb in lines[1]["labels"]] == ["bird", "cat"]
    buf = io.StringIO()
    fcat.export_batch("export me", "animals", buf, "csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["global_key"] for r in rows] == ["a", "c"] and json.loads(rows[1]["metadata"])["n"] == 10


# -- CLI -------------------------------------------------------------------------------------------------
def test_cli_create_list_show_export(fcat, cli):
    r = cli("batches", "create", "first pass", "--project", "animals", "--slice", "train rows", "--priority", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Batch first pass created in project animals: 2 rows, priority 1 (0 skipped)\n"
    r = cli("batches", "create", "second pass", "--project", "animals", "--ids", "a", "b", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["size"] == 1 and data["skipped"][0]["global_key"] == "a"
    assert "skipped a: already in batch 'first pass' of project 'animals'" in r.stderr

    listed = json.loads(cli("batches", "list", "--json").stdout)
    assert [(b["name"], b["priority"], b["size"]) for b in listed] == [("first pass", 1, 2), ("second pass", 3, 1)]
    text = cli("batches", "list", "--project", "animals").stdout
    assert "first pass" in text and "second pass" in text

    shown = json.loads(cli("batches", "show", "first pass", "--project", "animals", "--json").stdout)
    assert [r["global_key"] for r in shown["rows"]] == ["a", "c"] and shown["size"] == 2
    assert "a" in cli("batches", "show", "first pass", "-p", "animals").stdout

    exp = cli("batches", "export", "first pass", "--project", "animals")
    assert [json.loads(x)["global_key"] for x in exp.stdout.splitlines()] == ["a", "c"]
    exp = cli("batches", "export", "first pass", "--project", "animals", "--format", "csv")
    assert exp.stdout.splitlines()[0] == "id,global_key,media_type,row_data,metadata,labels"


@pytest.mark.parametrize("args, message", [
    (["batches", "create", "x1", "--project", "p", "--ids", "nope"], "no data row with id or global_key 'nope'"),
    (["batches", "create", "x1", "--project", "p", "--slice", "nope"], "no slice named 'nope'"),
    (["batches", "create", "x1", "--project", "p", "--ids", "a", "--priority", "9"], "priority 9"),
    (["batches", "show", "x1", "--project", "p"], "project 'p' has no batch named 'x1'"),
    (["batches", "export", "x1", "--project", "p"], "project 'p' has no batch named 'x1'"),
])
def test_cli_errors(fcat, cli, args, message):
    before = snapshot(fcat)
    r = cli(*args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert snapshot(fcat) == before


@pytest.mark.cli_process  # batches through the console-script exit path
def test_cli_duplicate_name(fcat, cli):
    assert cli("batches", "create", "x1", "--project", "p", "--ids", "a").returncode == 0
    before = snapshot(fcat)
    r = cli("batches", "create", "x1", "--project", "p", "--ids", "b")
    assert r.returncode == 2 and "already has a batch named 'x1'" in r.stderr
    assert snapshot(fcat) == before
