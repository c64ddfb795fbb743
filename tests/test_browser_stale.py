"""No stale part of an earlier run shows inside another part (bug: a gallery drawn inside the anchors
panel when the score slider moved ~0.4 s after *Similar*). The catalog page keeps fixed places for what
comes and goes (notices, the anchors panel, the results), so a run interrupted by the slider never leaves
an old gallery where the new anchors panel is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard_support import WAIT_MS, build, idle


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("browser-stale") / "cat")


@pytest.mark.parametrize("delay_ms", [0, 300])
def test_moving_the_slider_right_after_similar_leaves_no_gallery_in_the_anchors_panel(server, page, delay_ms):
    page.goto(server.url)
    page.locator(".st-key-results_head h3", has_text=re.compile(r"^44 rows$")).first.wait_for(timeout=WAIT_MS)
    idle(page)
    page.locator("button.cat-similar").first.click()
    # the slider is enabled as soon as the run after *Similar* has drawn the sidebar, while it still
    # draws the results: move it then (and a little later)
    page.wait_for_function("() => { const r = document.querySelector('.st-key-w_range input[type=range]');"
                           " return r && !r.disabled; }", timeout=WAIT_MS, polling=20)
    page.wait_for_timeout(delay_ms)
    page.locator(".st-key-w_range input[type='range']").first.focus()
    page.keyboard.press("ArrowLeft")
    page.locator(".st-key-anchors_panel").first.wait_for(timeout=WAIT_MS)
    idle(page)
    page.wait_for_timeout(1500)  # the runs that follow have had their time
    idle(page)
    assert page.locator(".st-key-anchors_panel .cat-grid").count() == 0, "a gallery is drawn inside the anchors panel"
    assert page.locator(".cat-grid").count() == 1
    assert page.locator(".st-key-anchors_panel .st-key-results_head").count() == 0
    assert page.locator(".st-key-results_head h3").count() == 1

