"""The row detail view in a real browser: a click on a card's image or text opens it; its fields,
metadata, labels (added and removed there, through the library), vectors, previous/next and
*Find similar*. Saves docs/screenshots/row_detail.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import Catalog
from dashboard_support import ROOT, WAIT_MS, build, idle, wait_heading

SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("row_detail") / "cat")


def labels_of(db, key: str) -> list[str]:
    cat = Catalog(db)
    rid = cat.get_datarow(key)["id"]
    return [lab["label"] for lab in cat.get_labels([rid])[rid]]


def open_row(page, row_id: str):
    page.locator(f".cat-card[data-open='{row_id}']").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("table.cat-row-fields").wait_for()
    idle(page)
    return dialog


def close_dropdown(dialog) -> None:
    """Close a multiselect's open list (it hides the rest of the dialog from the accessibility tree)."""
    dialog.locator("table.cat-row-fields").click()


def field(dialog, name: str) -> str:
    return dialog.locator("table.cat-row-fields tr", has_text=name).locator("td").nth(1).inner_text()


def test_image_row_detail_edit_labels_navigate_and_find_similar(server, page, catalog_db):
    cat = Catalog(catalog_db)
    red = cat.get_datarow("circle/red-0.png")
    order = [r["id"] for r in cat.list_datarows(limit=48)]
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    dialog = open_row(page, red["id"])
    assert field(dialog, "Global key") == "circle/red-0.png"
    assert field(dialog, "Id") == red["id"]
    assert field(dialog, "Media type") == "image"
    assert field(dialog, "Created").startswith(red["created_at"][:10])
    img = dialog.locator(".st-key-row_detail_media img")
    img.wait_for()
    assert img.evaluate("i => i.naturalWidth") >= 150  # the original size (160 px), not the gallery's thumbnail
    labels = dialog.locator("table.cat-row-labels tbody tr")
    assert labels.count() == 1
    assert [labels.nth(0).locator("td").nth(i).inner_text() for i in range(4)] == ["circle", "manual", "", "yes"]
    vectors = dialog.locator("table.cat-vectors tr", has_text="shapes").locator("td")
    assert vectors.nth(2).inner_text() == "yes"
    assert "No metadata." in dialog.inner_text()

    # add a new label (typed) and an existing one (picked), then remove one: written by the library
    add = dialog.locator(".st-key-row_detail_add input")
    add.fill("favourite")
    page.keyboard.press("Enter")
    add.fill("sq")
    page.get_by_role("option", name="square").click()
    close_dropdown(dialog)
    dialog.get_by_role("button", name="Add", exact=True).click()
    dialog.locator("table.cat-row-labels td", has_text="favourite").wait_for()
    idle(page)
    assert labels_of(catalog_db, "circle/red-0.png") == ["circle", "favourite", "square"]
    assert page.get_by_role("dialog").count() == 1  # the dialog stays open
    page.locator(f".cat-box[data-row='{red['id']}'] .cat-label", has_text="favourite").wait_for()  # the card too

    remove = dialog.locator(".st-key-row_detail_remove input")
    remove.click()
    page.get_by_role("option", name="square").click()
    close_dropdown(dialog)
    dialog.get_by_role("button", name="Remove", exact=True).click()
    page.wait_for_function("() => ![...document.querySelectorAll('table.cat-row-labels td')]"
                           ".some(td => td.innerText === 'square')", timeout=WAIT_MS)
    idle(page)
    assert labels_of(catalog_db, "circle/red-0.png") == ["circle", "favourite"]
    dialog.locator("table.cat-row-fields").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)
    page.screenshot(path=str(SHOTS / "row_detail.png"))

    # previous / next walk the page's rows in its order
    at = order.index(red["id"])
    dialog.get_by_role("button", name="Next").click()
    page.get_by_role("dialog").locator("table.cat-row-fields td", has_text=cat.get_datarows([order[at + 1]])[0]
                                       ["global_key"]).wait_for()
    idle(page)
    assert f"{at + 2} of 44 on this page" in page.get_by_role("dialog").inner_text()
    page.get_by_role("dialog").get_by_role("button", name="Previous").click()
    page.get_by_role("dialog").locator("table.cat-row-fields td", has_text="circle/red-0.png").wait_for()
    idle(page)

    # Find similar: this row is the only anchor, the dialog closes
    page.get_by_role("dialog").get_by_role("button", name="Find similar").click()
    assert wait_heading(page, r"similar rows").startswith("2 similar rows")
    page.get_by_role("dialog").wait_for(state="detached", timeout=WAIT_MS)
    assert page.locator(".st-key-anchors_panel img").count() == 1
    assert f"a={red['id']}" in page.url


def test_text_row_shows_full_text_and_metadata(server, page, catalog_db):
    cat = Catalog(catalog_db)
    row = cat.get_datarow("cooking-2")
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    dialog = open_row(page, row["id"])
    assert field(dialog, "Media type") == "text"
    assert dialog.locator(".st-key-row_detail_text").inner_text().strip() == row["row_data"]
    meta = dialog.locator("table.cat-row-meta tbody tr")
    assert [meta.nth(0).locator("td").nth(i).inner_text() for i in range(2)] == ["topic", "cooking"]
    assert "No labels yet." in dialog.inner_text()
    assert dialog.locator(".st-key-row_detail_remove").count() == 0
    # dismissing it (the close button) keeps it closed across reruns
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached", timeout=WAIT_MS)
    page.locator(".cat-grid .cat-select").first.click()
    page.get_by_text("1 selected", exact=True).wait_for()
    idle(page)
    assert page.get_by_role("dialog").count() == 0


def test_markup_in_values_is_shown_as_text(server, page, catalog_db):
    cat = Catalog(catalog_db)
    cat.set_metadata({"note": "<b>bold</b> **star**"}, ids=[cat.get_datarow("sports-1")["id"]])
    cat.set_labels("sports-1", ["<i>x</i>"])
    page.goto(server.url)
    wait_heading(page, r"^44 rows$")
    dialog = open_row(page, cat.get_datarow("sports-1")["id"])
    assert dialog.locator("table.cat-row-meta td", has_text="<b>bold</b> **star**").count() == 1
    assert dialog.locator("table.cat-row-labels td", has_text="<i>x</i>").count() == 1
    assert dialog.locator("table.cat-row-meta b, table.cat-row-labels i").count() == 0
