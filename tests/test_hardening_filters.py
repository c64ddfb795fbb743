"""Crafted filters (a shared ``?where=`` link is anyone's input): very deep nesting, huge ``$or``/``$and``,
long numbers, lone surrogates and bad types either work or give one one-line ``CatalogError`` on
``where`` — never a ``RecursionError``, a DuckDB error or a slow plan. Also the dashboard's hardened
settings in ``.streamlit/config.toml`` and :func:`dashboard.common.md_text`."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from catalog import Catalog, CatalogError
from catalog.filters import MAX_DEPTH, compile_filter, parse_filter
from catalog.filters.parse import MAX_LABEL_TERMS, MAX_TERMS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return Catalog(tmp_path_factory.mktemp("hardening") / "c.duckdb")


def outcome(cat, where) -> str:
    """"ok" or the one-line message; any other exception fails the test."""
    text = where if isinstance(where, str) else json.dumps(where)
    try:
        cat.filter_datarows(text, limit=5)
        return "ok"
    except CatalogError as exc:
        msg = str(exc)
        assert exc.field == "where", msg
        assert "\n" not in msg and len(msg) < 300, msg
        return msg


def nested_text(kind: str, depth: int) -> str:
    """``{"a": 1}`` inside ``depth`` levels of ``$not`` or of one-element ``$and``/``$or``/``$nor`` lists."""
    if kind == "$not":
        return '{"$not": ' * depth + '{"a": 1}' + "}" * depth
    return ('{"%s": [' % kind) * depth + '{"a": 1}' + "]}" * depth


@pytest.mark.parametrize("kind", ["$and", "$or", "$nor", "$not"])
@pytest.mark.parametrize("depth", [1, 8, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 100, 500, 990, 1_500, 20_000])
def test_nesting_sweep_works_or_says_too_deep(cat, kind, depth):
    msg = outcome(cat, nested_text(kind, depth))
    if depth <= MAX_DEPTH:
        assert msg == "ok"
    else:
        assert "nested" in msg


def test_a_dict_nested_past_the_recursion_limit_is_refused(cat):
    w = {"a": 1}
    for _ in range(5_000):
        w = {"$not": w}
    with pytest.raises(CatalogError, match="nested"):
        compile_filter(w)
    v = {"$gt": 1}
    for _ in range(5_000):
        v = {"$not": v}
    with pytest.raises(CatalogError, match="nested"):
        compile_filter({"a": v})


@pytest.mark.parametrize("n", [1, 10, 100, 500, MAX_TERMS, MAX_TERMS + 1, 1_500, 5_000])
@pytest.mark.parametrize("shape", ["$or", "$and", "$nor", "keys", "or-columns"])
def test_term_count_sweep_works_or_says_too_many(cat, shape, n):
    if shape == "keys":
        where = {f"k{i}": i for i in range(n)}
    elif shape == "or-columns":
        where = {"$or": [{"global_key": str(i)} for i in range(n)]}
    else:
        where = {shape: [{"a": i} for i in range(n)]}
    msg = outcome(cat, where)  # (no time bound: that would depend on the machine's load)
    if n <= MAX_TERMS:
        assert msg == "ok"
    else:
        assert f"at most {MAX_TERMS:,}" in msg


def test_total_conditions_and_label_conditions_are_bounded(cat):
    many = {"$or": [{"$and": [{"a": j} for j in range(100)]} for _ in range(100)]}
    assert "more than 1,000 conditions" in outcome(cat, many)
    labels = {"$or": [{"label": str(i)} for i in range(MAX_LABEL_TERMS + 1)]}
    assert f"more than {MAX_LABEL_TERMS} conditions on labels" in outcome(cat, labels)
    assert outcome(cat, {"$or": [{"label": str(i)} for i in range(MAX_LABEL_TERMS)]}) == "ok"


@pytest.mark.parametrize("n", [1_001, 50_000])
def test_long_in_lists_are_one_condition(cat, n):
    assert outcome(cat, {"a": {"$in": list(range(n))}}) == "ok"
    assert outcome(cat, {"label": {"$in": [str(i) for i in range(n)]}}) == "ok"
    assert outcome(cat, {"global_key": {"$nin": [str(i) for i in range(n)]}}) == "ok"
    assert outcome(cat, {"a": {"$in": [[i] for i in range(n)]}}) != "ok"  # each list value is a test


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"a": ' + "[" * 5_000 + "]" * 5_000 + "}",
    '{"a": ' + "9" * 5_000 + "}",
    '{"a": {"$gt": ' + "9" * 400 + "}}",
    '{"a": NaN}', '{"a": 1e400}',
    '{"a": "\\ud800"}', '{"a": ["\\udfff"]}', '{"a": {"$eq": {"k": "\\ud800"}}}', '{"\\ud800": 1}',
    '{"label": "\\ud800"}', '{"created_at": {"$gt": "\\ud800"}}',
    '{"a": {"$in": [' + "[" * 40 + "]" * 40 + "]}}",
    '{"label": {"x": 1}}', '{"labels": []}', '{"created_at": {"$gt": 5}}', '{"id": 5}',
    '{"$not": []}', '{"a": {"$regex": "x"}}', '{"": 1}', '{"a..b": 1}', '[1]', '"x"', "{",
])
def test_crafted_inputs_give_one_line_errors(cat, text):
    assert outcome(cat, text) != "ok"


def test_parse_filter_refuses_deep_text_and_long_numbers():
    with pytest.raises(CatalogError, match="nested deeper"):
        parse_filter("[" * 100_000)
    with pytest.raises(CatalogError, match="number too long"):
        parse_filter('{"a": ' + "1" * 5_000 + "}")
    with pytest.raises(CatalogError, match="nested deeper"):
        parse_filter('{"a": ' + "[" * 200 + "]" * 200 + "}")  # under the JSON reader's limit, over ours
    for text in ('{"a": "\\ud800"}', '{"\\udfff": 1}', '{"$or": [{"a": ["\\ud800"]}]}'):
        with pytest.raises(CatalogError, match="valid Unicode"):
            parse_filter(text)


# -- the dashboard's settings ----------------------------------------------------------------------------------
def test_the_config_binds_loopback_hides_error_details_and_limits_uploads():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["server"]["maxUploadSize"] == 512


def test_streamlit_accepts_the_error_details_setting():
    from streamlit import config

    assert "none" in config._config_options_template["client.showErrorDetails"].description


def test_md_text_shows_markdown_as_text():
    from dashboard.common import md_text

    s = md_text("![x](http://example.invalid/p.png) *x* :red[y] $z$ <b>")
    assert not re.search(r"(?<!\\)[!\[\]()*:$<>]", s)  # every special is escaped
    assert s.replace("\\", "") == "![x](http://example.invalid/p.png) *x* :red[y] $z$ <b>"
    assert md_text("`where` is ![x](y)", keep_code=True) == "`where` is \\!\\[x\\]\\(y\\)"
    assert md_text("a\nb") == "a  \nb"
    assert md_text("all-circles v1.2") == "all-circles v1.2"  # - and . matter only where a line begins
    assert md_text("- a\n1. b") == "\\- a  \n1\\. b"
