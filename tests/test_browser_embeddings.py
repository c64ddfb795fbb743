"""The Embeddings page in a real browser (Debian's chromium driven by Playwright): issue 12, bugs 3 and 13.

* the Import-vectors target never changes by itself after an import (two custom embeddings, same dims);
* a create that fails keeps what was typed;
* an invalid upload's message names the user's file, not a server temp file.

Never skipped: without /usr/bin/chromium they fail and say how to install it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog import Catalog
from dashboard_support import DIMS, WAIT_MS, bad_ndjson, build, idle


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    db = build(tmp_path_factory.mktemp("browser_emb") / "cat", labels=False)
    cat = Catalog(db)
    cat.create_embedding("target-a", DIMS)
    cat.create_embedding("target-b", DIMS)
    return db


def open_page(server, page) -> None:
    page.goto(f"{server.url}/embeddings")
    page.locator(".st-key-emb_import [data-testid='stSelectbox']").first.wait_for()
    idle(page)


def count(db: Path, name: str) -> int:
    return Catalog(db).get_embedding(name).get_imported_vector_count()


def vectors_file(path: Path, keys: list[str], value: float) -> Path:
    path.write_text("".join(json.dumps({"id": k, "vector": [value] * DIMS}) + "\n" for k in keys))
    return path


def target_text(page) -> str:
    return page.locator(".st-key-emb_import [data-testid='stSelectbox'] input[role='combobox']").first.input_value(
        timeout=WAIT_MS)


def upload_and_import(page, path: Path) -> None:
    page.locator(".st-key-emb_import input[type='file']").set_input_files(str(path))
    page.locator(".st-key-emb_import").get_by_text(path.name).first.wait_for()
    idle(page)
    page.locator(".st-key-emb_import").get_by_role("button", name="Import vectors").click()


def test_import_target_stays_on_the_users_choice(server, page, catalog_db, tmp_path):
    keys = [r["global_key"] for r in Catalog(catalog_db).list_datarows(limit=7)]
    assert count(catalog_db, "target-a") == 0 and count(catalog_db, "target-b") == 0
    open_page(server, page)
    page.locator(".st-key-emb_import [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=re.compile(r"^target-b\b")).click()
    idle(page)
    assert target_text(page).startswith("target-b")

    upload_and_import(page, vectors_file(tmp_path / "first.ndjson", keys[:3], 0.1))
    page.get_by_text(re.compile(r"3 vectors imported into target-b")).first.wait_for()
    idle(page)
    assert count(catalog_db, "target-b") == 3
    assert target_text(page).startswith("target-b"), "the import target changed by itself"

    # four vectors this time, so the wait below cannot be met by the first import's toast
    upload_and_import(page, vectors_file(tmp_path / "second.ndjson", keys[3:7], 0.2))
    page.get_by_text(re.compile(r"4 vectors imported into")).first.wait_for()
    idle(page)
    assert count(catalog_db, "target-b") == 7, "the second import went into another embedding"
    assert count(catalog_db, "target-a") == 0 and count(catalog_db, "shapes") == 44
    assert target_text(page) == f"target-b ({DIMS}-d, 7 vectors)"  # still the user's choice, with its new count


def test_a_failed_create_keeps_what_was_typed(server, page, catalog_db):
    open_page(server, page)
    form = page.locator(".st-key-emb_create")
    form.get_by_label("Name", exact=True).fill("target-a")  # taken
    dims = form.get_by_label("Dims", exact=True)
    dims.fill("32")
    form.get_by_role("button", name="Create embedding").click()
    form.locator("[data-testid='stAlert']").first.wait_for()
    idle(page)
    assert "target-a" in form.locator("[data-testid='stAlert']").first.inner_text()
    assert form.get_by_label("Name", exact=True).input_value() == "target-a"
    assert form.get_by_label("Dims", exact=True).input_value() == "32"

    # the dims box takes exactly the library's bounds
    from catalog.embeddings import MAX_DIMS, MIN_DIMS
    assert dims.get_attribute("min") == str(MIN_DIMS) and dims.get_attribute("max") == str(MAX_DIMS)

    # a create that works clears the form for the next one
    form.get_by_label("Name", exact=True).fill("fresh-one")
    form.get_by_role("button", name="Create embedding").click()
    page.get_by_text(re.compile(r"Embedding type created")).first.wait_for()
    idle(page)
    assert Catalog(catalog_db).get_embedding("fresh-one").dims == 32
    assert page.locator(".st-key-emb_create").get_by_label("Name", exact=True).input_value() == ""


def test_an_invalid_upload_names_the_users_file(server, page, catalog_db, tmp_path):
    bad = tmp_path / "my-features.ndjson"
    bad.write_bytes(bad_ndjson(Catalog(catalog_db)))
    before = count(catalog_db, "shapes")
    open_page(server, page)
    upload_and_import(page, bad)
    alert = page.locator(".st-key-emb_import [data-testid='stAlert']").first
    alert.wait_for()
    text = alert.inner_text()
    assert "my-features.ndjson" in text, text
    assert "upload-" not in text and "/tmp" not in text, text
    report = page.locator(".st-key-emb_import [data-testid='stCode']").first.inner_text()
    assert "my-features.ndjson" in report and "line 2:" in report
    assert count(catalog_db, "shapes") == before


def choose(page, where: str, option: str) -> None:
    page.locator(f"{where} [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b")).first.click()
    idle(page)


def test_an_unavailable_models_reason_is_shown_whole(server, page, catalog_db):
    model = next(m for m in Catalog(catalog_db).list_models() if not m["available"] and m["reason"])
    open_page(server, page)
    choose(page, ".st-key-emb_compute", model["name"])
    tail = " ".join(model["reason"].split()[-4:])  # the end of the reason must be on the page, not cut off
    notes = page.locator(".st-key-emb_compute").get_by_text(tail)
    assert notes.count() == 1, "the reason is not shown as text"
    note = notes.first
    assert note.is_visible()
    assert " ".join(note.inner_text().split()).startswith(f"{model['name']} cannot run here:")
    assert note.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the reason overflows its box"


def test_compute_with_nothing_to_do_says_so(server, page, catalog_db):
    Catalog(catalog_db).compute_embeddings("color-texture")  # every image already has a vector
    open_page(server, page)
    choose(page, ".st-key-emb_compute", "color-texture")
    page.locator(".st-key-emb_compute").get_by_role("button", name="Compute").click()
    toast = page.locator("[data-testid='stToast']").first
    toast.wait_for()
    text = toast.inner_text()
    assert "nothing needed computing" in text and "0 vectors computed" not in text, text
