"""``advtool search`` through ``catalog.cli.main`` (the ``cli_process`` ones through the real entry point)."""

from __future__ import annotations

import json

import pytest

from catalog import Page, SearchSpec
from knn_support import SCORE_ATOL, assert_same_ranking
from search_support import make_embedding, np_scores


@pytest.fixture
def data(cat, tmp_path):
    emb, keys, x = make_embedding(cat, tmp_path, n=300, dims=16)
    return cat, emb, keys, x


def test_json_output_matches_library(data, cli):
    cat, emb, keys, x = data
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--anchor", keys[1], "--min", "0.5",
            "--limit", "7", "--offset", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"total", "results"}
    assert all(list(h) == ["id", "global_key", "score"] for h in out["results"])
    lib = cat.search("custom", anchors=keys[:2], min_score=0.5, limit=7, offset=2)
    assert out == lib.to_dict()
    assert len(out["results"]) == 7


def test_json_options(data, cli):
    cat, emb, keys, x = data
    args = ["search", "-e", emb.id, "-a", keys[5], "--negative", keys[6], "--min", "0.3", "--max", "0.9",
            "--aggregate", "max", "--order", "asc", "--where", '{"colour": {"$in": ["red", "green"]}}',
            "--limit", "5", "--backend", "exact", "--json"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    lib = cat.search(emb.id, anchors=[keys[5]], negative_anchors=[keys[6]], min_score=0.3, max_score=0.9,
                     aggregate="max", order="asc", where={"colour": {"$in": ["red", "green"]}}, limit=5)
    assert json.loads(r.stdout) == lib.to_dict()
    assert lib.total > 0


def test_table_output(data, cli):
    cat, emb, keys, x = data
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--min", "0.0", "--limit", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["score", "global_key", "id"]
    assert len(lines) == 5
    assert lines[-1] == "299 rows in [0, 1]; showing 1-3"
    want = dict(zip(keys[1:], np_scores(x[0], x)[1:]))
    best = max(want, key=want.get)
    score, key = float(lines[1].split()[0]), lines[1].split()[1]
    # the best row, or one tied with it within the float tolerance (the table prints 4 decimals)
    assert_same_ranking([key], [score], [best], [want[best]], 5e-5 + SCORE_ATOL)
    assert score == pytest.approx(want[key], abs=1e-4)
    r = cli("search", "--embedding", "custom", "--anchor", keys[0], "--min", "1", "--max", "1")
    assert r.returncode == 0 and r.stdout.strip() == "0 rows in [1, 1]; showing none"


@pytest.mark.parametrize("sort,order", [("global_key", None), ("global_key", "desc"), ("created", None),
                                        ("created", "asc"), ("score", "asc")])
def test_sort_flag_matches_library(data, cli, sort, order):
    cat, emb, keys, x = data
    args = ["search", "-e", "custom", "-a", keys[0], "--min", "0.4", "--sort", sort, "--limit", "8", "--offset", "3",
            "--json"] + (["--order", order] if order else [])
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    lib = cat.search(SearchSpec("custom", anchors=[keys[0]], min_score=0.4, sort=sort, order=order), Page(8, 3))
    assert out == lib.to_dict() and len(out["results"]) == 8
    by_score = cat.search(SearchSpec("custom", anchors=[keys[0]], min_score=0.4), Page(8, 3))
    assert out["total"] == by_score.total
    if sort == "global_key":
        got = [h["global_key"] for h in out["results"]]
        assert got == sorted(got, reverse=order == "desc")


def test_sort_flag_rejects_unknown_values(data, cli):
    r = cli("search", "-e", "custom", "-a", "row-00000", "--sort", "size")
    assert r.returncode != 0 and "--sort" in r.stderr and "Traceback" not in r.stderr


def test_slices_save_sort(data, cli):
    cat, emb, keys, x = data
    r = cli("slices", "save", "by key", "-e", "custom", "-a", keys[0], "--min", "0.4", "--sort", "global_key",
            "--order", "desc")
    assert r.returncode == 0, r.stderr
    s = cat.get_slice("by key")
    assert s.query["sort"] == "global_key" and s.query["order"] == "desc"
    shown = json.loads(cli("slices", "show", "by key", "--limit", "5", "--json").stdout)
    got = [h["global_key"] for h in shown["results"]]
    assert got == sorted(got, reverse=True) and len(got) == 5
    r = cli("slices", "save", "red newest", "--where", '{"colour": "red"}', "--sort", "created")
    assert r.returncode == 0, r.stderr
    f = cat.get_slice("red newest")
    assert f.query["sort"] == "created" and f.query["order"] == "desc" and f.query["embedding"] is None
    r = cli("slices", "save", "red plain", "--where", '{"colour": "red"}')
    assert r.returncode == 0 and "sort" not in cat.get_slice("red plain").query


@pytest.mark.parametrize("args,message", [
    (["--anchor", "row-00000", "--where", "{colour: red}"], "error: --where is not valid JSON"),
    (["--anchor", "row-00000", "--where", "[1, 2]"], "error: --where must be a JSON object"),
    (["--anchor", "row-00000", "--where", '{"colour": {"$regex": "r"}}'], "$regex"),
    (["--anchor", "no-such-row"], "error: no data row with id or global_key 'no-such-row'"),
    (["--anchor", "row-00000", "--min", "0.9", "--max", "0.5"], "error: min score 0.9 is greater than max score 0.5"),
    (["--anchor", "row-00000", "--min", "-1"], "error: min score -1 is outside [0, 1]"),
    (["--anchor", "row-00000", "--max", "2"], "error: max score 2 is outside [0, 1]"),
    ([], "error: search needs at least one anchor"),
    (["--negative", "row-00001"], "error: search needs at least one anchor"),
    (["--anchor", "row-00000", "--limit", "-3"], "error: --limit and --offset must not be negative"),
])
def test_errors_are_one_line(data, cli, args, message):
    cat, emb, _, _ = data
    version = emb.refresh().version
    r = cli("search", "--embedding", "custom", *args)
    assert r.returncode != 0
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""
    assert emb.refresh().version == version and emb.get_imported_vector_count() == 300  # nothing written


@pytest.mark.cli_process  # search through the console-script exit path
def test_unknown_embedding(data, cli):
    r = cli("search", "--embedding", "nope", "--anchor", "row-00000", "--json")
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip() == "error: no embedding with id or name 'nope'; run `advtool embeddings list` to see them"


def test_anchor_without_vector(cat, tmp_path, cli):
    make_embedding(cat, tmp_path, n=50, dims=8, missing=1)
    r = cli("search", "--embedding", "custom", "--anchor", "row-00049")
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error: anchor 'row-00049' has no vector in embedding custom")


def test_text_query_flag_on_custom_embedding(data, cli):
    r = cli("search", "--embedding", "custom", "--text", "a red car")
    assert r.returncode != 0 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_text_query_with_offline_text_model(cat, text_records, cli):
    """A text prompt is encoded by the embedding's model and searched like an anchor vector."""
    cat.import_datarows([text_records])
    cat.compute_embeddings("all-minilm-l6-v2")
    res = cat.search("all-minilm-l6-v2", text="baking a cake in the kitchen", min_score=0.0, limit=4)
    assert res.total == 8
    assert {h.global_key.split("-")[0] for h in res.results} == {"cooking"}
    r = cli("search", "--embedding", "all-minilm-l6-v2", "--text", "baking a cake in the kitchen", "--min", "0",
            "--limit", "4", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == res.to_dict()


def test_image_query_with_builtin_image_descriptor(cat, image_folder, cli):
    cat.import_datarows([image_folder])
    cat.compute_embeddings("color-texture")
    probe = image_folder / "red" / "r1.png"
    r = cli("search", "--embedding", "color-texture", "--image", str(probe), "--min", "0", "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    keys = [h["global_key"] for h in json.loads(r.stdout)["results"]]
    assert keys[0] == "red/r1.png" and all(k.startswith("red/") for k in keys)
