"""The label-by-similarity page's state in a real browser (Debian's chromium driven by Playwright):
its parameters survive a visit to another page, a change of the rows to label drops the review list
of the old rows, and the evaluation says so when the labeled pool changed after it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard_support import build, idle


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-labeling") / "cat")


def k_box(page):
    return page.locator(".st-key-lbs_k input").first


def test_parameters_survive_another_page(server, page):
    page.goto(f"{server.url}/labeling")
    k_box(page).wait_for()
    idle(page)
    k_box(page).fill("3")
    k_box(page).press("Enter")
    idle(page)
    page.get_by_role("link", name="Slices").first.click()
    page.get_by_role("heading", name="Slices").first.wait_for()
    idle(page)
    page.get_by_role("link", name="Label by similarity").first.click()
    k_box(page).wait_for()
    idle(page)
    assert k_box(page).input_value() == "3"


def test_a_new_row_source_drops_the_old_review_list(server, page):
    page.goto(f"{server.url}/labeling")
    page.get_by_role("button", name="Suggest labels").click()
    page.get_by_text(re.compile(r"^Review \d+ rows")).first.wait_for()
    idle(page)
    page.locator(".st-key-lbs_source").get_by_text("Selected rows").first.click()  # nothing is selected here
    page.get_by_text(re.compile(r"no rows are selected")).first.wait_for()
    idle(page)
    assert page.get_by_text(re.compile(r"^Review \d+ rows")).count() == 0
    assert page.get_by_role("button", name=re.compile(r"^Apply to")).count() == 0


def test_the_evaluation_says_when_the_pool_changed(server, page):
    page.goto(f"{server.url}/labeling")
    page.get_by_text(re.compile(r"How well will it work")).first.click()
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_text("Labeled rows in the pool").first.wait_for()
    idle(page)
    page.get_by_role("button", name="Suggest labels").click()
    page.get_by_role("button", name=re.compile(r"^Apply to \d+ rows")).click()
    page.get_by_text(re.compile(r"labels saved as reviewed")).first.wait_for()
    idle(page)
    page.get_by_text("The labeled pool changed since this evaluation; evaluate again.").first.wait_for()
