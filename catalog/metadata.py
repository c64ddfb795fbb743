"""Bulk metadata: set or remove keys on many rows at once, in one transaction, in SQL.

The target rows (a slice, a list of ids or global_keys, or a filter) go into a temporary table of row
ids; one ``UPDATE`` then rewrites their metadata with DuckDB's ``json_set`` / ``json_remove``. Any
failure rolls the whole change back: either every targeted row changes or none does.

``KEY=VALUE`` assignments (as a user types them) become a dict with :func:`parse_assignments`.
"""

from __future__ import annotations

import json
import math
import uuid

import pyarrow as pa

from .errors import CatalogError
from .filters import compile_filter, json_path, parse_filter
from .store import registered, scalar

MAX_KEYS = 100
_EXAMPLE = '\'{"split": "train"}\''


def parse_value(text: str):
    """A typed value: JSON when it parses (numbers, true/false, null, objects, lists, "quoted"), else the string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value


def _assign(out: dict, item, prefix: str = "") -> None:
    key, sep, value = str(item).partition("=")
    if not sep or not key.strip():
        raise CatalogError(f"{prefix}{item!r} is not KEY=VALUE; write e.g. split=train or quality.score=0.9",
                           field="values")
    key = key.strip()
    if key in out:
        raise CatalogError(f"{prefix}key {key!r} is given twice; give each key once", field="values")
    out[key] = parse_value(value)


def parse_assignments(items) -> dict:
    """``["a=1", "b.c=x"]`` → ``{"a": 1, "b.c": "x"}`` (values through :func:`parse_value`)."""
    out: dict = {}
    for item in items:
        _assign(out, item)
    return out


def parse_assignment_lines(text: str) -> dict:
    """One ``KEY=VALUE`` a line (blank lines skipped, each line trimmed) → a dict, as
    :func:`parse_assignments`; an error names its line (``line 2: ...``)."""
    out: dict = {}
    for n, line in enumerate(str(text).splitlines(), start=1):
        if line.strip():
            _assign(out, line.strip(), f"line {n}: ")
    return out


def _check_keys(keys, field: str) -> list[tuple[str, str]]:
    """``(key, json_path)`` for each dotted key; no key may be a prefix of another."""
    keys = list(keys)
    if not keys:
        raise CatalogError("give at least one metadata key", field=field)
    if len(keys) > MAX_KEYS:
        raise CatalogError(f"{len(keys)} keys at once is more than {MAX_KEYS}; split the change", field=field)
    out = []
    for key in keys:
        if not isinstance(key, str):
            raise CatalogError(f"metadata key {key!r} must be a string", field=field)
        out.append((key, json_path(key, field)))
    for a in keys:
        for b in keys:
            if a != b and b.startswith(a + "."):
                raise CatalogError(f"keys {a!r} and {b!r} overlap; give one of them", field=field)
    return out


def _json_text(key, value) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"value for {key!r} is not JSON ({exc}); use numbers, strings, true/false, null, "
                           "lists or objects", field="values") from None
    if "\x00" in text:
        raise CatalogError(f"value for {key!r} contains a NUL character", field="values")
    return text


def _check_set(texts):
    """After the UPDATE: every targeted row must now have every key (json_set skips a key whose parent is
    not an object); one scan for all keys, and a second only to name the culprit."""

    def check(con, table):
        exists = " AND ".join("coalesce(json_exists(d.metadata, ?), false)" for _ in texts)
        bad = con.execute(f"SELECT d.global_key, CAST(d.metadata AS VARCHAR) FROM datarows d JOIN {table} t "
                          f"ON d.id = t.id WHERE NOT ({exists}) ORDER BY d.global_key LIMIT 1",
                          [path for _, path, _ in texts]).fetchall()
        if bad:
            key = next((k for k, path, _ in texts if not scalar(
                con, "SELECT json_exists(CAST(? AS JSON), ?)", [bad[0][1], path])), texts[0][0])
            parent = key.rsplit(".", 1)[0]
            raise CatalogError(
                f"cannot set {key!r} on row {bad[0][0]!r}: its {parent!r} is not an object; "
                f"unset {parent!r} there first or choose another key (nothing was changed)", field="values")

    return check


class Metadata:
    """Changes the metadata of many rows at once: rows chosen by ``slices`` (a slice's rows), ``refs``
    (ids or global_keys) or a filter."""

    def __init__(self, store, refs, slices):
        self.store = store
        self.refs = refs
        self.slices = slices

    def set_metadata(self, values: dict, *, slice=None, ids=None, where=None) -> int:
        """Set each dotted key of ``values`` on every targeted row; returns the number of rows changed.

        Exactly one target: ``slice`` (a slice name), ``ids`` (row ids or global_keys) or ``where``
        (a filter; ``{}`` is every row). A dotted key creates the nested objects it needs; a key whose
        parent is not an object on some row (``a.b`` where ``a`` is 5) fails the whole change.
        """
        if not isinstance(values, dict):
            raise CatalogError("`values` must be a dict of key: value", field="values")
        keys = _check_keys(values, "values")
        texts = [(key, path, _json_text(key, values[key])) for key, path in keys]
        expr = "metadata"
        for _ in texts:  # json_set(json_set(metadata, ?, ?), ?, ?): parameters read innermost first
            expr = f"json_set({expr}, ?, CAST(? AS JSON))"
        params = [p for _, path, text in texts for p in (path, text)]
        return self._bulk_update(expr, params, slice, ids, where, _check_set(texts))

    def unset_metadata(self, keys, *, slice=None, ids=None, where=None) -> int:
        """Remove each dotted key from every targeted row (missing keys are fine); returns the rows targeted."""
        if isinstance(keys, str):
            keys = [keys]
        checked = _check_keys(keys, "keys")
        expr = "metadata"
        for _ in checked:
            expr = f"json_remove({expr}, ?)"
        return self._bulk_update(expr, [path for _, path in checked], slice, ids, where, None)

    # -- internals ---------------------------------------------------------------------------------
    def _bulk_target(self, slice, ids, where):
        """``("ids", [row ids])`` or ``("where", (sql, params))`` for exactly one given target."""
        given = [n for n, v in (("slice", slice), ("ids", ids), ("where", where)) if v is not None]
        if len(given) != 1:
            raise CatalogError("choose the rows with exactly one of `slice`, `ids` or `where`"
                               + (f" (got {', '.join(f'`{n}`' for n in given)})" if given else ""),
                               field=given[-1] if given else "where")
        if slice is not None:
            s = self.slices.get_slice(slice)
            if s.is_filter_only:
                return "where", compile_filter(s.query.get("where"))
            return "ids", s.row_ids()
        if ids is not None:
            if isinstance(ids, str):
                ids = [ids]
            ids = list(ids)
            if not ids:
                raise CatalogError("`ids` needs at least one data row id or global_key", field="ids")
            return "ids", self.refs.resolve(ids, field="ids")
        if isinstance(where, str):
            if not where.strip():
                raise CatalogError("`where` is empty; give '{}' to choose every row", field="where")
            where = parse_filter(where)
        if not isinstance(where, dict):
            raise CatalogError(f"`where` must be a JSON object such as {_EXAMPLE} ('{{}}': every row)", field="where")
        return "where", compile_filter(where)

    def _bulk_update(self, expr, params, slice, ids, where, check) -> int:
        kind, target = self._bulk_target(slice, ids, where)
        table = f"bulk_rows_{uuid.uuid4().hex[:12]}"
        if kind == "ids" and not target:
            return 0
        # the temporary table is created inside the transaction: a rollback removes it too
        with self.store.transaction() as con:
            if kind == "ids":
                with registered(con, pa.table({"id": pa.array(target, pa.string())}), "bulk_ids") as t:
                    con.execute(f"CREATE TEMP TABLE {table} AS SELECT DISTINCT CAST(id AS UUID) AS id FROM {t}")
            else:
                sql, fparams = target
                con.execute(f"CREATE TEMP TABLE {table} AS SELECT d.id FROM datarows d WHERE {sql}", fparams)
            n = scalar(con, f"SELECT count(*) FROM {table}")
            if n:
                con.execute(f"UPDATE datarows SET metadata = {expr}, updated_at = now() "
                            f"FROM {table} t WHERE datarows.id = t.id", params).fetchall()
                if check is not None:
                    check(con, table)
            con.execute(f"DROP TABLE {table}")
            return n
