"""Deleting data rows (library and ``advtool datarows delete``): the row, its vectors, labels,
batch entries and aliases go in one transaction; embedding versions move on; unknown rows change nothing."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from catalog import Catalog
from catalog.errors import NotFound
from catalog.store import ROW_TABLES


@pytest.fixture
def filled(cat, text_records, tmp_path):
    cat.import_datarows([text_records])
    keys = [r["global_key"] for r in cat.iter_datarows()]
    aliases = tmp_path / "aliases.ndjson"  # each row gets its Labelbox id (an alias)
    aliases.write_text("".join(json.dumps({"global_key": k, "text": r["row_data"], "id": f"lb-{i}"}) + "\n"
                               for i, (k, r) in enumerate(zip(keys, cat.iter_datarows()))))
    cat.import_datarows([aliases])
    emb = cat.create_embedding("tiny", 8)
    rng = np.random.default_rng(3)
    emb.import_vectors(keys, rng.normal(size=(len(keys), 8)) + 0.1)
    cat.set_labels(keys[0], ["a"])
    cat.set_labels(keys[1], ["b"])
    cat.create_batch("b1", "proj", ids=keys[:3])
    cat.uniqueness.compute("tiny")  # a derived score per row
    return cat, emb, keys


def counts(db, row_id) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        out = {t: con.execute(f"SELECT count(*) FROM {t} WHERE row_id = ?", [row_id]).fetchall()[0][0]
               for t in ROW_TABLES}
        out["datarows"] = con.execute("SELECT count(*) FROM datarows WHERE id = ?", [row_id]).fetchall()[0][0]
    return out


def test_delete_removes_the_row_from_every_table_and_bumps_versions(filled):
    cat, emb, keys = filled
    rid = cat.get_datarow(keys[0])["id"]
    assert all(v == 1 for v in counts(cat.path, rid).values())
    version = cat.get_embedding("tiny").version
    before = cat.search("tiny", anchors=[keys[2]], min_score=0.0, limit=None)  # builds the vector cache
    assert keys[0] in [h.global_key for h in before.results]
    report = cat.delete_datarows([keys[0], rid.upper()])  # the same row twice, by key and by id
    assert report.deleted == 1 and report.ids == [rid] and report.embeddings == [emb.id]
    assert all(v == 0 for v in counts(cat.path, rid).values())
    assert cat.get_embedding("tiny").version > version
    assert cat.get_embedding("tiny").get_imported_vector_count() == len(keys) - 1
    after = cat.search("tiny", anchors=[keys[2]], min_score=0.0, limit=None)
    assert keys[0] not in [h.global_key for h in after.results] and after.total == before.total - 1
    assert cat.count_datarows() == len(keys) - 1
    assert cat.get_batch("b1", "proj").size == 2


def test_unknown_rows_delete_nothing(filled):
    cat, emb, keys = filled
    with pytest.raises(NotFound, match="no data row with id or global_key 'nope'"):
        cat.delete_datarows([keys[0], "nope"])
    rid = cat.get_datarow(keys[0])["id"]
    assert all(v == 1 for v in counts(cat.path, rid).values())
    assert cat.count_datarows() == len(keys)


def test_failure_midway_rolls_back(filled, monkeypatch):
    cat, emb, keys = filled
    import catalog.datarows.deletion as deletion
    monkeypatch.setattr(deletion, "ROW_TABLES", (*ROW_TABLES, "no_such_table"))
    with pytest.raises(Exception):
        cat.delete_datarows([keys[0]])
    rid = cat.get_datarow(keys[0])["id"]
    assert all(v == 1 for v in counts(cat.path, rid).values())


def test_cli_datarows_delete(cli, filled):
    cat, emb, keys = filled
    r = cli("datarows", "delete", keys[0], keys[1], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["deleted"] == 2
    r = cli("datarows", "delete", keys[0])
    assert r.returncode == 2 and f"no data row with id or global_key '{keys[0]}'" in r.stderr and r.stdout == ""
    r = cli("datarows", "delete", keys[2])
    assert r.stdout.strip() == "Deleted 1 data row"
    assert Catalog(cat.path).count_datarows() == len(keys) - 3
