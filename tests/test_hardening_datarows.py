"""Data-row import hardening: oversized archive entries, damaged .gz record files, deeply nested
metadata, bad or repeated keys, links in folders and long values in messages."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tracemalloc
import zipfile

import pytest
from PIL import Image

from catalog import CatalogError
from catalog.datarows import ingest as ingest_mod
from catalog.datarows import service as service_mod


def png_bytes(color=(1, 2, 3)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def keys(cat):
    return sorted(r["global_key"] for r in cat.list_datarows(limit=1000))


def by_line(report, path):
    """{line number: reason} for the skipped lines of record file ``path``."""
    return {int(s.rsplit(":", 1)[1].split(" ")[0]): why for s, why in report.skipped if s.startswith(f"{path}:")}


# -- 1. archive entries are capped and streamed --------------------------------------------------
def test_oversized_zip_entry_is_skipped_without_being_read(cat, tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.png", png_bytes())
        with zf.open("huge.png", "w", force_zip64=True) as w:  # 300 MB of zeros, streamed
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                w.write(chunk)
    assert archive.stat().st_size < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        report = cat.import_datarows([archive])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 1024 * 1024, f"peak {peak:,} bytes"
    assert keys(cat) == ["ok.png"]
    [(source, reason)] = report.skipped
    assert source.endswith("huge.png")
    assert "64 MiB" in reason and "314,572,800 bytes" in reason


def test_entry_bigger_than_its_header_says_is_cut_off(cat, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_mod, "MAX_IMAGE_BYTES", 1000)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", b"\0" * 5000)
        zf.writestr("ok.png", png_bytes())  # under 1000 bytes
    report = cat.import_datarows([archive])
    assert keys(cat) == ["ok.png"]
    [(source, reason)] = report.skipped
    assert source.endswith("big.png") and "limit" in reason


# -- 2. damaged .gz record files -----------------------------------------------------------------
def _gz_records(n=300) -> bytes:
    lines = "".join(json.dumps({"global_key": f"t{i}", "text": f"text number {i} " * 5}) + "\n" for i in range(n))
    return gzip.compress(lines.encode(), mtime=0)


@pytest.mark.parametrize("damage", ["trunc-10", "trunc-half", "trunc-end-1", "trunc-end-5",
                                    "flip-0", "flip-third", "flip-half", "flip-crc", "flip-size", "not-gzip"])
def test_damaged_gzip_record_file_is_skipped_whole(cat, tmp_path, damage):
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps({"global_key": "kept", "text": "fine"}) + "\n")
    cat.import_datarows([good])
    data = bytearray(_gz_records())
    kind, where = damage.split("-", 1)
    pos = {"0": 0, "third": len(data) // 3, "half": len(data) // 2, "crc": len(data) - 6, "size": len(data) - 2,
           "10": 10, "end-1": len(data) - 1, "end-5": len(data) - 5}.get(where)
    if kind == "trunc":
        data = data[:pos]
    elif kind == "flip":
        data[pos] ^= 0xFF
    else:
        data = bytearray(b"plain text, not gzip\n")
    path = tmp_path / "records.ndjson.gz"
    path.write_bytes(bytes(data))
    before = cat.count_datarows()
    report = cat.import_datarows([path])
    assert cat.count_datarows() == before == 1
    assert report.imported == 0
    [(source, reason)] = report.skipped
    assert source == str(path)
    assert reason.startswith("damaged gzip file") and "none of its records were imported" in reason
    assert "Traceback" not in reason


def test_intact_gzip_record_file_imports(cat, tmp_path):
    path = tmp_path / "records.jsonl.gz"
    path.write_bytes(_gz_records(50))
    report = cat.import_datarows([path])
    assert report.created == 50 and not report.skipped


# -- 3. deeply nested metadata -------------------------------------------------------------------
def _nested(depth):
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_deeply_nested_metadata_skips_only_that_record(cat, tmp_path):
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join([
        json.dumps({"global_key": "ok1", "text": "x", "metadata": _nested(60)}),
        json.dumps({"global_key": "deep300", "text": "x", "metadata": _nested(300)}),
        "{\"global_key\": \"deep2000\", \"text\": \"x\", \"metadata\": " + "[" * 2000 + "]" * 2000 + "}",
        json.dumps({"_id": "xi", "_url": "https://example.com/a.png", "deep": [[[[[[[[1]]]]]]]] and _nested(100)}),
        json.dumps({"global_key": "ok2", "text": "y"}),
    ]) + "\n")
    report = cat.import_datarows([path])
    assert keys(cat) == ["ok1", "ok2"]
    lines = by_line(report, path)
    assert set(lines) == {2, 3, 4}
    assert all("nests more than 64 levels" in why for why in lines.values())
    assert cat.get_datarow("ok1")["metadata"] == _nested(60)


def test_deep_metadata_file_entry_is_listed(cat, image_folder, tmp_path):
    meta = tmp_path / "meta.ndjson"
    meta.write_text(json.dumps({"global_key": "red/r0.png", "metadata": _nested(300)}) + "\n"
                    + json.dumps({"global_key": "red/r1.png", "metadata": {"ok": 1}}) + "\n")
    report = cat.import_datarows([image_folder], metadata_file=meta)
    assert report.created == 6
    assert [(s, why) for s, why in report.skipped] == [(f"{meta}:1", "metadata nests more than 64 levels deep")]
    assert cat.get_datarow("red/r1.png")["metadata"] == {"ok": 1}


# -- 4. bad and repeated keys --------------------------------------------------------------------
def test_non_string_and_empty_keys_are_refused(cat, tmp_path):
    path = tmp_path / "records.ndjson"
    url = "https://example.com/a.png"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"_id": None, "_url": url},                          # 1
        {"_id": "", "_url": url},                            # 2
        {"_id": {"a": 1}, "_url": url},                      # 3
        {"_id": 12, "_url": url},                            # 4
        {"_id": "   ", "_url": url},                         # 5
        {"global_key": 7, "text": "t"},                      # 6
        {"global_key": "", "row_data": url},                 # 7
        {"global_key": None, "image": url},                  # 8
        {"global_key": ["k"], "row_data": "t", "media_type": "TEXT"},  # 9
        {"_id": "good", "_url": url},                        # 10
    ]) + "\n")
    report = cat.import_datarows([path])
    assert keys(cat) == ["good"]
    lines = by_line(report, path)
    assert set(lines) == set(range(1, 10))
    assert lines[1] == '"_id" must be a non-empty string, not null'
    assert lines[2] == lines[5] == '"_id" must be a non-empty string, not empty'
    assert lines[3] == "\"_id\" must be a non-empty string, not an object ({'a': 1})"
    assert lines[4] == '"_id" must be a non-empty string, not a number (12)'
    assert lines[6] == '"global_key" must be a non-empty string, not a number (7)'
    assert lines[7] == '"global_key" must be a non-empty string, not empty'
    assert lines[8] == '"global_key" must be a non-empty string, not null'
    assert lines[9] == "\"global_key\" must be a non-empty string, not an array (['k'])"
    assert not {"None", "", "{'a': 1}", "12", "7"} & set(keys(cat))


def test_repeated_global_key_in_one_file_is_reported(cat, tmp_path):
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"global_key": "a", "text": "first"},
        {"global_key": "b", "text": "other"},
        {"global_key": "a", "text": "second"},
    ]) + "\n")
    report = cat.import_datarows([path])
    assert report.created == 2 and not report.skipped
    assert report.warnings == [(f"{path}:3", "global_key 'a' also appears on line 1; this later record replaces it")]
    assert cat.get_datarow("a")["row_data"] == "second"


def test_the_cli_prints_repeated_keys_as_warnings(cli, tmp_path):
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in [{"global_key": "a", "text": "first"},
                                                       {"global_key": "a", "text": "second"}]) + "\n")
    r = cli("datarows", "import", str(path))
    assert r.returncode == 0, r.stderr
    assert f"warning {path}:2: global_key 'a' also appears on line 1; this later record replaces it" in r.stderr
    r = cli("datarows", "import", str(path), "--json")
    assert json.loads(r.stdout)["warnings"] == [{"source": f"{path}:2",
                                              "message": "global_key 'a' also appears on line 1; this later record replaces it"}]


# -- 5. links in folders -------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_folder_links_are_listed_and_folders_are_not_followed(cat, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes((9, 9, 9)))
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(png_bytes())
    (root / "sub" / "out").symlink_to(outside, target_is_directory=True)
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "linked.png").symlink_to(outside / "secret.png")
    report = cat.import_datarows([root])
    assert keys(cat) == ["a.png", "linked.png"]  # a link to a file is imported as that file
    reasons = dict(report.skipped)
    assert reasons == {str(root / "sub" / "out"): "link to a folder (not followed)",
                       str(root / "gone.png"): "dangling link (its target does not exist)"}
    assert not any("secret" in r["global_key"] for r in cat.list_datarows())


# -- 6. long values in messages ------------------------------------------------------------------
def test_long_values_are_cut_in_messages(cat, tmp_path, image_folder):
    big = "k" * 10_000_000
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"global_key": "x", "image": big},                   # 1: not found
        {"_id": [big], "_url": "https://example.com/a"},     # 2: not a string
        {"global_key": "y", "row_data": "t", "media_type": big},  # 3: unsupported media type
        {"global_key": "z", "image": "d/" * 200 + "a.png"},  # 4: not found, long but a valid path
    ]) + "\n")
    meta = tmp_path / "meta.ndjson"
    meta.write_text(json.dumps({"global_key": big, "metadata": {"a": 1}}) + "\n")
    report = cat.import_datarows([path], metadata_file=meta)
    assert report.imported == 0 and len(report.skipped) == 5
    for source, reason in report.skipped:
        assert len(source) + len(reason) < 400, (source[:100], reason[:100])
    lines = by_line(report, path)
    assert lines[1] == f"image {'k' * 80}… (10,000,000 characters) cannot be looked up (File name too long)"
    assert "… (10,000,004 characters)" in lines[2]
    assert lines[4] == f"image {'d/' * 40}… (405 characters) not found (paths resolve relative to the record file)"
    assert f"'{'k' * 80}… (10,000,000 characters)'" in lines[3]
    assert (f"metadata for {'k' * 80}… (10,000,000 characters)", "no data row with this global_key") in report.skipped


def test_long_zip_entry_names_are_cut(cat, tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("n" * 5000 + ".txt", "x")
        zf.writestr("m" * 5000 + ".png", png_bytes())  # too long a name to extract
        zf.writestr("ok.png", png_bytes())
    report = cat.import_datarows([archive])
    assert keys(cat) == ["ok.png"]
    (s1, r1), (s2, r2) = report.skipped
    assert s1 == f"{archive}:{'n' * 80}… (5,004 characters)" and r1 == "not an image (.txt)"
    assert s2 == f"{archive}:{'m' * 80}… (5,004 characters)"
    assert r2 == "cannot extract into the media folder (File name too long)"


# -- one transaction -----------------------------------------------------------------------------
def test_a_failed_import_writes_nothing(cat, image_folder, tmp_path, monkeypatch):
    cat.import_datarows([image_folder / "red" / "r0.png"])
    before = keys(cat)
    with pytest.raises(CatalogError):
        cat.import_datarows([image_folder], metadata_file=tmp_path / "missing.csv")
    assert keys(cat) == before

    # a failure after the rows were written (while merging metadata for an existing row) rolls back
    meta = tmp_path / "meta.ndjson"
    meta.write_text(json.dumps({"global_key": "r0.png", "metadata": {"boom": 1}}) + "\n")
    real = service_mod.orjson

    class Exploding:
        @staticmethod
        def dumps(value):
            if value == {"boom": 1}:
                raise RuntimeError("disk on fire")
            return real.dumps(value)

    monkeypatch.setattr(service_mod, "orjson", Exploding)
    with pytest.raises(RuntimeError):
        cat.import_datarows([image_folder / "blue"], metadata_file=meta)
    assert keys(cat) == before


def test_unreadable_metadata_files_are_errors_and_write_nothing(cat, image_folder, tmp_path):
    meta = tmp_path / "meta.csv"
    for content, words in [(b"global_key,a\nr0.png,\xff\xfe\n", "is not UTF-8 text"),
                           (b'global_key,a\nr0.png,"' + b"x" * 200_000 + b'"\n', "cannot be read (field larger")]:
        meta.write_bytes(content)
        with pytest.raises(CatalogError) as err:
            cat.import_datarows([image_folder], metadata_file=meta)
        assert str(err.value).startswith(f"metadata file {meta} {words}") and err.value.field == "metadata_file"
        assert cat.count_datarows() == 0


# -- images copied into the media folder go again when their rows are not imported -----------------
def _media_files(cat) -> list[str]:
    media = cat.store.media_dir
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) if media.exists() else []


def _base64_lines(prefix: str, n: int) -> str:
    return "".join(json.dumps({"_id": f"{prefix}{i}", "_base64": base64.b64encode(png_bytes((i, 9, 9))).decode()})
                   + "\n" for i in range(n))


def test_a_damaged_gz_record_file_takes_its_copied_images_away(cat, tmp_path):
    good = tmp_path / "good.ndjson"
    good.write_text(_base64_lines("g", 2))
    data = bytearray(gzip.compress((_base64_lines("b", 20) + "\n" * 5000).encode(), mtime=0))
    data[len(data) // 2:] = b"\0" * (len(data) - len(data) // 2)  # the images decode, then the stream breaks
    bad = tmp_path / "bad.ndjson.gz"
    bad.write_bytes(bytes(data))
    report = cat.import_datarows([good, bad])
    assert any(s == str(bad) and "none of its records were imported" in why for s, why in report.skipped)
    assert keys(cat) == ["g0", "g1"]
    kept = _media_files(cat)
    assert len(kept) == 2 and all(f.startswith("base64/") for f in kept)  # only the good file's images
    assert sorted(os.path.relpath(r["row_data"], cat.store.media_dir) for r in cat.list_datarows()) == kept


def test_a_refused_import_takes_its_copied_images_away(cat, tmp_path):
    cat.create_embedding("e8", 8)
    recs = tmp_path / "recs.ndjson"
    recs.write_text(_base64_lines("x", 3) + json.dumps(
        {"global_key": "t", "text": "t", "embeddings": [{"embedding_id": "e8", "vector": [1, 2]}]}) + "\n")
    with pytest.raises(CatalogError, match="nothing was imported"):
        cat.import_datarows([recs])
    assert keys(cat) == [] and _media_files(cat) == []


def test_a_failed_write_takes_copied_files_away_but_keeps_older_ones(cat, image_folder, monkeypatch):
    cat.import_datarows([image_folder / "red"], copy_files=True)
    older = _media_files(cat)
    assert older
    monkeypatch.setattr(cat.store, "transaction", _exploding_transaction)
    with pytest.raises(RuntimeError, match="disk on fire"):
        cat.import_datarows([image_folder], copy_files=True)
    assert _media_files(cat) == older


def _exploding_transaction():
    raise RuntimeError("disk on fire")
