"""The Mongo-style filter language against a real catalog: every operator, built-in field and error."""

from __future__ import annotations

import pytest

from catalog import CatalogError
from catalog.filters import compile_filter, json_path

from slices_support import build_catalog, snapshot

ALL = {"a", "b", "c", "d", "e"}


@pytest.fixture
def fcat(cat, tmp_path):
    return build_catalog(cat, tmp_path)


def match(cat, where) -> set[str]:
    res = cat.filter_datarows(where, limit=None)
    assert res.total == len(res.results)
    return {h.global_key for h in res.results}


def test_empty_filters_match_everything(fcat):
    assert compile_filter(None) == ("TRUE", [])
    assert compile_filter({}) == ("TRUE", [])
    assert match(fcat, None) == ALL
    assert match(fcat, {}) == ALL


@pytest.mark.parametrize("where, expected", [
    ({"split": "train"}, {"a", "c"}),
    ({"split": {"$eq": "val"}}, {"b"}),
    ({"n": 1}, {"a"}),                      # the number 1, not the string "1"
    ({"n": "1"}, {"b"}),
    ({"n": 1.0}, {"a"}),
    ({"flag": True}, {"a"}),
    ({"flag": False}, {"b"}),
    ({"split": {"$ne": "train"}}, {"b", "d", "e"}),   # rows without the key match $ne
    ({"split": {"$in": ["val", "test"]}}, {"b", "e"}),
    ({"split": {"$in": []}}, set()),
    ({"split": {"$in": [None, "val"]}}, {"b", "d"}),      # null in $in matches a missing key too
    ({"n": {"$in": [1, "1", 2.5]}}, {"a", "b", "e"}),
    ({"split": {"$in": [f"v{i}" for i in range(5000)] + ["test"]}}, {"e"}),   # long lists are fine
    ({"split": {"$nin": ["train"]}}, {"b", "d", "e"}),
    ({"n": {"$gt": 1}}, {"c", "e"}),        # numbers compare numerically; "1" is a string
    ({"n": {"$gte": 1}}, {"a", "c", "e"}),
    ({"n": {"$lt": 2.5}}, {"a"}),
    ({"n": {"$lte": 2.5}}, {"a", "e"}),
    ({"n": {"$gt": 1, "$lt": 10}}, {"e"}),
    ({"n": {"$gte": "1"}}, {"b"}),          # strings compare as strings
    ({"date": {"$gte": "2026-02-01"}}, {"b"}),
    ({"split": {"$gt": "train"}}, {"b"}),
    ({"note": {"$exists": True}}, {"b"}),   # a JSON null exists
    ({"note": {"$exists": False}}, ALL - {"b"}),
    ({"note": None}, ALL),                  # null matches null and missing
    ({"split": None}, {"d"}),
    ({"split": {"$prefix": "tr"}}, {"a", "c"}),
    ({"n": {"$not": {"$gt": 1}}}, {"a", "b", "d"}),
    ({"split": {"$not": {"$in": ["train", "val"]}}}, {"d", "e"}),
])
def test_operators_on_metadata(fcat, where, expected):
    assert match(fcat, where) == expected


@pytest.mark.parametrize("where, expected", [
    ({"cam.make": "Canon"}, {"a", "c"}),
    ({"cam.iso": {"$gte": 1000}}, {"b"}),
    ({"cam.iso": {"$exists": False}}, {"c", "d", "e"}),
    ({"cam": {"make": "Canon"}}, {"c"}),                 # a whole object equals only an equal object
    ({"cam": {"$eq": {"make": "Canon", "iso": 400}}}, {"a"}),
    ({"metadata.split": "train"}, {"a", "c"}),           # explicit metadata prefix
    ({"name": "Zoë"}, {"e"}),
    ({"ключ": "значение"}, {"e"}),
    ({"my key": "spaced"}, {"e"}),
])
def test_nested_paths_and_unicode_keys(fcat, where, expected):
    assert match(fcat, where) == expected


@pytest.mark.parametrize("where, expected", [
    ({"tags": "red"}, {"a", "b"}),                       # a scalar matches an array containing it
    ({"tags": "blue"}, {"a"}),
    ({"tags": 2}, {"e"}),
    ({"tags": {"$in": ["blue", 1]}}, {"a", "e"}),
    ({"tags": {"$nin": ["red"]}}, {"c", "d", "e"}),
    ({"tags": {"$ne": "red"}}, {"c", "d", "e"}),
    ({"tags": {"$gt": 1}}, {"e"}),                       # any element in range
    ({"tags": ["red", "blue"]}, {"a"}),                  # exact array
    ({"tags": ["blue", "red"]}, set()),                  # order matters for exact arrays
    ({"tags": []}, {"c"}),
    ({"tags": {"$prefix": "bl"}}, {"a"}),
])
def test_arrays(fcat, where, expected):
    assert match(fcat, where) == expected


@pytest.mark.parametrize("where, expected", [
    ({"$and": [{"split": "train"}, {"n": {"$gt": 1}}]}, {"c"}),
    ({"$or": [{"split": "val"}, {"n": 10}]}, {"b", "c"}),
    ({"$nor": [{"split": "train"}, {"split": "val"}]}, {"d", "e"}),
    ({"$not": {"split": "train"}}, {"b", "d", "e"}),
    ({"$or": [{"$and": [{"split": "train"}, {"label": "cat"}]}, {"$not": {"labeled": True}}]}, {"a", "c", "d", "e"}),
    ({"split": "train", "cam.make": "Canon", "n": {"$lt": 5}}, {"a"}),   # implicit AND
])
def test_logical_operators(fcat, where, expected):
    assert match(fcat, where) == expected


def test_builtin_columns(fcat, tmp_path, image_folder):
    fcat.import_datarows([image_folder])
    images = {f"{c}/{p}{i}.png" for c, p in (("red", "r"), ("blue", "b")) for i in range(3)}
    assert match(fcat, {"media_type": "image"}) == images
    assert match(fcat, {"media_type": {"$ne": "image"}}) == ALL
    assert match(fcat, {"media_type": {"$in": ["text"]}}) == ALL
    assert match(fcat, {"global_key": "a"}) == {"a"}
    assert match(fcat, {"global_key": {"$prefix": "red/"}}) == {"red/r0.png", "red/r1.png", "red/r2.png"}
    assert match(fcat, {"global_key": {"$nin": ["a", "b"]}}) == (ALL | images) - {"a", "b"}
    assert match(fcat, {"global_key": {"$gte": "d", "$lt": "f"}}) == {"d", "e"}
    row = fcat.get_datarow("c")
    assert match(fcat, {"id": row["id"]}) == {"c"}
    assert match(fcat, {"id": {"$in": [row["id"], fcat.get_datarow("e")["id"]]}}) == {"c", "e"}


def test_created_at_with_iso_strings(fcat, tmp_path):
    with fcat.store.transaction() as con:
        con.execute("UPDATE datarows SET created_at = TIMESTAMP '2026-01-10 12:00:00' WHERE global_key IN ('a', 'b')")
    assert match(fcat, {"created_at": {"$lt": "2026-01-11"}}) == {"a", "b"}
    assert match(fcat, {"created_at": {"$gte": "2026-01-10T12:00:00", "$lte": "2026-01-10T12:00:00"}}) == {"a", "b"}
    assert match(fcat, {"created_at": "2026-01-10T12:00:00"}) == {"a", "b"}
    # a time with an offset is converted to UTC (stored times are UTC)
    assert match(fcat, {"created_at": {"$eq": "2026-01-10T14:00:00+02:00"}}) == {"a", "b"}
    assert match(fcat, {"created_at": {"$gt": "2026-01-10T12:00:00Z"}}) == ALL - {"a", "b"}
    assert match(fcat, {"updated_at": {"$gt": "2000-01-01"}}) == ALL


@pytest.mark.parametrize("where, expected", [
    ({"label": "cat"}, {"a", "c"}),
    ({"label": {"$eq": "bird"}}, {"c"}),
    ({"label": {"$in": ["dog", "bird"]}}, {"b", "c"}),
    ({"label": {"$ne": "cat"}}, {"b", "d", "e"}),        # rows without that label
    ({"label": {"$nin": ["cat", "dog"]}}, {"d", "e"}),
    ({"label": {"$prefix": "bi"}}, {"c"}),
    ({"label": {"$exists": True}}, {"a", "b", "c"}),
    ({"label_source": "similarity"}, {"b", "c"}),
    ({"label_source": "manual"}, {"a", "c"}),
    ({"label_source": {"$ne": "similarity"}}, {"a", "d", "e"}),
    ({"labeled": True}, {"a", "b", "c"}),
    ({"labeled": False}, {"d", "e"}),
    ({"reviewed": True}, {"a", "c"}),
    ({"reviewed": False}, {"b", "c"}),                   # rows with a label awaiting review
    ({"labels": {"label": "cat", "source": "similarity"}}, {"c"}),   # one label meeting every condition
    ({"labels": {"label": "cat", "reviewed": True}}, {"a"}),
    ({"labels": {"score": {"$gte": 0.5}}}, {"b"}),
    ({"label": "cat", "label_source": "similarity"}, {"c"}),
    ({"label": "cat", "split": "train", "n": {"$gt": 1}}, {"c"}),
])
def test_label_fields(fcat, where, expected):
    assert match(fcat, where) == expected


@pytest.mark.parametrize("where, message", [
    ({"n": {"$regex": "x"}}, "unknown filter operator '$regex' on 'n'"),
    ({"$where": "1"}, "unknown filter operator '$where'"),
    ({"$gt": 1}, "unknown filter operator '$gt' at the top level"),
    ({"split": {"$in": "train"}}, "$in on 'split' needs a list"),
    ({"split": {"$nin": 3}}, "$nin on 'split' needs a list"),
    ({"n": {"$gt": {"a": 1}}}, "$gt on 'n' needs a number or a string"),
    ({"n": {"$lte": [1]}}, "$lte on 'n' needs a number or a string"),
    ({"n": {"$gt": True}}, "$gt on 'n' needs a number or a string"),
    ({"n": {"$exists": "yes"}}, "$exists on 'n' needs true or false"),
    ({"n": {"$prefix": 3}}, "$prefix on 'n' needs a string"),
    ({"n": {"$gt": float("nan")}}, "must be finite"),
    ({"$or": []}, "$or needs a non-empty list"),
    ({"$and": {"a": 1}}, "$and needs a non-empty list"),
    ({"$not": []}, "$not needs a non-empty filter object"),
    ({"n": {"$not": 5}}, "$not on 'n' needs an operator object"),
    ({"n": {"$gt": 1, "x": 2}}, "cannot mix operators and plain keys"),
    ({"a'b": 1}, "metadata path \"a'b\" is not allowed"),
    ({"a..b": 1}, "metadata path 'a..b' is not allowed"),
    ({"": 1}, "metadata path '' is not allowed"),
    ({"created_at": {"$gt": "yesterday"}}, "$gt on 'created_at': \"yesterday\" is not an ISO-8601"),
    ({"created_at": {"$gt": 5}}, "needs an ISO-8601"),
    ({"media_type": 5}, "$eq on 'media_type' needs a string"),
    ({"label": {"$gt": "a"}}, "$gt on 'label' is not supported"),
    ({"label": 3}, "$eq on 'label' needs a string"),
    ({"labeled": "yes"}, "'labeled' needs true or false"),
    ({"reviewed": "no"}, "$eq on 'reviewed' needs true or false"),
    ({"labels": {"colour": "red"}}, "unknown label field 'colour'"),
    ({"labels": "cat"}, "'labels' needs an object"),
    ({"split": "a\x00b"}, "NUL"),
    (["split"], "a filter must be a JSON object"),
    ("{not json", "`where` is not valid JSON"),
])
def test_bad_filters_are_one_line_errors(fcat, where, message):
    before = snapshot(fcat)
    with pytest.raises(CatalogError) as exc:
        fcat.filter_datarows(where)
    text = str(exc.value)
    assert message in text
    assert "\n" not in text
    assert snapshot(fcat) == before


def test_deep_nesting_is_refused(fcat):
    where = {"split": "train"}
    for _ in range(40):
        where = {"$not": where}
    with pytest.raises(CatalogError, match="nested deeper than"):
        compile_filter(where)
    where = {"split": "train"}
    for _ in range(10):
        where = {"$not": {"$not": where}}
    assert match(fcat, where) == {"a", "c"}


def test_values_are_bound_never_spliced():
    hostile = "x'); DROP TABLE datarows; --"
    sql, params = compile_filter({"split": hostile, "global_key": {"$in": [hostile]}, "label": hostile})
    assert hostile not in sql and "DROP" not in sql
    assert params.count(hostile) >= 3
    # keys travel as JSON-path parameters too
    sql, params = compile_filter({"cam.make": "x"})
    assert "cam" not in sql and '$."cam"."make"' in params
    assert json_path("a.b c") == '$."a"."b c"'


def test_string_filter_is_parsed_as_json(fcat):
    assert match(fcat, '{"split": "train"}') == {"a", "c"}


def test_alias_is_used_and_checked(fcat):
    sql, params = compile_filter({"split": "train", "label": "cat"}, alias="r")
    with fcat.store.connect() as con:
        rows = con.execute(f"SELECT r.global_key FROM datarows r WHERE {sql} ORDER BY 1", params).fetchall()
    assert [r[0] for r in rows] == ["a", "c"]
    with pytest.raises(CatalogError, match="alias"):
        compile_filter({"a": 1}, alias="d; DROP TABLE x")
