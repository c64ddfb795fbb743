"""The DuckDB file: schema versions and migration, bounded waits on locks, crash safety."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import duckdb
import numpy as np
import pytest

from catalog import Catalog, CatalogBusy
from catalog.store import SCHEMA_VERSION, migrate, one, schema_version


def test_new_file_has_current_schema_and_off_the_shelf_embeddings(cat):
    names = [e.name for e in cat.get_embeddings()]
    assert names[:2] == ["clip-vit-b-32", "all-mpnet-base-v2"]
    with cat.store.connect() as con:
        assert schema_version(con) == SCHEMA_VERSION


def test_opening_an_older_file_migrates_it_and_keeps_data(db_path, text_records):
    con = duckdb.connect(str(db_path))
    migrate(con, upto=1)
    con.execute("INSERT INTO datarows (id, global_key, media_type, row_data) "
                "VALUES ('9b2e8f6c-1d52-4c1e-9a39-5e0f6f0e8a11', 'old-row', 'text', 'kept')")
    assert one(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'batches'")[0] == 0
    con.close()
    cat = Catalog(db_path)
    assert cat.get_datarow("old-row")["row_data"] == "kept"
    with cat.store.connect() as con:
        assert schema_version(con) == SCHEMA_VERSION
        assert one(con, "SELECT count(*) FROM batches")[0] == 0


def test_migrating_a_v3_file_keeps_its_vectors_drops_staged_ones_and_stores_them_uncompressed(db_path):
    con = duckdb.connect(str(db_path))
    migrate(con, upto=3)
    con.execute("INSERT INTO datarows (id, global_key, media_type, row_data) "
                "VALUES ('9b2e8f6c-1d52-4c1e-9a39-5e0f6f0e8a11', 'old-row', 'text', 'kept')")
    con.execute("INSERT INTO embeddings (id, name, dims, custom) VALUES ('5d0c1a8e-0b7e-4f0a-8d7e-2b1f3c4d5e6f', 'old', 8, true)")
    con.execute("INSERT INTO vectors VALUES ('5d0c1a8e-0b7e-4f0a-8d7e-2b1f3c4d5e6f', "
                "'9b2e8f6c-1d52-4c1e-9a39-5e0f6f0e8a11', [1, 2, 3, 4, 5, 6, 7, 8.5])")
    # rows a killed import of the previous version left staged under a private id
    con.execute("INSERT INTO import_staging (staging_id, embedding_id, pid) VALUES "
                "('7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b', '5d0c1a8e-0b7e-4f0a-8d7e-2b1f3c4d5e6f', 1)")
    con.execute("INSERT INTO vectors VALUES ('7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b', "
                "'00000000-0000-4000-8000-000000000000', [9, 9, 9, 9, 9, 9, 9, 9])")
    con.close()
    cat = Catalog(db_path)
    emb = cat.get_embedding_by_name("old")
    assert emb.get_imported_vector_count() == 1
    with cat.store.connect() as con:
        assert schema_version(con) == SCHEMA_VERSION
        assert con.execute("SELECT vector FROM vectors").fetchall() == [([1, 2, 3, 4, 5, 6, 7, 8.5],)]
        assert one(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'import_staging'")[0] == 0
        assert "USING COMPRESSION Uncompressed" in one(
            con, "SELECT sql FROM duckdb_tables() WHERE table_name = 'vectors'")[0]


def test_a_newer_file_is_refused_with_a_clear_message(db_path, cli):
    Catalog(db_path).count_datarows()
    con = duckdb.connect(str(db_path))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    r = cli("datarows", "list")
    assert r.returncode != 0
    assert "schema version 999 is newer" in r.stderr and "Traceback" not in r.stderr


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.cli_process  # the lock is per process
def test_busy_catalog_waits_a_bounded_time_then_says_so(db_path, cli):
    Catalog(db_path).count_datarows()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db_path), "300"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = cli("embeddings", "create", "x", "8", env={"CATALOG_LOCK_TIMEOUT": "1"})
        assert holder.poll() is None  # it gave up while the catalog was still held
        assert r.returncode == 3
        assert "is busy" in r.stderr and f"process {holder.pid}" in r.stderr
        assert "CATALOG_LOCK_TIMEOUT" in r.stderr and "Traceback" not in r.stderr
        with pytest.raises(CatalogBusy):
            Catalog(db_path, lock_timeout=0.2).count_datarows()
    finally:
        holder.kill()
        holder.wait()
    assert "x" not in [e.name for e in Catalog(db_path).get_embeddings()]


def test_a_writer_that_waits_proceeds_when_the_lock_is_released(db_path):
    Catalog(db_path).count_datarows()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db_path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        emb = Catalog(db_path, lock_timeout=30).create_embedding("after-wait", 8)
        assert emb.name == "after-wait"
    finally:
        holder.wait()


IMPORT = """
import sys
from catalog import Catalog
Catalog(sys.argv[1]).get_embedding("big").import_vectors_from_file(sys.argv[2])
print("done", flush=True)
"""


def test_import_killed_with_sigkill_leaves_the_catalog_as_before(db_path, tmp_path):
    n, d = 150_000, 64
    cat = Catalog(db_path)
    recs = tmp_path / "rows.ndjson"
    recs.write_text("".join(json.dumps({"global_key": f"k{i}", "text": f"row {i}"}) + "\n" for i in range(n)))
    cat.import_datarows([recs])
    emb = cat.create_embedding("big", d)
    emb.import_vectors([f"k{i}" for i in range(10)], np.ones((10, d)))
    rng = np.random.default_rng(0)
    vec_file = tmp_path / "vectors.ndjson"
    with open(vec_file, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"k{i}", "vector": rng.standard_normal(d).round(5).tolist()}) + "\n")
    def k0_vector():
        with Catalog(db_path).store.connect() as con:
            return one(con, "SELECT v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id WHERE d.global_key = 'k0'")[0]

    # killed the moment the write transaction starts changing the file (after the whole file was
    # parsed): the catalog is still "before"
    for _ in range(2):
        before = (db_path.stat().st_size, db_path.stat().st_mtime_ns)
        p = subprocess.Popen([sys.executable, "-c", IMPORT, str(db_path), str(vec_file)], stdout=subprocess.PIPE)
        while p.poll() is None and (db_path.stat().st_size, db_path.stat().st_mtime_ns) == before:
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL, "the import ended before it changed the file"
        assert Catalog(db_path).get_embedding("big").get_imported_vector_count() == 10
        assert k0_vector() == [1.0] * d
    killed_mid_way = 0
    for delay in (0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0):
        p = subprocess.Popen([sys.executable, "-c", IMPORT, str(db_path), str(vec_file)], stdout=subprocess.PIPE)
        time.sleep(delay)
        finished = p.poll() is not None
        p.send_signal(signal.SIGKILL)
        p.wait()
        count = Catalog(db_path).get_embedding("big").get_imported_vector_count()
        assert count in (10, n), f"killed after {delay}s: {count} vectors (neither before nor after)"
        if finished or count == n:  # the import committed before the kill: the catalog is "after"
            finished = True
            break
        killed_mid_way += 1
        assert k0_vector() == [1.0] * d
    assert killed_mid_way >= 3
    # the file stays usable: the next import works and nothing of the killed ones is left
    emb.import_vectors(["k1"], np.full((1, d), 2.0))
    with Catalog(db_path).store.connect() as con:
        assert one(con, "SELECT count(*) FROM vectors")[0] == (n if finished else 10)
        assert one(con, "SELECT count(DISTINCT embedding_id) FROM vectors")[0] == 1


def test_atomic_groups_calls_into_one_transaction(cat, text_records):
    cat.import_datarows([text_records])
    with pytest.raises(RuntimeError):
        with cat.atomic():
            cat.set_labels("sports-0", ["sport"])
            cat.set_labels("sports-1", ["sport"])
            raise RuntimeError("interrupted")
    assert all(not labs for labs in cat.get_labels(["sports-0", "sports-1"]).values())
    with cat.atomic():
        cat.set_labels("sports-0", ["sport"])
        cat.set_labels("sports-1", ["sport"])
    labels = cat.get_labels(["sports-0", "sports-1"])
    assert sorted(lab["label"] for labs in labels.values() for lab in labs) == ["sport", "sport"]


def test_a_missing_folder_or_a_file_that_is_not_a_catalog_is_a_one_line_error(tmp_path, cli):
    r = cli("datarows", "list", db=tmp_path / "no-such-folder" / "c.duckdb")
    assert r.returncode == 2 and "does not exist; create it or pass another --db" in r.stderr
    assert not (tmp_path / "no-such-folder").exists()
    junk = tmp_path / "notes.duckdb"
    junk.write_text("these are notes, not a catalog\n" * 100)
    r = cli("datarows", "list", db=junk)
    assert r.returncode == 2 and "cannot open catalog" in r.stderr and "Traceback" not in r.stderr
    assert junk.read_text().startswith("these are notes")
