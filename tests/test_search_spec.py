"""SearchSpec and Page: validated once, the same JSON as a slice's stored query, both call forms of
Catalog.search; neutral errors and how each client words them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from catalog import CatalogError, Page, SearchSpec
from catalog.cli.errors import FLAGS, HINTS, render
from catalog.errors import NotFound, ValidationError
from search_support import make_embedding

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kwargs, field, message", [
    (dict(min_score=1.5), "min_score", "min score 1.5 is outside [0, 1]"),
    (dict(max_score="high"), "max_score", "max score must be a number from 0 to 1, not 'high'"),
    (dict(min_score=0.9, max_score=0.5), "min_score", "min score 0.9 is greater than max score 0.5"),
    (dict(aggregate="median"), "aggregate", "aggregate 'median' is not supported; use mean or max"),
    (dict(order="up"), "order", "order 'up' is not supported; use desc or asc"),
    (dict(where="{nope"), "where", "`where` is not valid JSON"),
    (dict(where=[1]), "where", "a filter must be a JSON object"),
    (dict(where={"n": {"$bad": 1}}), "where", "unknown filter operator '$bad'"),
    (dict(anchors=[" "]), "anchors", "an anchor is an empty string"),
    (dict(anchors=[{"x": 1}]), "anchors", "is neither a data row id/global_key nor a vector"),
    (dict(negatives=[None]), "negatives", "is neither a data row id/global_key nor a vector"),
    (dict(text=3), "text", "a text prompt must be a string"),
    (dict(text="a cat", image=b"\x89PNG"), "text", "give either a text or an image query, not both"),
])
def test_a_spec_is_checked_when_it_is_made(kwargs, field, message):
    with pytest.raises(CatalogError) as info:
        SearchSpec("emb", **kwargs)
    assert message in str(info.value)
    assert info.value.field == field


def test_anchors_without_an_embedding_are_refused():
    with pytest.raises(CatalogError, match="anchors need an embedding") as info:
        SearchSpec(anchors=["row-1"])
    assert info.value.field == "embedding"
    assert "--embedding" in render(info.value) and "`embedding`" not in render(info.value)


@pytest.mark.parametrize("limit, offset, field", [(-1, 0, "limit"), (1.5, 0, "limit"), (True, 0, "limit"),
                                                  (10, -2, "offset"), (10, "3", "offset")])
def test_a_page_is_checked_when_it_is_made(limit, offset, field):
    with pytest.raises(CatalogError, match=f"{field} must be a whole number") as info:
        Page(limit, offset)
    assert info.value.field == field


def test_specs_normalise_and_compare():
    a = SearchSpec("emb", anchors="row-1", where='{"split": "train"}', min_score=0.8)
    b = SearchSpec("emb", anchors=[" row-1 "], where={"split": "train"}, min_score=0.8)
    assert a == b and a.anchors == ("row-1",) and a.where == {"split": "train"}
    vec = SearchSpec("emb", anchors=np.ones(4, np.float32))
    assert vec.anchors == ((1.0, 1.0, 1.0, 1.0),)
    assert SearchSpec.from_json(vec.to_json()) == vec
    assert SearchSpec(where={}).where is None and SearchSpec().is_filter_only
    assert a.replace(min_score=0.9).min_score == 0.9 and a.min_score == 0.8
    assert Page(None).end is None and Page(10, 5).end == 15


def test_an_image_prompt_has_no_stored_form(cat, tmp_path):
    emb, keys, _ = make_embedding(cat, tmp_path, n=20, dims=8)
    spec = SearchSpec(emb.name, image=b"not an image")
    with pytest.raises(CatalogError, match="an image prompt has no stored form") as info:
        spec.to_json()
    assert info.value.field == "image"
    with pytest.raises(CatalogError, match="an image prompt cannot be saved in a slice"):
        cat.save_slice("with image", spec)
    assert cat.get_slices() == []


def test_both_call_forms_give_the_same_answer(cat, tmp_path):
    emb, keys, _ = make_embedding(cat, tmp_path, n=80, dims=8)
    spec = SearchSpec(emb.name, anchors=[keys[0]], min_score=0.3, where={"colour": "red"})
    new = cat.search(spec, Page(5, 2), backend="exact")
    old = cat.search(emb.name, anchors=[keys[0]], min_score=0.3, where={"colour": "red"}, limit=5, offset=2,
                     backend="exact")
    assert new.to_dict() == old.to_dict() and new.total == old.total
    assert cat.search_row_ids(spec) == cat.search_row_ids(emb.name, anchors=[keys[0]], min_score=0.3,
                                                         where={"colour": "red"})
    saved = cat.save_slice("red ones", spec)
    assert saved.spec == cat.slices.stored_spec(spec)
    assert saved.rows(limit=5, offset=2).to_dict() == new.to_dict()
    with pytest.raises(TypeError):
        cat.search(spec, Page(), limit=3)
    with pytest.raises(TypeError):
        cat.search_row_ids(emb.name, anchors=[keys[0]], limit=3)  # no paging here
    with pytest.raises(TypeError):
        cat.save_slice("again", spec, min_score=0.5)
    with pytest.raises(CatalogError, match="backend 'fast' is not supported; use exact or approximate") as info:
        cat.search(spec, backend="fast")
    assert info.value.field == "backend"


def test_clients_word_the_neutral_errors():
    exc = CatalogError("choose exactly one of `slice`, `ids` or `where`", field="slice",
                       hint="list the slices to see them")
    assert str(exc) == "choose exactly one of `slice`, `ids` or `where`; list the slices to see them"
    assert render(exc) == "choose exactly one of --slice, --ids or --where; see `advtool slices list`"
    assert exc.worded({"slice": "the slice", "ids": "the selection", "where": "the filter"}) == (
        "choose exactly one of the slice, the selection or the filter; list the slices to see them")
    assert exc.to_dict() == {"code": "CatalogError", "message": exc.message, "field": "slice",
                             "hint": "list the slices to see them"}
    nf = NotFound("no embedding with id or name 'x'", field="embedding", hint="list the embeddings to see them")
    assert render(nf) == "no embedding with id or name 'x'; run `advtool embeddings list` to see them"
    bad = ValidationError("vectors.ndjson has 2 bad lines; nothing was imported", [(3, "bad"), (5, "worse")])
    assert render(bad) == "vectors.ndjson has 2 bad lines; nothing was imported\nline 3: bad\nline 5: worse"
    assert set(HINTS.values()) and all(flag.startswith("--") for flag in FLAGS.values())


def test_the_dashboard_words_inputs_by_its_widgets():
    common = pytest.importorskip("dashboard.common")
    exc = CatalogError("`where` is not valid JSON", field="where")
    assert common.worded(exc) == "the filter is not valid JSON"


_CLI_WORDS = re.compile(r"advtool|(?<![\w-])--[a-z]")


def _messages(path: Path):
    """String constants of a module that are not docstrings (messages, hints, SQL)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_the_library_speaks_no_client_words():
    found = []
    for path in sorted((ROOT / "catalog").rglob("*.py")):
        if {"cli", "api"} & set(path.relative_to(ROOT / "catalog").parts):  # the clients word errors their own way
            continue
        for line, text in _messages(path):
            if _CLI_WORDS.search(text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text[:80]!r}")
    assert not found, "command names or flags in library messages:\n" + "\n".join(found)


def test_rows_with_vectors(cat, tmp_path):
    emb, keys, _ = make_embedding(cat, tmp_path, n=30, dims=8, missing=5)
    ids = [r["id"] for r in cat.get_datarows(keys)]
    assert cat.rows_with_vectors(emb.name, ids) == set(ids[:25])
    assert cat.rows_with_vectors(emb.id, [ids[0].upper(), "not-a-row"]) == {ids[0]}
    assert cat.rows_with_vectors(emb.name, []) == set()
    with pytest.raises(NotFound, match="no embedding with id or name 'nope'"):
        cat.rows_with_vectors("nope", ids)
