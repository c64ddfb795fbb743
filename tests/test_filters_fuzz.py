"""Random and hostile filters: each one returns rows or raises CatalogError, and nothing is ever written."""

from __future__ import annotations

import json
import random

import pytest

from catalog import CatalogError

from slices_support import build_catalog, snapshot

HOSTILE = [
    "'", '"', "''", "\\", "--", "/*", "*/", ";", "'; DROP TABLE datarows; --", "\" OR 1=1 --",
    "1); DELETE FROM labels; --", "SELECT * FROM slices", "DROP", "UNION SELECT", "$gt", "$where",
    "?", "??", "$1", "%s", "{e}", "{}", "json_extract", "__x", "__e", "__l", "null", "NULL", "true",
    "ключ", "значение", "Zoë", "日本語", "😀", "\u202e", "\t", "\n", " ", "", "a.b", "a..b", ".a", "a.",
    "$", "[0]", "a[*]", "x" * 300, "label", "labels", "labeled", "reviewed", "global_key", "media_type",
    "created_at", "id", "metadata.split", "split", "n", "tags", "cam.make", "cam", "my key", "\x00",
]
OPERATORS = ["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$prefix", "$not",
             "$and", "$or", "$nor", "$regex", "$elemMatch", "$size", "$", "$$", "$GT", "$ in"]


def rand_scalar(rng):
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(HOSTILE)
    if kind == 1:
        return rng.randint(-10**6, 10**6)
    if kind == 2:
        return rng.choice([0.5, -1e308, 1e308, 2.5, float("nan"), float("inf"), 10**400, 2**70, -0.0])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return rng.choice(["2026-01-01", "2026-11-21T08:00:00Z", "not a date", "2026-13-45"])
    if kind == 6:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 12)))
    if kind == 7:
        return rng.choice(["train", "val", "red", "cat", "Canon", "similarity", "manual"])
    return rng.choice(["a", "b", "c", 1, 10, "1"])


def rand_value(rng, depth):
    r = rng.random()
    if depth > 3 or r < 0.6:
        return rand_scalar(rng)
    if r < 0.8:
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(HOSTILE + OPERATORS): rand_value(rng, depth + 1) for _ in range(rng.randrange(0, 3))}


def rand_condition(rng, depth):
    r = rng.random()
    if r < 0.35:
        return rand_value(rng, depth)
    ops = {}
    for _ in range(rng.randrange(1, 4)):
        op = rng.choice(OPERATORS)
        if op == "$not":
            ops[op] = rand_condition(rng, depth + 1)
        elif op in ("$in", "$nin") and rng.random() < 0.8:
            ops[op] = [rand_scalar(rng) for _ in range(rng.randrange(0, 5))]
        else:
            ops[op] = rand_value(rng, depth + 1)
    return ops


def rand_filter(rng, depth=0):
    out = {}
    for _ in range(rng.randrange(0, 4)):
        r = rng.random()
        if depth < 45 and r < 0.25:
            op = rng.choice(["$and", "$or", "$nor", "$not", rng.choice(OPERATORS)])
            if op == "$not":
                out[op] = rand_filter(rng, depth + 1)
            else:
                out[op] = [rand_filter(rng, depth + 1) for _ in range(rng.randrange(0, 3))]
        else:
            out[rng.choice(HOSTILE)] = rand_condition(rng, depth)
    return out


@pytest.fixture
def fcat(cat, tmp_path):
    build_catalog(cat, tmp_path)
    cat.save_slice("existing slice", where={"split": "train"})
    return cat


def test_random_and_hostile_filters_never_break_the_catalog(fcat):
    rng = random.Random(20261121)
    before = snapshot(fcat)
    outcomes = {"rows": 0, "error": 0}
    for i in range(600):
        where = rand_filter(rng)
        try:
            res = fcat.filter_datarows(where, limit=None)
            assert res.total == len(res.results)
            assert fcat.filter_row_ids(where) == [h.id for h in res.results]
            outcomes["rows"] += 1
        except CatalogError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg, (where, msg)
            assert "Traceback" not in msg
            outcomes["error"] += 1
    # both kinds of outcome are exercised, and nothing was written
    assert outcomes["rows"] > 50 and outcomes["error"] > 50, outcomes
    assert snapshot(fcat) == before


def test_deeply_nested_filters(fcat):
    before = snapshot(fcat)
    deep = {"split": "train"}
    for i in range(1000):
        deep = {"$and": [deep]} if i % 2 else {"$not": deep}
    with pytest.raises(CatalogError, match="nested deeper"):
        fcat.filter_datarows(deep)
    deep_value = "x"
    for _ in range(2000):
        deep_value = [deep_value]
    try:
        fcat.filter_datarows({"tags": deep_value})
    except CatalogError:
        pass
    assert snapshot(fcat) == before


@pytest.mark.parametrize("where", [
    {"'; DROP TABLE datarows; --": 1},
    {"split": "'; DROP TABLE datarows; --"},
    {"split": {"$in": ["x' OR '1'='1", "\"; DELETE FROM labels; --"]}},
    {"label": "' OR 1=1 --"},
    {"global_key": {"$prefix": "%"}},
    {"split": "_"},
])
def test_injection_attempts_match_literally(fcat, where):
    before = snapshot(fcat)
    try:
        rows = fcat.filter_datarows(where, limit=None)
        assert rows.total == 0   # literal comparison: none of these strings is in the data
    except CatalogError:
        pass
    assert snapshot(fcat) == before


def test_hostile_where_through_the_cli(fcat, cli):
    before = snapshot(fcat)
    for where in ['{"a\'; DROP TABLE datarows; --": 1}', '{"split": {"$regex": ".*"}}', "{bad json",
                  '{"split": {"$in": "train"}}', json.dumps({"$not": {"$not": {"split": "\u0000"}}})]:
        r = cli("slices", "save", "hostile slice", "--where", where)
        assert r.returncode == 2, (where, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert snapshot(fcat) == before
