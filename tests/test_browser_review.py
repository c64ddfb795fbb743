"""Label-by-similarity review in a real browser: ticks and unticks survive paging, and Apply saves exactly
what is ticked on every page (issue 12, bug 1: an unticked suggestion came back ticked after paging and
was saved as reviewed).

The catalog is built here: 3 classes of text rows under a custom embedding (the class one-hot plus a
little noise), 4 labeled rows per class and 50 unlabeled ones, so that with the page's defaults (k = 10,
threshold 30 %, 50 rows per batch) every unlabeled row gets its class suggested (score ≈ 4/10) and the
review list has 5 pages of 10 rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog
from dashboard_support import WAIT_MS, idle

CLASSES = ("alpha", "beta", "gamma")
LABELED_PER_CLASS = 4
UNLABELED = 50
DIMS = 8


def _build(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = folder / "texts.ndjson"
    keys: list[tuple[str, int, bool]] = []  # (global_key, class, labeled)
    for c, name in enumerate(CLASSES):
        keys += [(f"{name}-seed-{i}", c, True) for i in range(LABELED_PER_CLASS)]
    keys += [(f"row-{i:02d}", i % len(CLASSES), False) for i in range(UNLABELED)]
    with open(records, "w") as fh:
        for key, c, _ in keys:
            fh.write(json.dumps({"global_key": key, "text": f"a {CLASSES[c]} text ({key})",
                                 "metadata": {"cls": CLASSES[c]}}) + "\n")
    db = folder / "catalog.duckdb"
    cat = Catalog(db)
    cat.import_datarows([records])
    rng = np.random.default_rng(12)
    vecs = np.zeros((len(keys), DIMS))
    for i, (_, c, _) in enumerate(keys):
        vecs[i, c] = 1.0
    vecs[:, len(CLASSES):] = rng.normal(scale=0.05, size=(len(keys), DIMS - len(CLASSES)))
    cat.create_embedding("classes", DIMS).import_vectors([k for k, _, _ in keys], vecs)
    for key, c, labeled in keys:
        if labeled:
            cat.set_labels(key, [CLASSES[c]])
    return db


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("review") / "cat")


ROW_KEY = re.compile(r"\bst-key-lbs_row_\d+_(\S+)")


def review_rows(page):
    return page.locator("[class*='st-key-lbs_row_']")


def row_ids(page) -> list[str]:
    """The ids of the rows on the review page shown now (from their containers' keys)."""
    rows = review_rows(page)
    return [ROW_KEY.search(rows.nth(i).get_attribute("class")).group(1) for i in range(rows.count())]


def goto_page(page, n: int) -> list[str]:
    """Click page ``n`` of the review list; wait until its rows replace the ones shown; their ids."""
    before = row_ids(page)[0]
    page.get_by_role("button", name=f"Page {n}", exact=True).click()
    page.locator("[data-testid='stPaginationPageActive']", has_text=re.compile(rf"^{n}$")).wait_for()
    page.wait_for_function(
        "(id) => { const r = document.querySelector(\"[class*='st-key-lbs_row_']\");"
        " return r && !r.className.includes('_' + id); }", arg=before, timeout=WAIT_MS)
    idle(page)
    return row_ids(page)


def box(page, row_id: str, label: str, name: str | None = None):
    """The checkbox of ``label`` on the row (a suggestion reads "label · 40%", an added one "label · added")."""
    row = page.locator(f"[class*='st-key-lbs_row_'][class*='_{row_id}']")
    return row.get_by_role("checkbox", name=re.compile(name or rf"^{re.escape(label)} · \d+%"))


def add_label(page, row_id: str, label: str) -> None:
    row = page.locator(f"[class*='st-key-lbs_row_'][class*='_{row_id}']")
    field = row.get_by_placeholder("add a label, Enter")
    field.fill(label)
    field.press("Enter")
    added = box(page, row_id, label, rf"^{re.escape(label)} · added")
    added.wait_for()
    idle(page)
    assert added.is_checked()


def untick(page, row_id: str, label: str, name: str | None = None) -> None:
    b = box(page, row_id, label, name)
    assert b.is_checked(), f"{label} on {row_id} should start ticked (suggested)"
    b.locator("xpath=ancestor::label[1]").click()
    page.wait_for_function(
        "(el) => !el.checked", arg=b.element_handle(), timeout=WAIT_MS)
    idle(page)


def test_unticks_survive_paging_and_apply_saves_exactly_the_ticks(server, page, catalog_db):
    cat = Catalog(catalog_db)
    expected = cat.label_by_similarity("classes", "unlabeled", results=10, threshold=0.30)
    suggested = {r.id: [s.label for s in r.labels if s.suggested] for r in expected.results}
    assert len(suggested) == UNLABELED and all(len(v) == 1 for v in suggested.values()), suggested

    page.goto(f"{server.url}/labeling")
    page.get_by_role("button", name="Suggest labels").click()
    page.get_by_text(f"Review {UNLABELED} rows", exact=True).first.wait_for()
    idle(page)
    page.locator("[data-testid='stPaginationPageActive']", has_text=re.compile(r"^1$")).wait_for()

    page1 = row_ids(page)
    assert len(page1) == 10
    a, keep, drop = page1[0], page1[1], page1[2]
    untick(page, a, suggested[a][0])
    add_label(page, keep, "extra")  # added by hand, left ticked
    add_label(page, drop, "dropped")  # added by hand, then unticked
    untick(page, drop, "dropped", r"^dropped · added")

    page2 = goto_page(page, 2)
    assert len(page2) == 10 and not set(page2) & set(page1)
    b = page2[3]
    untick(page, b, suggested[b][0])

    assert goto_page(page, 1) == page1
    assert not box(page, a, suggested[a][0]).is_checked(), "the untick on page 1 must survive paging"
    assert all(box(page, r, suggested[r][0]).is_checked() for r in page1[1:])
    assert box(page, keep, "extra", r"^extra · added").is_checked()
    assert not box(page, drop, "dropped", r"^dropped · added").is_checked(), "an unticked added label stays unticked"

    assert goto_page(page, 2) == page2
    assert not box(page, b, suggested[b][0]).is_checked(), "the untick on page 2 must survive paging"

    page.get_by_role("button", name=re.compile(r"^Apply to \d+ rows")).click()
    page.get_by_text(re.compile(r"labels saved as reviewed")).first.wait_for()
    idle(page)

    labels = Catalog(catalog_db).get_labels(list(suggested))
    for row_id, want in suggested.items():
        got = {lab["label"]: lab for lab in labels[row_id]}
        if row_id == keep:
            want = want + ["extra"]
        if row_id in (a, b):
            assert want[0] not in got, f"unticked {want[0]} on {row_id} was saved: {labels[row_id]}"
        else:
            assert set(got) == set(want), (row_id, labels[row_id])
            assert all(lab["reviewed"] for lab in got.values()), labels[row_id]
            assert got[suggested[row_id][0]]["source"] == "similarity", labels[row_id]
