"""The dashboard works offline and every page URL opens the real app, in a real browser (Debian's
chromium driven by Playwright).

* No request leaves the server: visiting every page and opening a dialog makes the browser fetch only
  from 127.0.0.1 (``data:`` and ``blob:`` URLs are fine) — a favicon given as a Material icon made it
  download an SVG from fonts.gstatic.com. Message icons are the bundled Material Symbols, never emoji
  (which draw as empty boxes without an emoji font).
* A bookmark to a page on a freshly started server (the first request it gets, in a new browser
  context) opens the app on that page: its styling and top navigation, not Streamlit's ``pages/``
  folder loader with its sidebar "app" entry.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from catalog import Catalog
from dashboard_support import Server, WAIT_MS, bad_ndjson, build, idle

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
EMOJI = re.compile("[\U0001F000-\U0001FFFF\u2600-\u27BF\u2B00-\u2BFF\u231A-\u23FF]")
TOP_NAV = ["Catalog", "Slices", "Label by similarity", "Embeddings", "Map", "Batches", "Upload", "Duplicates"]


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-local") / "cat")


@pytest.fixture
def fresh_server(catalog_db, tmp_path):
    """A server started for this test alone: the first page it serves is the test's."""
    srv = Server(catalog_db, tmp_path / "streamlit.log")
    yield srv
    srv.stop()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


def emoji_icons(page) -> list[str]:
    """The messages and toasts on the page whose icon is an emoji."""
    found = [f"emoji icon element on {page.url}"] * page.locator("[data-testid='stIconEmoji']").count()
    for alert in page.locator("[data-testid='stAlert'], [data-testid='stToast']").all():
        if EMOJI.search(alert.inner_text()):
            found.append(alert.inner_text())
    return found


def assert_the_app(page, path: str) -> None:
    """The page is shown inside app.py: its CSS, the top navigation, no pages-folder sidebar."""
    links = page.locator("header [data-testid='stTopNav'] [data-testid='stTopNavLink']")
    links.first.wait_for(timeout=WAIT_MS)
    titles = [t.split("\n")[-1].strip() for t in links.all_inner_texts()]
    assert titles == TOP_NAV, titles
    assert page.locator("[data-testid='stSidebarNav']").count() == 0
    assert page.get_by_role("link", name=re.compile(r"^app$")).count() == 0
    padding = page.evaluate(
        "() => getComputedStyle(document.querySelector('[data-testid=\"stMainBlockContainer\"]')).paddingTop")
    assert padding == "72px", f"{path}: app.py's stylesheet is missing (padding-top {padding})"
    assert page.title() == "Embedding catalog" or "Embedding catalog" in page.title()


def test_no_request_leaves_the_server(fresh_server, context, catalog_db, tmp_path):
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    page = context.new_page()
    base = fresh_server.url

    red = Catalog(catalog_db).get_datarow("circle/red-1.png")["id"]
    page.goto(base)
    page.locator(".st-key-results_head h3").first.wait_for()
    page.locator(f"button[data-similar='{red}']").click()
    page.locator(".st-key-results_head h3", has_text="similar rows").first.wait_for()
    idle(page)
    # a dialog, then its success toast
    page.get_by_role("button", name="Save search as slice").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("everything")
    dialog.get_by_role("button", name="Save slice").click()
    page.wait_for_url(re.compile(r"slice=everything"), timeout=WAIT_MS)
    page.locator("[data-testid='stToast']").first.wait_for()
    emoji = emoji_icons(page)

    page.goto(f"{base}/slices")
    page.get_by_text("everything", exact=True).first.wait_for()
    idle(page)

    page.goto(f"{base}/labeling")
    page.get_by_role("button", name="Suggest labels").wait_for()
    idle(page)

    # an error message (a bad vector file): its icon is a Material symbol, not an emoji
    bad = tmp_path / "vectors.ndjson"
    bad.write_bytes(bad_ndjson(Catalog(catalog_db)))
    page.goto(f"{base}/embeddings")
    page.get_by_text("Import vectors", exact=True).first.wait_for()
    page.locator(".st-key-emb_import input[type='file']").set_input_files(str(bad))
    page.get_by_text("vectors.ndjson").first.wait_for()
    idle(page)
    page.get_by_role("button", name="Import vectors").click()
    alert = page.locator(".st-key-emb_import [data-testid='stAlert']").first
    alert.wait_for()
    icon = alert.locator("[data-testid='stAlertDynamicIcon']").inner_text()
    if not re.fullmatch(r"[a-z_]+", icon):
        emoji.append(f"error icon {icon!r} is not a Material symbol")
    emoji += emoji_icons(page)
    idle(page)
    page.wait_for_timeout(1000)  # late fetches (favicon, fonts) too

    assert urls, "the recorder saw the page load"
    away = sorted({u for u in urls if urlsplit(u).scheme not in ("data", "blob")
                   and urlsplit(u).hostname not in LOCAL_HOSTS})
    assert not away, f"requests to other hosts: {away}"
    assert not emoji, f"emoji icons (empty boxes without an emoji font): {emoji}"


@pytest.mark.parametrize("path, ready", [("/", "rows"), ("/labeling", "Suggest labels"), ("/slices", None),
                                         ("/embeddings", "Import vectors"), ("/batches", "No batches yet"),
                                         ("/upload", "Import data rows"), ("/duplicates", "Find duplicates"),
                                         ("/map", "Compute map")])
def test_a_bookmark_on_a_fresh_server_opens_the_app_on_that_page(fresh_server, context, path, ready):
    page = context.new_page()
    page.goto(f"{fresh_server.url}{path}")  # the server's first request
    if ready == "rows":
        page.locator(".st-key-results_head h3").first.wait_for()
    elif ready in ("Suggest labels", "Compute map"):
        page.get_by_role("button", name=ready).wait_for()
    elif ready:
        page.get_by_text(ready, exact=True).first.wait_for()
    else:
        page.get_by_role("heading", name=re.compile("Slices")).first.wait_for()
    idle(page)
    assert urlsplit(page.url).path == path
    assert_the_app(page, path)
    # the same navigation as from / : the page's own entry is the current one and the others switch
    page.locator("header [data-testid='stTopNavLink']", has_text="Catalog").click()
    page.locator(".st-key-results_head h3").first.wait_for()
    assert urlsplit(page.url).path == "/"
