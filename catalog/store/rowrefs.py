"""One rule for row references: what "a data row id or global_key" means everywhere.

A reference is matched, after trimming surrounding whitespace, first against ``global_key`` (exactly,
case-sensitive), then against ``id`` as a UUID in DuckDB's reading of one (any letter case; with or
without braces). The same SQL serves a handful of references (anchors, labels) and millions of them
(vector import), so the rule cannot drift between callers.
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import NotFound
from .arrow import registered


def resolution_sql(table: str, key: str = "k") -> str:
    """SQL that selects every column of ``table`` plus ``rid`` (UUID, NULL when nothing matches):
    the data row that the reference in column ``key`` names."""
    return (f"SELECT w.*, coalesce(g.id, i.id) AS rid FROM {table} w "
            f"LEFT JOIN datarows g ON g.global_key = trim(w.{key}) "
            f"LEFT JOIN datarows i ON i.id = TRY_CAST(trim(w.{key}) AS UUID)")


def shown(refs, limit: int = 5) -> str:
    """``'a', 'b' and 3 more`` for messages."""
    refs = list(refs)
    text = ", ".join(repr(r) for r in refs[:limit])
    return text + (f" and {len(refs) - limit} more" if len(refs) > limit else "")


class RowRefs:
    """Resolves row references against one catalog."""

    def __init__(self, store):
        self.store = store

    def lookup(self, refs) -> dict[str, str | None]:
        """``{reference: row id, or None when it names no row}``; never raises for unknown ones."""
        uniq = list(dict.fromkeys(str(r) for r in refs))
        if not uniq:
            return {}
        with self.store.connect() as con, registered(con, pa.table({"k": pa.array(uniq, pa.string())})) as t:
            found = con.execute(f"SELECT k, CAST(rid AS VARCHAR) FROM ({resolution_sql(t)})").fetchall()
        return dict(found)

    def resolve(self, refs, what: str = "data row", field: str | None = None) -> list[str]:
        """Row ids for the references, in the order given, duplicates dropped; :class:`NotFound`
        naming the unknown ones (``field``: the input they came from)."""
        refs = [str(r) for r in refs]
        found = self.lookup(refs)
        missing = [r for r in dict.fromkeys(refs) if found.get(r) is None]
        if missing:
            raise NotFound(f"no {what} with id or global_key {shown(missing)}", field=field)
        return list(dict.fromkeys(found[r] for r in refs))
