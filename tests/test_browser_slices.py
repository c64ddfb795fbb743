"""Shared addresses in a real browser (Debian's chromium driven by Playwright): an opened slice shows
as it was saved — not "modified" — and the address keeps ``?slice=NAME``; a link naming an anchor
that matches no row says so once and keeps working with the others; only rows with a vector in the
chosen embedding offer *Similar*."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog, SearchSpec
from dashboard_support import WAIT_MS, build, idle


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    db = build(tmp_path_factory.mktemp("browser-slices") / "cat")
    cat = Catalog(db)
    red = cat.get_datarow("circle/red-1.png")["id"]
    cat.save_slice("red-circles", SearchSpec("shapes", anchors=[red], min_score=0.75))  # stored by embedding id
    cat.save_slice("cooking-texts", SearchSpec(where={"topic": "cooking"}))  # a pure filter slice
    texts = [r["global_key"] for r in cat.iter_datarows() if r["media_type"] == "text"]
    only = cat.create_embedding("texts-only", 8)  # vectors for the texts, none for the images
    only.import_vectors(texts, np.random.default_rng(3).standard_normal((len(texts), 8)).astype(np.float32))
    return db


def slice_caption(page, name: str) -> str:
    caption = page.get_by_text(re.compile(rf"Slice {re.escape(name)}")).first
    caption.wait_for(timeout=WAIT_MS)
    idle(page)
    return caption.inner_text()


@pytest.mark.parametrize("name, heading", [("red-circles", r"similar rows with a score in 0\.75–1\.00"),
                                           ("cooking-texts", r"rows match the filter")])
def test_an_opened_slice_is_not_modified_and_keeps_its_address(server, page, name, heading):
    page.goto(f"{server.url}/?slice={name}")
    page.locator(".st-key-results_head h3", has_text=re.compile(heading)).first.wait_for(timeout=WAIT_MS)
    assert "modified" not in slice_caption(page, name)
    assert f"slice={name}" in page.url


def test_changing_the_query_marks_the_slice_modified(server, page):
    page.goto(f"{server.url}/?slice=red-circles")
    assert "modified" not in slice_caption(page, "red-circles")
    thumb = page.locator(".st-key-w_range input[type='range']").first  # the lower end: 0.75 -> 0.70
    thumb.focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    page.get_by_text(re.compile(r"Slice red-circles · modified")).first.wait_for(timeout=WAIT_MS)
    page.wait_for_url(re.compile(r"min=0\.7\b"), timeout=WAIT_MS)


def test_a_link_with_an_unknown_anchor_says_so_once_and_keeps_working(server, page, catalog_db):
    red = Catalog(catalog_db).get_datarow("circle/red-1.png")["id"]
    page.goto(f"{server.url}/?emb=shapes&a={red}&a=no-such-row")
    page.locator(".st-key-results_head h3", has_text=re.compile(r"similar rows")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    alerts = page.locator("[data-testid='stAlert']", has_text="no-such-row")
    assert alerts.count() == 1
    assert "match no data row" in alerts.first.inner_text()
    assert page.locator(".st-key-anchors_panel img").count() == 1
    page.wait_for_url(lambda url: "no-such-row" not in url, timeout=WAIT_MS)
    page.reload()  # the address no longer holds the unknown anchor: nothing to repeat
    page.locator(".st-key-results_head h3", has_text=re.compile(r"similar rows")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    assert page.locator("[data-testid='stAlert']", has_text="no-such-row").count() == 0


def test_a_link_whose_only_anchor_is_unknown_opens_the_catalog(server, page):
    page.goto(f"{server.url}/?emb=shapes&a=no-such-row")
    page.locator(".st-key-results_head h3", has_text=re.compile(r"^\d+ rows$")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    assert page.locator("[data-testid='stAlert']", has_text="no-such-row").count() == 1


def test_only_rows_with_a_vector_offer_similar(server, page, catalog_db):
    cat = Catalog(catalog_db)
    rows = list(cat.iter_datarows())
    image = next(r["id"] for r in rows if r["media_type"] == "image")
    page.goto(f"{server.url}/?emb=texts-only")
    page.locator(".st-key-results_head h3", has_text=re.compile(r"^\d+ rows$")).first.wait_for(timeout=WAIT_MS)
    page.locator(f".cat-box[data-row='{image}']").wait_for(timeout=WAIT_MS)
    idle(page)
    assert page.locator(f"button[data-similar='{image}']").count() == 0
    assert "no vector" in page.locator(f".cat-box[data-row='{image}']").inner_text()
    shown_texts = [r["id"] for r in rows if r["media_type"] == "text"
                   and page.locator(f".cat-box[data-row='{r['id']}']").count()]
    assert shown_texts and all(page.locator(f"button[data-similar='{t}']").count() == 1 for t in shown_texts)
    page.locator(f"button[data-similar='{shown_texts[0]}']").click()
    page.locator(".st-key-results_head h3", has_text=re.compile(r"similar rows")).first.wait_for(timeout=WAIT_MS)
