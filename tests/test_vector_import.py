"""NDJSON and array vector import: validation, all-or-nothing writes, replacement, gzip."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from catalog import CatalogError, ValidationError
from catalog.store import one
from catalog.vectors import splitting
from catalog.vectors.writing import Scratch

D = 8


@pytest.fixture
def rows(cat, text_records):
    cat.import_datarows([text_records])
    return {r["global_key"]: r["id"] for r in cat.list_datarows(limit=100)}


@pytest.fixture
def emb(cat, rows):
    return cat.create_embedding("custom-8", D)


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def vec_line(key, vec):
    return json.dumps({"id": key, "vector": [float(x) for x in vec]})


def stored(cat, emb):
    with cat.store.connect() as con:
        rows = con.execute(
            "SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
            "WHERE v.embedding_id = ? ORDER BY d.global_key", [emb.id]).fetchall()
    return {k: np.array(v, dtype=np.float32) for k, v in rows}


def test_import_by_global_key_and_id_with_blank_lines_and_trailing_commas(cat, rows, emb, tmp_path):
    rng = np.random.default_rng(1)
    vecs = {k: rng.standard_normal(D) for k in rows}
    keys = sorted(rows)
    lines = [vec_line(keys[0], vecs[keys[0]]) + ",", "", vec_line(rows[keys[1]], vecs[keys[1]]), "   "]
    lines += [vec_line(k, vecs[k]) + " , " for k in keys[2:]]
    n = emb.import_vectors_from_file(write(tmp_path / "v.ndjson", lines))
    assert n == len(keys)
    assert emb.get_imported_vector_count() == len(keys)
    got = stored(cat, emb)
    for k in keys:
        np.testing.assert_allclose(got[k], vecs[k].astype(np.float32), rtol=1e-6)


def test_gzip_file_is_accepted(cat, rows, emb, tmp_path):
    path = tmp_path / "v.ndjson.gz"
    with gzip.open(path, "wt") as fh:
        for i, k in enumerate(rows):
            fh.write(vec_line(k, np.arange(D) + i + 1) + "\n")
    assert emb.import_vectors_from_file(path) == len(rows)


def test_reimport_replaces_vectors_and_keeps_others(cat, rows, emb, tmp_path):
    keys = sorted(rows)
    emb.import_vectors(keys, np.ones((len(keys), D)))
    emb.import_vectors([keys[0]], np.full((1, D), 2.0) * np.arange(1, D + 1))
    got = stored(cat, emb)
    assert len(got) == len(keys)
    np.testing.assert_allclose(got[keys[0]], 2.0 * np.arange(1, D + 1))
    np.testing.assert_allclose(got[keys[1]], np.ones(D))


def test_import_bumps_version_so_caches_rebuild(cat, rows, emb):
    before = cat.get_embedding(emb.id).version
    emb.import_vectors(list(rows)[:2], np.ones((2, D)))
    assert cat.get_embedding(emb.id).version == before + 1


BAD_LINES = [
    ("{not json", "malformed JSON"),
    ('{"vector": [1,2,3,4,5,6,7,8]}', "missing field 'id'"),
    ('{"id": "sports-0"}', "missing field 'vector'"),
    ('{"id": "sports-0", "vector": [1,2,3]}', "vector has 3 values, expected 8"),
    ('{"id": "sports-0", "vector": [1,2,3,4,5,6,7,"x"]}', "not a number"),
    ('{"id": "sports-0", "vector": [1,2,3,4,5,6,7,true]}', "not a number"),
    ('{"id": "sports-0", "vector": [1,2,3,4,5,6,7,NaN]}', "NaN or Infinity"),
    ('{"id": "sports-0", "vector": [1,2,3,4,5,6,7,Infinity]}', "NaN or Infinity"),
    ('{"id": "sports-0", "vector": [1,2,3,4,5,6,7,1e300]}', "does not fit in float32"),
    ('{"id": "sports-0", "vector": [0,0,0,0,0,0,0,0]}', "all zeros"),
    ('{"id": "no-such-row", "vector": [1,2,3,4,5,6,7,8]}', "matches no data row"),
    ('{"id": 17, "vector": [1,2,3,4,5,6,7,8]}', "must be a non-empty string"),
    ('[1, 2]', "expected a JSON object"),
    ('{"id": "sports-0", "vector": "1,2"}', "must be a list of numbers"),
]


@pytest.mark.parametrize("bad,reason", BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_bad_line_is_reported_with_its_number_and_nothing_is_written(cat, rows, emb, tmp_path, bad, reason):
    emb.import_vectors(["cooking-0"], np.ones((1, D)))
    version = cat.get_embedding(emb.id).version
    good = [vec_line(k, np.arange(1, D + 1)) for k in ("sports-1", "sports-2")]
    path = write(tmp_path / "bad.ndjson", [good[0], bad, good[1]])
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(path)
    assert info.value.total == 1
    assert info.value.errors[0][0] == 2
    assert reason in info.value.errors[0][1]
    assert "line 2: " in info.value.report()
    assert emb.get_imported_vector_count() == 1
    assert cat.get_embedding(emb.id).version == version
    np.testing.assert_allclose(stored(cat, emb)["cooking-0"], np.ones(D))


def test_duplicate_ids_in_one_file_are_rejected(cat, rows, emb, tmp_path):
    rid = rows["sports-0"]
    path = write(tmp_path / "dup.ndjson", [vec_line("sports-0", np.ones(D)), vec_line("sports-1", np.ones(D)),
                                           vec_line("sports-0", np.ones(D)), vec_line(rid, np.ones(D))])
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(path)
    msgs = dict(info.value.errors)
    assert "appears twice in the file (first on line 1)" in msgs[3]
    assert "same data row as line 1" in msgs[4]
    assert emb.get_imported_vector_count() == 0


def test_report_lists_first_20_then_a_count(cat, rows, emb, tmp_path):
    path = write(tmp_path / "many.ndjson", ["{oops"] * 45)
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(path)
    report = info.value.report()
    assert info.value.total == 45
    assert report.count("malformed JSON") == 20
    assert "and 25 more errors" in report


def test_empty_and_missing_files_are_errors(cat, rows, emb, tmp_path):
    with pytest.raises(CatalogError, match="has no vectors"):
        emb.import_vectors_from_file(write(tmp_path / "empty.ndjson", ["", "  "]))
    with pytest.raises(CatalogError, match="does not exist"):
        emb.import_vectors_from_file(tmp_path / "nope.ndjson")
    assert emb.get_imported_vector_count() == 0


def test_off_the_shelf_embeddings_do_not_take_imports(cat, rows, tmp_path):
    clip = cat.get_embedding("00000000-0000-0000-0000-000000000000")
    with pytest.raises(CatalogError, match="off-the-shelf"):
        clip.import_vectors_from_file(write(tmp_path / "v.ndjson", [vec_line("sports-0", np.ones(512))]))
    assert clip.get_imported_vector_count() == 0


def test_import_array_validation(cat, rows, emb):
    with pytest.raises(CatalogError, match="2 ids but 3 vectors"):
        emb.import_vectors(["sports-0", "sports-1"], np.ones((3, D)))
    with pytest.raises(CatalogError, match="embedding custom-8 has 8 dims"):
        emb.import_vectors(["sports-0"], np.ones((1, 9)))
    with pytest.raises(ValidationError) as info:
        emb.import_vectors(["sports-0", "sports-1", "nobody"], np.vstack([np.ones(D), np.zeros(D), np.ones(D)]))
    assert info.value.total == 2
    assert emb.get_imported_vector_count() == 0


def test_delete_removes_vectors(cat, rows, emb):
    emb.import_vectors(list(rows), np.ones((len(rows), D)))
    emb.delete()
    with cat.store.connect() as con:
        assert one(con, "SELECT count(*) FROM vectors")[0] == 0
    with pytest.raises(CatalogError, match="no embedding"):
        cat.get_embedding("custom-8")


def test_big_files_are_parsed_on_two_cores_with_the_same_results(cat, emb, tmp_path, monkeypatch):
    monkeypatch.setattr(splitting, "PARALLEL_MIN_BYTES", 0)
    keys = sorted(r["global_key"] for r in cat.list_datarows(limit=100))
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((len(keys), D))
    path = write(tmp_path / "v.ndjson", [vec_line(k, v) for k, v in zip(keys, vecs)])
    assert emb.import_vectors_from_file(path) == len(keys)
    got = stored(cat, emb)
    for k, v in zip(keys, vecs):
        np.testing.assert_allclose(got[k], v.astype(np.float32), rtol=1e-6)
    lines = [vec_line(k, v) for k, v in zip(keys, vecs)]
    lines[1] = "{broken"
    lines[-2] = vec_line("ghost", vecs[0])
    lines[-1] = vec_line(keys[-1], np.zeros(D))
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(write(tmp_path / "bad.ndjson", lines))
    assert [e[0] for e in info.value.errors] == [2, len(lines) - 1, len(lines)]
    assert "matches no data row" in info.value.errors[1][1] and "all zeros" in info.value.errors[2][1]


def test_unreadable_gzip_and_wrong_shapes_are_errors(cat, rows, emb, tmp_path):
    bad = tmp_path / "broken.ndjson.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip data")
    with pytest.raises(CatalogError, match="cannot read vector file"):
        emb.import_vectors_from_file(bad)
    with pytest.raises(CatalogError, match="must be a 2-D array"):
        emb.import_vectors(["sports-0"], np.ones(D))
    assert emb.get_imported_vector_count() == 0


def test_an_embedding_deleted_during_an_import_gets_nothing(cat, rows, emb, tmp_path):
    f = tmp_path / "v.ndjson"
    f.write_text("".join(json.dumps({"id": f"sports-{i}", "vector": [1.0] * D}) + "\n" for i in range(2)))
    deleted = []

    def progress(pos):  # called while the file is read, before anything is written
        if not deleted:
            deleted.append(cat.delete_embedding(emb.id))

    with pytest.raises(CatalogError, match="was deleted during the import; nothing was imported"):
        emb.import_vectors_from_file(f, progress=progress)
    assert deleted
    with cat.store.connect() as con:
        assert one(con, "SELECT count(*) FROM vectors")[0] == 0


def test_a_scratch_file_cut_short_is_an_error_and_nothing_is_written(cat, rows, emb, tmp_path, monkeypatch):
    """A scratch file shorter than what was parsed (the disk filled up) stops the import."""
    emb.import_vectors(["sports-0"], np.full((1, D), 3.0))
    f = write(tmp_path / "v.ndjson", [vec_line(f"sports-{i}", np.ones(D)) for i in range(3)])
    chunks = Scratch.chunks

    def cut_short(self, size=None):
        self.fh.flush()
        with open(self.fh.name, "r+b") as fh:
            fh.truncate(D * 4)
        return chunks(self, size)

    monkeypatch.setattr(Scratch, "chunks", cut_short)
    with pytest.raises(CatalogError, match="scratch file was truncated .disk full.*nothing was imported"):
        emb.import_vectors_from_file(f)
    after = stored(cat, emb)
    assert list(after) == ["sports-0"] and after["sports-0"].tolist() == [3.0] * D
