"""Mongo-style filters over data rows, compiled to parameterised DuckDB SQL.

``compile_filter(where, alias="d")`` turns a filter such as::

    {"camera.make": "Canon", "iso": {"$gte": 400}, "tags": {"$in": ["night", "city"]},
     "label": {"$ne": "blurry"}, "$or": [{"media_type": "image"}, {"global_key": {"$prefix": "texts/"}}]}

into a boolean SQL expression over ``datarows`` aliased ``alias`` with ``?`` placeholders and the list
of values for them. Values are always bound parameters; metadata keys are checked against an allowed
character set and passed as JSON-path parameters, never spliced into the SQL text.

Fields
    any other key          a dotted path into the row's metadata (``metadata.``-prefixed to reach a key
                           that shadows a built-in name, e.g. ``metadata.label``)
    ``id``, ``global_key``, ``media_type``   the row's columns (strings)
    ``created_at``, ``updated_at``           timestamps, compared with ISO-8601 strings
    ``label``              the row has a label with that name (``$ne``/``$nin``: has none of them)
    ``label_source``       the row has a label from that source (``manual``, ``similarity``)
    ``reviewed``           the row has a label whose reviewed flag is that boolean
    ``labeled``            ``true``: the row has at least one label; ``false``: none
    ``labels``             one label satisfying every condition: ``{"labels": {"label": "cat",
                           "source": "similarity", "reviewed": false, "score": {"$gte": 0.5}}}``

Operators: ``$eq $ne $in $nin $gt $gte $lt $lte $exists $prefix $not`` on fields; ``$and $or $nor
$not`` between filters. Metadata comparisons are typed: numbers compare numerically, strings as
strings, and a value of another JSON type never matches a range operator. A metadata array matches
when the array itself or any of its elements matches (``{"tags": "red"}`` matches ``["red", "blue"]``).
``{"x": null}`` matches a missing key or a JSON null; ``$ne``/``$nin`` also match rows without the key.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone

from .errors import CatalogError

MAX_DEPTH = 32
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
# One metadata key: letters and digits of any script, underscore, space and - : / @ + #
_SEGMENT_RE = re.compile(r"^[\w \-:/@+#]{1,200}$")

_RANGE = ("$gt", "$gte", "$lt", "$lte")
_SQL_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = ("$eq", "$ne", "$in", "$nin", *_RANGE, "$exists", "$prefix", "$not")
_LOGICAL = ("$and", "$or", "$nor", "$not")
_NUMERIC_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"

_COLUMNS = {"id": ("CAST({a}.id AS VARCHAR)", "str"), "global_key": ("{a}.global_key", "str"),
            "media_type": ("{a}.media_type", "str"), "created_at": ("{a}.created_at", "ts"),
            "updated_at": ("{a}.updated_at", "ts")}
_LABEL_FIELDS = {"label": ("label", "str"), "label_source": ("source", "str"), "reviewed": ("reviewed", "bool")}
_LABEL_COLUMNS = {"label": "str", "source": "str", "reviewed": "bool", "score": "num"}


def compile_filter(where, alias: str = "d") -> tuple[str, list]:
    """``(sql, params)``: a boolean expression over ``datarows`` aliased ``alias``; ``("TRUE", [])`` for None/{}.

    ``where`` is a dict (or its JSON text). Unknown operators, unknown field types and bad values raise
    :class:`CatalogError` with a one-line message naming the operator or path.
    """
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise CatalogError(f"filter alias {alias!r} is not a plain SQL identifier")
    if isinstance(where, str):
        where = parse_filter(where)
    if where is None or where == {}:
        return "TRUE", []
    return _Compiler(alias).document(where, 0)


def parse_filter(text: str | None) -> dict | None:
    """A filter from its JSON text (as given to ``--where``); None for empty text."""
    if text is None or not text.strip():
        return None
    try:
        where = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"--where is not valid JSON ({exc.msg} at character {exc.pos}); "
                           'write it like \'{"split": "train"}\'') from None
    if not isinstance(where, dict):
        raise CatalogError("--where must be a JSON object such as '{\"split\": \"train\"}'")
    return where


def json_path(path: str) -> str:
    """The DuckDB JSON path (``$."a"."b"``) for a validated dotted key."""
    segments = path.split(".")
    for seg in segments:
        if not _SEGMENT_RE.match(seg) or seg.strip() != seg:
            raise CatalogError(
                f"metadata path {path!r} is not allowed: keys are dot-separated names of letters, digits, "
                "spaces and _ - : / @ + # (no leading or trailing spaces)")
    return "$" + "".join(f'."{s}"' for s in segments)


_TOKEN_RE = re.compile(r"\{e\}|\?")


def _render(template: str, values: list, expr: tuple[str, list]) -> tuple[str, list]:
    """``template`` with each ``{e}`` replaced by ``expr`` (SQL, params) and each ``?`` bound in order."""
    out, params, pos, it = [], [], 0, iter(values)
    for m in _TOKEN_RE.finditer(template):
        out.append(template[pos:m.start()])
        if m.group() == "?":
            out.append("?")
            params.append(next(it))
        else:
            out.append(expr[0])
            params.extend(expr[1])
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), params


def _depth(value) -> int:
    """How deeply lists and objects nest in ``value`` (iterative, so any depth is safe to measure)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _desc(value) -> str:
    if _depth(value) > 4:
        return f"a deeply nested {'list' if isinstance(value, list) else 'object'}"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_str(value, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogError(f"{where} needs a string, got {_desc(value)}")
    if "\x00" in value:
        raise CatalogError(f"{where}: strings must not contain NUL characters")
    return value


def _check_number(value, where: str) -> float:
    try:
        f = float(value)
    except OverflowError:
        raise CatalogError(f"{where}: number {_desc(value)} is out of range") from None
    if not math.isfinite(f):
        raise CatalogError(f"{where}: number must be finite, got {_desc(value)}")
    return f


def _timestamp(value, where: str) -> datetime:
    if not isinstance(value, str):
        raise CatalogError(f"{where} needs an ISO-8601 date or time string such as \"2026-11-21T08:00:00\", "
                           f"got {_desc(value)}")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CatalogError(f"{where}: {_desc(value)} is not an ISO-8601 date or time "
                           "(e.g. \"2026-11-21\" or \"2026-11-21T08:00:00Z\")") from None
    if ts.tzinfo is not None:  # stored times are UTC
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def _and(parts):
    parts = list(parts)
    if not parts:
        return "TRUE", []
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({s})" for s, _ in parts), [p for _, ps in parts for p in ps]


def _or(parts):
    parts = list(parts)
    if not parts:
        return "FALSE", []
    if len(parts) == 1:
        return parts[0]
    return " OR ".join(f"({s})" for s, _ in parts), [p for _, ps in parts for p in ps]


def _not(part):
    s, p = part
    return f"NOT coalesce(({s}), false)", p


def _op_dict(value) -> bool:
    """True for ``{"$gt": 1, ...}``; False for a plain value; an error for a mix of both."""
    if not isinstance(value, dict) or not value:
        return False
    ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
    if ops and len(ops) != len(value):
        raise CatalogError(f"cannot mix operators and plain keys in {_desc(value)}; "
                           "put the plain object under \"$eq\"")
    return bool(ops)


class _Compiler:
    def __init__(self, alias: str):
        self.a = alias

    # -- documents: {field: condition, "$and": [...], ...} ------------------------------------
    def document(self, doc, depth):
        if depth > MAX_DEPTH:
            raise CatalogError(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not isinstance(doc, dict):
            raise CatalogError(f"a filter must be a JSON object of field conditions, got {_desc(doc)}")
        parts = []
        for key, cond in doc.items():
            if not isinstance(key, str):
                raise CatalogError(f"filter keys must be strings, got {_desc(key)}")
            if key.startswith("$"):
                parts.append(self.logical(key, cond, depth))
            else:
                parts.append(self.field(key, cond, depth))
        return _and(parts)

    def logical(self, op, cond, depth):
        if op == "$not":
            if not isinstance(cond, dict) or not cond:
                raise CatalogError(f"$not needs a non-empty filter object, got {_desc(cond)}")
            return _not(self.document(cond, depth + 1))
        if op not in ("$and", "$or", "$nor"):
            hint = " (field operators go inside a field: {\"size\": {\"%s\": ...}})" % op if op in _FIELD_OPS else ""
            raise CatalogError(f"unknown filter operator {op!r} at the top level; use $and, $or, $nor or $not{hint}")
        if not isinstance(cond, list) or not cond:
            raise CatalogError(f"{op} needs a non-empty list of filters, got {_desc(cond)}")
        parts = [self.document(c, depth + 1) for c in cond]
        if op == "$and":
            return _and(parts)
        return _or(parts) if op == "$or" else _not(_or(parts))

    def field(self, key, cond, depth):
        if depth > MAX_DEPTH:
            raise CatalogError(f"filter is nested deeper than {MAX_DEPTH} levels")
        if key in _COLUMNS:
            expr, kind = _COLUMNS[key]
            return self.conditions(key, cond, depth, lambda op, v: self.column(expr.format(a=self.a), kind, key, op, v))
        if key in _LABEL_FIELDS:
            return self.label_field(key, cond, depth)
        if key == "labeled":
            return self.labeled(cond)
        if key == "labels":
            return self.label_match(cond, depth)
        path = key[len("metadata."):] if key.startswith("metadata.") else key
        jpath = json_path(path)
        return self.conditions(key, cond, depth, lambda op, v: self.metadata(jpath, key, op, v))

    def conditions(self, key, cond, depth, leaf):
        """AND of ``leaf(op, value)`` for each operator in ``cond`` (implicit ``$eq`` for a plain value)."""
        if not _op_dict(cond):
            return leaf("$eq", cond)
        parts = []
        for op, v in cond.items():
            if op == "$not":
                if not _op_dict(v):
                    raise CatalogError(f"$not on {key!r} needs an operator object such as {{\"$gt\": 5}}, got {_desc(v)}")
                parts.append(_not(self.conditions(key, v, depth + 1, leaf)))
            elif op in _FIELD_OPS:
                parts.append(leaf(op, v))
            else:
                raise CatalogError(f"unknown filter operator {op!r} on {key!r}; use one of {', '.join(_FIELD_OPS)}")
        return _and(parts)

    # -- metadata paths -------------------------------------------------------------------------
    def metadata(self, jpath, key, op, v, where=None):
        where = where or f"{op} on {key!r}"
        if op == "$exists":
            if not isinstance(v, bool):
                raise CatalogError(f"{where} needs true or false, got {_desc(v)}")
            s = f"coalesce(json_exists({self.a}.metadata, ?), false)"
            return (s, [jpath]) if v else (f"NOT {s}", [jpath])
        if op in ("$ne", "$nin"):
            return _not(self.metadata(jpath, key, "$eq" if op == "$ne" else "$in", v, where))
        if op == "$in":
            if not isinstance(v, list):
                raise CatalogError(f"{where} needs a list of values, got {_desc(v)}")
            if not v:
                return "FALSE", []
            strs = [_check_str(x, where) for x in v if isinstance(x, str)]
            nums = [_check_number(x, where) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
            preds = [self.json_predicate("$eq", x, where) for x in v
                     if not isinstance(x, (str, int, float)) or isinstance(x, bool)]
            marks = lambda xs: ", ".join("?" * len(xs))  # noqa: E731
            if strs:  # one IN list per type, so long lists stay one test
                preds.append((f"(json_type({{e}}) = 'VARCHAR' AND json_extract_string({{e}}, '$') IN ({marks(strs)}))", strs))
            if nums:
                preds.append((f"(json_type({{e}}) IN {_NUMERIC_TYPES} AND TRY_CAST({{e}} AS DOUBLE) IN ({marks(nums)}))", nums))
            return self.any_element(jpath, preds, missing=any(x is None for x in v))
        # {"x": null} matches a missing key too
        return self.any_element(jpath, [self.json_predicate(op, v, where)], missing=op == "$eq" and v is None)

    def json_predicate(self, op, v, where):
        """``(template, values)``: the test on one JSON value ``{e}`` for ``op`` and ``v``."""
        if op == "$prefix":
            _check_str(v, where)
            return "(json_type({e}) = 'VARCHAR' AND starts_with(json_extract_string({e}, '$'), ?))", [v]
        if op in _RANGE:
            cmp = _SQL_CMP[op]
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise CatalogError(f"{where} needs a number or a string, got {_desc(v)}")
            if isinstance(v, str):
                _check_str(v, where)
                return "(json_type({e}) = 'VARCHAR' AND json_extract_string({e}, '$') %s ?)" % cmp, [v]
            return "(json_type({e}) IN %s AND TRY_CAST({e} AS DOUBLE) %s ?)" % (_NUMERIC_TYPES, cmp), \
                [_check_number(v, where)]
        if op != "$eq":
            raise CatalogError(f"unknown filter operator {op!r}")
        if v is None:
            return "(json_type({e}) = 'NULL')", []
        if isinstance(v, bool):
            return "(json_type({e}) = 'BOOLEAN' AND TRY_CAST({e} AS BOOLEAN) = ?)", [v]
        if isinstance(v, (int, float)):
            return "(json_type({e}) IN %s AND TRY_CAST({e} AS DOUBLE) = ?)" % _NUMERIC_TYPES, \
                [_check_number(v, where)]
        if isinstance(v, str):
            _check_str(v, where)
            return "(json_type({e}) = 'VARCHAR' AND json_extract_string({e}, '$') = ?)", [v]
        if isinstance(v, (list, dict)):
            if _depth(v) > MAX_DEPTH:
                raise CatalogError(f"{where}: value is nested deeper than {MAX_DEPTH} levels")
            try:
                text = json.dumps(v, ensure_ascii=False, allow_nan=False)
            except (ValueError, TypeError):
                raise CatalogError(f"{where}: {_desc(v)} is not a JSON value") from None
            if "\x00" in text:
                raise CatalogError(f"{where}: strings must not contain NUL characters")
            return "(json({e}) = json(?))", [text]
        raise CatalogError(f"{where}: {_desc(v)} is not a JSON value")

    def any_element(self, jpath, preds, missing=False):
        """The value at ``jpath`` matches one of ``preds``, or it is an array and one of its elements does
        (``missing``: a row without the key matches too).

        Each predicate is ``(template, values)``: SQL where ``{e}`` stands for the JSON value and each
        ``?`` takes the next of ``values``. The value is extracted once per row (a scalar subquery that
        DuckDB turns into a projection), so the document is parsed once however many tests use it.
        """
        whole = _or([_render(t, vals, ("__x", [])) for t, vals in preds])
        elem = _or([_render(t, vals, ("__e", [])) for t, vals in preds])
        test = (f"({whole[0]}) OR (json_type(__x) = 'ARRAY' AND "
                f"list_bool_or(list_transform(TRY_CAST(__x AS JSON[]), lambda __e: {elem[0]})))")
        if missing:
            test = f"(__x IS NULL) OR {test}"
        sql = f"(SELECT coalesce({test}, false) FROM (SELECT json_extract({self.a}.metadata, ?) AS __x))"
        return sql, [*whole[1], *elem[1], jpath]

    # -- columns ---------------------------------------------------------------------------------
    def column(self, expr, kind, key, op, v, where=None):
        where = where or f"{op} on {key!r}"
        if op == "$exists":
            if not isinstance(v, bool):
                raise CatalogError(f"{where} needs true or false, got {_desc(v)}")
            return f"(({expr}) IS NOT NULL) = ?", [v]
        if op in ("$in", "$nin"):
            if not isinstance(v, list):
                raise CatalogError(f"{where} needs a list of values, got {_desc(v)}")
            if not v:
                return ("FALSE", []) if op == "$in" else ("TRUE", [])
            vals = [self.column_value(kind, x, where) for x in v]
            s = f"({expr}) IN ({', '.join('?' * len(vals))})"
            return (s, vals) if op == "$in" else (f"NOT coalesce({s}, false)", vals)
        if op == "$prefix":
            if kind != "str":
                raise CatalogError(f"{where}: $prefix works on string fields only")
            return f"starts_with({expr}, ?)", [_check_str(v, where)]
        if op in ("$eq", "$ne"):
            if v is None:
                return f"({expr}) IS {'' if op == '$eq' else 'NOT '}NULL", []
            s = f"({expr}) = ?"
            val = self.column_value(kind, v, where)
            return (s, [val]) if op == "$eq" else (f"NOT coalesce({s}, false)", [val])
        if op in _RANGE:
            if kind == "bool":
                raise CatalogError(f"{where}: {op} does not apply to a true/false field")
            return f"({expr}) {_SQL_CMP[op]} ?", [self.column_value(kind, v, where)]
        raise CatalogError(f"unknown filter operator {op!r} on {key!r}")

    @staticmethod
    def column_value(kind, v, where):
        if kind == "ts":
            return _timestamp(v, where)
        if kind == "bool":
            if not isinstance(v, bool):
                raise CatalogError(f"{where} needs true or false, got {_desc(v)}")
            return v
        if kind == "num":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise CatalogError(f"{where} needs a number, got {_desc(v)}")
            return _check_number(v, where)
        return _check_str(v, where)

    # -- labels ----------------------------------------------------------------------------------
    def _exists_label(self, cond_sql, params, negate=False):
        s = f"EXISTS (SELECT 1 FROM labels __l WHERE __l.row_id = {self.a}.id AND ({cond_sql}))"
        return (f"NOT {s}" if negate else s), params

    def label_field(self, key, cond, depth):
        column, kind = _LABEL_FIELDS[key]
        expr = f"__l.{column}"

        def leaf(op, v):
            where = f"{op} on {key!r}"
            if op == "$exists":
                if not isinstance(v, bool):
                    raise CatalogError(f"{where} needs true or false, got {_desc(v)}")
                return self._exists_label("TRUE", [], negate=not v)
            if op in ("$ne", "$nin"):  # the row has no such label
                s, p = self.column(expr, kind, key, "$eq" if op == "$ne" else "$in", v, where)
                return self._exists_label(s, p, negate=True)
            if op in _RANGE:
                raise CatalogError(f"{where} is not supported; use $eq, $ne, $in, $nin, $exists or $prefix")
            if v is None:
                raise CatalogError(f"{where} needs a value, not null (use {{\"labeled\": false}} for rows without labels)")
            s, p = self.column(expr, kind, key, op, v)
            return self._exists_label(s, p)

        return self.conditions(key, cond, depth, leaf)

    def labeled(self, cond):
        value = cond.get("$eq") if isinstance(cond, dict) and list(cond) == ["$eq"] else cond
        if not isinstance(value, bool):
            raise CatalogError(f"'labeled' needs true or false, got {_desc(cond)}")
        return self._exists_label("TRUE", [], negate=not value)

    def label_match(self, cond, depth):
        if not isinstance(cond, dict) or not cond or _op_dict(cond):
            raise CatalogError("'labels' needs an object of label conditions such as "
                               "{\"label\": \"cat\", \"source\": \"similarity\", \"reviewed\": false}")
        parts = []
        for k, c in cond.items():
            if k not in _LABEL_COLUMNS:
                raise CatalogError(f"unknown label field {k!r} in 'labels'; use label, source, reviewed or score")
            kind = _LABEL_COLUMNS[k]
            parts.append(self.conditions(f"labels.{k}", c, depth + 1,
                                         lambda op, v, k=k, kind=kind: self.column(f"__l.{k}", kind, f"labels.{k}", op, v)))
        return self._exists_label(*_and(parts))
