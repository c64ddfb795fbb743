"""The score range in a real browser (Debian's chromium driven by Playwright): a text prompt, or a query
whose best rows score under 0.85, opens on its best rows and says so (bug: 0 rows at 0.85–1); a
histogram of every row's score sits under the slider; the first prompt says that its model is loading;
a chosen range can go back to the automatic one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog
from dashboard_support import WAIT_MS, build, idle

HEAD = ".st-key-results_head h3"


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    db = build(tmp_path_factory.mktemp("browser-range") / "cat")
    cat = Catalog(db)
    cat.compute_embeddings("all-minilm-l6-v2")  # the 8 texts, with the model shipped in a package
    texts = [r["global_key"] for r in cat.iter_datarows() if r["media_type"] == "text"]
    spread = cat.create_embedding("spread", 16)  # random vectors: no neighbour scores 0.85
    spread.import_vectors(texts, np.random.default_rng(5).standard_normal((len(texts), 16)).astype(np.float32))
    return db


def sidebar(page):
    return page.locator("[data-testid='stSidebar']")


def test_a_text_prompt_opens_on_its_best_rows_says_the_model_is_loading_and_shows_the_scores(server, page):
    page.goto(f"{server.url}/?emb=all-minilm-l6-v2")
    page.locator(HEAD, has_text=re.compile(r"^44 rows$")).first.wait_for(timeout=WAIT_MS)
    sidebar(page).get_by_text("Query by text or image").first.click()
    box = page.locator(".st-key-w_text input")
    box.fill("how to cook pasta with garlic")
    box.press("Enter")
    # the first prompt of this server loads the model (seconds): the page says so meanwhile
    page.get_by_text(re.compile(r"Loading the all-minilm-l6-v2 model")).first.wait_for(timeout=WAIT_MS)
    head = page.locator(HEAD, has_text=re.compile(r"similar rows with a score in")).first
    head.wait_for(timeout=60_000)
    idle(page)
    got = re.match(r"(\d+) similar rows with a score in (\d\.\d\d)–1\.00", head.inner_text())
    assert got and int(got.group(1)) == 8, head.inner_text()  # every text row: fewer than the best 100
    assert float(got.group(2)) < 0.85
    assert sidebar(page).get_by_text(re.compile(r"A text prompt opens on its best matches; showing all 8 rows")).count() == 1
    hist = sidebar(page).locator(".cat-hist")
    assert "Scores of all 8 rows against this query" in hist.inner_text()
    assert hist.locator(".cat-hist-bars span").count() == 50
    assert "min=" not in page.url  # the link asks for the automatic range too
    assert page.get_by_text(re.compile(r"Loading the .* model")).count() == 0


def test_a_custom_embedding_query_without_rows_at_085_opens_on_its_best_rows(server, page, catalog_db):
    anchor = Catalog(catalog_db).get_datarow("cooking-0")["id"]
    page.goto(f"{server.url}/?emb=spread&a={anchor}")
    head = page.locator(HEAD, has_text=re.compile(r"similar rows with a score in")).first
    head.wait_for(timeout=WAIT_MS)
    idle(page)
    got = re.match(r"(\d+) similar rows with a score in (\d\.\d\d)–1\.00", head.inner_text())
    assert got and int(got.group(1)) == 7 and float(got.group(2)) < 0.85, head.inner_text()
    assert sidebar(page).get_by_text(re.compile(r"No row scores 0\.85 or more")).count() == 1


def test_a_chosen_range_is_kept_and_automatic_gives_the_choice_back(server, page, catalog_db):
    anchor = Catalog(catalog_db).get_datarow("circle/red-1.png")["id"]
    page.goto(f"{server.url}/?emb=shapes&a={anchor}")
    page.locator(HEAD, has_text="score in 0.85–1.00").first.wait_for(timeout=WAIT_MS)  # rows score ≥ 0.85
    idle(page)
    hist = sidebar(page).locator(".cat-hist")
    inside = hist.locator(".cat-hist-bars span.in").count()
    assert 0 < inside < 50
    page.locator(".st-key-w_range input[type='range']").first.focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    page.locator(HEAD, has_text="score in 0.80–1.00").first.wait_for(timeout=WAIT_MS)
    page.wait_for_url(re.compile(r"min=0\.8\b"), timeout=WAIT_MS)
    idle(page)
    assert hist.locator(".cat-hist-bars span.in").count() > inside  # the bars of the range follow the slider
    sidebar(page).get_by_role("button", name="Automatic").click()
    page.locator(HEAD, has_text="score in 0.85–1.00").first.wait_for(timeout=WAIT_MS)
    page.wait_for_url(lambda url: "min=" not in url, timeout=WAIT_MS)
