"""Dashboard page logic through Streamlit's AppTest, on a small real catalog built per test."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from catalog import Catalog
from dashboard_support import ROOT, bad_ndjson, build

APP = str(ROOT / "app.py")
TIMEOUT = 60


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = build(tmp_path / "cat")
    monkeypatch.setenv("CATALOG_DB", str(path))
    monkeypatch.setenv("CATALOG_LOCK_TIMEOUT", "1")
    return path


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def heading(at) -> str:
    return [s.value for s in at.subheader][0]


def gallery(at) -> dict:
    """What the gallery component was given: ``{"cards": [{"id", "html", "selected"}], "similar": bool}``."""
    got = [e for e in at.get("bidi_component") if e.proto.component_name == "catalog_gallery"]
    return json.loads(got[0].proto.json) if got else {"cards": [], "similar": True}


def card_html(at) -> list[str]:
    """The HTML of every card on the page (thumbnail or text, score, key, labels)."""
    return [c["html"] for c in gallery(at)["cards"]]


def card_keys(at) -> list[str]:
    return [c["id"] for c in gallery(at)["cards"]]


def fire(at, event: str, value) -> AppTest:
    """What the browser sends when a card's control is used: ``toggle`` ({id, on}) or ``similar`` (id)."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id

    el = [e for e in at.get("bidi_component") if e.proto.component_name == "catalog_gallery"][0]
    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = _make_trigger_id(el.proto.id, "events")
    w.json_trigger_value = json.dumps([{"event": event, "value": value}])
    return at._run(states)


def tick(at, row_id: str) -> AppTest:
    return fire(at, "toggle", {"id": row_id, "on": True})


def key_of(cat, ids) -> list[str]:
    return [r["global_key"] for r in cat.get_datarows(ids)]


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def click_similar(at, cat, key: str) -> AppTest:
    return fire(at, "similar", cat.get_datarow(key)["id"])


# -- gallery -----------------------------------------------------------------------------------------------
def test_gallery_lists_rows_with_thumbnails_and_text_cards(db):
    at = app()
    no_errors(at)
    assert heading(at) == "44 rows"
    assert len(card_keys(at)) == 44
    cards = card_html(at)
    assert len(cards) == 44
    assert sum('<img class="cat-thumb" src="data:image/jpeg;base64,' in c for c in cards) == 36  # texts are cards
    assert any("Knead the bread dough" in c for c in cards)
    assert any('class="cat-badge cat-label">circle<' in c for c in cards)  # labels on the cards
    thumbs = list((db.parent / "catalog.duckdb.cache" / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 36


def test_gallery_pages_fetch_only_the_visible_page(tmp_path, monkeypatch):
    cat = Catalog(tmp_path / "many.duckdb")
    recs = tmp_path / "many.ndjson"
    recs.write_text("".join(json.dumps({"global_key": f"t{i:03d}", "text": f"text {i}"}) + "\n" for i in range(60)))
    cat.import_datarows([recs])
    monkeypatch.setenv("CATALOG_DB", str(cat.path))
    at = app()
    assert heading(at) == "60 rows"
    assert len(card_keys(at)) == 48
    at.get("pagination")[0].set_value(2).run()
    no_errors(at)
    assert len(card_keys(at)) == 12
    assert at.query_params["page"] == ["2"] or at.query_params["page"] == "2"


def test_missing_catalog_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CATALOG_DB", str(tmp_path / "nope.duckdb"))
    at = app()
    assert not at.exception
    assert "does not exist" in at.error[0].value
    assert not (tmp_path / "nope.duckdb").exists()


# -- find similar, anchors, slider, aggregation, filters ---------------------------------------------------------
def test_find_similar_then_slider_then_negative_anchor(db):
    cat = Catalog(db)
    at = click_similar(app(), cat, "circle/red-1.png")
    no_errors(at)
    # at 0.85–1 only the other red circles are that close
    assert heading(at) == "2 similar rows with a score in 0.85–1.00"
    assert sorted(key_of(cat, card_keys(at))) == ["circle/red-0.png", "circle/red-2.png"]
    assert at.query_params["emb"] == ["shapes"] or at.query_params["emb"] == "shapes"
    assert any(b.key and b.key.startswith("rm_p_") for b in at.button)  # the anchors panel
    scores = [c for c in card_html(at) if 'class="cat-badge cat-green"' in c]
    assert len(scores) == 2

    at.slider(key="w_range").set_value((0.75, 1.0)).run()
    no_errors(at)
    keys = key_of(cat, card_keys(at))
    assert keys[:2] == sorted(keys[:2]) or set(keys[:2]) == {"circle/red-0.png", "circle/red-2.png"}
    assert "square/red-0.png" in keys and "sports-0" not in keys
    assert heading(at).endswith("0.75–1.00")

    # tick a red square and push it away: red squares drop out
    sq = cat.get_datarow("square/red-0.png")["id"]
    tick(at, sq)
    at.button(key="act_add_negative").click().run()
    no_errors(at)
    keys = key_of(cat, card_keys(at))
    assert not any(k.startswith("square/red") for k in keys)
    assert len(at.session_state["search"].negatives) == 1


def test_similar_to_selection_and_aggregation(db):
    cat = Catalog(db)
    at = app()
    for key in ("circle/red-0.png", "circle/blue-0.png"):
        tick(at, cat.get_datarow(key)["id"])
    assert any(m.value == "**2 selected**" for m in at.markdown)
    assert sum(c["selected"] for c in gallery(at)["cards"]) == 2  # the cards show their ticks
    blue = cat.get_datarow("circle/blue-0.png")["id"]
    fire(at, "toggle", {"id": blue, "on": False})
    assert at.session_state["selected"] == {cat.get_datarow("circle/red-0.png")["id"]: None}
    tick(at, blue)
    at.button(key="act_similar").click().run()
    no_errors(at)
    assert len(at.session_state["search"].anchors) == 2
    mean_keys = set(key_of(cat, card_keys(at)))
    assert mean_keys == {"circle/red-1.png", "circle/red-2.png", "circle/blue-1.png", "circle/blue-2.png"}
    at.get("button_group")[0].set_value("max").run()
    no_errors(at)
    assert at.session_state["search"].aggregate == "max"
    assert at.query_params["agg"] in ("max", ["max"])
    # "similar to any": each row's best score against either anchor
    rows = at.session_state["_caches"]["pages"]
    page = [p for _, p in rows.values() if p.mode == "similar" and p.rows][-1]
    assert min(r["score"] for r in page.rows) > 0.95


def test_filters_json_box_and_bad_json(db):
    at = app()
    at.text_area(key="w_where_json").set_value('{"topic": "sports"}')
    at.button(key="FormSubmitter:filters-Apply").click().run()
    no_errors(at)
    assert heading(at) == "4 rows match the filter"
    at.text_area(key="w_where_json").set_value('{"topic": ')
    at.button(key="FormSubmitter:filters-Apply").click().run()
    assert "not valid JSON" in at.error[0].value
    assert heading(at) == "4 rows match the filter"  # the last good filter stays


def test_bad_filter_operator_is_a_message(db):
    at = app({"where": '{"topic": {"$regex": "x"}}'})
    assert not at.exception
    assert at.error and "$regex" in at.error[0].value


# -- slices and URL state ---------------------------------------------------------------------------------------
def test_save_search_as_slice_and_reopen_it_by_url(db):
    cat = Catalog(db)
    at = click_similar(app(), cat, "square/green-0.png")
    at.slider(key="w_range").set_value((0.6, 1.0)).run()
    total = heading(at)
    at.button(key="act_save_search").click().run()
    dlg_name = [t for t in at.text_input if t.label == "Name"][0]
    dlg_name.set_value("green-squares")
    [t for t in at.text_area if t.label == "Description"][0].set_value("near green squares")
    at.button(key="dlg_slice_save").click().run()
    no_errors(at)
    sl = cat.get_slice("green-squares")
    assert sl.description == "near green squares"
    assert sl.query["min_score"] == pytest.approx(0.6)
    assert at.query_params["slice"] in ("green-squares", ["green-squares"])

    fresh = app({"slice": "green-squares"})
    no_errors(fresh)
    s = fresh.session_state["search"]
    assert s.slice == "green-squares" and s.min_score == pytest.approx(0.6)
    assert key_of(cat, s.anchors) == ["square/green-0.png"]
    assert heading(fresh) == total


def test_shared_search_url_restores_the_state(db):
    cat = Catalog(db)
    rid = cat.get_datarow("triangle/orange-2.png")["id"]
    at = app({"emb": "shapes", "a": rid, "min": "0.7", "max": "1"})
    no_errors(at)
    s = at.session_state["search"]
    assert s.anchors == [rid] and (s.min_score, s.max_score) == (0.7, 1.0)
    assert at.slider(key="w_range").value == (0.7, 1.0)
    assert heading(at).endswith("0.70–1.00")


def test_unknown_slice_in_url_is_a_message(db):
    at = app({"slice": "nope"})
    assert not at.exception
    # said once, and the page stays usable: all rows, the address cleared of the dead slice
    assert [w.value for w in at.warning if "no slice named 'nope'" in w.value and "showing all rows" in w.value]
    assert not at.error and heading(at) == "44 rows"


def test_slices_page_lists_opens_and_deletes(db):
    cat = Catalog(db)
    cat.save_slice("all-circles", where={"global_key": {"$prefix": "circle/"}}, description="every circle")
    at = app()
    at.switch_page("pages/slices.py").run()
    no_errors(at)
    assert any(m.value == "#### all-circles" for m in at.markdown)
    assert any("12 rows" in m.value for m in at.markdown)
    sid = cat.get_slice("all-circles").id
    at.button(key=f"open_{sid}").click().run()
    no_errors(at)
    assert at.session_state["search"].where == {"global_key": {"$prefix": "circle/"}}
    at.switch_page("pages/slices.py").run()
    at.button(key=f"del_{sid}").click().run()
    at.button(key="slice_del_confirm").click().run()
    no_errors(at)
    assert cat.get_slices() == []


# -- selection actions -------------------------------------------------------------------------------------------
def test_select_all_and_save_selection_as_slice(db):
    cat = Catalog(db)
    at = app()
    at.text_area(key="w_where_json").set_value('{"topic": "cooking"}')
    at.button(key="FormSubmitter:filters-Apply").click().run()
    at.button(key="act_select_all").click().run()
    assert len(at.session_state["selected"]) == 4
    at.button(key="act_slice_sel").click().run()
    [t for t in at.text_input if t.label == "Name"][0].set_value("cooking-picks")
    at.button(key="dlg_slice_save").click().run()
    no_errors(at)
    assert sorted(h.global_key for h in cat.get_slice("cooking-picks").rows(limit=None).results) == \
        [f"cooking-{i}" for i in range(4)]


# -- embeddings page -------------------------------------------------------------------------------------------
def test_embeddings_page_create_import_and_bad_line(db):
    cat = Catalog(db)
    at = app()
    at.switch_page("pages/embeddings.py").run()
    no_errors(at)
    table = at.dataframe[0].value
    assert int(table.loc[table["Name"] == "shapes", "Vectors"].iloc[0]) == 44

    [t for t in at.text_input if t.label == "Name"][0].set_value("extra")
    [n for n in at.number_input if n.label == "Dims"][0].set_value(16)
    at.button(key="FormSubmitter:create_embedding-Create embedding").click().run()
    no_errors(at)
    assert cat.get_embedding("extra").dims == 16

    at.selectbox(key="imp_emb").set_value("extra")
    at.get("file_uploader")[0].upload("bad.ndjson", bad_ndjson(cat)).run()
    at.button(key="imp_go").click().run()
    assert not at.exception
    report = "\n".join(c.value for c in at.code)
    assert "line 2:" in report and "nothing was imported" in at.error[0].value
    assert cat.get_embedding("extra").get_imported_vector_count() == 0


def test_embeddings_page_delete_asks_first(db):
    cat = Catalog(db)
    at = app()
    at.switch_page("pages/embeddings.py").run()
    at.button(key="del_go").click().run()
    assert cat.get_embedding("shapes")  # nothing deleted before confirming
    at.button(key="del_confirm").click().run()
    no_errors(at)
    assert [e.name for e in cat.get_embeddings() if e.custom] == []


# -- labeling page -----------------------------------------------------------------------------------------------
def test_label_by_similarity_review_apply_and_export(db):
    cat = Catalog(db)
    at = app()
    at.switch_page("pages/labeling.py").run()
    at.button(key="lbs_go").click().run()
    no_errors(at)
    rows = at.session_state["_labeling"].rows
    assert rows, "unlabeled rows were suggested labels"
    with_suggestions = [r for r in rows if any(x.suggested for x in r.labels)]
    assert len(with_suggestions) >= 2
    first, second = with_suggestions[:2]
    ticked = [s.label for s in first.labels if s.suggested]
    assert ticked
    # untick one suggestion of the first row; changing k later would discard it, so apply now
    run = at.session_state["_labeling"].run
    at.checkbox(key=f"lbs_{run}_{first.id}_{ticked[0]}").uncheck().run()
    at.button(key="lbs_apply").click().run()
    no_errors(at)
    labels = cat.get_labels([first.id])[first.id]
    assert ticked[0] not in [lab["label"] for lab in labels]
    got = {lab["label"]: lab for lab in cat.get_labels([second.id])[second.id]}
    for s in second.labels:
        if s.suggested:
            assert got[s.label]["reviewed"] is True and got[s.label]["source"] == "similarity"
    buf = io.StringIO()
    cat.export_labels(buf, "csv")
    exported = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert any(r["id"] == second.id for r in exported)


def test_label_by_similarity_parameter_change_asks_before_discarding_edits(db):
    at = app()
    at.switch_page("pages/labeling.py").run()
    at.button(key="lbs_go").click().run()
    rows = at.session_state["_labeling"].rows
    run = at.session_state["_labeling"].run
    row = next(r for r in rows if any(x.suggested for x in r.labels))
    s = [x for x in row.labels if x.suggested][0]
    at.checkbox(key=f"lbs_{run}_{row.id}_{s.label}").uncheck().run()
    at.number_input(key="lbs_k").set_value(1).run()
    no_errors(at)
    # it asks first: nothing is recomputed and the edits stay until the reviewer chooses
    assert "would discard your ticks and added labels" in at.warning[0].value
    assert at.session_state["_labeling"].params[1] == 10 and at.session_state["_labeling"].run == run
    at.button(key="lbs_ask_keep").click().run()  # keep the edits: the parameters go back
    assert at.number_input(key="lbs_k").value == 10 and at.session_state["_labeling"].run == run
    assert at.checkbox(key=f"lbs_{run}_{row.id}_{s.label}").value is False
    at.number_input(key="lbs_k").set_value(1).run()
    at.button(key="lbs_ask_discard").click().run()  # or recompute with k = 1
    no_errors(at)
    assert at.session_state["_labeling"].params[1] == 1 and at.session_state["_labeling"].run == run + 1


def test_label_by_similarity_evaluation_panel(db):
    at = app()
    at.switch_page("pages/labeling.py").run()
    at.button(key="lbs_eval_go").click().run()
    no_errors(at)
    assert any(m.label == "Labeled rows in the pool" and m.value == "14" for m in at.metric)
    assert at.dataframe  # the leave-one-out table


def test_label_by_similarity_with_empty_pool_is_a_message(tmp_path, monkeypatch):
    db = build(tmp_path / "nolabels", labels=False)
    monkeypatch.setenv("CATALOG_DB", str(db))
    at = app()
    at.switch_page("pages/labeling.py").run()
    at.button(key="lbs_go").click().run()
    assert not at.exception
    assert "labeled pool is empty" in at.error[0].value


# -- a busy catalog -----------------------------------------------------------------------------------------------
def test_busy_catalog_shows_a_message_not_a_traceback(db):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); time.sleep(300)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        at = app()
        assert not at.exception
        assert any("busy" in w.value for w in at.warning)
        assert holder.poll() is None  # it answered while the catalog was still held (no waiting it out)
    finally:
        holder.kill()
        holder.wait()


def test_send_selection_to_batch_and_set_metadata(db):
    cat = Catalog(db)
    at = app()
    ids = [cat.get_datarow(k)["id"] for k in ("circle/red-0.png", "square/blue-1.png")]
    for rid in ids:
        tick(at, rid)
    at.button(key="act_batch").click().run()
    [t for t in at.text_input if t.label == "Project"][0].set_value("shapes-v1")
    [t for t in at.text_input if t.label == "Batch name"][0].set_value("round-1")
    at.button(key="dlg_batch_create").click().run()
    no_errors(at)
    batch = cat.get_batch("round-1", "shapes-v1")
    assert sorted(batch.row_ids()) == sorted(ids)

    at.button(key="act_meta").click().run()
    [t for t in at.text_area if t.label.startswith("Fields")][0].set_value("quality=blurry\nstars=3")
    at.button(key="dlg_meta_apply").click().run()
    no_errors(at)
    for row in cat.get_datarows(ids):
        assert row["metadata"]["quality"] == "blurry" and row["metadata"]["stars"] == 3
    assert "quality" not in cat.get_datarow("circle/red-1.png")["metadata"]


def test_bad_metadata_line_writes_nothing(db):
    cat = Catalog(db)
    at = app()
    rid = cat.get_datarow("circle/red-0.png")["id"]
    tick(at, rid)
    at.button(key="act_meta").click().run()
    [t for t in at.text_area if t.label.startswith("Fields")][0].set_value("quality=ok\nno equals sign")
    at.button(key="dlg_meta_apply").click().run()
    assert "line 2" in at.error[0].value
    assert "quality" not in cat.get_datarow(rid)["metadata"]


def test_compute_off_the_shelf_then_query_by_uploaded_image(db):
    cat = Catalog(db)
    at = app()
    at.switch_page("pages/embeddings.py").run()
    at.selectbox(key="cmp_model").set_value("color-texture")
    at.button(key="cmp_go").click().run()
    no_errors(at)
    assert cat.get_embedding("color-texture").get_imported_vector_count() == 36

    at.switch_page("pages/catalog.py").run()
    at.selectbox(key="w_emb").set_value("color-texture").run()
    img = (db.parent / "shapes" / "circle" / "green-1.png").read_bytes()
    at.get("file_uploader")[0].upload("query.png", img, "image/png").run()
    no_errors(at)
    assert at.session_state["search"].image_name == "query.png"
    assert "similar rows" in heading(at)
    keys = key_of(cat, card_keys(at))
    assert keys and keys[0] == "circle/green-1.png"  # the uploaded image is itself in the catalog


def _place_of_gallery(at) -> tuple:
    """The delta path (top-level block, then nested) of the gallery component."""
    def walk(node, path):
        for i, child in getattr(node, "children", {}).items():
            if getattr(child, "type", None) == "bidi_component":
                return (*path, i)
            found = walk(child, (*path, i))
            if found:
                return found
        return None
    return walk(at.main, ())


def test_the_results_keep_their_place_when_notices_and_the_anchors_panel_come_and_go(db):
    # Streamlit replaces elements by their place: were the results to move when the anchors panel or a
    # notice appears, a run interrupted half-way (the slider moved right after *Similar*) would leave the
    # old gallery standing inside the new anchors panel
    cat = Catalog(db)
    at = app()
    place = _place_of_gallery(at)
    assert place is not None
    at = click_similar(at, cat, "circle/red-1.png")
    assert at.session_state["search"].anchors and _place_of_gallery(at) == place
    at.button(key="anchors_clear").click().run()
    assert not at.session_state["search"].anchors and _place_of_gallery(at) == place
    warned = app({"emb": "shapes", "a": ["no-such-row", cat.get_datarow("circle/red-1.png")["id"]]})
    assert [w.value for w in warned.warning] and _place_of_gallery(warned) == place
