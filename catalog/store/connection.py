"""The DuckDB file: where it is, and short-lived connections with a bounded wait.

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

from ..errors import CatalogBusy, CatalogError
from .schema import migrate

DEFAULT_DB = "catalog.duckdb"


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
            raise CatalogError(f"catalog folder {self.path.parent} does not exist", field="db",
                               hint="create it or choose another catalog file")
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


