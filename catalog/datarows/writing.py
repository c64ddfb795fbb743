"""Writing the aliases of imported rows (a record's Labelbox id and external_id) into
``datarow_aliases``, within the import's transaction.

A row has at most one alias of each kind: a re-import that gives a new one replaces it; a record
without one keeps the row's old alias. An alias that now names more than one row is reported (one
warning per kind): references by it are ambiguous (:mod:`catalog.store.rowrefs`).
"""

from __future__ import annotations

import pyarrow as pa

from ..store import ALIAS_KINDS, registered, shown
from ..store.rowrefs import KIND_WORDS


def write_aliases(con, records: dict[str, dict]) -> list[tuple[str, str]]:
    """Store the ``aliases`` of ``records`` (``{global_key: record}``, rows already written);
    returns ``(source, note)`` warnings for aliases that name several rows."""
    keys, kinds, values = [], [], []
    for key, rec in records.items():
        for kind in ALIAS_KINDS:
            value = (rec.get("aliases") or {}).get(kind)
            if value is not None:
                keys.append(key)
                kinds.append(kind)
                values.append(value)
    if not keys:
        return []
    tbl = pa.table({"global_key": pa.array(keys, pa.string()), "kind": pa.array(kinds, pa.string()),
                    "alias": pa.array(values, pa.string())})
    with registered(con, tbl, "import_aliases") as t:
        con.execute(f"""INSERT INTO datarow_aliases (row_id, kind, alias)
                        SELECT d.id, a.kind, a.alias FROM {t} a JOIN datarows d ON d.global_key = a.global_key
                        ON CONFLICT (row_id, kind) DO UPDATE SET alias = excluded.alias""")
        shared = con.execute(f"""SELECT x.kind, x.alias, count(DISTINCT x.row_id) FROM datarow_aliases x
                                 WHERE (x.kind, x.alias) IN (SELECT kind, alias FROM {t})
                                 GROUP BY x.kind, x.alias HAVING count(DISTINCT x.row_id) > 1
                                 ORDER BY x.kind, x.alias""").fetchall()
    notes = []
    for kind in ALIAS_KINDS:
        hits = [(alias, n) for k, alias, n in shared if k == kind]
        if hits:
            word = KIND_WORDS[kind]
            many = len(hits) != 1
            notes.append((f"{word}s", f"{len(hits)} {word}{'s' if many else ''} name{'' if many else 's'} more than "
                          f"one data row ({shown(a for a, _ in hits)}); references by {'them' if many else 'it'} are "
                          "ambiguous (use the global_key or id)"))
    return notes
