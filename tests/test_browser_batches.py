"""The Batches page in a real browser (Debian's chromium driven by Playwright): batches made with the
library are listed by project, a project filter narrows them, a batch's rows show with their keys and
labels, the NDJSON export downloads what the library exports, delete asks first, names render as text,
and a catalog without batches says how to make one. Never skipped: without /usr/bin/chromium they fail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dashboard_support import ROOT, WAIT_MS, Server, build, idle

from catalog import Catalog, NotFound

SHOTS = ROOT / "docs" / "screenshots"
TRICKY = "![x](http://host/p.png) **bold**"


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    db = build(tmp_path_factory.mktemp("browser-batches") / "cat")
    cat = Catalog(db)
    cat.create_batch("red circles", "shapes-qa", ids=[f"circle/red-{i}.png" for i in range(3)], priority=2)
    cat.create_batch(TRICKY, "shapes-qa", ids=[f"square/blue-{i}.png" for i in range(3)])
    cat.create_batch("sports texts", "text-review", ids=[f"sports-{i}" for i in range(4)], priority=1)
    cat.create_batch("to delete", "text-review", ids=["cooking-0", "cooking-1"])
    return db


def batch_id(db: Path, name: str, project: str) -> str:
    return Catalog(db).get_batch(name, project).id


def open_page(server, page) -> None:
    page.goto(f"{server.url}/batches")
    page.get_by_role("heading", name="Batches").first.wait_for()
    page.locator("[class*='st-key-batch_head_']").first.wait_for()
    idle(page)


def shown_batches(page) -> list[str]:
    return [t.strip() for t in page.locator(".batch-name").all_inner_texts()]


def test_batches_are_listed_with_project_size_and_priority(server, page, catalog_db):
    open_page(server, page)
    names = shown_batches(page)
    assert {"red circles", TRICKY, "sports texts"} <= set(names)
    card = page.locator(f".st-key-batch_{batch_id(catalog_db, 'red circles', 'shapes-qa')}")
    text = card.inner_text()
    assert "red circles" in text and "Project: shapes-qa" in text and "3 rows" in text and "priority 2" in text
    # a name is shown as typed: no image fetched from its "Markdown", no bold
    tricky = page.locator(f".st-key-batch_{batch_id(catalog_db, TRICKY, 'shapes-qa')}")
    assert TRICKY in tricky.inner_text()
    assert tricky.locator("img").count() == 0 and tricky.locator("strong").count() == 0


def test_the_project_filter_narrows_the_list(server, page, catalog_db):
    open_page(server, page)
    page.locator(".st-key-batches_project [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="text-review").click()
    page.locator(f".st-key-batch_{batch_id(catalog_db, 'red circles', 'shapes-qa')}").wait_for(state="detached")
    idle(page)
    names = shown_batches(page)
    assert "sports texts" in names and "red circles" not in names and TRICKY not in names
    assert {b.project for b in Catalog(catalog_db).get_batches("text-review")} == {"text-review"}


def test_a_batch_shows_its_rows_with_keys_and_labels(server, page, catalog_db):
    open_page(server, page)
    bid = batch_id(catalog_db, "red circles", "shapes-qa")
    page.locator(f".st-key-batch_{bid}").get_by_role("button", name="Rows").click()
    panel = page.locator(".st-key-batch_rows")
    panel.wait_for()
    idle(page)
    cat = Catalog(catalog_db)
    for row in cat.get_batch("red circles", "shapes-qa").rows():
        cell = page.locator(f".st-key-brow_{row['id']}")
        assert row["global_key"] in cell.inner_text()
        assert cell.locator("img").count() == 1  # its thumbnail
    assert "circle" in page.locator(f".st-key-brow_{cat.get_datarow('circle/red-0.png')['id']}").inner_text()
    assert panel.locator("[class*='st-key-brow_']").count() == 3
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=WAIT_MS)
    page.screenshot(path=str(SHOTS / "batches.png"), full_page=True)
    # "Hide rows" closes the panel again
    page.locator(f".st-key-batch_{bid}").get_by_role("button", name="Hide rows").click()
    panel.wait_for(state="detached")


def test_export_downloads_the_batch_as_ndjson(server, page, catalog_db):
    open_page(server, page)
    bid = batch_id(catalog_db, "sports texts", "text-review")
    with page.expect_download(timeout=WAIT_MS) as dl:
        page.locator(f".st-key-batch_{bid}").get_by_role("button", name="Export NDJSON").click()
    download = dl.value
    assert download.suggested_filename == "text-review-sports_texts.ndjson"
    lines = [json.loads(x) for x in Path(download.path()).read_text().splitlines() if x.strip()]
    assert sorted(r["global_key"] for r in lines) == [f"sports-{i}" for i in range(4)]
    assert all(r["media_type"] == "text" and set(r) >= {"id", "row_data", "metadata", "labels"} for r in lines)
    assert [lb["label"] for r in lines if r["global_key"] == "sports-0" for lb in r["labels"]] == ["sports"]


def test_delete_asks_first_and_removes_the_batch(server, page, catalog_db):
    open_page(server, page)
    bid = batch_id(catalog_db, "to delete", "text-review")
    card = page.locator(f".st-key-batch_{bid}")
    card.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert "to delete" in dialog.inner_text() and "text-review" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    idle(page)
    assert Catalog(catalog_db).get_batch("to delete", "text-review").size == 2  # cancel keeps it

    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.locator("[data-testid='stToast']", has_text="deleted").first.wait_for()
    card.wait_for(state="detached")
    idle(page)
    with pytest.raises(NotFound):
        Catalog(catalog_db).get_batch("to delete", "text-review")
    assert "to delete" not in shown_batches(page)
    assert Catalog(catalog_db).count_datarows() == 44  # its rows stay in the catalog


def test_without_batches_the_page_says_how_to_make_one(browser, tmp_path):
    db = build(tmp_path / "empty", labels=False)
    srv = Server(db, tmp_path / "streamlit.log")
    try:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        ctx.set_default_timeout(WAIT_MS)
        page = ctx.new_page()
        page.goto(f"{srv.url}/batches")  # a bookmark: the fresh server's first request
        page.get_by_role("heading", name="No batches yet").wait_for()
        idle(page)
        assert re.search(r"Send to batch", page.locator("[data-testid='stAlert']").first.inner_text())
        assert page.url.endswith("/batches")
        assert page.locator("header [data-testid='stTopNavLink']", has_text="Batches").count() == 1
        assert page.locator("[data-testid='stSidebarNav']").count() == 0
        page.get_by_role("link", name=re.compile("Go to the Catalog")).click()
        page.locator(".st-key-results_head h3").first.wait_for()
        ctx.close()
    finally:
        srv.stop()
