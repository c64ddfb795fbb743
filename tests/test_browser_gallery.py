"""The gallery in a real browser: pagers above and below with "rows a–b of n", back to the top on a new
page, shift-click range selection and the highlighted selected cards, labeling the selection from the
toolbar, the score sort, and the light and dark themes (the system's preference). Saves
docs/screenshots/dark.png."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog import Catalog
from dashboard_support import ROOT, WAIT_MS, build, idle, wait_heading

SHOTS = ROOT / "docs" / "screenshots"
PRIMARY = {"light": (79, 70, 229), "dark": (129, 140, 248)}  # .streamlit/config.toml


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gallery") / "cat"
    db = build(folder)
    notes = folder / "notes.ndjson"
    notes.write_text("".join(json.dumps({"global_key": f"zz-{i:03d}", "text": f"note number {i}"}) + "\n"
                             for i in range(60)))
    Catalog(db).import_datarows([notes])  # 104 rows: three pages of 48
    return db


def caption(page) -> str:
    return page.locator(".st-key-results_head [data-testid='stCaptionContainer']").first.inner_text()


def wait_caption(page, text: str) -> None:
    page.locator(".st-key-results_head [data-testid='stCaptionContainer']", has_text=text).wait_for(timeout=WAIT_MS)
    idle(page)


def rgb(css: str) -> tuple[float, ...]:
    return tuple(float(x) for x in re.findall(r"[\d.]+", css)[:3])


def luminance(c) -> float:
    def ch(v):
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (ch(v) for v in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def style(page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate(f"e => getComputedStyle(e).{prop}")


def test_pagers_top_and_bottom_rows_span_and_back_to_top(server, page, catalog_db):
    page.goto(server.url)
    wait_heading(page, r"^104 rows$")
    assert caption(page).startswith("rows 1–48 of 104")
    top, bottom = page.locator(".st-key-w_page_top"), page.locator(".st-key-pager")
    top.wait_for()
    bottom.wait_for()
    # the bottom pager: the next page opens at the top of the results, not at the bottom of the page
    bottom.get_by_role("button", name="Next page").click()
    wait_caption(page, "rows 49–96 of 104")
    page.wait_for_function("() => { const r = document.querySelector('.st-key-results_head').getBoundingClientRect();"
                           " return r.top >= 0 && r.top < window.innerHeight; }", timeout=WAIT_MS)
    assert "page=2" in page.url
    first = page.locator(".cat-grid .cat-box").first.get_attribute("data-row")
    assert first == Catalog(catalog_db).list_datarows(limit=1, offset=48)[0]["id"]
    assert top.locator("[data-testid='stPaginationPageActive']").inner_text() == "2"  # both pagers agree

    top.get_by_role("button", name="Next page").click()
    wait_caption(page, "rows 97–104 of 104")
    assert page.locator(".cat-grid .cat-box").count() == 8
    assert bottom.locator("[data-testid='stPaginationPageActive']").inner_text() == "3"


def test_shift_click_selects_a_range_highlighted_and_labels_it_from_the_toolbar(server, page, catalog_db):
    cat = Catalog(catalog_db)
    page.goto(server.url)
    wait_heading(page, r"^104 rows$")
    boxes, cards = page.locator(".cat-grid .cat-select"), page.locator(".cat-grid .cat-box")
    keys = [r["global_key"] for r in cat.list_datarows(limit=48)]
    start, end = keys.index("cooking-0"), keys.index("cooking-3")
    boxes.nth(start).click()
    page.get_by_text("1 selected", exact=True).wait_for()
    idle(page)
    boxes.nth(end).click(modifiers=["Shift"])
    page.get_by_text("4 selected", exact=True).wait_for()
    idle(page)
    ticked = [i for i in range(cards.count()) if "cat-selected" in (cards.nth(i).get_attribute("class") or "")]
    assert ticked == list(range(start, end + 1))
    assert all(page.locator(".cat-grid input[data-select]").nth(i).is_checked() for i in ticked)
    border = cards.nth(start).evaluate("e => getComputedStyle(e).borderTopColor")
    assert rgb(border) == PRIMARY["light"]
    assert rgb(cards.nth(start - 1).evaluate("e => getComputedStyle(e).borderTopColor")) != PRIMARY["light"]

    # Add label: one library call for the whole selection
    page.get_by_role("button", name="Add label").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.fill("food")
    page.keyboard.press("Enter")
    dialog.get_by_text("Gives each of the 4 selected rows").click()  # closes the option list
    dialog.get_by_role("button", name="Add labels").click()
    dialog.wait_for(state="detached", timeout=WAIT_MS)
    page.get_by_text("“food” added to 4 rows (4 new)").wait_for()
    idle(page)
    got = cat.get_labels([f"cooking-{i}" for i in range(4)])
    assert all("food" in [lab["label"] for lab in labs] for labs in got.values())
    assert page.locator(".cat-grid .cat-label", has_text="food").count() == 4
    assert page.get_by_text("4 selected", exact=True).count() == 1  # the selection stays for the next step

    # Remove label: offers the labels the selection carries
    page.get_by_role("button", name="Remove label").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.click()
    options = [o.inner_text() for o in page.get_by_role("option").all()]
    assert "food" in options and "cooking" in options and "circle" not in options
    page.get_by_role("option", name="food").click()
    dialog.get_by_text("Removes the labels").click()
    dialog.get_by_role("button", name="Remove labels").click()
    dialog.wait_for(state="detached", timeout=WAIT_MS)
    page.get_by_text("4 labels removed (“food”)").wait_for()
    idle(page)
    got = cat.get_labels([f"cooking-{i}" for i in range(4)])
    assert not any("food" in [lab["label"] for lab in labs] for labs in got.values())

    # a shift-click that unticks takes the range out again
    boxes.nth(start).click(modifiers=["Shift"])
    page.get_by_text("No rows selected", exact=True).wait_for()
    idle(page)
    assert page.locator(".cat-grid .cat-box.cat-selected").count() == 0


def scores(page) -> list[float]:
    return [float(t) for t in page.locator(".cat-grid .cat-meta .cat-badge").all_inner_texts()]


def test_sort_by_score_both_ways(server, page, catalog_db):
    red = Catalog(catalog_db).get_datarow("circle/red-1.png")["id"]
    page.goto(server.url)
    wait_heading(page, r"^104 rows$")
    page.locator(f"button[data-similar='{red}']").click()
    wait_heading(page, r"similar rows")
    thumb = page.locator(".st-key-w_range input[type='range']").first
    thumb.focus()
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    wait_heading(page, r"0\.65–1\.00")
    best = scores(page)
    assert len(best) > 3 and best == sorted(best, reverse=True)
    page.locator(".st-key-w_order").click()
    page.get_by_role("option", name="Lowest score first").click()
    page.wait_for_function("() => { const b = [...document.querySelectorAll('.cat-grid .cat-meta .cat-badge')]"
                           ".map(e => parseFloat(e.innerText)); return b.length > 1 && b[0] < b[b.length - 1]; }",
                           timeout=WAIT_MS)
    idle(page)
    low = scores(page)
    assert low == sorted(best)
    assert "order=asc" in page.url  # the order is part of the search (and of a shared link)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_follows_the_system_theme_and_cards_stay_readable(server, browser, scheme):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme=scheme)
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url)
        wait_heading(page, r"^104 rows$")
        background = rgb(style(page, ".stApp", "backgroundColor"))
        if scheme == "dark":
            assert luminance(background) < 0.05
        else:
            assert luminance(background) > 0.9
        text = rgb(style(page, ".cat-text", "color"))
        assert contrast(text, background) >= 7
        for sel in (".cat-meta code", ".cat-label", ".cat-similar", ".cat-novector"):
            assert contrast(rgb(style(page, sel, "color")), background) >= 3.5, sel
        heading = rgb(style(page, ".st-key-results_head h3", "color"))
        assert contrast(heading, background) >= 7
        page.locator(".cat-grid .cat-select").first.click()
        page.get_by_text("1 selected", exact=True).wait_for()
        idle(page)
        assert rgb(style(page, ".cat-box.cat-selected", "borderTopColor")) == PRIMARY[scheme]
        if scheme == "dark":
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.mouse.move(1, 1)
            page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=WAIT_MS)
            page.screenshot(path=str(SHOTS / "dark.png"))
    finally:
        ctx.close()
