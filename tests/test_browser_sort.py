"""The results' sort in a real browser (score, global key, created; both ways) on a similarity query and
on the plain listing, kept in the address (``sort=``) across a reload; and, for "Any" with two anchors,
each card naming the anchor it matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import Catalog, Page, SearchSpec
from dashboard_support import WAIT_MS, build, idle, wait_heading

TIE = 1e-3  # anchors closer than this for a row may be named either way (float32 sums in any order)


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sort") / "cat")


def card_keys(page) -> list[str]:
    """The global keys of the gallery's cards, in the order shown."""
    return page.locator(".cat-grid .cat-meta code").evaluate_all("els => els.map(e => e.title)")


def options(page) -> list[str]:
    page.locator(".st-key-w_order").click()
    shown = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [o.strip() for o in shown]


def chosen(page) -> str:
    """The sort control's shown value (the selectbox's input, or its text)."""
    box = page.locator(".st-key-w_order")
    inp = box.locator("input")
    text = inp.first.input_value() if inp.count() else ""
    return (text or box.inner_text()).strip()


def choose(page, name: str) -> None:
    page.locator(".st-key-w_order").click()
    page.get_by_role("option", name=name, exact=True).click()


def wait_order(page, descending: bool) -> list[str]:
    """Wait (bounded) until the cards' keys are sorted that way; returns them."""
    cmp = "k[i] >= k[i + 1]" if descending else "k[i] <= k[i + 1]"
    page.wait_for_function(
        "() => { const k = [...document.querySelectorAll('.cat-grid .cat-meta code')].map(e => e.title);"
        f" if (k.length < 2) return false; for (let i = 0; i + 1 < k.length; i++) if (!({cmp})) return false;"
        " return true; }", timeout=WAIT_MS)
    idle(page)
    return card_keys(page)


def test_global_key_z_to_a_on_a_similarity_query(server, page, catalog_db):
    cat = Catalog(catalog_db)
    red = cat.get_datarow("circle/red-0.png")["id"]
    page.goto(f"{server.url}/?emb=shapes&a={red}&min=0.5")
    wait_heading(page, r"similar rows with a score in 0\.50–1\.00")
    want = cat.search(SearchSpec("shapes", anchors=[red], min_score=0.5), Page(None))
    by_score = card_keys(page)
    assert by_score == [h.global_key for h in want.results][:48]
    assert by_score != sorted(by_score, reverse=True)  # the test shows a change
    assert options(page) == ["Best score first", "Lowest score first", "Global key A–Z", "Global key Z–A",
                             "Newest", "Oldest", "Most unique first", "Least unique first"]
    choose(page, "Global key Z–A")
    got = wait_order(page, descending=True)
    assert sorted(got) == sorted(by_score) and got == sorted(by_score, reverse=True)  # same rows, new order
    wait_heading(page, rf"^{want.total} similar rows")  # the total does not change
    assert "sort=global_key" in page.url and "order=asc" not in page.url  # desc: the default direction
    page.reload()
    assert wait_order(page, descending=True) == got
    assert chosen(page) == "Global key Z–A"
    choose(page, "Best score first")
    page.wait_for_function("() => !location.search.includes('sort=')", timeout=WAIT_MS)
    idle(page)
    assert card_keys(page) == by_score


def test_global_key_z_to_a_on_the_listing(server, page, catalog_db):
    cat = Catalog(catalog_db)
    everything = sorted(r["global_key"] for r in cat.iter_datarows())
    page.goto(server.url)
    wait_heading(page, rf"^{len(everything)} rows$")
    assert card_keys(page) == everything[:48]
    assert options(page) == ["Global key A–Z", "Global key Z–A", "Newest", "Oldest"]  # no score without a query
    choose(page, "Global key Z–A")
    got = wait_order(page, descending=True)
    assert got == sorted(everything, reverse=True)[:48]
    assert "sort=global_key" in page.url
    page.reload()
    wait_heading(page, rf"^{len(everything)} rows$")
    assert wait_order(page, descending=True) == got
    choose(page, "Global key A–Z")
    page.wait_for_function("() => !location.search.includes('sort=')", timeout=WAIT_MS)
    assert wait_order(page, descending=False) == everything[:48]


def test_any_of_two_anchors_names_the_anchor_each_card_matches(server, page, catalog_db):
    cat = Catalog(catalog_db)
    a_key, b_key = "circle/red-0.png", "square/blue-0.png"
    a, b = cat.get_datarow(a_key)["id"], cat.get_datarow(b_key)["id"]
    score = {k: {h.global_key: h.score for h in cat.search(SearchSpec("shapes", anchors=[k], min_score=0.0),
                                                             Page(None)).results}
             for k in (a_key, b_key)}
    page.goto(f"{server.url}/?emb=shapes&a={a}&a={b}&agg=max&min=0.0")
    wait_heading(page, r"similar rows with a score in 0\.00–1\.00")
    cards = page.locator(".cat-grid .cat-card")
    n = cards.count()
    assert n > 10
    named = {a_key: 0, b_key: 0}
    for i in range(n):
        card = cards.nth(i)
        key = card.locator(".cat-meta code").get_attribute("title")
        matched = card.locator(".cat-matched code").inner_text()
        assert card.locator(".cat-matched").inner_text().startswith("matches ")
        assert matched in (a_key, b_key)
        sa, sb = score[a_key][key], score[b_key][key]
        if abs(sa - sb) > TIE:
            assert matched == (a_key if sa > sb else b_key), key
            named[matched] += 1
    assert named[a_key] >= 2 and named[b_key] >= 2  # e.g. the other red circles, the other blue squares
    assert card_by_key(page, "circle/red-1.png") == a_key
    assert card_by_key(page, "square/blue-2.png") == b_key
    # "Mean" combines the anchors into one query: no card names an anchor
    page.goto(f"{server.url}/?emb=shapes&a={a}&a={b}&min=0.0")
    wait_heading(page, r"similar rows")
    assert page.locator(".cat-grid .cat-card").count() > 10
    assert page.locator(".cat-matched").count() == 0


def card_by_key(page, key: str) -> str:
    box = page.locator(f".cat-grid .cat-card:has(code[title='{key}'])")
    return box.locator(".cat-matched code").inner_text()


def test_grouping_shows_one_card_per_group_with_its_size(server, page, catalog_db):
    cat = Catalog(catalog_db)
    keys = [r["global_key"] for r in cat.iter_datarows() if r["media_type"] == "image"]
    colours = {k.split("/")[1].split("-")[0] for k in keys}  # "circle/red-0.png": red, as a product id
    for colour in colours:
        cat.set_metadata({"product": colour}, ids=[k for k in keys if f"/{colour}-" in k])
    red = cat.get_datarow("circle/red-0.png")["id"]
    want = cat.search(SearchSpec("shapes", anchors=[red], min_score=0.0, group_by="product"), Page(None))
    assert 1 < want.total < len(keys)
    page.goto(f"{server.url}/?emb=shapes&a={red}&min=0&group=product")
    wait_heading(page, rf"^{want.total} groups by product with a score in 0\.00–1\.00")
    assert card_keys(page) == [h.global_key for h in want.results]
    sizes = page.locator(".cat-grid .cat-group").all_inner_texts()
    assert sizes == [f"{h.group_size:,} in group" for h in want.results]
    box = page.locator(".st-key-w_group")
    box.click()
    page.get_by_role("option", name="No grouping", exact=True).click()
    page.wait_for_function("() => !location.search.includes('group=')", timeout=WAIT_MS)
    wait_heading(page, r"similar rows with a score in 0\.00–1\.00")
