"""A catalog on a read-only file system, opened in the dashboard (a real server, Debian's chromium): the
gallery, its thumbnails and similarity search work (the vector cache and the thumbnails go to private
temporary folders), and a write says in one line that the catalog is read-only, changing nothing.

The read-only disk is a small tmpfs remounted read-only (CI runs as root). Where mounting is refused the
module is skipped and says why."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from catalog import Catalog
from dashboard_support import WAIT_MS, build, idle, wait_heading


def _sh(*args) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True)


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    point = tmp_path_factory.mktemp("ro") / f"fs-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    done = _sh("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        db = build(point / "cat")
        done = _sh("mount", "-o", "remount,ro", str(point))
        assert done.returncode == 0, done.stderr
        yield db
    finally:
        _sh("umount", "-l", str(point))


def test_a_read_only_catalog_browses_searches_and_refuses_writes_in_one_line(server, page, catalog_db):
    folder = catalog_db.parent
    before = sorted(p.name for p in folder.iterdir())
    labels_before = Catalog(catalog_db).get_labels()
    page.goto(server.url)
    wait_heading(page, r"^\d+ rows$")
    idle(page)
    srcs = page.eval_on_selector_all(".cat-grid img", "els => els.map(e => e.getAttribute('src') || '')")
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs), srcs[:3]  # real thumbnails

    page.locator("button[data-similar]").first.click()  # similarity search
    page.locator(".st-key-results_head h3", has_text=re.compile(r"similar rows")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Read-only file system" not in body
    assert page.locator(".cat-grid .cat-box").count() > 0

    page.locator(".cat-grid .cat-select").first.click()  # a write: add a label to one row
    page.get_by_text("1 selected", exact=True).wait_for()
    idle(page)
    page.get_by_role("button", name="Add label").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.fill("blocked")
    page.keyboard.press("Enter")
    dialog.get_by_text("Gives each of the 1 selected rows").click()
    dialog.get_by_role("button", name="Add labels").click()
    page.get_by_text("the catalog file is read-only", exact=False).first.wait_for(timeout=WAIT_MS)
    idle(page)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body
    assert Catalog(catalog_db).get_labels() == labels_before
    assert sorted(p.name for p in folder.iterdir()) == before
