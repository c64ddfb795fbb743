"""The Map page in a real browser (Debian's chromium driven by Playwright), issue 17.

The map is computed with its button; points are coloured by label; a box dragged with the mouse
selects points (the toolbar counts them) and becomes a slice; a lasso drawn with the mouse selects
exactly the points inside it (checked against the points' screen positions read from the page) and
they are labelled with the toolbar; hovering a point previews its thumbnail; a click opens the row.
Nothing is fetched from another host. Saves docs/screenshots/map.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog
from catalog.maps import points_in_polygon
from dashboard_support import ROOT, WAIT_MS, build, idle

SHOTS = ROOT / "docs" / "screenshots"
STAGE = ".cat-map-stage"
MARGIN = 4  # pixels: no point may sit this close to the test's lasso, so the thinned lasso selects the same


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser_map") / "cat")


def screen_points(page) -> np.ndarray:
    """Every point's position on the page (CSS pixels), from the view the map is drawn with."""
    got = page.evaluate("""() => { const r = document.querySelector('.cat-map'), st = r._st, v = st.view;
        const box = r.querySelector('canvas').getBoundingClientRect(), out = [];
        for (let i = 0; i < st.n; i++) out.push([box.left + (st.xy[2*i] - v.x0) * v.s, box.top + (v.y0 - st.xy[2*i+1]) * v.s]);
        return out; }""")
    return np.array(got, dtype=np.float64)


def selected_count(page) -> int:
    text = page.locator(".st-key-toolbar").get_by_text("selected").first.inner_text(timeout=WAIT_MS)
    return int(text.split()[0].replace(",", ""))


def drag(page, path, steps=6) -> None:
    page.mouse.move(*path[0])
    page.mouse.down()
    for a, b in zip(path, path[1:]):
        for k in range(1, steps + 1):
            page.mouse.move(a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
    page.mouse.up()


def open_map(server, page, away: list) -> None:
    page.on("request", lambda r: away.append(r.url) if not r.url.startswith((server.url, "data:", "blob:")) else None)
    page.goto(f"{server.url}/map")
    page.get_by_role("button", name="Compute map").click()
    page.locator("canvas.cat-map-canvas").wait_for()
    idle(page)


def test_map_box_to_slice_lasso_to_labels_hover_and_open(server, page, catalog_db):
    away: list[str] = []
    open_map(server, page, away)
    cat = Catalog(catalog_db)
    made = cat.maps.get("shapes")
    assert len(made) == 44 and "44 points · PCA" in page.locator(".cat-map-status").inner_text()

    # colour by label: the legend lists the labels with their counts
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").nth(1).click()
    page.get_by_role("option", name="Label").click()
    page.locator(".cat-map-legend").get_by_text("circle").wait_for()
    idle(page)
    assert "no value" in page.locator(".cat-map-legend").inner_text()

    # a box around everything selects every point; it becomes a slice with the gallery's dialog
    pts = screen_points(page)
    lo, hi = pts.min(axis=0) - 10, pts.max(axis=0) + 10
    page.locator(".cat-map-tools button[data-mode='box']").click()
    drag(page, [(lo[0], lo[1]), (hi[0], hi[1])])
    page.locator(".st-key-toolbar").get_by_text("44 selected").wait_for()
    idle(page)
    assert "44 points in the box" in page.locator(".cat-map-status").inner_text()
    page.locator(".st-key-toolbar").get_by_role("button", name="Save as slice").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("from-the-map")
    dialog.get_by_role("button", name="Save slice").click()
    page.get_by_text("Slice 'from-the-map' saved").first.wait_for()
    idle(page)
    sl = Catalog(catalog_db).get_slice("from-the-map")
    assert sl is not None and len(Catalog(catalog_db).filter_row_ids(sl.query["where"])) == 44

    # a lasso (a quadrilateral drawn in small steps) around the left part of the points
    pts = screen_points(page)
    cut = float(np.median(pts[:, 0]))
    xs = np.sort(pts[:, 0])
    gaps = [(xs[i] + xs[i + 1]) / 2 for i in range(len(xs) - 1) if xs[i + 1] - xs[i] > 2 * MARGIN]
    cut = min(gaps, key=lambda g: abs(g - cut))  # a vertical edge with no point near it
    box = page.locator("canvas.cat-map-canvas").bounding_box()  # the lasso starts on the canvas
    top, bottom = max(box["y"] + 3, pts[:, 1].min() - 20), min(box["y"] + box["height"] - 3, pts[:, 1].max() + 20)
    left = max(box["x"] + 3, pts[:, 0].min() - 20)
    lasso = [(left, top), (cut, top), (cut, bottom), (left, bottom), (left, top + 1)]
    page.locator(".cat-map-tools button[data-mode='lasso']").click()
    drag(page, lasso, steps=25)
    want = int(points_in_polygon(pts, lasso).sum())
    assert 0 < want < 44
    page.locator(".st-key-toolbar").get_by_text(f"{want} selected").wait_for()
    idle(page)
    assert f"{want} points in the lasso" in page.locator(".cat-map-status").inner_text()
    page.locator(".st-key-toolbar").get_by_role("button", name="Add label").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.fill("left-side")
    page.keyboard.press("Enter")
    dialog.get_by_text(f"Gives each of the {want} selected rows").click()  # closes the option list
    dialog.get_by_role("button", name="Add labels").click()
    page.get_by_text(f"added to {want} rows").first.wait_for()
    idle(page)
    counts = Catalog(catalog_db).label_counts()
    assert counts["left-side"]["rows"] == want

    # hover previews the row's thumbnail; a click opens the row
    pts = screen_points(page)
    keys = Catalog(catalog_db).cache.load_keys(cat.get_embedding("shapes")).get(range(44))
    i = next(k for k, key in enumerate(keys) if key.endswith(".png"))
    page.locator(".cat-map-tools button[data-mode='pan']").click()
    page.mouse.move(pts[i][0] + 1, pts[i][1])
    page.mouse.move(pts[i][0], pts[i][1])
    page.locator(".cat-map-tip img").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "map.png"))
    page.mouse.click(pts[i][0], pts[i][1])
    page.get_by_role("dialog").get_by_text(keys[i]).first.wait_for()
    assert not away, f"requests to other hosts: {away}"
