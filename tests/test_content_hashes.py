"""Content hashes (exact duplicates): stored at import, migrated into older catalogs (bounded, missing
files recorded), grouped instantly; and the score between a row and an outside image or a text."""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import numpy as np
import pytest
from PIL import Image

import catalog.store.hashes as hashes
from catalog import Catalog, CatalogError
from catalog.store import SCHEMA_VERSION, migrate
from catalog.store.hashes import normalise_text
from knn_support import SCORE_ATOL


def _status(cat) -> dict:
    with cat.store.connect() as con:
        return dict(con.execute("SELECT d.global_key, h.status FROM datarows d "
                                "LEFT JOIN content_hashes h ON h.row_id = d.id").fetchall())


def test_text_normalisation():
    assert normalise_text("  Café\tAU  lait\n") == normalise_text("café au lait") == "café au lait"
    assert normalise_text("ﬁne") == "fine"  # NFKC folds the ligature
    assert normalise_text("a, b") != normalise_text("a b")


def test_import_hashes_images_and_texts_and_groups_identical_content(cat, image_folder, tmp_path):
    shutil.copy(image_folder / "red" / "r0.png", image_folder / "copy-of-r0.png")
    recs = tmp_path / "t.ndjson"
    recs.write_text("\n".join(json.dumps(r) for r in [
        {"global_key": "t1", "text": "Hello   World", "metadata": {"split": "train"}},
        {"global_key": "t2", "text": "hello world", "metadata": {"split": "test"}},
        {"global_key": "t3", "text": "hello, world"},
        {"global_key": "u1", "image": "https://example.invalid/a.png"}]))
    cat.import_datarows([image_folder, recs])
    with cat.store.connect() as con:
        h = dict(con.execute("SELECT d.global_key, h.hash FROM datarows d JOIN content_hashes h ON h.row_id = d.id").fetchall())
    assert h["red/r0.png"] == hashlib.sha256((image_folder / "red" / "r0.png").read_bytes()).hexdigest()
    assert _status(cat)["u1"] == "remote" and h["u1"] is None
    rep = cat.duplicates(exact_only=True, split_field="split")
    assert rep.method == "content" and rep.without == 1  # the URL row
    assert sorted(sorted(m.global_key for m in g.members) for g in rep.groups) == [
        ["copy-of-r0.png", "red/r0.png"], ["t1", "t2"]]
    assert all(m.score == 1.0 for g in rep.groups for m in g.members)
    assert [(x.a.global_key, x.b.global_key, x.a_value, x.b_value) for x in rep.leaks] == [("t1", "t2", "train", "test")]
    # re-importing a row with new content hashes it again; deleting a row removes its hash
    recs.write_text(json.dumps({"global_key": "t2", "text": "something else"}))
    cat.import_datarows(recs)
    assert [sorted(m.global_key for m in g.members) for g in cat.duplicates(exact_only=True).groups] == [
        ["copy-of-r0.png", "red/r0.png"]]
    cat.delete_datarows(["copy-of-r0.png"])
    with cat.store.connect() as con:
        assert con.execute("SELECT count(*) FROM content_hashes").fetchone()[0] == cat.count_datarows()


def test_an_older_catalog_is_hashed_on_opening_and_missing_files_do_not_fail_it(db_path, tmp_path, monkeypatch):
    folder = tmp_path / "old"
    folder.mkdir()
    for n in range(3):
        Image.new("RGB", (8, 8), (40 * n, 0, 0)).save(folder / f"i{n}.png")
    shutil.copy(folder / "i0.png", folder / "i0-again.png")
    con = duckdb.connect(str(db_path))
    migrate(con, upto=8)
    rows = [("i0", folder / "i0.png"), ("i0-again", folder / "i0-again.png"), ("i1", folder / "i1.png"),
            ("i2", folder / "i2.png"), ("gone", folder / "gone.png")]
    for n, (key, path) in enumerate(rows):
        con.execute("INSERT INTO datarows (id, global_key, media_type, row_data) VALUES (?, ?, 'image', ?)",
                    [f"00000000-0000-4000-8000-00000000000{n}", key, str(path)])
    con.execute("INSERT INTO datarows (id, global_key, media_type, row_data) VALUES "
                "('00000000-0000-4000-8000-000000000009', 'txt', 'text', 'Some  Text')")
    con.close()
    monkeypatch.setattr(hashes, "MIGRATION_IMAGE_LIMIT", 3)  # the step reads at most 3 image files
    cat = Catalog(db_path)
    with cat.store.connect() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    status = _status(cat)
    assert status["txt"] == "ok" and sum(v is None for v in status.values()) == 2  # two images wait
    assert cat.get_datarow("gone")["row_data"].endswith("gone.png")  # the row itself is untouched
    rep = cat.duplicates(exact_only=True)  # hashes the rest first
    status = _status(cat)
    assert status["gone"] == "missing" and all(v is not None for v in status.values())
    assert [sorted(m.global_key for m in g.members) for g in rep.groups] == [["i0", "i0-again"]]
    assert rep.without == 1
    # the file comes back: a retry hashes it
    shutil.copy(folder / "i1.png", folder / "gone.png")
    assert cat.quality.update_hashes() == {"ok": 1}
    assert sorted(sorted(m.global_key for m in g.members) for g in cat.duplicates(exact_only=True).groups) == [
        ["gone", "i1"], ["i0", "i0-again"]]


def test_cli_exact_only_rehash_and_json(cat, cli, image_folder, tmp_path):
    shutil.copy(image_folder / "red" / "r0.png", tmp_path / "twin.png")
    cat.import_datarows([image_folder, tmp_path / "twin.png"])
    (tmp_path / "twin.png").unlink()
    cat.import_datarows(tmp_path / "nothing-here")  # no-op import
    with cat.store.transaction() as con:
        con.execute("DELETE FROM content_hashes")  # as if imported before hashes existed
    r = cli("duplicates", "--exact-only", "--json")
    data = json.loads(r.stdout)
    assert data["method"] == "content" and data["groups_count"] == 0 and data["without"] == 1
    shutil.copy(image_folder / "red" / "r0.png", tmp_path / "twin.png")
    r = cli("duplicates", "--exact-only")
    assert r.stdout.startswith("0 groups of identical content") and "1 matching rows left out" in r.stdout
    r = cli("duplicates", "--exact-only", "--rehash")
    assert r.returncode == 0 and r.stdout.startswith("1 group of identical content (content): 1 duplicate rows")
    r = cli("duplicates", "color-texture", "--rehash")
    assert r.returncode != 0 and "--rehash goes with --exact-only" in r.stderr


def test_too_large_files_are_not_read(cat, image_folder, monkeypatch):
    monkeypatch.setattr(hashes, "MAX_HASH_BYTES", 10)
    cat.import_datarows(image_folder)
    assert set(_status(cat).values()) == {"too_large"}


def test_score_of_a_row_and_an_outside_image_equals_the_search(cat, image_folder):
    cat.import_datarows(image_folder)
    cat.compute_embeddings("color-texture")
    outside = image_folder / "blue" / "b1.png"
    res = cat.search("color-texture", image=str(outside), min_score=0.0, max_score=1.0, limit=None)
    for hit in res.results:
        assert abs(cat.score({"image": str(outside)}, hit.global_key, "color-texture") - hit.score) <= SCORE_ATOL
    a, b = res.results[0].global_key, res.results[-1].global_key
    res = cat.search("color-texture", anchors=[a], min_score=0.0, max_score=1.0, limit=None)
    want = next(h.score for h in res.results if h.global_key == b)
    assert abs(cat.score(a, b) - want) <= SCORE_ATOL  # the one embedding holding both
    with pytest.raises(CatalogError, match="needs an embedding"):
        cat.score(a, {"image": str(outside)})
    with pytest.raises(CatalogError, match="each side"):
        cat.score(a, 42, "color-texture")
    emb = cat.create_embedding("other", 8)
    emb.import_vectors([a], np.ones((1, 8)))
    with pytest.raises(CatalogError, match="several embeddings"):
        cat.score(a, a)
    with pytest.raises(CatalogError, match="has no vector in embedding other"):
        cat.score(a, b, "other")


def test_score_of_a_row_and_a_text_prompt_equals_the_search(cat, text_records):
    cat.import_datarows(text_records)
    cat.compute_embeddings("all-minilm-l6-v2")
    prompt = "a football game"
    res = cat.search("all-minilm-l6-v2", text=prompt, min_score=0.0, max_score=1.0, limit=None)
    assert len(res.results) == 8
    for hit in res.results:
        assert abs(cat.score({"text": prompt}, hit.global_key, "all-minilm-l6-v2") - hit.score) <= SCORE_ATOL
