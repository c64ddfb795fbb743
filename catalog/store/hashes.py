"""Content hashes of data rows (``content_hashes``), so that exact duplicates are one GROUP BY.

A row's hash is the SHA-256 (hex) of

- an **image**: the bytes of its local file (``row_data``; a copy in the media folder counts as the
  file). A URL image is not fetched: it gets no hash (status ``remote``).
- a **text**: its normalised text, UTF-8, prefixed ``text:`` so that a text never shares a hash with an
  image file. Normalisation: Unicode NFKC, then ``casefold()``, then every run of whitespace becomes
  one space and the ends are stripped — so ``"Café  au\\tlait"`` and ``"CAFÉ au lait "`` are exact
  duplicates, but punctuation and word order still count.

Every hashed row has one line with a ``status``: ``ok`` (hash set), ``missing`` (the file is gone or
not a regular file), ``unreadable`` (the file could not be read), ``too_large`` (over
``MAX_HASH_BYTES``, 1 GiB, not read), ``remote`` (a URL). Only ``ok`` rows have a hash and join exact
groups. Rows are hashed when imported (re-importing a row hashes it again) and, for catalogs made
before hashes existed, by the schema step that adds the table (at most ``MIGRATION_IMAGE_LIMIT``
image files; the rest, and any row without a line, are hashed by :func:`update_hashes`, which
:meth:`Catalog.duplicates` calls first). A row whose file has gone stays ``missing`` until
``update_hashes(retry=True)`` looks again.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from .arrow import registered

MAX_HASH_BYTES = 1 << 30          # bigger files are not read (status too_large)
MIGRATION_IMAGE_LIMIT = 20_000     # image files the schema step reads; the rest wait for update_hashes
_CHUNK = 1 << 20
_BATCH = 5_000
_SPACES = re.compile(r"\s+")
STATUSES = ("ok", "missing", "unreadable", "too_large", "remote")


def normalise_text(text: str) -> str:
    """The form of a text that its hash is taken of (NFKC, casefolded, whitespace runs as one space)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _file_hash(path: str) -> tuple[str | None, str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size > MAX_HASH_BYTES:
                return None, "too_large"
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None, "missing"
    except OSError:
        return None, "unreadable"
    return h.hexdigest(), "ok"


def content_hash(media_type: str, row_data: str) -> tuple[str | None, str]:
    """``(hash or None, status)`` of one row."""
    if media_type == "text":
        return hashlib.sha256(b"text:" + normalise_text(row_data).encode("utf-8")).hexdigest(), "ok"
    if row_data.startswith(("http://", "https://")):
        return None, "remote"
    return _file_hash(row_data[7:] if row_data.startswith("file://") else row_data)


def _write(con, ids: list[str], results: list[tuple[str | None, str]]) -> None:
    if not ids:
        return
    tbl = pa.table({"id": pa.array(ids, pa.string()), "hash": pa.array([r[0] for r in results], pa.string()),
                    "status": pa.array([r[1] for r in results], pa.string())})
    with registered(con, tbl, "row_hashes") as t:
        con.execute(f"""INSERT INTO content_hashes (row_id, hash, status)
                        SELECT CAST(id AS UUID), hash, status FROM {t}
                        ON CONFLICT (row_id) DO UPDATE SET hash = excluded.hash, status = excluded.status,
                            hashed_at = now()""")


def hash_rows(con, rows: list[tuple[str, str, str]]) -> dict[str, int]:
    """Hash ``(row id, media_type, row_data)`` rows (files read on two threads) and store the lines;
    returns how many got each status."""
    counts: dict[str, int] = {}
    for s in range(0, len(rows), _BATCH):
        part = rows[s:s + _BATCH]
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda r: content_hash(r[1], r[2]), part))
        _write(con, [r[0] for r in part], results)
        for _, status in results:
            counts[status] = counts.get(status, 0) + 1
    return counts


def hash_imported(con, keys: list[str]) -> None:
    """Within an import's transaction: hash the rows just written under ``keys`` (global_keys)."""
    if not keys:
        return
    with registered(con, pa.table({"k": pa.array(keys, pa.string())}), "hash_keys") as t:
        rows = con.execute(f"SELECT CAST(d.id AS VARCHAR), d.media_type, d.row_data FROM datarows d "
                           f"WHERE d.global_key IN (SELECT k FROM {t})").fetchall()
    hash_rows(con, rows)


def _unhashed(con, retry: bool, limit: int | None = None, media: str | None = None) -> list:
    again = "OR h.status IN ('missing', 'unreadable')" if retry else ""
    kind = f"AND d.media_type = '{media}'" if media in ("text", "image") else ""
    cap = f"LIMIT {int(limit)}" if limit is not None else ""
    return con.execute(f"""SELECT CAST(d.id AS VARCHAR), d.media_type, d.row_data FROM datarows d
                           LEFT JOIN content_hashes h ON h.row_id = d.id
                           WHERE (h.row_id IS NULL {again}) {kind} ORDER BY d.id {cap}""").fetchall()


def update_hashes(con, retry: bool = False) -> dict[str, int]:
    """Hash every row without a line (and, with ``retry``, those whose file was missing or unreadable)."""
    return hash_rows(con, _unhashed(con, retry))


def migrate_hashes(con) -> None:
    """The schema step's part in Python: every text row and at most ``MIGRATION_IMAGE_LIMIT`` image
    rows are hashed; a missing file is recorded as ``missing``, never an error."""
    hash_rows(con, _unhashed(con, False, media="text"))
    hash_rows(con, _unhashed(con, False, limit=MIGRATION_IMAGE_LIMIT, media="image"))


def hash_summary(con) -> dict[str, int]:
    """Rows per status, with ``unhashed`` for rows that have no line yet."""
    out = dict(con.execute("SELECT status, count(*) FROM content_hashes GROUP BY status").fetchall())
    out["unhashed"] = con.execute("SELECT count(*) FROM datarows d WHERE NOT EXISTS "
                                  "(SELECT 1 FROM content_hashes h WHERE h.row_id = d.id)").fetchone()[0]
    return out
