"""Arrow (or pandas) tables handed to DuckDB for the length of one statement or block."""

from __future__ import annotations

import contextlib
import itertools

import duckdb

_counter = itertools.count()


@contextlib.contextmanager
def registered(con, table, prefix: str = "arrow"):
    """``with registered(con, tbl) as name: con.execute(f"... FROM {name} ...")`` — the table is
    visible under a fresh name inside the block and unregistered afterwards, whatever happens."""
    name = f"{prefix}_{next(_counter)}"
    con.register(name, table)
    try:
        yield name
    except BaseException:
        try:
            con.unregister(name)
        except duckdb.Error:  # an aborted transaction (a failed write) refuses it; the first error says why
            pass
        raise
    con.unregister(name)
