"""One rule for row references: what "a data row id or global_key" means everywhere.

A reference is trimmed of surrounding whitespace, then matched, in this order (the first that
matches decides):

1. ``global_key``, exactly (case-sensitive);
2. an **alias** (table ``datarow_aliases``, filled by data-row import): first a row's Labelbox
   data-row id (kind ``labelbox_id``: a record's ``id`` or an export's ``data_row.id``), then its
   ``external_id`` (kind ``external_id``), exactly. An alias of the winning kind that names more than
   one row is **ambiguous**: the reference then matches nothing (it does not fall through to step 3)
   and callers report it as ambiguous, naming the kind and the number of rows;
3. ``id`` as a UUID in DuckDB's reading of one (any letter case; with or without braces).

The same SQL serves a handful of references (anchors, labels) and millions of them (vector import):
it is one set-based join, so the rule cannot drift between callers. Code that deletes data rows
must delete their aliases in the same transaction (:data:`DELETE_ALIASES_SQL`).
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import NotFound
from .arrow import registered

ALIAS_KINDS = ("labelbox_id", "external_id")  # in order of precedence
KIND_WORDS = {"labelbox_id": "Labelbox id", "external_id": "external_id"}
DELETE_ALIASES_SQL = "DELETE FROM datarow_aliases WHERE row_id IN (SELECT unnest(?::UUID[]))"

def resolution_sql(table: str, key: str = "k") -> str:
    """SQL that selects every column of ``table`` plus ``rid`` (UUID, NULL when nothing matches):
    the data row that the reference in column ``key`` names; ``alias_kind`` and ``alias_rows``
    (NULL unless the reference is an alias and no global_key): the alias's kind and how many rows
    it names (more than 1: ambiguous, ``rid`` is NULL).

    One hash join per alias kind, each over the aliases the references name (a row has one alias of
    a kind, so ``count(*)`` counts rows); no window, no per-reference work outside DuckDB."""
    ref = f"trim(w.{key})"
    joins, rows, kinds, counts = [], [], [], []
    for n, kind in enumerate(ALIAS_KINDS):
        a = f"a{n}"
        joins.append(f"LEFT JOIN (SELECT alias, count(*) AS n, min(row_id) AS row_id FROM datarow_aliases "
                     f"WHERE kind = '{kind}' AND alias IN (SELECT trim({key}) FROM {table}) GROUP BY alias) {a} "
                     f"ON {a}.alias = {ref}")
        rows.append(f"WHEN {a}.n IS NOT NULL THEN (CASE WHEN {a}.n = 1 THEN {a}.row_id END)")
        kinds.append(f"WHEN {a}.n IS NOT NULL THEN '{kind}'")
        counts.append(f"WHEN {a}.n IS NOT NULL THEN {a}.n")
    return (f"SELECT w.*, CASE WHEN g.id IS NOT NULL THEN g.id {' '.join(rows)} ELSE i.id END AS rid, "
            f"CASE WHEN g.id IS NOT NULL THEN NULL {' '.join(kinds)} END AS alias_kind, "
            f"CASE WHEN g.id IS NOT NULL THEN NULL {' '.join(counts)} END AS alias_rows "
            f"FROM {table} w LEFT JOIN datarows g ON g.global_key = {ref} {' '.join(joins)} "
            f"LEFT JOIN datarows i ON i.id = TRY_CAST({ref} AS UUID)")


def ambiguity(kind: str | None, rows: int | None) -> str | None:
    """``"the external_id of 3 data rows"`` for an ambiguous alias, else None."""
    if kind is None or rows is None or rows < 2:
        return None
    return f"the {KIND_WORDS.get(kind, kind)} of {rows} data rows"


def shown(refs, limit: int = 5) -> str:
    """``'a', 'b' and 3 more`` for messages."""
    refs = list(refs)
    text = ", ".join(repr(r) for r in refs[:limit])
    return text + (f" and {len(refs) - limit} more" if len(refs) > limit else "")


class RowRefs:
    """Resolves row references against one catalog."""

    def __init__(self, store):
        self.store = store

    def _query(self, refs) -> list[tuple[str, str | None, str | None]]:
        """``(reference, row id or None, ambiguity or None)`` per distinct reference."""
        uniq = list(dict.fromkeys(str(r) for r in refs))
        if not uniq:
            return []
        with self.store.connect() as con, registered(con, pa.table({"k": pa.array(uniq, pa.string())})) as t:
            found = con.execute(f"SELECT k, CAST(rid AS VARCHAR), alias_kind, alias_rows "
                                f"FROM ({resolution_sql(t)})").fetchall()
        return [(k, rid, ambiguity(kind, n)) for k, rid, kind, n in found]

    def lookup(self, refs) -> dict[str, str | None]:
        """``{reference: row id, or None when it names no row}``; never raises for unknown ones."""
        return {k: rid for k, rid, _ in self._query(refs)}

    def resolve(self, refs, what: str = "data row", field: str | None = None) -> list[str]:
        """Row ids for the references, in the order given, duplicates dropped; :class:`NotFound`
        naming the unknown (or ambiguous) ones (``field``: the input they came from)."""
        refs = [str(r) for r in refs]
        found = {k: (rid, amb) for k, rid, amb in self._query(refs)}
        ambiguous = [(r, found[r][1]) for r in dict.fromkeys(refs) if found[r][1]]
        if ambiguous:
            ref, why = ambiguous[0]
            more = f" (and {len(ambiguous) - 1} more ambiguous references)" if len(ambiguous) > 1 else ""
            raise NotFound(f"{what} reference {ref!r} is ambiguous: it is {why}{more}; name the row by its "
                           "global_key or id", field=field)
        missing = [r for r in dict.fromkeys(refs) if found[r][0] is None]
        if missing:
            raise NotFound(f"no {what} with id or global_key {shown(missing)}", field=field)
        return list(dict.fromkeys(found[r][0] for r in refs))
