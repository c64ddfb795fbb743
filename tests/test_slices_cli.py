"""``advtool slices`` through ``catalog.cli.main`` (the ``cli_process`` ones through the real entry point)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from slices_support import build_catalog, snapshot, vectors_catalog


@pytest.fixture
def vcat(cat, tmp_path):
    emb, _ = vectors_catalog(cat, tmp_path)
    return cat, emb


def test_save_show_export_delete_a_similarity_slice(vcat, cli):
    cat, emb = vcat
    flags = ["--embedding", emb.name, "--anchor", "k000", "--anchor", "k002", "--min", "0.5", "--max", "0.99",
             "--aggregate", "max", "--where", '{"group": "g1"}', "--order", "desc"]
    r = cli("slices", "save", "g1 near k000", *flags, "--description", "even rows like k000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Slice saved: g1 near k000 id=")

    shown = cli("slices", "show", "g1 near k000", "--json", "--limit", "1000")
    searched = cli("search", *flags, "--json", "--limit", "1000")
    assert shown.returncode == 0 and searched.returncode == 0, shown.stderr + searched.stderr
    data = json.loads(shown.stdout)
    assert data == json.loads(searched.stdout)
    assert data["total"] > 0 and set(data["results"][0]) == {"id", "global_key", "score"}

    page = json.loads(cli("slices", "show", "g1 near k000", "--json", "--limit", "2", "--offset", "1").stdout)
    assert page["total"] == data["total"] and page["results"] == data["results"][1:3]

    text = cli("slices", "show", "g1 near k000")
    assert text.returncode == 0 and f"{data['total']} rows in slice g1 near k000" in text.stdout
    assert data["results"][0]["global_key"] in text.stdout

    exp = cli("slices", "export", "g1 near k000")
    lines = [json.loads(x) for x in exp.stdout.splitlines()]
    assert [{k: x[k] for k in ("id", "global_key", "score")} for x in lines] == data["results"]
    assert all(x["metadata"]["group"] == "g1" and x["labels"] == [] for x in lines)
    exp_csv = cli("slices", "export", "g1 near k000", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exp_csv.stdout)))
    assert [r["global_key"] for r in rows] == [x["global_key"] for x in data["results"]]

    listed = json.loads(cli("slices", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["g1 near k000"]
    assert listed[0]["description"] == "even rows like k000"
    assert listed[0]["query"]["aggregate"] == "max" and listed[0]["query"]["where"] == {"group": "g1"}
    plain = cli("slices", "list")
    assert "g1 near k000" in plain.stdout and emb.name in plain.stdout and "even rows like k000" in plain.stdout

    r = cli("slices", "delete", "g1 near k000")
    assert r.returncode == 0 and "deleted" in r.stdout
    assert json.loads(cli("slices", "list", "--json").stdout) == []


@pytest.mark.cli_process  # slices through the console-script exit path
def test_filter_slice_and_replace(cat, tmp_path, cli):
    build_catalog(cat, tmp_path)
    assert cli("slices", "save", "train rows", "--where", '{"split": "train"}').returncode == 0
    data = json.loads(cli("slices", "show", "train rows", "--json").stdout)
    assert data["total"] == 2 and [h["global_key"] for h in data["results"]] == ["a", "c"]
    assert all(h["score"] is None for h in data["results"])

    before = snapshot(cat)
    r = cli("slices", "save", "train rows", "--where", '{"split": "val"}')
    assert r.returncode == 2
    assert r.stderr == "error: a slice named 'train rows' already exists; pass --replace to update it or choose another name\n"
    assert snapshot(cat) == before

    r = cli("slices", "save", "train rows", "--where", '{"split": "val"}', "--replace")
    assert r.returncode == 0 and r.stdout.startswith("Slice updated: train rows")
    data = json.loads(cli("slices", "show", "train rows", "--json").stdout)
    assert [h["global_key"] for h in data["results"]] == ["b"]


@pytest.mark.parametrize("args, message", [
    (["slices", "save", "ab"], "slice name 'ab' must be 3 to 60 characters long"),
    (["slices", "save", "good name", "--where", "{nope"], "--where is not valid JSON"),
    (["slices", "save", "good name", "--where", '{"n": {"$near": 1}}'], "unknown filter operator '$near' on 'n'"),
    (["slices", "save", "good name", "--embedding", "missing-emb", "--anchor", "x"], "missing-emb"),
    (["slices", "save", "good name", "--anchor", "x"], "anchors need an embedding"),
    (["slices", "show", "no such slice"], "no slice named 'no such slice'"),
    (["slices", "show", "no such slice", "--limit", "-1"], "no slice named"),
    (["slices", "export", "no such slice"], "no slice named 'no such slice'"),
    (["slices", "delete", "no such slice"], "no slice named 'no such slice'"),
])
def test_cli_errors(cat, tmp_path, cli, args, message):
    build_catalog(cat, tmp_path)
    before = snapshot(cat)
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(cat) == before


def test_show_rejects_negative_paging(cat, tmp_path, cli):
    build_catalog(cat, tmp_path)
    cli("slices", "save", "all rows")
    r = cli("slices", "show", "all rows", "--offset", "-3")
    assert r.returncode == 2 and "--offset must not be negative" in r.stderr
