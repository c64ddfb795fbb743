"""The dashboard's hardening in a real browser (Debian's chromium driven by Playwright) and a real server:

* started from ``.streamlit/config.toml`` alone, the server listens on 127.0.0.1 only;
* user strings (a slice's name and description, a label) show as typed: Markdown such as
  ``![x](http://example.invalid/p.png)`` is text, no ``<img>`` points there and the browser asks no
  other host for anything;
* crafted ``?where=`` links show short messages: no traceback, no server path.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from catalog import Catalog, SearchSpec
from dashboard_support import ROOT, WAIT_MS, Server, build, idle

EVIL = "![x](http://example.invalid/p.png) *x*"
EVIL_DESC = "see ![d](http://example.invalid/d.png) _d_"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    db = build(tmp_path_factory.mktemp("browser-hardening") / "cat")
    cat = Catalog(db)
    cat.save_slice(EVIL, SearchSpec(where={"topic": "cooking"}), description=EVIL_DESC)
    for colour in ("red", "blue", "green", "orange"):
        cat.set_labels(f"circle/{colour}-0.png", [EVIL, "circle"])
    return db


@pytest.fixture
def recorded(page):
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    yield page, urls


def assert_nothing_remote(page, urls) -> None:
    bad = page.eval_on_selector_all(
        "img", "els => els.filter(e => (e.getAttribute('src') || '').includes('example.invalid'))"
               ".map(e => (e.closest('[data-testid^=\"st\"]:not([data-testid$=\"Markdown\"])') || e).outerHTML.slice(0, 300))")
    assert not bad, f"images from a user string: {bad}"
    away = sorted({u for u in urls if urlsplit(u).scheme not in ("data", "blob")
                   and urlsplit(u).hostname not in LOCAL_HOSTS})
    assert not away, f"requests to other hosts: {away}"


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").first.inner_text()


# -- 1. loopback only -----------------------------------------------------------------------------------------
def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_a_server_started_from_the_config_alone_listens_on_loopback_only(catalog_db, tmp_path):
    srv = Server(catalog_db, tmp_path / "streamlit.log", address=None)  # no address flag: the config's
    try:
        ip = _non_loopback_address()
        if ip is not None:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((ip, srv.port)) != 0, f"the dashboard answers on {ip}:{srv.port}"
        text = srv.log_path.read_text()
        assert "Network URL" not in text and "External URL" not in text, text
        assert f"127.0.0.1:{srv.port}" in text, text
    finally:
        srv.stop()


# -- 2. user strings are text ---------------------------------------------------------------------------------
def test_a_slice_name_and_description_show_as_typed(server, recorded):
    page, urls = recorded
    page.goto(f"{server.url}/slices")
    page.get_by_role("heading", name="Slices").first.wait_for()
    idle(page)
    page.get_by_text(EVIL, exact=False).first.wait_for(timeout=WAIT_MS)
    text = main_text(page)
    assert EVIL in text and EVIL_DESC in text, text
    card = page.locator("[class*='st-key-slice_']").filter(has_text=EVIL).first
    card.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert f"Delete the slice {EVIL}?" in dialog.inner_text()
    idle(page)
    assert_nothing_remote(page, urls)


def test_the_slice_caption_above_the_results_shows_the_name_as_typed(server, recorded):
    page, urls = recorded
    page.goto(f"{server.url}/?slice={urllib.parse.quote(EVIL)}")
    caption = page.get_by_text(f"Slice {EVIL}").first
    caption.wait_for(timeout=WAIT_MS)
    idle(page)
    assert EVIL in caption.inner_text()
    assert_nothing_remote(page, urls)


def test_neighbour_labels_in_the_review_list_show_as_typed(server, recorded):
    page, urls = recorded
    page.goto(f"{server.url}/labeling")
    page.get_by_role("button", name="Suggest labels").click()
    page.get_by_text(re.compile(r"^Review \d+ rows")).first.wait_for()
    idle(page)
    page.get_by_text(EVIL).first.wait_for(timeout=WAIT_MS)
    assert EVIL in main_text(page)
    assert_nothing_remote(page, urls)


# -- 3. crafted filters ----------------------------------------------------------------------------------------
CRAFTED = {
    "deep": "[" * 3_000 + "]" * 3_000,
    "deep-not": '{"$not": ' * 2_000 + '{"a": 1}' + "}" * 2_000,
    "deep-and": '{"$and": [' * 600 + '{"a": 1}' + "]}" * 600,
    "huge-or": '{"$or": [' + ",".join('{"a": %d}' % i for i in range(1_500)) + "]}",
    "long-number": '{"a": ' + "9" * 5_000 + "}",
    "surrogate": '{"a": "\\ud800"}',
    "bad-type": '{"created_at": {"$gt": [1]}}',
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_where_link_shows_a_short_message(server, page, name):
    page.goto(f"{server.url}/?where={urllib.parse.quote(CRAFTED[name])}")
    page.locator("[data-testid='stAlert'], [data-testid='stException']").first.wait_for(timeout=WAIT_MS)
    idle(page)
    text = page.locator("body").inner_text()
    assert "Traceback" not in text
    for path in (str(ROOT), "site-packages", ".py\"", "/usr/"):
        assert path not in text, f"{path!r} is shown: {text[:2000]}"
    for alert in page.locator("[data-testid='stAlert'], [data-testid='stException']").all():
        assert len(alert.inner_text()) < 400, alert.inner_text()
