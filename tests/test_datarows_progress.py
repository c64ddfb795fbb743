"""Data-row import options used by the dashboard's Upload page: a progress callback and copies of
uploaded image files (so rows stay valid after the upload's temporary folder is removed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from catalog import CatalogError


def test_progress_is_called_after_each_path_and_at_the_end(cat, image_folder, tmp_path):
    texts = tmp_path / "texts.ndjson"
    texts.write_text(json.dumps({"global_key": "t1", "text": "hello"}) + "\n")
    calls = []
    report = cat.import_datarows([image_folder, texts], progress=lambda done, total: calls.append((done, total)))
    assert report.created == 7
    assert calls == [(1, 2), (2, 2), (2, 2)]


def test_without_options_nothing_changes(cat, image_folder):
    cat.import_datarows([image_folder / "red" / "r0.png"])
    assert cat.get_datarow("r0.png")["row_data"] == str((image_folder / "red" / "r0.png").absolute())


def test_copy_files_keeps_rows_valid_after_the_sources_are_removed(cat, image_folder, tmp_path):
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copy(image_folder / "red" / "r0.png", upload / "r0.png")
    (upload / "recs.ndjson").write_text(json.dumps({"global_key": "ref", "image": "r0.png"}) + "\n")
    report = cat.import_datarows([upload / "r0.png", upload / "recs.ndjson"], copy_files=True)
    assert report.created == 2 and not report.skipped
    shutil.rmtree(upload)
    for key in ("r0.png", "ref"):
        stored = Path(cat.get_datarow(key)["row_data"])
        assert stored.is_file() and stored.name == "r0.png"
        assert cat.store.media_dir in stored.parents


def test_a_failed_import_with_progress_writes_nothing(cat, image_folder, tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("key,colour\nr0.png,red\n")  # no global_key column
    calls = []
    with pytest.raises(CatalogError, match="global_key"):
        cat.import_datarows([image_folder], metadata_file=bad, progress=lambda d, t: calls.append((d, t)))
    assert cat.count_datarows() == 0 and calls == []
