"""The Upload page in a real browser (Debian's chromium driven by Playwright): images and an NDJSON
record file become data rows keyed by the user's file names, a zipped folder imports with its paths,
a bad file is reported by the user's file name (never a server temp path), and an import that fails
writes nothing. Never skipped: without /usr/bin/chromium they fail and say how to install it."""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from dashboard_support import ROOT, build, idle
from PIL import Image

from catalog import Catalog, NotFound

SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-upload") / "cat", labels=False)


def png(path: Path, rgb) -> Path:
    Image.new("RGB", (48, 40), rgb).save(path)
    return path


def upload_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("upload-*") if p.is_dir()}


def open_page(server, page) -> None:
    page.goto(f"{server.url}/upload")
    page.get_by_role("button", name="Import data rows").wait_for()
    idle(page)


def choose(page, files: list[Path], metadata: Path | None = None) -> None:
    page.locator("[class*='st-key-up_files_'] input[type='file']").set_input_files([str(f) for f in files])
    for f in files:
        page.locator("[class*='st-key-up_files_']").get_by_text(f.name, exact=True).first.wait_for()
    if metadata is not None:
        page.locator("[class*='st-key-up_meta_'] input[type='file']").set_input_files(str(metadata))
        page.locator("[class*='st-key-up_meta_']").get_by_text(metadata.name, exact=True).first.wait_for()
    idle(page)


def run_import(page) -> str:
    page.get_by_role("button", name="Import data rows").click()
    report = page.locator(".st-key-upload_report [data-testid='stAlert']").first
    report.wait_for()
    idle(page)
    return report.inner_text()


def test_the_page_states_the_upload_limit(server, page):
    open_page(server, page)
    assert re.search(r"up to 512 MB", page.locator(".st-key-upload_form").inner_text())


def test_images_and_text_records_become_rows_named_by_the_users_files(server, page, catalog_db, tmp_path):
    before, dirs = Catalog(catalog_db).count_datarows(), upload_dirs()
    files = [png(tmp_path / "sunset beach.png", (250, 120, 40)), png(tmp_path / "forest.png", (30, 140, 60))]
    notes = tmp_path / "notes.ndjson"
    notes.write_text(json.dumps({"global_key": "note-1", "text": "Pack the tent", "metadata": {"trip": "alps"}}) + "\n"
                     + json.dumps({"global_key": "note-2", "text": "Buy a map"}) + "\n")
    open_page(server, page)
    choose(page, files + [notes])
    text = run_import(page)
    assert "4 data rows imported: 4 new, 0 updated (from 3 files)" in text, text
    cat = Catalog(catalog_db)
    assert cat.count_datarows() == before + 4
    for name in ("sunset beach.png", "forest.png"):
        row = cat.get_datarow(name)
        stored = Path(row["row_data"])
        assert row["media_type"] == "image" and stored.is_file() and stored.name == name
        assert not str(stored).startswith(str(Path(tempfile.gettempdir()) / "upload-"))  # a kept copy
    note = cat.get_datarow("note-1")
    assert note["media_type"] == "text" and note["row_data"] == "Pack the tent" and note["metadata"] == {"trip": "alps"}
    assert upload_dirs() <= dirs, "the upload's temporary folder was not removed"
    assert page.get_by_role("link", name=re.compile("Open the Catalog")).count() == 1
    assert page.locator("[class*='st-key-up_files_']").get_by_text("forest.png").count() == 0  # ready for more
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)
    page.screenshot(path=str(SHOTS / "upload.png"), full_page=True)
    page.get_by_role("link", name=re.compile("Open the Catalog")).click()
    page.locator(".st-key-results_head h3", has_text=f"{before + 4} rows").first.wait_for()


def test_a_bad_file_is_reported_by_the_users_file_name_and_nothing_is_written(server, page, catalog_db, tmp_path):
    bad = tmp_path / "holiday photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    before = Catalog(catalog_db).count_datarows()
    open_page(server, page)
    choose(page, [bad])
    text = run_import(page)
    assert "0 data rows imported" in text, text
    report = page.locator(".st-key-upload_report [data-testid='stCode']").first.inner_text()
    assert report.startswith("holiday photo.png: "), report
    assert "/tmp" not in report and "upload-" not in report and tempfile.gettempdir() not in report
    assert Catalog(catalog_db).count_datarows() == before


def test_a_failed_import_names_the_users_file_and_writes_nothing(server, page, catalog_db, tmp_path):
    good = png(tmp_path / "lake.png", (40, 90, 200))
    meta = tmp_path / "my metadata.csv"
    meta.write_text("key,place\nlake.png,north\n")  # no global_key column: the library refuses the import
    before = Catalog(catalog_db).count_datarows()
    open_page(server, page)
    choose(page, [good], metadata=meta)
    text = run_import(page)
    assert "my metadata.csv" in text and "global_key" in text, text
    assert "/tmp" not in text and "upload-" not in text
    assert "nothing of these files was written" in page.locator(".st-key-upload_report").inner_text()
    cat = Catalog(catalog_db)
    assert cat.count_datarows() == before
    with pytest.raises(NotFound):
        cat.get_datarow("lake.png")


def test_a_zipped_folder_imports_with_its_paths(server, page, catalog_db, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, rgb in (("cats/tom.png", (200, 200, 200)), ("dogs/rex.png", (120, 80, 40))):
            src = png(tmp_path / Path(name).name, rgb)
            zf.write(src, f"pets/{name}")
        zf.writestr("pets/readme.txt", "not an image")
    before = Catalog(catalog_db).count_datarows()
    open_page(server, page)
    choose(page, [archive])
    text = run_import(page)
    assert "2 data rows imported: 2 new" in text, text
    report = page.locator(".st-key-upload_report [data-testid='stCode']").first.inner_text()
    assert report == "pets.zip:pets/readme.txt: not an image (.txt)", report
    cat = Catalog(catalog_db)
    assert cat.count_datarows() == before + 2
    for key in ("pets/cats/tom.png", "pets/dogs/rex.png"):
        assert Path(cat.get_datarow(key)["row_data"]).is_file()


def test_uploaded_names_keep_only_the_base_name():
    from dashboard.upload_page import safe_name

    assert safe_name("../../etc/passwd.png") == "passwd.png"
    assert safe_name("C:\\Users\\me\\cat.png") == "cat.png"
    assert safe_name("a/b/\x00dog.jpg") == "dog.jpg"
    assert safe_name("..") == safe_name("") == safe_name("photos/") == "upload"
