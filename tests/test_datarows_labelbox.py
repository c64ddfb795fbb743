"""Coming from Labelbox and Ximilar (#14): the SDK's data-row dicts, export lines, inline vectors,
metadata_fields, external_id and Labelbox-id aliases, inferred media types, .json record files."""

from __future__ import annotations

import gzip
import hashlib
import json

import duckdb
import numpy as np
import pytest

from catalog import Catalog, NotFound, ValidationError
from catalog.datarows import recordfiles
from catalog.store import SCHEMA_VERSION, migrate, schema_version

CUIDS = ["clq7n0p3k00a1071x8h2c4d5e", "clq7n0p3k00a2071xg6b1f9k3", "clq7n0p3k00a3071x2m5r8t0w"]
D = 8


def write_lines(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def stored_vectors(cat, emb):
    with cat.store.connect() as con:
        rows = con.execute("SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
                           "WHERE v.embedding_id = ? ORDER BY d.global_key", [emb.id]).fetchall()
    return {k: np.array(v, dtype=np.float32) for k, v in rows}


def nothing_written(cat):
    with cat.store.connect() as con:
        return (con.execute("SELECT count(*) FROM datarows").fetchone()[0] == 0
                and con.execute("SELECT count(*) FROM vectors").fetchone()[0] == 0
                and con.execute("SELECT count(*) FROM datarow_aliases").fetchone()[0] == 0)


def by_line(items, path):
    return {int(s.rsplit(":", 1)[1].split(" ")[0]): why for s, why in items if s.startswith(f"{path}:")}


def warnings_of(report, path):
    return [m for s, m in report.warnings if s == str(path)]


# -- 1. inline vectors ---------------------------------------------------------------------------------
def test_inline_vectors_of_the_sdk_create_data_rows_dicts_are_imported(cat, tmp_path):
    emb = cat.create_embedding("my_custom_embedding_8_dimensions", D)
    rng = np.random.default_rng(7)
    vecs = [rng.uniform(1.0, 2.0, D) for _ in range(3)]
    uploads = [  # the custom-embeddings notebook's create_data_rows payload (one by id, one by name)
        {"row_data": "https://storage.googleapis.com/labelbox-datasets/People_Clothing_Segmentation/jpeg_images/"
                     f"IMAGES/img_000{i}.jpeg",
         "global_key": f"TEST-ID-{i}",
         "embeddings": [{"embedding_id": emb.id if i != 2 else emb.name, "vector": list(vecs[i])}]}
        for i in range(3)
    ]
    path = write_lines(tmp_path / "uploads.ndjson", uploads)
    report = cat.import_datarows([path])
    assert report.created == 3 and not report.skipped
    assert report.vectors == {emb.name: 3}
    assert emb.get_imported_vector_count() == 3
    got = stored_vectors(cat, emb)
    for i in range(3):
        np.testing.assert_allclose(got[f"TEST-ID-{i}"], vecs[i].astype(np.float32), rtol=1e-6)
    assert cat.get_datarow("TEST-ID-0")["media_type"] == "image"  # inferred from the URL
    # the rows can be searched right away
    res = cat.search(emb.name, anchors=["TEST-ID-0"], min_score=0.0, limit=None)
    assert {h.global_key for h in res.results} == {"TEST-ID-1", "TEST-ID-2"}


def test_an_invalid_inline_vector_refuses_the_whole_import_with_file_and_line(cat, tmp_path, cli):
    emb = cat.create_embedding("custom-8", D)
    good = [1.0] * D
    path = write_lines(tmp_path / "rows.ndjson", [
        {"row_data": "first text", "global_key": "t1", "media_type": "TEXT",
         "embeddings": [{"embedding_id": emb.id, "vector": good}]},                              # 1: fine
        {"row_data": "t", "global_key": "t2", "media_type": "TEXT",
         "embeddings": [{"embedding_id": emb.id, "vector": [1.0, 2.0]}]},                        # 2
        {"row_data": "t", "global_key": "t3", "media_type": "TEXT",
         "embeddings": [{"embedding_id": emb.id, "vector": [0.0] * D}]},                         # 3
        {"row_data": "t", "global_key": "t4", "media_type": "TEXT",
         "embeddings": [{"embedding_id": "no-such-embedding", "vector": good}]},                 # 4
        {"row_data": "t", "global_key": "t5", "media_type": "TEXT",
         "embeddings": [{"embedding_id": "clip-vit-b-32", "vector": [1.0] * 512}]},              # 5
        {"row_data": "t", "global_key": "t6", "media_type": "TEXT",
         "embeddings": [{"embedding_id": emb.id, "vector": ["x"] + [1.0] * (D - 1)}]},          # 6
        {"row_data": "missing.png", "global_key": "t7",
         "embeddings": [{"embedding_id": emb.id, "vector": good}]},                              # 7: row skipped
        {"row_data": "again", "global_key": "t1", "media_type": "TEXT",
         "embeddings": [{"embedding_id": emb.id, "vector": good}]},                              # 8: t1 twice
        {"row_data": "no vectors", "global_key": "t9", "media_type": "TEXT"},                   # 9: fine
    ])
    with pytest.raises(ValidationError) as info:
        cat.import_datarows([path])
    err = info.value
    assert str(err) == ("7 inline vectors of the data-row records cannot be imported; nothing was imported "
                        "(no rows, no vectors)")
    reasons = {int(e.split(":")[1]): e for _, e in err.errors}
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8}
    assert all(e.startswith(f"{path}:") for e in reasons.values())
    assert "vector has 2 values, expected 8" in reasons[2]
    assert "all zeros" in reasons[3]
    assert "no embedding with id or name 'no-such-embedding'" in reasons[4]
    assert "clip-vit-b-32 is an off-the-shelf embedding" in reasons[5]
    assert "value 0 is not a number" in reasons[6]
    assert "not imported (image missing.png not found" in reasons[7] and "would be lost" in reasons[7]
    assert f"already has a vector for it at {path}:1" in reasons[8]
    assert nothing_written(cat)
    # the command line prints the same lines and writes nothing
    r = cli("datarows", "import", str(path))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{path}:2: embedding" in r.stderr and "nothing was imported" in r.stderr
    assert nothing_written(cat)


def test_an_exports_custom_vectors_import_and_precomputed_ones_are_reported(cat, tmp_path):
    emb = cat.create_embedding("my-embedding", D)
    vec = [0.5 + i for i in range(D)]
    line = {"data_row": {"id": CUIDS[0], "global_key": "dog.jpg", "row_data": "https://example.org/dog.jpg"},
            "embeddings": [
                {"id": "d9a3c5f0-0000-4000-8000-000000000001", "name": "Image Embedding V2 (CLIP ViT-B/32)",
                 "dimensions": 512, "is_custom": False, "values": [{"value": [0.1] * 512}]},
                # Labelbox's embedding id is unknown here: the name finds the embedding
                {"id": "c0ffee00-0000-4000-8000-00000000abcd", "name": "my-embedding", "dimensions": D,
                 "is_custom": True, "values": [{"value": vec}]}]}
    path = write_lines(tmp_path / "export.ndjson", [line])
    report = cat.import_datarows([path])
    assert report.vectors == {"my-embedding": 1}
    np.testing.assert_allclose(stored_vectors(cat, emb)["dog.jpg"], np.array(vec, np.float32), rtol=1e-6)
    assert warnings_of(report, path) == [
        "vectors of Labelbox's precomputed embedding 'Image Embedding V2 (CLIP ViT-B/32)' not imported "
        "(off-the-shelf vectors are computed here with their model; line 1)"]


# -- 2. metadata_fields --------------------------------------------------------------------------------
def test_metadata_fields_are_kept_and_schema_id_only_items_are_reported(cat, tmp_path):
    path = write_lines(tmp_path / "rows.ndjson", [
        {"row_data": "https://example.org/a.jpg", "global_key": "a",
         "metadata_fields": [{"name": "tag", "value": "x1"}, {"name": "camera", "value": "c"},
                             {"name": "tag", "value": "x2"}],
         "metadata": {"camera": "override"}},
        {"row_data": "https://example.org/b.jpg", "global_key": "b",
         "metadata_fields": [{"schema_id": "cko8s9r5v0001h2dk9elqdidh", "value": "kept"}]},
        {"row_data": "https://example.org/c.jpg", "global_key": "c",
         "metadata_fields": [{"schema_id": "cko8s9r5v0001h2dk9elqdidh", "value": "also"}]},
        {"row_data": "https://example.org/d.jpg", "global_key": "d", "metadata_fields": [{"value": "nameless"}]},
    ])
    report = cat.import_datarows([path])
    assert cat.get_datarow("a")["metadata"] == {"tag": ["x1", "x2"], "camera": "override"}
    assert cat.get_datarow("b")["metadata"] == {"cko8s9r5v0001h2dk9elqdidh": "kept"}
    assert warnings_of(report, path) == [
        "metadata_fields item with only schema_id 'cko8s9r5v0001h2dk9elqdidh' (no name): kept as metadata key "
        "'cko8s9r5v0001h2dk9elqdidh' (lines 2, 3)"]
    assert by_line(report.skipped, path) == {4: "\"metadata_fields\" item 1 needs a \"name\" (or a \"schema_id\")"}
    assert sorted(r["global_key"] for r in cat.list_datarows()) == ["a", "b", "c"]


# -- 3. unknown keys, external_id ------------------------------------------------------------------------
def test_unknown_keys_are_reported_once_per_file_and_external_id_is_kept(cat, tmp_path, cli):
    records = [{"row_data": f"https://example.org/{i}.jpg", "global_key": f"k{i}", "external_id": f"ext-{i}",
                "golbal_key": "typo"} for i in range(8)]
    records[3]["colour"] = "red"
    path = write_lines(tmp_path / "rows.ndjson", records)
    report = cat.import_datarows([path])
    assert report.created == 8
    assert warnings_of(report, path) == ["unknown key 'golbal_key' ignored (lines 1, 2, 3, 4, 5 and 3 more)",
                                         "unknown key 'colour' ignored (line 4)"]
    assert cat.get_datarow("k2")["metadata"] == {"external_id": "ext-2"}
    # an NDJSON vector file keyed by external_id imports
    emb = cat.create_embedding("e8", D)
    vec_file = tmp_path / "v.ndjson"
    vec_file.write_text("\n".join(json.dumps({"id": f"ext-{i}", "vector": [1.0 + i] * (D - 1) + [2.0]})
                                  for i in range(8)) + "\n")
    assert emb.import_vectors_from_file(vec_file) == 8
    assert set(stored_vectors(cat, emb)) == {f"k{i}" for i in range(8)}
    r = cli("datarows", "import", str(path))
    assert r.returncode == 0
    assert f"warning {path}: unknown key 'golbal_key' ignored (lines 1, 2, 3, 4, 5 and 3 more)" in r.stderr


# -- 4. Labelbox ids as aliases ----------------------------------------------------------------------------
@pytest.fixture
def labelbox_rows(cat, tmp_path):
    path = write_lines(tmp_path / "rows.ndjson", [
        {"id": CUIDS[i], "row_data": f"Labelbox text {i}", "global_key": f"g{i}", "media_type": "TEXT",
         "external_id": "shared" if i else "solo"} for i in range(3)])
    report = cat.import_datarows([path])
    assert report.created == 3
    return report


def test_labelbox_ids_resolve_in_vector_import_labels_and_anchors(cat, tmp_path, labelbox_rows):
    emb = cat.create_embedding("lb", D)
    rng = np.random.default_rng(3)
    vecs = {c: rng.standard_normal(D) for c in CUIDS}
    vec_file = tmp_path / "vectors.ndjson"  # the SDK test's file: {"id": dr.uid, "vector": ...}
    vec_file.write_text("".join(json.dumps({"id": c, "vector": list(v)}) + "\n" for c, v in vecs.items()))
    assert emb.import_vectors_from_file(vec_file) == 3
    got = stored_vectors(cat, emb)
    for i, c in enumerate(CUIDS):
        np.testing.assert_allclose(got[f"g{i}"], vecs[c].astype(np.float32), rtol=1e-6)
    assert cat.get_datarow(CUIDS[1])["global_key"] == "g1"
    cat.set_labels(CUIDS[2], ["cat"])
    assert [lab["label"] for lab in cat.get_labels(["g2"])[cat.get_datarow("g2")["id"]]] == ["cat"]
    res = cat.search(emb.name, anchors=[CUIDS[0]], min_score=0.0, limit=None)
    assert {h.global_key for h in res.results} == {"g1", "g2"}
    # the external_id of one row resolves; one shared by two rows is ambiguous, everywhere
    assert cat.get_datarow("solo")["global_key"] == "g0"
    with pytest.raises(NotFound, match=r"data row reference 'shared' is ambiguous: it is the external_id of 2 "
                                       r"data rows; name the row by its global_key or id"):
        cat.set_labels("shared", ["x"])
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"id": "shared", "vector": [1.0] * D}) + "\n")
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(bad)
    assert info.value.errors == [(1, "id 'shared' is ambiguous: it is the external_id of 2 data rows "
                                     "(give a global_key or id)")]
    assert any("1 external_id names more than one data row ('shared'); references by it are ambiguous" in m for _, m in labelbox_rows.warnings)


def test_alias_precedence_global_key_then_labelbox_id_then_external_id_then_uuid(cat, tmp_path):
    first = write_lines(tmp_path / "a.ndjson", [
        {"id": "clq-one", "row_data": "one", "global_key": "g-one", "media_type": "TEXT", "external_id": "g-two"},
        {"id": "g-one", "row_data": "two", "global_key": "g-two", "media_type": "TEXT", "external_id": "clq-one"},
    ])
    cat.import_datarows([first])
    one_id, two_id = cat.get_datarow("g-one")["id"], cat.get_datarow("g-two")["id"]
    assert cat.refs.lookup(["g-one", "g-two", "clq-one", one_id]) == {
        "g-one": one_id,      # a global_key beats another row's Labelbox id
        "g-two": two_id,      # ... and another row's external_id
        "clq-one": one_id,    # a Labelbox id beats another row's external_id
        one_id: one_id}
    # a re-import that gives a new Labelbox id replaces the old alias; one without keeps it
    again = write_lines(tmp_path / "b.ndjson", [
        {"id": "clq-new", "row_data": "one", "global_key": "g-one", "media_type": "TEXT"},
        {"row_data": "two", "global_key": "g-two", "media_type": "TEXT"}])
    cat.import_datarows([again])
    assert cat.refs.lookup(["clq-new", "clq-one", "g-one"]) == {"clq-new": one_id, "clq-one": two_id,
                                                               "g-one": one_id}


def test_a_v5_catalog_file_migrates_to_v6_and_keeps_its_rows(db_path, tmp_path):
    con = duckdb.connect(str(db_path))
    migrate(con, upto=5)
    con.execute("INSERT INTO datarows (id, global_key, media_type, row_data) "
                "VALUES ('9b2e8f6c-1d52-4c1e-9a39-5e0f6f0e8a11', 'old-row', 'text', 'kept')")
    assert con.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name = 'datarow_aliases'").fetchone()[0] == 0
    con.close()
    cat = Catalog(db_path)
    assert SCHEMA_VERSION >= 6
    with cat.store.connect() as c:
        assert schema_version(c) == SCHEMA_VERSION
        assert c.execute("SELECT count(*) FROM datarow_aliases").fetchone()[0] == 0
    assert cat.get_datarow("old-row")["row_data"] == "kept"
    path = write_lines(tmp_path / "r.ndjson", [{"id": CUIDS[0], "row_data": "kept", "global_key": "old-row",
                                                "media_type": "TEXT"}])
    assert cat.import_datarows([path]).updated == 1
    assert cat.get_datarow(CUIDS[0])["id"] == "9b2e8f6c-1d52-4c1e-9a39-5e0f6f0e8a11"


# -- 5. Labelbox export lines --------------------------------------------------------------------------------
def test_labelbox_export_lines_import_as_they_are(cat, tmp_path):
    line = {  # an export_v2 / export() result line, as the SDK's stream handler yields it
        "data_row": {"id": CUIDS[0], "global_key": "People/img_0001.jpeg",
                     "row_data": "https://storage.googleapis.com/labelbox-datasets/img_0001.jpeg",
                     "external_id": "img_0001.jpeg",
                     "details": {"dataset_id": "clq7dataset0000071x1a2b3c4", "dataset_name": "people",
                                 "created_at": "2024-01-02T03:04:05.000+00:00", "created_by": "me@example.org"}},
        "media_attributes": {"asset_type": "image", "mime_type": "image/jpeg", "width": 640, "height": 480},
        "attachments": [{"type": "RAW_TEXT", "value": "a note", "name": "note"}],
        "metadata_fields": [
            {"schema_id": "cko8s9r5v0001h2dk9elqdidh", "schema_name": "tag", "value": "summer"},
            {"schema_id": "cko8sbczn0002h2dkdaxb5kal", "schema_name": "split",
             "value": {"schema_id": "cko8sbscr0003h2dk04w86hof", "schema_name": "train"}}],
        "projects": {"clq7project000071xabcdefgh": {"name": "p", "labels": []}},
    }
    text_line = {"data_row": {"id": CUIDS[1], "global_key": None, "row_data": "A sentence to label.",
                              "details": {"dataset_id": "x"}},
                 "media_attributes": {"mime_type": "text/plain"}, "metadata_fields": [], "attachments": []}
    path = write_lines(tmp_path / "export.ndjson", [line, text_line])
    report = cat.import_datarows([path])
    assert report.created == 2 and not report.skipped
    row = cat.get_datarow(CUIDS[0])
    assert row["global_key"] == "People/img_0001.jpeg" and row["media_type"] == "image"
    assert row["metadata"] == {"tag": "summer", "split": "train", "external_id": "img_0001.jpeg",
                               "attachments": [{"type": "RAW_TEXT", "value": "a note", "name": "note"}]}
    text = cat.get_datarow(CUIDS[1])
    assert text["media_type"] == "text" and text["row_data"] == "A sentence to label."
    assert text["global_key"] == "text-" + hashlib.sha256(b"A sentence to label.").hexdigest()[:32]
    assert report.inferred == {"image": 1, "text": 1} and report.generated_keys == 1
    assert sorted(warnings_of(report, path)) == [
        "'data_row.details' not imported (Labelbox bookkeeping; lines 1, 2)",
        "'media_attributes' not imported (Labelbox bookkeeping; lines 1, 2)",
        "'projects' not imported (Labelbox bookkeeping; line 1)"]


# -- 6. media_type inference and generated keys ----------------------------------------------------------------
def test_media_type_is_inferred_and_said_in_the_summary(cat, tmp_path, image_folder, cli):
    path = write_lines(tmp_path / "rows.ndjson", [
        {"row_data": "https://example.org/photo?id=3", "global_key": "url"},
        {"row_data": "imgs/red/r0.png", "global_key": "path"},
        {"row_data": "imgs/red/r1.png"},                        # a local file: IMAGE, key = its path
        {"row_data": "The quick brown fox.", "global_key": "txt"},
        {"row_data": "No key either."},
        {"row_data": "explicit text.png", "media_type": "TEXT", "global_key": "explicit"},
    ])
    report = cat.import_datarows([path])
    assert not report.skipped and report.created == 6
    media = {r["global_key"]: r["media_type"] for r in cat.list_datarows()}
    generated = "text-" + hashlib.sha256(b"No key either.").hexdigest()[:32]
    assert media == {"url": "image", "path": "image", "imgs/red/r1.png": "image", "txt": "text",
                     generated: "text", "explicit": "text"}
    assert report.inferred == {"image": 3, "text": 2} and report.generated_keys == 1
    # the same text gets the same key again: an update, not a second row
    assert cat.import_datarows([write_lines(tmp_path / "again.ndjson", [{"row_data": "No key either."}])]).updated == 1
    r = cli("datarows", "import", str(path))
    assert r.returncode == 0
    assert "media_type inferred for records without one: 3 image, 2 text" in r.stdout
    assert "global_key generated for 1 text rows without one" in r.stdout


# -- 8. .json record files (Ximilar) ---------------------------------------------------------------------------
def test_json_files_hold_json_lines_or_one_array(cat, tmp_path):
    lines = tmp_path / "real_estate.json"  # Ximilar's example: JSON lines
    write_lines(lines, [{"_id": "house-1", "_url": "https://example.org/h1.jpg", "price": 120000, "rooms": 3},
                        {"_id": "house-2", "_url": "https://example.org/h2.jpg", "price": 95000, "rooms": 2}])
    array = tmp_path / "records.json"  # what json.dump(records) writes, pretty-printed
    array.write_text(json.dumps([
        {"_id": "flat-1", "_url": "https://example.org/f1.jpg", "city": "Brno"},
        {"row_data": "a text", "global_key": "t", "media_type": "TEXT"},
        {"_id": 5, "_url": "https://example.org/bad.jpg"},
    ], indent=2))
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ] ")
    report = cat.import_datarows([lines, array, empty])
    assert report.created == 4
    assert cat.get_datarow("house-2")["metadata"] == {"price": 95000, "rooms": 2}
    assert cat.get_datarow("flat-1")["metadata"] == {"city": "Brno"}
    # a record of an array is reported by the line it starts on
    assert by_line(report.skipped, array) == {12: '"_id" must be a non-empty string, not a number (5)'}


def test_a_broken_or_too_big_json_array_is_refused_as_a_whole(cat, tmp_path, monkeypatch):
    broken = tmp_path / "broken.json"
    broken.write_text('[\n {"_id": "a", "_url": "https://example.org/a.jpg"},\n {"_id": "b", \n]')
    report = cat.import_datarows([broken])
    assert report.skipped == [(str(broken), "malformed JSON array at line 4 (Expecting property name enclosed in "
                                            "double quotes); none of its records were imported")]
    assert cat.count_datarows() == 0
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"_id": f"r{i}", "_url": f"https://example.org/{i}.jpg"} for i in range(50)]))
    monkeypatch.setattr(recordfiles, "MAX_ARRAY_BYTES", 1024)
    report = cat.import_datarows([big])
    assert len(report.skipped) == 1 and report.skipped[0][0] == str(big)
    assert "a JSON array file may be at most 0 MiB" in report.skipped[0][1]
    assert "write it as JSON lines" in report.skipped[0][1]
    assert cat.count_datarows() == 0


def test_records_without_vectors_keep_the_skip_rule_and_a_damaged_file_with_vectors_refuses(cat, tmp_path):
    emb = cat.create_embedding("e8", D)
    path = write_lines(tmp_path / "rows.ndjson", [
        {"row_data": "kept", "global_key": "a", "embeddings": [{"embedding_id": "e8", "vector": [1.0] * D}]},
        {"row_data": "missing.png", "global_key": "b"},  # no vectors: skipped and listed, the rest imports
    ])
    report = cat.import_datarows([path])
    assert report.created == 1 and report.vectors == {"e8": 1}
    assert by_line(report.skipped, path) == {2: "image missing.png not found (paths resolve relative to the record file)"}
    # a .gz record file that breaks after a record with inline vectors: nothing at all is written
    raw = gzip.compress(("\n".join(json.dumps({"row_data": f"t{i}", "global_key": f"z{i}",
                                               "embeddings": [{"embedding_id": "e8", "vector": [1.0 + i] * D}]})
                                   for i in range(200)) + "\n").encode())
    damaged = tmp_path / "rows.ndjson.gz"
    damaged.write_bytes(raw[: len(raw) - 40])
    with pytest.raises(ValidationError) as info:
        cat.import_datarows([damaged, write_lines(tmp_path / "more.ndjson", [{"row_data": "x", "global_key": "x"}])])
    [(line, reason)] = info.value.errors
    assert line is None and reason.startswith(f"{damaged}: the file is not imported (damaged gzip file (")
    assert reason.endswith("), so the inline vectors of its records would be lost")
    assert cat.count_datarows() == 1 and emb.get_imported_vector_count() == 1


def test_the_json_summary_of_the_command_line(cli, tmp_path):
    path = write_lines(tmp_path / "rows.ndjson", [{"row_data": "hello"}, {"row_data": "https://example.org/x"}])
    r = cli("datarows", "import", str(path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inferred_media_types"] == {"image": 1, "text": 1}
    assert out["generated_global_keys"] == 1 and out["vectors"] == {}
