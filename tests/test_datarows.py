"""Data-row import from files, folders, archives and record files; listing and export."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile

import pytest
from PIL import Image

from catalog import CatalogError


def keys(cat):
    return sorted(r["global_key"] for r in cat.list_datarows(limit=1000))


def test_folder_import_uses_paths_relative_to_the_folder(cat, image_folder):
    report = cat.import_datarows([image_folder])
    assert report.created == 6 and report.updated == 0 and not report.skipped
    assert keys(cat) == ["blue/b0.png", "blue/b1.png", "blue/b2.png", "red/r0.png", "red/r1.png", "red/r2.png"]
    row = cat.get_datarow("red/r1.png")
    assert row["media_type"] == "image"
    assert row["row_data"] == str((image_folder / "red" / "r1.png").absolute())


def test_single_file_key_is_its_name(cat, image_folder):
    cat.import_datarows([image_folder / "red" / "r0.png"])
    assert keys(cat) == ["r0.png"]


def test_reimport_updates_instead_of_duplicating(cat, image_folder):
    cat.import_datarows([image_folder])
    first = cat.get_datarow("red/r0.png")["id"]
    report = cat.import_datarows([image_folder])
    assert report.created == 0 and report.updated == 6
    assert cat.count_datarows() == 6
    assert cat.get_datarow("red/r0.png")["id"] == first


def test_corrupt_truncated_unsupported_and_bomb_images_are_listed_and_skipped(cat, image_folder):
    (image_folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good, format="PNG")
    (image_folder / "half.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (image_folder / "notes.txt").write_text("hello")
    Image.new("1", (20000, 20000)).save(image_folder / "bomb.png")
    report = cat.import_datarows([image_folder])
    reasons = {src.split("/")[-1]: why for src, why in report.skipped}
    assert set(reasons) == {"junk.png", "half.png", "notes.txt", "bomb.png"}
    assert "truncated" in reasons["half.png"]
    assert "not an image" in reasons["notes.txt"]
    assert "pixel" in reasons["bomb.png"] or "decompression bomb" in reasons["bomb.png"]
    assert report.created == 6 and cat.count_datarows() == 6


def test_zip_archive_keys_are_member_paths_and_files_are_extracted(cat, tmp_path, image_folder):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(image_folder / "red" / "r0.png", "a/b.png")
        zf.writestr("a/readme.md", "not an image")
        zf.writestr("../evil.png", b"x")
    report = cat.import_datarows([archive])
    assert keys(cat) == ["a/b.png"]
    row = cat.get_datarow("a/b.png")
    with Image.open(row["row_data"]) as img:
        assert img.size == (32, 32)
    assert any("readme.md" in s for s, _ in report.skipped)


def test_record_styles(cat, tmp_path, image_folder):
    img = image_folder / "red" / "r0.png"
    b64 = base64.b64encode(img.read_bytes()).decode()
    recs = [
        {"global_key": "img-1", "image": "imgs/red/r1.png", "metadata": {"split": "train"}},
        {"global_key": "txt-1", "text": "a short text", "metadata": {"topic": "misc"}},
        {"global_key": "lb-1", "row_data": "imgs/blue/b0.png", "media_type": "IMAGE",
         "metadata_fields": [], "metadata": [{"name": "camera", "value": "x1"}]},
        {"global_key": "lb-2", "row_data": "Labelbox text row", "media_type": "TEXT"},
        {"_id": "xi-1", "_file": "imgs/blue/b1.png", "product": "p7", "price": 3.5},
        {"_id": "xi-2", "_url": "https://example.org/cat.jpg", "tags": ["a", "b"]},
        {"_id": "xi-3", "_base64": b64},
    ]
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    report = cat.import_datarows([path])
    assert not report.skipped, report.skipped
    assert report.created == 7
    assert cat.get_datarow("img-1")["row_data"] == str((image_folder / "red" / "r1.png").absolute())
    assert cat.get_datarow("img-1")["metadata"] == {"split": "train"}
    assert cat.get_datarow("txt-1")["media_type"] == "text"
    assert cat.get_datarow("lb-1")["metadata"] == {"camera": "x1"}
    assert cat.get_datarow("lb-2")["row_data"] == "Labelbox text row"
    assert cat.get_datarow("xi-1")["metadata"] == {"product": "p7", "price": 3.5}
    assert cat.get_datarow("xi-2")["row_data"] == "https://example.org/cat.jpg"
    assert cat.get_datarow("xi-2")["metadata"] == {"tags": ["a", "b"]}
    with Image.open(cat.get_datarow("xi-3")["row_data"]) as im:
        assert im.size == (32, 32)


def test_bad_records_are_listed_with_line_numbers(cat, tmp_path):
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join([
        json.dumps({"global_key": "ok", "text": "fine"}),
        "{broken",
        json.dumps({"global_key": "x", "image": "missing.png"}),
        json.dumps({"text": "no key"}),
        json.dumps({"global_key": "y"}),
        json.dumps({"_id": "z", "_base64": "!!!"}),
    ]) + "\n")
    report = cat.import_datarows([path])
    lines = {s.split(":")[-1].split(" ")[0]: why for s, why in report.skipped}
    assert set(lines) == {"2", "3", "5", "6"}
    assert "malformed JSON" in lines["2"]
    assert "not found" in lines["3"]
    assert "base64" in lines["6"]
    # a text record without a global_key gets a generated one (the SHA-256 of its text)
    assert report.generated_keys == 1
    assert keys(cat) == sorted(["ok", "text-" + hashlib.sha256(b"no key").hexdigest()[:32]])


def test_metadata_file_merges_by_global_key(cat, image_folder, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("global_key,color,size,ok\nred/r0.png,red,3,true\nnobody.png,x,1,false\n")
    report = cat.import_datarows([image_folder], metadata_file=meta)
    assert cat.get_datarow("red/r0.png")["metadata"] == {"color": "red", "size": 3, "ok": True}
    assert any("nobody.png" in s for s, _ in report.skipped)
    nd = tmp_path / "meta.ndjson"
    nd.write_text(json.dumps({"global_key": "red/r0.png", "metadata": {"size": 4, "extra": {"a": 1}}}) + "\n")
    cat.import_datarows([], metadata_file=nd)
    assert cat.get_datarow("red/r0.png")["metadata"] == {"color": "red", "size": 4, "ok": True, "extra": {"a": 1}}


def test_metadata_file_errors(cat, image_folder, tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("key,color\nred/r0.png,red\n")
    with pytest.raises(CatalogError, match="global_key column"):
        cat.import_datarows([image_folder], metadata_file=bad)
    assert cat.count_datarows() == 0
    with pytest.raises(CatalogError, match="does not exist"):
        cat.import_datarows([image_folder], metadata_file=tmp_path / "none.csv")
    assert cat.count_datarows() == 0


def test_list_paging_and_export(cat, image_folder, text_records):
    cat.import_datarows([image_folder, text_records])
    assert cat.count_datarows() == 14
    page1 = cat.list_datarows(limit=5)
    page2 = cat.list_datarows(limit=5, offset=5)
    assert len(page1) == 5 and len(page2) == 5
    assert not {r["id"] for r in page1} & {r["id"] for r in page2}
    out = io.StringIO()
    assert cat.export_datarows(out, fmt="csv") == 14
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0].keys() == {"id", "global_key", "media_type", "row_data", "metadata"}
    by_key = {r["global_key"]: r for r in rows}
    assert json.loads(by_key["sports-1"]["metadata"]) == {"topic": "sports", "n": 1}
    out = io.StringIO()
    cat.export_datarows(out, fmt="ndjson")
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["global_key"] for r in recs} == set(by_key)
    with pytest.raises(CatalogError, match="not supported"):
        cat.export_datarows(io.StringIO(), fmt="xml")


def test_unknown_rows_are_named(cat, text_records):
    cat.import_datarows([text_records])
    with pytest.raises(CatalogError, match="'nope'"):
        cat.get_datarows(["sports-0", "nope"])


def test_bad_archives_unsupported_files_and_bad_records_are_listed(cat, tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK not a zip")
    (tmp_path / "notes.docx").write_bytes(b"x")
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join([
        json.dumps({"_id": "x1", "color": "red"}),
        json.dumps({"global_key": "lb", "row_data": "hello", "media_type": "VIDEO"}),
        json.dumps({"global_key": "m", "text": "hi", "metadata": "not an object"}),
    ]) + "\n")
    report = cat.import_datarows([tmp_path / "broken.zip", tmp_path / "notes.docx", path])
    reasons = [why for _, why in report.skipped]
    assert any("not a readable zip archive" in r for r in reasons)
    assert any("unsupported file type .docx" in r for r in reasons)
    assert any("Ximilar record needs" in r for r in reasons)
    assert any("is not supported (IMAGE or TEXT)" in r for r in reasons)
    assert any("\"metadata\" must be an object" in r for r in reasons)
    assert cat.count_datarows() == 0
