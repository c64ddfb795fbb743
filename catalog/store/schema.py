"""The catalog's schema: ordered migration steps, applied when a file is opened.

A file at version N gets steps N+1.. applied in one transaction. Append new steps (never edit old ones).
"""

from __future__ import annotations

import contextlib

import duckdb

from ..errors import CatalogError
from .hashes import migrate_hashes


def _scalar(con, sql: str):
    rows = con.execute(sql).fetchall()
    return rows[0][0] if rows else None


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

_V5 = [  # shared searches: a whole search under a short content key, so links with many anchors stay short
    """CREATE TABLE shared_searches (
        key VARCHAR PRIMARY KEY,
        query JSON NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

_V6 = [  # data-row aliases: the ids a row had elsewhere (a Labelbox data-row id, an external_id), so that
    # vector files, labels and anchors keyed by them resolve (catalog/store/rowrefs.py); at most one
    # alias of each kind per row, and one alias may name several rows (then it is ambiguous)
    """CREATE TABLE datarow_aliases (
        row_id UUID NOT NULL,
        kind VARCHAR NOT NULL,
        alias VARCHAR NOT NULL,
        PRIMARY KEY (row_id, kind))""",
]

_V7 = [  # API tokens for the REST server: only the sha256 of each token is kept
    """CREATE TABLE api_tokens (
        name VARCHAR PRIMARY KEY,
        token_hash VARCHAR NOT NULL UNIQUE,
        read_only BOOLEAN NOT NULL DEFAULT false,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

_V8 = [  # the vector engine (Qdrant) the catalog scales out on, and what each embedding's copy there holds
    """CREATE TABLE engine_config (
        key VARCHAR PRIMARY KEY,
        url VARCHAR NOT NULL,
        shards INTEGER,
        replicas INTEGER,
        api_key_env VARCHAR,
        catalog_key VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE engine_sync (
        embedding_id UUID PRIMARY KEY,
        url VARCHAR NOT NULL,
        collection VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        payload_token VARCHAR NOT NULL DEFAULT '',
        count BIGINT NOT NULL DEFAULT 0,
        synced_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

_V9 = [  # content hashes of data rows (image bytes, normalised text) for exact duplicates; existing rows are
    # hashed now, bounded (catalog/store/hashes.py: texts, and at most MIGRATION_IMAGE_LIMIT image files;
    # a missing file is recorded as such, never an error)
    """CREATE TABLE content_hashes (
        row_id UUID PRIMARY KEY,
        hash VARCHAR,
        status VARCHAR NOT NULL,
        hashed_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    migrate_hashes,
]

_V10 = [  # uniqueness (derived, rebuildable): per embedding the run (the vector version it was computed
    # at, the neighbours K) and each row's score (catalog/quality/uniqueness.py)
    """CREATE TABLE uniqueness_runs (
        embedding_id UUID PRIMARY KEY,
        version BIGINT NOT NULL,
        neighbours INTEGER NOT NULL,
        count BIGINT NOT NULL,
        computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE uniqueness (
        embedding_id UUID NOT NULL,
        row_id UUID NOT NULL,
        score DOUBLE NOT NULL)""",
]

_V11 = [  # the HNSW graph parameters of the engine's new collections (catalog/engine/config.py); NULL: Qdrant's
    "ALTER TABLE engine_config ADD COLUMN hnsw_m INTEGER",
    "ALTER TABLE engine_config ADD COLUMN hnsw_ef_construct INTEGER",
]

MIGRATIONS: list = [  # (version, [SQL text, or a function of the connection])
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
    (5, _V5),
    (6, _V6),
    (7, _V7),
    (8, _V8),
    (9, _V9),
    (10, _V10),
    (11, _V11),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


# The tables a catalog at SCHEMA_VERSION has (DuckDB's own and temporary ones are not listed here).
CATALOG_TABLES = ("meta", "datarows", "embeddings", "vectors", "labels", "slices", "batches", "batch_rows",
                  "shared_searches", "datarow_aliases", "api_tokens",
                  "engine_config", "engine_sync", "content_hashes",
                  "uniqueness_runs", "uniqueness")

# Every table with a ``row_id`` column that names a data row: deleting a row deletes its entries in
# each of them (one transaction). A new table that refers to data rows is one more line here.
ROW_TABLES = ("vectors", "labels", "batch_rows", "datarow_aliases", "content_hashes", "uniqueness")

DAMAGED_HINT = "restore it from a backup, or choose another catalog file"


class CatalogDamaged(CatalogError):
    """The file is a catalog whose contents are unreadable or incomplete (truncated, edited, a table gone)."""


class NotACatalog(CatalogError):
    """The file is not a catalog: another program's database (DuckDB, SQLite) or not a database at all."""


def damaged(what: str, detail: str) -> CatalogDamaged:
    return CatalogDamaged(f"cannot open {what}: it is damaged or not a catalog file ({detail})", field="db",
                          hint=DAMAGED_HINT)


def _tables(con) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_catalog = "
        "current_database() ORDER BY table_name").fetchall()]


def schema_version(con, what: str = "the catalog file") -> int:
    """The file's schema version: 0 for an empty file; refuses another program's tables and a damaged ``meta``."""
    tables = _tables(con)
    if not tables:
        return 0
    if "meta" not in tables:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise NotACatalog(f"cannot open {what}: it is not a catalog file but a database with other tables ({shown}); "
                          "it was left unchanged", field="db",
                          hint="choose another catalog file, or a new or empty one")
    value = _scalar(con, "SELECT value FROM meta WHERE key = 'schema_version'")
    if value is None:
        raise damaged(what, "its schema version is missing")
    if not str(value).strip().isdigit():
        raise damaged(what, f"its schema version {value!r} is not a number")
    return int(value)


def check_tables(con, what: str = "the catalog file") -> None:
    """Refuse a catalog at the newest version that lacks one of its tables."""
    missing = sorted(set(CATALOG_TABLES) - set(_tables(con)))
    if missing:
        raise damaged(what, f"table{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"{'are' if len(missing) > 1 else 'is'} missing")


def migrate(con, upto: int | None = None, what: str = "the catalog file") -> int:
    """Bring the file to ``upto`` (default: the newest version) in one transaction; returns it."""
    upto = SCHEMA_VERSION if upto is None else upto
    current = schema_version(con, what)
    if current > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog schema version {current} is newer than this program understands ({SCHEMA_VERSION}); upgrade the package",
            field="db")
    if current >= upto:
        return current
    con.execute("BEGIN TRANSACTION")
    try:
        for version, statements in MIGRATIONS:
            if current < version <= upto:
                for sql in statements:
                    sql(con) if callable(sql) else con.execute(sql)
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
        with contextlib.suppress(duckdb.Error):  # a damaged or read-only file may refuse even that
            con.execute("ROLLBACK")
        raise
    return upto
