"""The DuckDB file: where it is, short-lived connections with a bounded wait, and the schema.

DuckDB lets one process at a time open a file for writing, so every operation opens a connection,
does its work and closes it. A process that finds the file locked retries for a bounded time
(``$CATALOG_LOCK_TIMEOUT`` seconds, default 15) and then raises :class:`CatalogBusy`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

import duckdb

from .errors import CatalogBusy, CatalogError

DEFAULT_DB = "catalog.duckdb"
CLIP_ID = "00000000-0000-0000-0000-000000000000"
MPNET_ID = "00000000-0000-0000-0000-000000000001"
MINILM_ID = "00000000-0000-0000-0000-000000000002"
COLOR_TEXTURE_ID = "00000000-0000-0000-0000-000000000003"

# (id, name, dims, model, media type) of the off-the-shelf embeddings every catalog lists.
OFF_THE_SHELF = [
    (CLIP_ID, "clip-vit-b-32", 512, "open_clip:ViT-B-32", "image"),
    (MPNET_ID, "all-mpnet-base-v2", 768, "sentence-transformers:all-mpnet-base-v2", "text"),
    (MINILM_ID, "all-minilm-l6-v2", 384, "sentence-transformers:all-MiniLM-L6-v2", "text"),
    (COLOR_TEXTURE_ID, "color-texture", 256, "builtin:color-texture", "image"),
]

_V1 = [
    """CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE datarows (
        id UUID PRIMARY KEY,
        global_key VARCHAR NOT NULL UNIQUE,
        media_type VARCHAR NOT NULL,
        row_data VARCHAR NOT NULL,
        metadata JSON NOT NULL DEFAULT '{}',
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE embeddings (
        id UUID PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        dims INTEGER NOT NULL,
        custom BOOLEAN NOT NULL,
        model VARCHAR,
        media_type VARCHAR,
        version BIGINT NOT NULL DEFAULT 0,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE vectors (
        embedding_id UUID NOT NULL,
        row_id UUID NOT NULL,
        vector FLOAT[] NOT NULL)""",
    """CREATE TABLE labels (
        row_id UUID NOT NULL,
        label VARCHAR NOT NULL,
        source VARCHAR NOT NULL DEFAULT 'manual',
        score DOUBLE,
        reviewed BOOLEAN NOT NULL DEFAULT false,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (row_id, label))""",
    """CREATE TABLE slices (
        id UUID PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        description VARCHAR,
        query JSON NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

# Ordered schema steps; a file at version N gets steps N+1.. applied when it is opened.
# Append new steps here (never edit old ones).
_V2 = [  # labeling batches ("send to annotate"): rows frozen at creation, unique name per project
    """CREATE TABLE batches (
        id UUID PRIMARY KEY,
        project VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        priority INTEGER NOT NULL DEFAULT 3,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        UNIQUE (project, name))""",
    """CREATE TABLE batch_rows (
        batch_id UUID NOT NULL,
        project VARCHAR NOT NULL,
        row_id UUID NOT NULL,
        PRIMARY KEY (project, row_id))""",
]

_V3 = [  # vector imports stage their rows under a private id, committed chunk by chunk, then swap
    """CREATE TABLE import_staging (
        staging_id UUID PRIMARY KEY,
        embedding_id UUID NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

_V4 = [  # vectors stored uncompressed (embedding floats do not compress, and trying halves import
    # speed); imports now write in one transaction, so the staging table goes, with any rows that a
    # killed import of the previous version left staged
    """CREATE TABLE vectors_v4 (
        embedding_id UUID NOT NULL,
        row_id UUID NOT NULL,
        vector FLOAT[] NOT NULL USING COMPRESSION uncompressed)""",
    """INSERT INTO vectors_v4 SELECT embedding_id, row_id, vector FROM vectors
        WHERE embedding_id NOT IN (SELECT staging_id FROM import_staging)""",
    "DROP TABLE vectors",
    "ALTER TABLE vectors_v4 RENAME TO vectors",
    "DROP TABLE import_staging",
]

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def one(con, sql: str, params=None):
    """The first row of a query (or None); the result is consumed so the connection stays usable."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con, sql: str, params=None):
    """The first value of the first row (or None)."""
    row = one(con, sql, params)
    return row[0] if row else None


def resolve_db_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$CATALOG_DB``, else ``./catalog.duckdb``."""
    return Path(path or os.environ.get("CATALOG_DB") or DEFAULT_DB)


def _is_lock_error(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _holder(exc: Exception) -> str:
    m = re.search(r"\(PID (\d+)\)", str(exc))
    return f"process {m.group(1)}" if m else "another process"


class Store:
    """One DuckDB catalog file, opened briefly for each operation."""

    def __init__(self, path: str | os.PathLike | None = None, lock_timeout: float | None = None):
        self.path = resolve_db_path(path).expanduser().absolute()
        if lock_timeout is None:
            lock_timeout = float(os.environ.get("CATALOG_LOCK_TIMEOUT", "15"))
        self.lock_timeout = lock_timeout
        self._ready = False
        self._local = threading.local()

    # -- derived locations beside the file (rebuildable) --------------------------------------
    @property
    def cache_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".cache")

    @property
    def media_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".media")

    # -- connections ---------------------------------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        if not self.path.parent.exists():
            raise CatalogError(f"catalog folder {self.path.parent} does not exist; create it or pass another --db")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise CatalogError(f"cannot open catalog {self.path}: {str(exc).splitlines()[0]}") from None
                if time.monotonic() >= deadline:
                    raise CatalogBusy(
                        f"catalog {self.path} is busy: {_holder(exc)} is writing to it; "
                        f"waited {self.lock_timeout:g} s (set CATALOG_LOCK_TIMEOUT to wait longer)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:
                raise CatalogError(f"cannot open catalog {self.path}: {str(exc).splitlines()[0]}") from None
        con.execute("SET enable_progress_bar = false")
        return con

    @contextlib.contextmanager
    def connect(self):
        """A connection for one operation; nested calls in one thread reuse the open one."""
        con = getattr(self._local, "con", None)
        if con is not None:
            yield con
            return
        con = self._open()
        self._local.con = con
        try:
            if not self._ready:
                migrate(con)
                self._ready = True
            yield con
        finally:
            self._local.con = None
            con.close()

    @contextlib.contextmanager
    def transaction(self):
        """A connection inside BEGIN ... COMMIT; any exception (or a kill) rolls everything back."""
        with self.connect() as con:
            if getattr(self._local, "in_tx", False):
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            self._local.in_tx = True
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            else:
                con.execute("COMMIT")
            finally:
                self._local.in_tx = False


def schema_version(con) -> int:
    exists = scalar(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta' AND table_schema = 'main'"
    )
    if not exists:
        return 0
    row = one(con, "SELECT value FROM meta WHERE key = 'schema_version'")
    return int(row[0]) if row else 0


def migrate(con, upto: int | None = None) -> int:
    """Bring the file to ``upto`` (default: the newest version) in one transaction; returns it."""
    upto = SCHEMA_VERSION if upto is None else upto
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog schema version {current} is newer than this program understands ({SCHEMA_VERSION}); upgrade the package"
        )
    if current >= upto:
        return current
    con.execute("BEGIN TRANSACTION")
    try:
        for version, statements in MIGRATIONS:
            if current < version <= upto:
                for sql in statements:
                    con.execute(sql)
                if version == 1:
                    for eid, name, dims, model, media in OFF_THE_SHELF:
                        con.execute(
                            "INSERT INTO embeddings (id, name, dims, custom, model, media_type) VALUES (?, ?, ?, false, ?, ?)",
                            [eid, name, dims, model, media],
                        )
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return upto
