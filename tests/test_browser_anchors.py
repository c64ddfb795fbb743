"""The anchors panel in a real browser (Debian's chromium driven by Playwright): with many anchors it
keeps a bounded height — a strip of the first few and one "+N more" control for the rest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catalog import Catalog
from dashboard.anchors import CHIPS_SHOWN
from dashboard_support import WAIT_MS, build, idle

MANY = 30


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-anchors") / "cat")


def test_many_anchors_keep_the_panel_compact(server, page, catalog_db):
    ids = [r["id"] for r in Catalog(catalog_db).list_datarows(limit=MANY)]
    page.goto(f"{server.url}/?emb=shapes&min=0&" + "&".join(f"a={i}" for i in ids))
    page.locator(".st-key-results_head h3", has_text=re.compile(r"similar rows")).first.wait_for(timeout=WAIT_MS)
    panel = page.locator(".st-key-anchors_panel")
    panel.wait_for(timeout=WAIT_MS)
    idle(page)
    assert f"{MANY} positive" in panel.inner_text()
    chips = panel.locator("[class*='st-key-anchor_p_']")
    assert chips.count() == CHIPS_SHOWN
    more = panel.get_by_role("button", name=re.compile(rf"\+{MANY - CHIPS_SHOWN} more"))
    more.wait_for(timeout=WAIT_MS)
    assert panel.bounding_box()["height"] < 450, "the panel grows with the number of anchors"
    more.click()
    page.get_by_text("Remove chosen").first.wait_for(timeout=WAIT_MS)


def test_anchors_beyond_the_strip_can_be_removed(server, page, catalog_db):
    rows = Catalog(catalog_db).list_datarows(limit=MANY)
    page.goto(f"{server.url}/?emb=shapes&min=0&" + "&".join(f"a={r['id']}" for r in rows))
    panel = page.locator(".st-key-anchors_panel")
    panel.get_by_role("button", name=re.compile(r"more")).click()
    pick = page.locator(".st-key-anchors_pick_p")
    pick.wait_for(timeout=WAIT_MS)
    pick.locator("input").first.fill(rows[-1]["global_key"])  # type to find it, Enter to choose
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Remove chosen").click()
    page.get_by_text(f"{MANY - 1} positive").first.wait_for(timeout=WAIT_MS)
    page.wait_for_url(lambda url: rows[-1]["id"] not in url, timeout=WAIT_MS)


def test_a_search_with_many_anchors_gets_a_short_link_that_opens_it(server, page, browser, catalog_db):
    ids = [r["id"] for r in Catalog(catalog_db).list_datarows(limit=MANY)]
    long_link = f"{server.url}/?emb=shapes&min=0.5&agg=max&" + "&".join(f"a={i}" for i in ids)
    assert len(long_link) > 1000
    page.goto(long_link)
    page.wait_for_url(re.compile(r"\?q=[a-z2-7]{12}$"), timeout=WAIT_MS)  # the catalog keeps the search
    short = page.url
    assert len(short) < 80 and "a=" not in short
    want = page.locator(".st-key-results_head h3").first.inner_text()
    other = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()  # a colleague's browser
    try:
        other.set_default_timeout(WAIT_MS)
        other.goto(short)
        panel = other.locator(".st-key-anchors_panel")
        panel.get_by_text(f"{MANY} positive").first.wait_for(timeout=WAIT_MS)
        other.locator(".st-key-results_head h3", has_text=want).first.wait_for(timeout=WAIT_MS)
        idle(other)
        assert other.url == short
    finally:
        other.context.close()


def test_an_unknown_short_link_says_so_once_and_shows_all_rows(server, page):
    page.goto(f"{server.url}/?q=aaaaaaaaaaaa")
    page.locator(".st-key-results_head h3", has_text=re.compile(r"^44 rows$")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    warnings = page.get_by_text(re.compile("names a shared search that this catalog does not have"))
    assert warnings.count() == 1
    assert "q=" not in page.url
