"""The catalog file under hostile conditions: a SQLite file, a bad lock timeout, huge pages, damaged or
foreign files, a read-only file and control characters in embedding names. Each is one ``error:`` line,
a non-zero exit and nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3

import duckdb
import pytest

from catalog import Catalog, CatalogError
from catalog.store import Store
from catalog.store.connection import CONFIG


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(r, *needles):
    """An ``error:`` line on stderr, no traceback, a non-zero exit, and each needle in it."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tables(path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True, config=CONFIG)
    try:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    finally:
        con.close()


@pytest.fixture
def catalog_file(cli, db_path, text_records):
    assert cli("datarows", "import", text_records).returncode == 0
    assert cli("labels", "set", "sports-0", "ball").returncode == 0
    return db_path


READ = ("datarows", "list")
WRITE = ("labels", "set", "sports-1", "ball")


# -- 1. extensions are never fetched; a SQLite file is not a catalog -----------------------------------
def test_catalog_connections_never_install_or_load_extensions(cat):
    with cat.store.connect() as con:
        row = con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                          "current_setting('autoload_known_extensions')").fetchone()
    assert row == (False, False)


def test_a_sqlite_file_is_not_a_catalog_and_is_left_unchanged(cli, tmp_path):
    path = tmp_path / "other.duckdb"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    before = digest(path)
    for args in (READ, ("embeddings", "create", "e8", "8")):
        r = cli(*args, db=path)
        assert r.returncode == 2
        one_error_line(r, "SQLite database, not a catalog file", "left unchanged", "pass another --db")
    assert digest(path) == before
    # even past the header check, DuckDB itself refuses at once instead of fetching its SQLite extension
    with pytest.raises(duckdb.Error, match="(?i)install"):
        Store(path)._connect_once()


# -- 2. CATALOG_LOCK_TIMEOUT ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "-5", "nan", "4000", "inf"])
def test_a_bad_lock_timeout_names_the_variable_and_the_range(cli, db_path, value):
    r = cli(*READ, env={"CATALOG_LOCK_TIMEOUT": value})
    assert r.returncode == 2
    one_error_line(r, "CATALOG_LOCK_TIMEOUT must be a number of seconds from 0 to 3600", repr(value))
    assert not db_path.exists()


def test_lock_timeout_bounds_in_the_library(db_path):
    for bad in (-1, "x", 3601):
        with pytest.raises(CatalogError, match="lock_timeout must be a number of seconds from 0 to 3600"):
            Catalog(db_path, lock_timeout=bad)
    assert Catalog(db_path, lock_timeout=0).store.lock_timeout == 0
    assert Catalog(db_path, lock_timeout="2.5").store.lock_timeout == 2.5
    assert not db_path.exists()


# -- 3. --limit / --offset beyond 64 bits ---------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--limit", "--offset"])
def test_a_huge_limit_or_offset_is_a_one_line_error(cli, catalog_file, tmp_path, flag):
    assert cli("embeddings", "create", "e8", "8").returncode == 0
    vectors = tmp_path / "v.ndjson"
    vectors.write_text("".join(json.dumps({"id": f"sports-{i}", "vector": [1 + i] + [1] * 7}) + "\n"
                               for i in range(4)))
    assert cli("embeddings", "import", "e8", vectors).returncode == 0
    before = digest(catalog_file)
    r = cli("search", "--embedding", "e8", "--anchor", "sports-0", flag, "99999999999999999999")
    assert r.returncode == 2
    one_error_line(r, f"{flag} must be at most 1,000,000,000,000")
    assert digest(catalog_file) == before
    r = cli("search", "--embedding", "e8", "--anchor", "sports-0", "--limit", "1000000000000", "--offset", "0")
    assert r.returncode == 0, r.stderr


# -- 4. a damaged catalog -------------------------------------------------------------------------------
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _sql(statement):
    def damage(path):
        con = duckdb.connect(str(path))
        con.execute(statement)
        con.close()
    return damage


DAMAGES = {
    "truncated": (_truncate, "truncated"),
    "version-not-a-number": (_sql("UPDATE meta SET value = 'x' WHERE key = 'schema_version'"),
                             "schema version 'x' is not a number"),
    "no-version-row": (_sql("DELETE FROM meta"), "schema version is missing"),
    "dropped-table": (_sql("DROP TABLE labels"), "table labels is missing"),
}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_catalog_says_so_for_reads_and_writes(cli, catalog_file, tmp_path, kind):
    damage, detail = DAMAGES[kind]
    copy = tmp_path / "copy.duckdb"
    shutil.copy(catalog_file, copy)
    damage(copy)
    before = digest(copy)
    for args in (READ, WRITE):
        r = cli(*args, db=copy)
        assert r.returncode == 2
        one_error_line(r, "is damaged or not a catalog file", detail, "restore it from a backup", str(copy))
        assert digest(copy) == before
    assert not copy.with_name("copy.duckdb.wal").exists()


# -- 5. a DuckDB file of another program ----------------------------------------------------------------
def test_a_duckdb_file_with_other_tables_is_refused_and_left_unchanged(cli, tmp_path):
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER, total DOUBLE)")
    con.execute("INSERT INTO orders VALUES (1, 9.5)")
    con.close()
    before_tables, before = tables(path), digest(path)
    for args in (READ, ("embeddings", "create", "e8", "8")):
        r = cli(*args, db=path)
        assert r.returncode == 2
        one_error_line(r, "is not a catalog file but a database with other tables (orders)", "left unchanged")
    assert tables(path) == before_tables == ["orders"]
    assert digest(path) == before


def test_an_empty_duckdb_file_becomes_a_catalog(cli, tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    r = cli("embeddings", "list", db=path)
    assert r.returncode == 0, r.stderr
    assert "labels" in tables(path)


# -- 6. a read-only catalog -----------------------------------------------------------------------------
@pytest.fixture
def read_only(monkeypatch):
    """Make every catalog file look read-only to this process (tests run as root, whom chmod does not stop)."""
    real = os.access

    def access(path, mode, *a, **k):
        if mode & os.W_OK and str(path).endswith(".duckdb"):
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


def test_a_read_only_catalog_reads_and_refuses_writes(cli, catalog_file, read_only):
    before = digest(catalog_file)
    r = cli(*READ)
    assert r.returncode == 0, r.stderr
    assert "sports-0" in r.stdout
    assert cli("labels", "list", "sports-0").returncode == 0
    for args in (WRITE, ("embeddings", "create", "e8", "8"), ("labels", "remove", "sports-0")):
        r = cli(*args)
        assert r.returncode == 2
        one_error_line(r, "the catalog file is read-only", str(catalog_file), "can be read but not changed")
    assert digest(catalog_file) == before
    assert not catalog_file.with_name(catalog_file.name + ".wal").exists()


def test_a_read_only_store_says_it_is_read_only(catalog_file, read_only):
    cat = Catalog(catalog_file)
    assert cat.count_datarows() == 8
    assert cat.store.read_only is True
    with pytest.raises(CatalogError, match="the catalog file is read-only"):
        cat.create_embedding("e8", 8)


# -- 7. control characters in embedding names -----------------------------------------------------------
@pytest.mark.parametrize("name", ["two\nlines", "tab\tbed", "bell\x07", "cr\rx"])
def test_embedding_names_with_control_characters_are_refused(cli, db_path, name):
    cli("embeddings", "list")
    before = digest(db_path)
    r = cli("embeddings", "create", name, "8")
    assert r.returncode == 2
    one_error_line(r, "must not contain control characters")
    assert digest(db_path) == before
    assert len(cli("embeddings", "list").stdout.splitlines()) == 4


def test_a_read_only_mount_falls_back_to_reading(cli, catalog_file, monkeypatch):
    """A read-only mount: ``os.access`` may say writable, but DuckDB's read-write open fails."""
    real = duckdb.connect

    def connect(database, read_only=False, **kw):
        if not read_only and str(database).endswith(".duckdb"):
            raise duckdb.IOException(f'IO Error: Cannot open file "{database}": Read-only file system')
        return real(database, read_only=read_only, **kw)

    monkeypatch.setattr(duckdb, "connect", connect)
    before = digest(catalog_file)
    r = cli(*READ)
    assert r.returncode == 0, r.stderr
    assert "sports-0" in r.stdout
    r = cli(*WRITE)
    assert r.returncode == 2
    one_error_line(r, "the catalog file is read-only", "copy it to a writable place")
    assert digest(catalog_file) == before
