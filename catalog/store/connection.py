"""The DuckDB file: where it is, and short-lived connections with a bounded wait.

DuckDB lets one process at a time open a file for writing, so every operation opens a connection,
does its work and closes it. A process that finds the file locked retries for a bounded time
(``$CATALOG_LOCK_TIMEOUT`` seconds, 0 to 3600, default 15) and then raises :class:`CatalogBusy`.

Catalog connections never install or load DuckDB extensions on their own (a SQLite file given as the
catalog would otherwise make DuckDB fetch its SQLite extension from the internet). A file this process
may not write (a read-only mount, a file the user may only read) is opened read-only: reading works,
and a write says the file is read-only. A file that is not a catalog, or a damaged catalog, is refused
with one line that says what to do; it is left unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import duckdb

from ..errors import CatalogBusy, CatalogError
from .schema import NotACatalog, check_tables, damaged, migrate, schema_version
from .scratch import sweep
from .space import disk_full, is_out_of_space

DEFAULT_DB = "catalog.duckdb"
DEFAULT_LOCK_TIMEOUT = 15.0
MAX_LOCK_TIMEOUT = 3600.0  # an hour: longer waits are a mistake (a unit confusion, say), not a plan

# never fetch or load extensions behind the user's back (a SQLite or Postgres file would trigger one)
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUCKDB_MAGIC = b"DUCK"  # at byte 8 of every DuckDB file
# what DuckDB says when a file's blocks are unreadable (truncated, overwritten)
_DAMAGE_WORDS = ("could not read enough bytes", "corrupt", "checksum", "database has been invalidated",
                 "not a valid duckdb database file", "failed to read", "serializ")
_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the blocks
_READ_ONLY_WORDS = ("read-only mode", "read-only file system")
# DuckDB's Python module sets up a database instance when the first connection to a file opens and tears
# it down when the last one closes; threads doing that at the same time can get an instance without the
# module's Arrow scan ("Table Function with name python_arrow_scan does not exist"). Opening and closing
# connections one thread at a time avoids it; the work on an open connection still runs in parallel.
_OPEN_CLOSE = threading.Lock()
# Write transactions on one file are serialised within a process (threads of a server or a dashboard);
# between processes DuckDB's file lock does it. Without this, two threads' transactions could conflict.
_WRITE_LOCKS: dict[str, threading.Lock] = {}


class CatalogReadOnly(CatalogError):
    """The catalog file can be read but not written (a read-only mount, a file the user may only read)."""


def lock_timeout_from_env() -> float:
    """``$CATALOG_LOCK_TIMEOUT`` in seconds (default 15), checked to be a number from 0 to 3600."""
    raw = os.environ.get("CATALOG_LOCK_TIMEOUT")
    if raw is None or not raw.strip():
        return DEFAULT_LOCK_TIMEOUT
    return check_lock_timeout(raw, "CATALOG_LOCK_TIMEOUT")


def check_lock_timeout(value, name: str = "lock_timeout") -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or not 0 <= seconds <= MAX_LOCK_TIMEOUT:  # NaN fails the comparison too
        raise CatalogError(f"{name} must be a number of seconds from 0 to {MAX_LOCK_TIMEOUT:g}, not {value!r}",
                           field="lock_timeout")
    return seconds


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


def _holder(exc: Exception, path: Path) -> str:
    m = re.search(r"\(PID (\d+)\)", str(exc))
    if not m:
        return "another process is writing to it"
    server = server_file(path)
    try:
        info = json.loads(server.read_text())
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and str(info.get("pid")) == m.group(1):
        return (f"the catalog server at {info.get('url', '?')} (process {m.group(1)}) holds it open; "
                "send requests to that server, or run the server in shared mode")
    return f"process {m.group(1)} is writing to it"


def server_file(path: Path) -> Path:
    """Where a server that holds the catalog open says so (its process id and address), for busy messages."""
    return path.with_name(path.name + ".server.json")


class Store:
    """One DuckDB catalog file, opened briefly for each operation."""

    def __init__(self, path: str | os.PathLike | None = None, lock_timeout: float | None = None):
        self.path = resolve_db_path(path).expanduser().absolute()
        self.lock_timeout = lock_timeout_from_env() if lock_timeout is None else check_lock_timeout(lock_timeout)
        self.read_only = False  # set when the file is opened: True where this process may not write it
        self._ready = False
        self._local = threading.local()
        self._held: duckdb.DuckDBPyConnection | None = None  # see hold()

    # -- derived locations beside the file (rebuildable) --------------------------------------
    @property
    def cache_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".cache")

    @property
    def media_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".media")

    # -- connections ---------------------------------------------------------------------------
    @property
    def _what(self) -> str:
        return f"catalog {self.path}"

    def _read_only_error(self) -> CatalogReadOnly:
        return CatalogReadOnly(f"the catalog file is read-only: {self.path} can be read but not changed",
                               field="db", hint="copy it to a writable place, or make it writable")

    def _check_file(self) -> None:
        """Refuse, before DuckDB sees it, a file that is no DuckDB database (SQLite, text, ...)."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(16)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise NotACatalog(f"cannot open {self._what}: it is a folder, not a catalog file", field="db",
                              hint="choose another catalog file") from None
        except OSError as exc:
            raise CatalogError(f"cannot open {self._what}: {exc.strerror or exc}", field="db") from None
        if head.startswith(_SQLITE_MAGIC):
            raise NotACatalog(f"cannot open {self._what}: it is a SQLite database, not a catalog file; "
                              "it was left unchanged",
                              field="db", hint="choose another catalog file, or a new or empty one")
        if head and head[8:12] != _DUCKDB_MAGIC:
            raise damaged(self._what, "it is not a DuckDB database (or its header is overwritten)")

    def _classify(self, exc: Exception) -> CatalogError | None:
        """The catalog error a DuckDB error stands for (read-only file, damaged file), or None."""
        text = str(exc).lower()
        if is_out_of_space(exc):
            return disk_full(self.path.parent)
        if any(w in text for w in _READ_ONLY_WORDS):
            return self._read_only_error()
        if isinstance(exc, (duckdb.IOException, duckdb.SerializationException, duckdb.FatalException,
                            duckdb.InternalException)) and any(w in text for w in _DAMAGE_WORDS):
            return damaged(self._what, str(exc).splitlines()[0])
        return None

    def _connect_once(self) -> duckdb.DuckDBPyConnection:
        read_only = self.path.exists() and not os.access(self.path, os.W_OK)
        try:
            with _OPEN_CLOSE:
                con = duckdb.connect(str(self.path), read_only=read_only, config=CONFIG)
        except duckdb.IOException as exc:
            text = str(exc).lower()
            refused = any(w in text for w in (*_READ_ONLY_WORDS, "permission denied"))
            if read_only or not self.path.exists() or not refused:
                raise
            read_only = True  # a read-only mount: os.access may not tell, the open does
            with _OPEN_CLOSE:
                con = duckdb.connect(str(self.path), read_only=True, config=CONFIG)
        self.read_only = read_only
        return con

    def _open(self) -> duckdb.DuckDBPyConnection:
        if not self.path.parent.exists():
            raise CatalogError(f"catalog folder {self.path.parent} does not exist", field="db",
                               hint="create it or choose another catalog file")
        self._check_file()
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                con = self._connect_once()
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise self._classify(exc) or CatalogError(
                        f"cannot open catalog {self.path}: {str(exc).splitlines()[0]}", field="db") from None
                if time.monotonic() >= deadline:
                    raise CatalogBusy(
                        f"catalog {self.path} is busy: {_holder(exc, self.path)}; "
                        f"waited {self.lock_timeout:g} s (set CATALOG_LOCK_TIMEOUT to wait longer)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:
                raise self._classify(exc) or CatalogError(
                    f"cannot open catalog {self.path}: {str(exc).splitlines()[0]}", field="db") from None
        con.execute("SET enable_progress_bar = false")
        return con

    def free_space(self) -> int:
        """Bytes in the catalog file's free blocks, which writes reuse before the file grows."""
        with self.connect() as con:
            row = one(con, "SELECT block_size, free_blocks FROM pragma_database_size() WHERE database_name = "
                           "current_database()")
        return int(row[0]) * int(row[1]) if row and row[0] and row[1] is not None else 0

    def _check_length(self, con) -> None:
        """Refuse a file shorter than the blocks it lists (a truncated copy), before any read fails midway.
        Skipped while a write-ahead log is pending: its blocks are not in the file yet."""
        if Path(f"{self.path}.wal").exists() or not self.path.exists():
            return
        row = one(con, "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = "
                       "current_database()")
        if row and row[0] and row[1] is not None:
            needed = _HEADER_BYTES + int(row[0]) * int(row[1])
            size = self.path.stat().st_size
            if size < needed:
                raise damaged(self._what, f"it is {size:,} bytes long but its contents need {needed:,}; "
                                          "it looks truncated")

    def _prepare(self, con) -> None:
        """Bring the file to the newest schema (once per Store) and check that it is a whole catalog."""
        try:
            self._check_length(con)
            new = schema_version(con, self._what) == 0
            migrate(con, what=self._what)
            check_tables(con, self._what)
        except CatalogError:
            raise
        except duckdb.Error as exc:
            raise self._classify(exc) or damaged(self._what, str(exc).splitlines()[0]) from None
        if not self.read_only:  # what killed processes left behind: scratch folders, half-built caches
            if new:  # a new catalog has no derived files: any there belong to a file this path held before
                shutil.rmtree(self.cache_dir, ignore_errors=True)
            sweep(self.path, self.cache_dir)
        self._ready = True

    def change_token(self) -> tuple:
        """Changes whenever anything is committed to the catalog file (DuckDB appends to its write-ahead
        log, and a checkpoint rewrites the file): what was read before may be reused while it is equal."""
        out = []
        for p in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    # -- holding the file open (a server) ------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._held is not None

    def hold(self) -> None:
        """Keep the file open until :meth:`release`: each operation then takes a cursor of the one open
        database (about 0.1 ms) instead of opening the file (milliseconds to tens of milliseconds).
        Meanwhile other processes cannot open the file; they wait and then get :class:`CatalogBusy`."""
        if self._held is not None:
            return
        con = self._open()
        try:
            if not self._ready:
                self._prepare(con)
        except BaseException:
            with _OPEN_CLOSE:
                con.close()
            raise
        self._held = con

    def release(self) -> None:
        """Close the file :meth:`hold` kept open (operations then open it again each time)."""
        con, self._held = self._held, None
        if con is not None:
            with _OPEN_CLOSE:
                con.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        con = self._held.cursor()
        con.execute("SET enable_progress_bar = false")
        return con

    @contextlib.contextmanager
    def connect(self):
        """A connection for one operation; nested calls in one thread reuse the open one."""
        con = getattr(self._local, "con", None)
        if con is not None:
            yield con
            return
        con = self._cursor() if self._held is not None else self._open()
        self._local.con = con
        try:
            if not self._ready:
                self._prepare(con)
            try:
                yield con
            except duckdb.InterruptException:  # DuckDB's word for a Ctrl-C that stopped a query
                raise KeyboardInterrupt from None
            except duckdb.Error as exc:
                error = self._classify(exc)
                if error is None:
                    raise
                raise error from None
        finally:
            self._local.con = None
            with _OPEN_CLOSE:
                con.close()

    def _write_lock(self) -> threading.Lock:
        with _OPEN_CLOSE:
            return _WRITE_LOCKS.setdefault(str(self.path), threading.Lock())

    @contextlib.contextmanager
    def transaction(self):
        """A connection inside BEGIN ... COMMIT; any exception (or a kill) rolls everything back.
        One write transaction per file at a time in this process (others wait)."""
        if getattr(self._local, "in_tx", False):
            with self.connect() as con:
                yield con
            return
        lock = self._write_lock()
        if not lock.acquire(timeout=max(self.lock_timeout, 0.001)):
            raise CatalogBusy(f"catalog {self.path} is busy: another write of this process is running; "
                              f"waited {self.lock_timeout:g} s (set CATALOG_LOCK_TIMEOUT to wait longer)")
        try:
            with self.connect() as con:
                yield from self._in_transaction(con)
        finally:
            lock.release()

    def _in_transaction(self, con):
        """BEGIN ... COMMIT on ``con``; any exception (or a kill) rolls everything back."""
        con.execute("BEGIN TRANSACTION")
        self._local.in_tx = True
        try:
            yield con
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:  # a damaged or invalidated file refuses even that; the first error says why
                pass
            raise
        else:
            con.execute("COMMIT")
        finally:
            self._local.in_tx = False
