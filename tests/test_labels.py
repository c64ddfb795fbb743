"""Labels: set/remove/review/get, import/export (all-or-nothing), and the CLI with its error paths."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from catalog import CatalogError
from catalog.errors import NotFound, ValidationError


@pytest.fixture
def rows(cat, tmp_path):
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": f"r{i}", "text": f"text {i}"}) + "\n" for i in range(5)))
    cat.import_datarows([path])
    return cat


def export(cat, fmt="csv", **kw) -> str:
    buf = io.StringIO()
    cat.export_labels(buf, fmt, **kw)
    return buf.getvalue()


def test_set_get_remove(rows):
    cat = rows
    assert cat.set_labels("r0", ["  cat ", "animal", "cat"]) == ["cat", "animal"]
    rid = cat.resolve_row_ids(["r0"])[0]
    got = cat.get_labels(["r0", "r1"])
    assert [(l["label"], l["source"], l["score"], l["reviewed"]) for l in got[rid]] == [
        ("animal", "manual", None, True), ("cat", "manual", None, True)]
    assert list(got.values())[1] == []
    with pytest.raises(NotFound, match="has no label 'dog'; nothing was removed"):
        cat.remove_labels("r0", ["cat", "dog"])
    assert len(cat.get_labels(["r0"])[rid]) == 2
    assert cat.remove_labels("r0", ["cat"]) == 1
    assert cat.remove_labels("r0") == 1
    assert cat.get_labels(["r0"])[rid] == []


@pytest.mark.parametrize("bad, msg", [("", "label name is empty"), ("   ", "label name is empty"),
                                      ("x" * 101, "use at most 100")])
def test_label_name_rules(rows, bad, msg):
    with pytest.raises(CatalogError, match=msg):
        rows.set_labels("r0", ["ok", bad])
    assert rows.get_labels() == {}


def test_manual_replaces_suggestion_but_not_the_reverse(rows):
    cat = rows
    cat.set_labels("r0", "cat", source="similarity", score=0.5)
    cat.set_labels("r0", "cat")  # a person confirms it by labeling
    (lab,) = next(iter(cat.get_labels(["r0"]).values()))
    assert (lab["source"], lab["score"], lab["reviewed"]) == ("manual", None, True)
    cat.set_labels("r0", "cat", source="similarity", score=0.7)
    (lab,) = next(iter(cat.get_labels(["r0"]).values()))
    assert (lab["source"], lab["score"], lab["reviewed"]) == ("manual", None, True)


def test_review_accept_and_reject(rows):
    cat = rows
    cat.set_labels("r1", ["a", "b"], source="similarity", score=0.4)
    with pytest.raises(CatalogError, match="no unreviewed suggestions"):
        cat.review_labels(["r2"], accept=True)
    assert cat.review_labels(["r1"], accept=True, labels=["a"]) == 1
    assert cat.review_labels(["r1"], accept=False) == 1
    (lab,) = next(iter(cat.get_labels(["r1"]).values()))
    assert (lab["label"], lab["source"], lab["reviewed"], lab["score"]) == ("a", "similarity", True, 0.4)
    assert cat.label_counts() == {"a": {"rows": 1, "pool": 1, "pending": 0}}


def test_import_csv_and_ndjson_then_export_roundtrip(rows, tmp_path):
    cat = rows
    rid0 = cat.resolve_row_ids(["r0"])[0]
    (tmp_path / "l.csv").write_text(f"id,label\nr0,cat\n{rid0},animal\nr1,dog\n\nr1,dog\n")
    rep = cat.import_labels(tmp_path / "l.csv")
    assert (rep.labels, rep.rows) == (3, 2)
    (tmp_path / "l.ndjson").write_text('{"id": "r2", "label": "bird"}\n\n{"id": "r2", "label": "pet"},\n')
    assert cat.import_labels(tmp_path / "l.ndjson").labels == 2
    cat.set_labels("r3", "fish", source="similarity", score=0.25)
    text = export(cat)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == ["id", "global_key", "label", "source", "score", "reviewed"]
    assert [(r["global_key"], r["label"]) for r in parsed] == [
        ("r0", "animal"), ("r0", "cat"), ("r1", "dog"), ("r2", "bird"), ("r2", "pet"), ("r3", "fish")]
    assert parsed[-1]["source"] == "similarity" and float(parsed[-1]["score"]) == 0.25 and parsed[-1]["reviewed"] == "false"
    nd = [json.loads(line) for line in export(cat, "ndjson").splitlines()]
    assert nd[0] == {"id": rid0, "global_key": "r0", "label": "animal", "source": "manual", "score": None, "reviewed": True}
    # the export imports back unchanged into a fresh catalog with the same rows
    (tmp_path / "export.csv").write_text(text)
    cat.remove_labels(["r0", "r1", "r2", "r3"])
    cat.import_labels(tmp_path / "export.csv")
    assert export(cat) == text


def test_import_is_all_or_nothing_with_line_numbers(rows, tmp_path):
    cat = rows
    cat.set_labels("r4", "keep")
    before = export(cat)
    (tmp_path / "bad.csv").write_text("id,label\nr0,cat\nnope,dog\nr1,\n,x\nr2," + "y" * 101 + "\n")
    with pytest.raises(ValidationError) as info:
        cat.import_labels(tmp_path / "bad.csv")
    assert "4 invalid lines; nothing was imported" in str(info.value)
    assert [e[0] for e in info.value.errors] == [3, 4, 5, 6]
    assert "matches no data row" in info.value.errors[0][1]
    (tmp_path / "bad.ndjson").write_text('{"id": "r0", "label": "a"}\n{"id": "r0"\n{"label": "a"}\n')
    with pytest.raises(ValidationError) as info:
        cat.import_labels(tmp_path / "bad.ndjson")
    assert info.value.errors == [(2, "malformed JSON"), (3, 'missing "id" (a data row id or global_key)')]
    (tmp_path / "nohead.csv").write_text("r0,cat\n")
    with pytest.raises(CatalogError, match="header line with the columns id and label"):
        cat.import_labels(tmp_path / "nohead.csv")
    with pytest.raises(CatalogError, match="does not exist"):
        cat.import_labels(tmp_path / "missing.csv")
    assert export(cat) == before


def test_export_by_slice(rows):
    cat = rows
    cat.set_labels("r0", "a")
    cat.set_labels("r1", "b")
    cat.save_slice("only-r1", where={"global_key": "r1"})
    text = export(cat, slice="only-r1")
    assert [r["global_key"] for r in csv.DictReader(io.StringIO(text))] == ["r1"]
    with pytest.raises(NotFound):
        export(cat, slice="no-such-slice")


# -- CLI -------------------------------------------------------------------------------------------
@pytest.fixture
def cli_catalog(rows, tmp_path):
    """Rows r0..r4 with vectors in custom embedding "e" (r4 has none); r0, r1 labeled."""
    cat = rows
    emb = cat.create_embedding("e", 8)
    vecs = np.eye(8)[:4] + 0.1
    emb.import_vectors(["r0", "r1", "r2", "r3"], vecs)
    return cat


def test_cli_labels_commands(cli_catalog, cli, tmp_path):
    (tmp_path / "l.csv").write_text("id,label\nr0,cat\nr1,dog\n")
    r = cli("labels", "import", tmp_path / "l.csv")
    assert r.returncode == 0 and r.stdout.strip() == "Imported 2 labels on 2 data rows"
    r = cli("labels", "set", "r2", "cat", "pet")
    assert r.returncode == 0 and r.stdout.strip() == "Labeled r2: cat, pet"
    r = cli("labels", "remove", "r2", "pet")
    assert r.returncode == 0 and r.stdout.strip() == "Removed 1 label from r2"
    r = cli("labels", "list", "r2", "--json")
    assert [l["label"] for l in json.loads(r.stdout)[0]["labels"]] == ["cat"]
    r = cli("label-by-similarity", "--embedding", "e", "--ids", "r3", "--results", "1", "--threshold", "0.1",
            "--save")
    assert r.returncode == 0, r.stderr
    assert "Saved 1 new suggestion" in r.stdout
    r = cli("labels", "review", "r3", "--accept")
    assert r.returncode == 0 and r.stdout.strip() == "Accepted 1 suggestion"
    r = cli("labels", "export", "--format", "ndjson")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["global_key"], x["label"], x["source"], x["reviewed"]) for x in rows][-1][2:] == ("similarity", True)
    assert len(rows) == 4


def test_cli_label_by_similarity_output(cli_catalog, cli):
    cli_catalog.set_labels("r0", "cat")
    cli_catalog.set_labels("r1", "dog")
    r = cli("label-by-similarity", "-e", "e", "--ids", "r2", "r3", "--results", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    lib = cli_catalog.label_by_similarity("e", ["r2", "r3"], results=2).to_dict()
    assert data == json.loads(json.dumps(lib))
    r = cli("label-by-similarity", "-e", "e", "--unlabeled", "--results", "1", "--top-only")
    assert r.returncode == 0
    assert "r2  (" in r.stdout and "[x]" in r.stdout and "2 rows, 2 with a suggestion (k=1, top label only" in r.stdout
    assert cli_catalog.get_labels(["r2"])[cli_catalog.resolve_row_ids(["r2"])[0]] == []  # no --save: nothing written


def test_cli_evaluate(cli_catalog, cli):
    for key, lab in (("r0", "a"), ("r1", "a"), ("r2", "b"), ("r3", "b")):
        cli_catalog.set_labels(key, lab)
    r = cli("label-by-similarity", "evaluate", "--embedding", "e", "--results", "1,3", "--thresholds", "0.2,0.5")
    assert r.returncode == 0, r.stderr
    assert "Leave-one-out on 4 labeled rows, 2 labels" in r.stdout
    assert "few examples per label" in r.stdout
    r = cli("label-by-similarity", "evaluate", "--embedding", "e", "--results", "1", "--json")
    data = json.loads(r.stdout)
    assert data["pool_size"] == 4 and data["grid"][0]["k"] == 1 and "recommended" in data


def _assert_error(r, text, code=2):
    assert r.returncode == code, (r.stdout, r.stderr)
    assert text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.cli_process  # label-by-similarity through the console-script exit path
@pytest.mark.parametrize("args, text", [
    (("--ids", "r2"), "labeled pool is empty"),
])
def test_cli_empty_pool(cli_catalog, cli, args, text):
    r = cli("label-by-similarity", "-e", "e", *args, "--save")
    _assert_error(r, text)
    assert cli_catalog.get_labels() == {}


def test_cli_label_by_similarity_errors_write_nothing(cli_catalog, cli):
    cli_catalog.set_labels("r0", "cat")
    before = cli_catalog.get_labels()
    cases = [
        (("-e", "e", "--ids", "r2", "r4", "--save"), "1 of the rows to label have no vector in embedding e: 'r4'"),
        (("-e", "e", "--ids", "r2", "nope", "--save"), "no data row with id or global_key 'nope'"),
        (("-e", "missing", "--ids", "r2", "--save"), "no embedding with id or name 'missing'"),
        (("--ids", "r2", "--save"), "give the embedding to compare with: --embedding"),
        (("-e", "e", "--save"), "give the rows to label with exactly one of --ids ID..., --slice NAME or --unlabeled"),
        (("-e", "e", "--ids", "r2", "--unlabeled"), "(got --ids and --unlabeled)"),
        (("-e", "e", "--slice", "no-such-slice", "--save"), "no slice named 'no-such-slice'"),
        (("-e", "e", "--ids", "r2", "--results", "0", "--save"), "must be from 1 to 10000, not 0"),
        (("-e", "e", "--ids", "r2", "--threshold", "1.5", "--save"), "threshold must be from 0 to 1, not 1.5"),
        (("evaluate", "-e", "e", "--results", "1,x"), "results must be a comma-separated list of numbers, not 'x'"),
        (("evaluate", "-e", "e"), "evaluation needs at least 2 labeled rows"),
    ]
    for args, text in cases:
        _assert_error(cli("label-by-similarity", *args), text)
    assert cli_catalog.get_labels() == before


def test_cli_labels_errors_write_nothing(cli_catalog, cli, tmp_path):
    cli_catalog.set_labels("r0", "cat")
    before = cli_catalog.get_labels()
    (tmp_path / "bad.csv").write_text("id,label\nr1,dog\nzzz,dog\n")
    r = cli("labels", "import", tmp_path / "bad.csv")
    assert r.returncode == 2 and "1 invalid line; nothing was imported" in r.stderr
    assert "line 3: id 'zzz' matches no data row" in r.stderr and "Traceback" not in r.stderr
    _assert_error(cli("labels", "set", "nope", "x"), "no data row with id or global_key 'nope'")
    _assert_error(cli("labels", "set", "r1", " "), "label name is empty")
    _assert_error(cli("labels", "set", "r1", "y" * 101), "use at most 100")
    _assert_error(cli("labels", "remove", "r0", "dog"), "data row 'r0' has no label 'dog'; nothing was removed")
    _assert_error(cli("labels", "review", "r0", "--accept"), "no unreviewed suggestions")
    _assert_error(cli("labels", "export", "--slice", "nothing-here"), "no slice named 'nothing-here'")
    r = cli("labels", "review", "r0")
    assert r.returncode == 2 and "one of the arguments --accept --reject is required" in r.stderr
    assert cli_catalog.get_labels() == before
