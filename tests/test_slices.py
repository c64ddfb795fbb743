"""Saved slices through the library: persistence, names, dynamic rows, equality with the search they saved."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

from catalog import AlreadyExists, Catalog, CatalogError, NotFound

from slices_support import build_catalog, keys, snapshot, vectors_catalog, write_records


@pytest.fixture
def fcat(cat, tmp_path):
    return build_catalog(cat, tmp_path)


@pytest.fixture
def vcat(cat, tmp_path):
    emb, vecs = vectors_catalog(cat, tmp_path)
    return cat, emb, vecs


# -- pure filter slices ------------------------------------------------------------------------------
def test_filter_slice_lists_matching_rows_by_global_key(fcat):
    s = fcat.save_slice("train split", where={"split": "train"}, description="rows for training")
    assert s.name == "train split" and s.description == "rows for training"
    assert s.query["embedding"] is None and s.query["where"] == {"split": "train"}
    res = s.rows()
    assert res.total == 2 and keys(res) == ["a", "c"]
    assert all(h.score is None for h in res.results)
    assert s.row_ids() == [fcat.get_datarow("a")["id"], fcat.get_datarow("c")["id"]]
    assert res.to_dict()["results"][0] == {"id": s.row_ids()[0], "global_key": "a", "score": None}


def test_slice_without_filter_lists_every_row(fcat):
    s = fcat.save_slice("everything")
    assert keys(s.rows()) == ["a", "b", "c", "d", "e"]


def test_slices_persist_in_the_file(fcat, db_path):
    fcat.save_slice("train split", where={"split": "train"})
    again = Catalog(db_path).get_slice("train split")
    assert keys(again.rows()) == ["a", "c"]
    d = again.to_dict()
    assert set(d) == {"id", "name", "description", "query", "created_at", "updated_at"}
    assert d["query"]["where"] == {"split": "train"}


def test_filter_slice_is_dynamic(fcat, tmp_path):
    s = fcat.save_slice("canon shots", where={"cam.make": "Canon", "label": {"$ne": "dog"}})
    assert keys(s.rows()) == ["a", "c"]
    fcat.import_datarows([write_records(tmp_path / "later.ndjson", {"f": {"cam": {"make": "Canon"}},
                                                                     "g": {"cam": {"make": "Sony"}}})])
    assert keys(fcat.get_slice("canon shots").rows()) == ["a", "c", "f"]
    # a label written later takes a row out
    with fcat.store.transaction() as con:
        con.execute("INSERT INTO labels (row_id, label) VALUES (?, 'dog')", [fcat.get_datarow("f")["id"]])
    assert keys(fcat.get_slice("canon shots").rows()) == ["a", "c"]


def test_paging_is_consistent(fcat):
    s = fcat.save_slice("everything")
    pages = [keys(s.rows(limit=2, offset=o)) for o in (0, 2, 4)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert s.rows(limit=2, offset=4).total == 5
    assert keys(s.rows(limit=None)) == ["a", "b", "c", "d", "e"]
    assert s.rows(limit=0).results == [] and s.rows(limit=0).total == 5


# -- names, replace, delete --------------------------------------------------------------------------
@pytest.mark.parametrize("name, message", [
    ("ab", "must be 3 to 60 characters"),
    ("x" * 61, "must be 3 to 60 characters"),
    ("   ", "must be 3 to 60 characters"),
    ("bad\nname", "control characters"),
    (5, "name must be a string"),
])
def test_bad_names_are_refused(fcat, name, message):
    before = snapshot(fcat)
    with pytest.raises(CatalogError, match=message):
        fcat.save_slice(name, where={"split": "train"})
    assert snapshot(fcat) == before


def test_names_are_unique_and_replace_updates_in_place(fcat):
    first = fcat.save_slice("my slice", where={"split": "train"}, description="v1")
    before = snapshot(fcat)
    with pytest.raises(AlreadyExists, match="already exists; pass `replace`"):
        fcat.save_slice("my slice", where={"split": "val"})
    assert snapshot(fcat) == before
    time.sleep(0.01)
    second = fcat.save_slice("my slice", where={"split": "val"}, replace=True)
    assert second.id == first.id and second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.description == "v1"                  # kept when not given
    assert keys(second.rows()) == ["b"]
    third = fcat.save_slice("my slice", where={"split": "val"}, replace=True, description="v2")
    assert third.description == "v2"
    # save as new: a new name gives a new slice and keeps the old one
    copy = fcat.save_slice("my slice copy", **{"where": second.query["where"]})
    assert copy.id != first.id
    assert [s.name for s in fcat.get_slices()] == ["my slice", "my slice copy"]
    # names at the limits are fine, and surrounding spaces are trimmed
    assert fcat.save_slice("abc").name == "abc"
    assert fcat.save_slice("  " + "y" * 60 + "  ").name == "y" * 60


def test_replace_creates_when_missing(fcat):
    s = fcat.save_slice("fresh one", where={"split": "test"}, replace=True)
    assert keys(s.rows()) == ["e"]


def test_delete(fcat):
    s = fcat.save_slice("to delete", where={"split": "train"})
    s.delete()
    with pytest.raises(NotFound, match="no slice named 'to delete'"):
        fcat.get_slice("to delete")
    with pytest.raises(NotFound):
        fcat.delete_slice("to delete")
    assert fcat.get_slices() == []
    assert fcat.count_datarows() == 5   # rows untouched


def test_get_slice_by_id(fcat):
    s = fcat.save_slice("by id", where={"split": "train"})
    assert fcat.get_slice(s.id).name == "by id"


def test_no_limit_on_the_number_of_slices(fcat):
    for i in range(120):
        fcat.save_slice(f"slice {i:03d}", where={"n": i})
    assert len(fcat.get_slices()) == 120


# -- validation ----------------------------------------------------------------------------------------
def test_validation_errors_write_nothing(vcat, tmp_path):
    cat, emb, _ = vcat
    cat.import_datarows([write_records(tmp_path / "novec.ndjson", {"novec": {}})])
    before = snapshot(cat)
    cases = [
        (dict(embedding="nope", anchors=["k000"]), NotFound, "nope"),
        (dict(embedding=emb.name, anchors=["missing-row"]), NotFound, "missing-row"),
        (dict(embedding=emb.name, anchors=["novec"]), CatalogError, "no vector"),
        (dict(embedding=emb.name), CatalogError, "needs at least one anchor"),
        (dict(anchors=["k000"]), CatalogError, "anchors need an embedding"),
        (dict(embedding=emb.name, anchors=["k000"], min_score=0.9, max_score=0.5), CatalogError, "min score"),
        (dict(embedding=emb.name, anchors=["k000"], min_score=1.5), CatalogError, "outside [0, 1]"),
        (dict(embedding=emb.name, anchors=["k000"], aggregate="median"), CatalogError, "aggregate 'median'"),
        (dict(embedding=emb.name, anchors=["k000"], order="up"), CatalogError, "order 'up'"),
        (dict(embedding=emb.name, anchors=["k000"], where={"i": {"$bad": 1}}), CatalogError, "unknown filter operator"),
        (dict(where={"i": {"$in": 3}}), CatalogError, "$in on 'i' needs a list"),
        (dict(where="[1]"), CatalogError, "must be a JSON object"),
        (dict(embedding=emb.name, anchors=[[1.0, 2.0]]), CatalogError, "has 2 values"),
    ]
    for kwargs, exc_type, message in cases:
        with pytest.raises(exc_type) as exc:
            cat.save_slice("bad slice", **kwargs)
        assert message in str(exc.value), (kwargs, str(exc.value))
        assert "\n" not in str(exc.value)
    assert snapshot(cat) == before


def test_slice_whose_anchor_lost_its_vector_reports_it(vcat):
    cat, emb, _ = vcat
    s = cat.save_slice("around k000", embedding=emb.name, anchors=["k000"], min_score=0.0)
    with cat.store.transaction() as con:
        con.execute("DELETE FROM vectors WHERE row_id = ?", [cat.get_datarow("k000")["id"]])
        con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ?", [emb.id])
    cat.embeddings.vectors_changed(emb.id)
    with pytest.raises(CatalogError, match="no vector"):
        s.rows()


# -- similarity slices (run through Catalog.search) ---------------------------------------------------
SEARCHES = [
    dict(anchors=["k000"], min_score=0.5),
    dict(anchors=["k000", "k003", "k007"], min_score=0.6, max_score=0.95, aggregate="max"),
    dict(anchors=["k001", "k002"], negative_anchors=["k005"], min_score=0.3, order="asc"),
    dict(anchors=["k000"], min_score=0.4, where={"group": "g1", "i": {"$gte": 10}}),
    dict(anchors=["k004"], min_score=0.0, include_anchors=True),
]


@pytest.mark.parametrize("params", SEARCHES)
def test_similarity_slice_equals_the_search_it_saved(vcat, params):
    cat, emb, _ = vcat
    s = cat.save_slice("saved search", embedding=emb.name, **params)
    assert s.query["embedding"] == emb.id
    expected = cat.search(emb.name, limit=None, **params)
    got = s.rows(limit=None)
    assert got.total == expected.total > 0
    assert got.to_dict() == expected.to_dict()
    assert s.rows(limit=5, offset=3).to_dict() == cat.search(emb.name, limit=5, offset=3, **params).to_dict()
    assert s.row_ids() == list(cat.search_row_ids(emb.name, **params))
    assert all(h.score is not None and params.get("min_score", 0.85) <= h.score <= params.get("max_score", 1.0)
               for h in got.results)


def test_anchors_given_by_global_key_are_stored_as_ids(vcat):
    cat, emb, _ = vcat
    s = cat.save_slice("by key", embedding=emb.id, anchors=["k000"], negative_anchors=["k001"], min_score=0.2)
    assert s.query["anchors"] == [cat.get_datarow("k000")["id"]]
    assert s.query["negative_anchors"] == [cat.get_datarow("k001")["id"]]


def test_raw_vector_anchor_is_stored_and_reused(vcat):
    cat, emb, vecs = vcat
    q = np.asarray(vecs[3] + vecs[9], dtype=np.float32)
    s = cat.save_slice("vector anchor", embedding=emb.name, anchors=[q], min_score=0.5)
    assert isinstance(s.query["anchors"][0], list) and len(s.query["anchors"][0]) == emb.dims
    assert cat.get_slice("vector anchor").rows(limit=None).to_dict() == \
        cat.search(emb.name, anchors=[q], min_score=0.5, limit=None).to_dict()


def test_similarity_slice_is_dynamic(vcat, tmp_path):
    cat, emb, vecs = vcat
    s = cat.save_slice("near k000", embedding=emb.name, anchors=["k000"], min_score=0.9)
    before = set(keys(s.rows(limit=None)))
    assert "late-twin" not in before
    cat.import_datarows([write_records(tmp_path / "late.ndjson", {"late-twin": {"group": "g1"},
                                                                  "late-other": {"group": "g1"}})])
    path = tmp_path / "late-vectors.ndjson"
    with open(path, "w") as fh:
        fh.write(json.dumps({"id": "late-twin", "vector": (vecs[0] * 1.01).tolist()}) + "\n")
        fh.write(json.dumps({"id": "late-other", "vector": (-vecs[0]).tolist()}) + "\n")
    emb.import_vectors_from_file(path)
    after = cat.get_slice("near k000").rows(limit=None)
    assert set(keys(after)) == before | {"late-twin"}
    assert after.results[0].global_key == "late-twin" and after.results[0].score > 0.99


# -- export ----------------------------------------------------------------------------------------------
def _export(cat, name, fmt):
    buf = io.StringIO()
    n = cat.export_slice(name, buf, fmt)
    return n, buf.getvalue()


def test_export_matches_show_for_a_similarity_slice(vcat):
    cat, emb, _ = vcat
    s = cat.save_slice("export me", embedding=emb.name, anchors=["k000"], min_score=0.4, where={"group": "g2"})
    with cat.store.transaction() as con:
        con.execute("INSERT INTO labels (row_id, label, source, score) VALUES (?, 'odd', 'similarity', 0.6)",
                    [cat.get_datarow("k001")["id"]])
    shown = s.rows(limit=None).to_dict()["results"]
    n, text = _export(cat, "export me", "ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    assert n == len(lines) == len(shown) > 0
    assert [{k: r[k] for k in ("id", "global_key", "score")} for r in lines] == shown
    by_key = {r["global_key"]: r for r in lines}
    assert all(r["metadata"]["group"] == "g2" for r in lines)
    if "k001" in by_key:
        assert by_key["k001"]["labels"] == [{"label": "odd", "source": "similarity", "score": 0.6, "reviewed": False}]
    n_csv, text_csv = _export(cat, "export me", "csv")
    import csv

    rows = list(csv.DictReader(io.StringIO(text_csv)))
    assert n_csv == n and [r["id"] for r in rows] == [h["id"] for h in shown]
    assert [float(r["score"]) for r in rows] == [h["score"] for h in shown]
    assert json.loads(rows[0]["metadata"]) == lines[0]["metadata"]


def test_export_of_a_filter_slice_has_metadata_and_labels(fcat):
    fcat.save_slice("cats", where={"label": "cat"})
    n, text = _export(fcat, "cats", "ndjson")
    lines = [json.loads(x) for x in text.splitlines()]
    assert n == 2 and [r["global_key"] for r in lines] == ["a", "c"]
    assert lines[0]["score"] is None and lines[0]["metadata"]["cam"] == {"make": "Canon", "iso": 400}
    assert [lb["label"] for lb in lines[1]["labels"]] == ["bird", "cat"]
    with pytest.raises(CatalogError, match="format 'xml'"):
        _export(fcat, "cats", "xml")
