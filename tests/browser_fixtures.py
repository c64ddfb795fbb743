"""Fixtures shared by the browser tests (``tests/test_browser*.py``): Debian's chromium driven by
Playwright against a real Streamlit server. A test module defines ``catalog_db`` (module scope);
``server`` serves it. The browser tests are never skipped: without /usr/bin/chromium they fail and say
how to install it."""

from __future__ import annotations

import os

import pytest

from dashboard_support import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Server


@pytest.fixture(scope="module")
def server(catalog_db, tmp_path_factory):
    """``streamlit run app.py`` on the module's catalog, stopped after the module."""
    srv = Server(catalog_db, tmp_path_factory.mktemp("logs") / "streamlit.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                    "(apt-get install -y chromium); they are not skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT_MS)
    yield pg
    ctx.close()
