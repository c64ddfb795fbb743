"""The duplicates page through Streamlit's AppTest: find the planted groups of an embedding, see leaks,
save them as slices; a bad filter is shown as a message and nothing is saved."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from catalog import Catalog
from dashboard_support import ROOT, build

APP = str(ROOT / "app.py")


def texts(at) -> list[str]:
    """The markdown on the page without its escapes."""
    return [m.value.replace("\\", "") for m in at.markdown]


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = build(tmp_path / "cat", labels=False)
    cat = Catalog(path)
    keys = sorted(r["global_key"] for r in cat.iter_datarows())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((len(keys), 16))
    x[1] = x[0] + 1e-3  # planted: keys[0] ~ keys[1], keys[5] ~ keys[6] ~ keys[7]
    x[6] = x[5] + 1e-3
    x[7] = x[6] + 1e-3
    cat.create_embedding("twins", 16).import_vectors(keys, x)
    cat.set_metadata({"split": "train"}, where={})
    cat.set_metadata({"split": "test"}, ids=[keys[1]])
    monkeypatch.setenv("CATALOG_DB", str(path))
    monkeypatch.setenv("CATALOG_LOCK_TIMEOUT", "1")
    return path, keys


def test_duplicates_page_finds_groups_shows_leaks_and_saves_slices(db):
    path, keys = db
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    assert not at.exception and at.subheader[0].value == "Duplicates"
    at.selectbox(key="dup_emb").set_value("twins")
    at.text_input(key="dup_split").set_value("split")
    at.button(key="dup_run").click().run()
    assert not at.exception and not at.error
    assert any("2 groups of score ≥ 0.95 in twins (exact)" in t for t in texts(at)), texts(at)
    table = at.dataframe[0].value
    assert sorted(map(sorted, table.groupby("group")["global_key"].apply(list))) == sorted(
        [sorted(keys[0:2]), sorted(keys[5:8])])
    assert table["kept"].sum() == 2
    assert any("1 leaks: pairs whose 'split' differs" in t for t in texts(at)), texts(at)
    at.text_input(key="dup_name").set_value("twin-rows")
    at.button(key="dup_save").click().run()
    assert not at.exception and not at.error
    cat = Catalog(path)
    assert sorted(r.global_key for r in cat.get_slice("twin-rows").rows(limit=None).results) == sorted(
        keys[0:2] + keys[5:8])
    assert len(cat.get_slice("twin-rows-deduplicated").row_ids()) == len(keys) - 3


def test_duplicates_page_bad_filter_is_a_message(db):
    path, _ = db
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    at.selectbox(key="dup_emb").set_value("twins")
    at.text_input(key="dup_where").set_value("{not json")
    at.button(key="dup_run").click().run()
    assert not at.exception and "not valid JSON" in at.error[0].value
    assert not at.dataframe
    at.toggle(key="dup_content").set_value(True)
    at.text_input(key="dup_where").set_value("")
    at.button(key="dup_run").click().run()
    assert not at.exception and any("identical content" in t for t in texts(at))


def test_uniqueness_and_compare_on_the_duplicates_page(db):
    path, keys = db
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    at.selectbox(key="uq_emb").set_value("twins")
    assert any("Not computed yet." in c.value for c in at.caption)
    at.button(key="uq_outliers").click().run()  # before a run: the library's one-line refusal, nothing shown
    assert not at.exception and any("was not computed" in e.value for e in at.error)
    at.number_input(key="uq_k").set_value(2)
    at.button(key="uq_compute").click().run()
    assert not at.exception and not at.error
    cat = Catalog(path)
    run = cat.uniqueness.status("twins")
    assert run is not None and run.neighbours == 2 and run.current
    assert any(f"Computed with K = 2 for {len(keys):,} rows" in c.value for c in at.caption)
    at.number_input(key="uq_n").set_value(3)
    at.button(key="uq_outliers").click().run()
    table = at.dataframe[-1].value
    assert table["global_key"].tolist() == [r["global_key"] for r in cat.uniqueness.outliers("twins", 3)]
    at.text_input(key="cmp_a").set_value(keys[0])
    at.text_input(key="cmp_b").set_value(keys[1])
    at.selectbox(key="cmp_emb").set_value("twins")
    at.button(key="cmp_run").click().run()
    want = cat.score(keys[0], keys[1], "twins")
    assert any(f"Score of {keys[0]} and {keys[1]} in twins: {want:.4f}" in t for t in texts(at)), texts(at)
    at.text_input(key="cmp_b").set_value("no-such-row")
    at.button(key="cmp_run").click().run()
    assert not at.exception and any("no-such-row" in e.value for e in at.error)
