"""The sidebar's filter in a real browser (Debian's chromium driven by Playwright): the pickers and the
JSON box are two parts of one filter. Apply replaces the filter (never adds a copy), a picker's
condition is never copied into the box, changing a picker changes the filter (Texts → Images shows
the images, not 0 rows), Clear resets pickers and box, and a shared ``?where=`` is split back into
the pickers and the box with each condition once in the address."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
from dashboard_support import WAIT_MS, build, heading, idle, wait_heading


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-filters") / "cat")  # 36 images, 8 texts (topic metadata)


def sidebar(page):
    return page.locator("[data-testid='stSidebar']")


def open_filters(page) -> None:
    if not page.locator(".st-key-w_media").is_visible():
        sidebar(page).get_by_text("Filters", exact=True).first.click()
    page.locator(".st-key-w_media").wait_for(timeout=WAIT_MS)


def pick(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key} button", has_text=re.compile(rf"^{re.escape(option)}$")).first.click()


def picked(page, key: str) -> str:
    # the checked option with its text (a control being redrawn briefly has neither)
    # (text_content: Streamlit may keep a hidden copy of a control while it redraws; its text is read too)
    return (page.locator(f".st-key-{key} button[aria-checked='true']", has_text=re.compile(r"\S")).first
            .text_content() or "").strip()


def settled(page, key: str, option: str) -> str:
    """The checked option of ``key`` once it shows ``option`` (bounded wait: after a rerun the control is
    redrawn, and reading it once may catch it empty); returns what is checked then."""
    page.locator(f".st-key-{key} button[aria-checked='true']",
                 has_text=re.compile(rf"^{re.escape(option)}$")).first.wait_for(state="attached", timeout=WAIT_MS)
    return picked(page, key)


def apply(page, before: str) -> str:
    """Press Apply and wait for the heading to change from ``before`` (bounded); returns the new heading."""
    sidebar(page).get_by_role("button", name="Apply").click()
    page.wait_for_function("(before) => { const h = document.querySelector('.st-key-results_head h3');"
                           " return h && h.innerText !== before; }", arg=before, timeout=WAIT_MS)
    idle(page)
    return heading(page)


def apply_again(page) -> None:
    """Press Apply with nothing changed (the heading stays): wait for that run to finish."""
    sidebar(page).get_by_role("button", name="Apply").click()
    page.wait_for_timeout(500)
    idle(page)


def json_box(page) -> str:
    return page.locator(".st-key-w_where_json textarea").input_value()


def url_where(page) -> dict | None:
    got = parse_qs(urlparse(page.url).query).get("where")
    return json.loads(got[0]) if got else None


def flat(where) -> list[str]:
    """The conditions a filter ANDs together, each as canonical JSON (``$and`` opened up)."""
    out: list[str] = []
    for key, cond in (where or {}).items():
        if key == "$and":
            for c in cond:
                out.extend(flat(c))
        else:
            out.append(json.dumps({key: cond}, sort_keys=True))
    return out


def test_changing_media_type_replaces_the_filter(server, page):
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    open_filters(page)
    pick(page, "w_media", "Texts")
    assert apply(page, "44 rows") == "8 rows match the filter"
    assert picked(page, "w_media") == "Texts"
    box_after_texts = json_box(page)

    pick(page, "w_media", "Images")
    assert apply(page, "8 rows match the filter") == "36 rows match the filter"  # the images, not 0 rows
    assert picked(page, "w_media") == "Images"
    assert "media_type" not in box_after_texts, "the picker's condition is not copied into the JSON box"
    assert "media_type" not in json_box(page)
    page.wait_for_url(re.compile(r"where="), timeout=WAIT_MS)
    where = url_where(page)
    assert json.dumps(where).count("media_type") == 1
    assert where == {"media_type": "image"}


def test_apply_twice_keeps_each_condition_once_and_a_metadata_change_replaces_it(server, page):
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    open_filters(page)
    pick(page, "w_media", "Texts")
    page.locator(".st-key-w_where_json textarea").fill('{"topic": "sports"}')
    assert apply(page, "44 rows") == "4 rows match the filter"
    apply_again(page)
    assert heading(page) == "4 rows match the filter"
    where = url_where(page)
    assert sorted(flat(where)) == sorted(set(flat(where))) == ['{"media_type": "text"}', '{"topic": "sports"}']
    # the metadata condition is shown by the metadata picker, not repeated in the box
    assert page.locator(".st-key-w_meta_value input").input_value() == "sports"
    assert json_box(page).strip() == ""

    page.locator(".st-key-w_meta_value input").fill("cooking")  # topic = sports -> cooking: not 0 rows
    page.locator(".st-key-w_meta_value input").press("Tab")
    apply_again(page)  # the count stays 4 (the cooking texts): wait for the address instead
    page.wait_for_function("() => decodeURIComponent(location.search).includes('cooking')", timeout=WAIT_MS)
    idle(page)
    assert heading(page) == "4 rows match the filter"
    assert sorted(flat(url_where(page))) == ['{"media_type": "text"}', '{"topic": "cooking"}']


def test_clear_resets_the_pickers_and_the_box(server, page):
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    open_filters(page)
    pick(page, "w_media", "Images")
    pick(page, "w_labeled", "Labeled")
    page.locator(".st-key-w_where_json textarea").fill('{"global_key": {"$prefix": "circle/"}}')
    assert apply(page, "44 rows") == "4 rows match the filter"
    sidebar(page).get_by_role("button", name="Clear").click()
    assert wait_heading(page, r"^44 rows$") == "44 rows"
    open_filters(page)
    assert settled(page, "w_media", "All") == "All"
    assert settled(page, "w_labeled", "Any") == "Any"
    assert json_box(page).strip() == ""
    assert page.locator(".st-key-w_label input").input_value() == ""
    assert page.locator(".st-key-w_meta_value input").input_value() == ""
    assert url_where(page) is None


def test_a_shared_where_is_split_into_the_pickers_and_the_box(server, page):
    where = {"$and": [{"media_type": "image"}, {"media_type": "image"}, {"global_key": {"$prefix": "circle/"}}]}
    page.goto(f"{server.url}/?where={quote(json.dumps(where))}")
    assert wait_heading(page, r"rows match the filter") == "12 rows match the filter"
    open_filters(page)
    assert picked(page, "w_media") == "Images"
    assert json.loads(json_box(page)) == {"global_key": {"$prefix": "circle/"}}
    page.wait_for_function("() => (decodeURIComponent(location.search).match(/media_type/g) || []).length === 1",
                           timeout=WAIT_MS)
    assert sorted(flat(url_where(page))) == ['{"global_key": {"$prefix": "circle/"}}', '{"media_type": "image"}']
