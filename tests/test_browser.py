"""The dashboard's main flows in a real browser (Debian's chromium driven by Playwright).

Each test saves a screenshot of its page to docs/screenshots/. These tests are never skipped: without
/usr/bin/chromium they fail and say how to install it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from catalog import Catalog
from dashboard_support import ROOT, WAIT_MS, bad_ndjson, build, idle, wait_heading

SHOTS = ROOT / "docs" / "screenshots"

@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser") / "cat")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)  # no hover tooltips in the picture
    idle(page)
    page.evaluate("() => { for (const e of document.querySelectorAll('*')) if (e.scrollTop) e.scrollTop = 0; }")
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=WAIT_MS)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_find_similar_anchors_slider_save_slice_and_reopen_by_url(server, page, catalog_db):
    red = Catalog(catalog_db).get_datarow("circle/red-1.png")["id"]
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    page.locator(f"button[data-similar='{red}']").click()
    assert wait_heading(page, r"similar rows") == "2 similar rows with a score in 0.85–1.00"
    panel = page.locator(".st-key-anchors_panel")
    panel.wait_for()
    assert panel.locator("img").count() == 1

    # widen the score range with the keyboard on the lower thumb: 0.85 -> 0.75
    thumb = page.locator(".st-key-w_range input[type='range']").first
    thumb.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    text = wait_heading(page, r"0\.75–1\.00")
    wide = int(text.split()[0])
    assert wide > 2
    assert "min=0.75" in page.url

    # tick two result cards: the toolbar counts them and the boxes stay ticked
    boxes = page.locator(".cat-grid .cat-select")
    boxes.nth(0).click()
    page.get_by_text("1 selected", exact=True).wait_for()
    boxes.nth(1).click()
    page.get_by_text("2 selected", exact=True).wait_for()
    idle(page)
    ticked = page.locator(".cat-grid input[data-select]")
    assert [ticked.nth(i).is_checked() for i in range(3)] == [True, True, False]
    shot(page, "catalog")

    page.get_by_role("button", name="Save search as slice").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("red-circles")
    dialog.get_by_label("Description", exact=True).fill("Red circles and their look-alikes")
    dialog.get_by_role("button", name="Save slice").click()
    page.wait_for_url(re.compile(r"slice=red-circles"), timeout=WAIT_MS)
    assert Catalog(catalog_db).get_slice("red-circles").query["min_score"] == pytest.approx(0.75)

    # a colleague opens the shared address
    other = page.context.new_page()
    other.goto(f"{server.url}/?slice=red-circles")
    assert wait_heading(other, r"similar rows") == text
    other.locator(".st-key-anchors_panel img").first.wait_for()
    other.close()

    Catalog(catalog_db).save_slice("cooking-texts", where={"topic": "cooking"},
                                   description="Every text about cooking (a filter slice)")
    page.goto(f"{server.url}/slices")
    page.get_by_text("cooking-texts", exact=True).first.wait_for()
    page.get_by_text("red-circles", exact=True).first.wait_for()
    page.get_by_text(f"{wide} rows").first.wait_for()
    shot(page, "slices")


def test_label_by_similarity_review_apply_then_export(server, page):
    page.goto(f"{server.url}/labeling")
    page.get_by_role("button", name="Suggest labels").click()
    page.get_by_text(re.compile(r"^Review \d+ rows")).first.wait_for()
    page.locator("[class*='st-key-lbs_row_'] img").first.wait_for()
    shot(page, "labeling")
    apply = page.get_by_role("button", name=re.compile(r"^Apply to \d+ rows"))
    apply.click()
    page.get_by_text(re.compile(r"labels saved as reviewed")).first.wait_for()
    idle(page)
    with page.expect_download(timeout=WAIT_MS) as dl:
        page.get_by_role("button", name="Labels CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    reviewed = [r for r in rows if r["source"] == "similarity" and r["reviewed"] == "true"]
    assert reviewed, "applied suggestions are exported as reviewed similarity labels"


def test_ndjson_upload_with_a_bad_line_shows_the_line(server, page, catalog_db, tmp_path):
    bad = tmp_path / "vectors.ndjson"
    bad.write_bytes(bad_ndjson(Catalog(catalog_db)))
    page.goto(f"{server.url}/embeddings")
    page.get_by_text("Import vectors", exact=True).first.wait_for()
    shot(page, "embeddings")
    page.locator(".st-key-emb_import input[type='file']").set_input_files(str(bad))
    page.get_by_text("vectors.ndjson").first.wait_for()
    idle(page)
    page.get_by_role("button", name="Import vectors").click()
    report = page.locator(".st-key-emb_import [data-testid='stCode']").first
    report.wait_for()
    assert "line 2:" in report.inner_text()
    assert "nothing was imported" in page.locator(".st-key-emb_import [data-testid='stAlert']").first.inner_text()
    assert Catalog(catalog_db).get_embedding("shapes").get_imported_vector_count() == 44
