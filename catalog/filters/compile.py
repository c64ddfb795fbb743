"""The filter compiler: a filter document to a parameterised boolean SQL expression over ``datarows``.

The language is described in :mod:`catalog.filters`. Values are always bound parameters; metadata
keys are checked (:func:`~catalog.filters.parse.json_path`) and passed as JSON-path parameters.
"""

from __future__ import annotations

import json
import re

from ..errors import CatalogError
from .parse import (MAX_DEPTH, all_strings, MAX_LABEL_TERMS, MAX_TERMS, bad_filter, check_number, check_document, check_str, check_utf8,
                    desc,
                    json_path, nesting, parse_filter, timestamp)

_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")

_RANGE = ("$gt", "$gte", "$lt", "$lte")
_SQL_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = ("$eq", "$ne", "$in", "$nin", *_RANGE, "$exists", "$prefix", "$not")
_NUMERIC_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"

_COLUMNS = {"id": ("CAST({a}.id AS VARCHAR)", "str"), "global_key": ("{a}.global_key", "str"),
            "media_type": ("{a}.media_type", "str"), "created_at": ("{a}.created_at", "ts"),
            "updated_at": ("{a}.updated_at", "ts")}
_LABEL_FIELDS = {"label": ("label", "str"), "label_source": ("source", "str"), "reviewed": ("reviewed", "bool")}
_LABEL_COLUMNS = {"label": "str", "source": "str", "reviewed": "bool", "score": "num"}


def compile_filter(where, alias: str = "d", embedding: str | None = None) -> tuple[str, list]:
    """``(sql, params)``: a boolean expression over ``datarows`` aliased ``alias``; ``("TRUE", [])`` for None/{}.

    ``embedding`` (an embedding id) is what the ``uniqueness`` field refers to; without it a filter on
    ``uniqueness`` is refused.

    ``where`` is a dict (or its JSON text). Unknown operators, unknown field types and bad values raise
    :class:`CatalogError` with a one-line message naming the operator or path.
    """
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise CatalogError(f"filter alias {alias!r} is not a plain SQL identifier")
    if isinstance(where, str):
        where = parse_filter(where)
    if where is None or where == {}:
        return "TRUE", []
    check_document(where)
    return _Compiler(alias, embedding).document(where, 0)


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
        raise bad_filter(f"cannot mix operators and plain keys in {desc(value)}; "
                           "put the plain object under \"$eq\"")
    return bool(ops)


class _Compiler:
    def __init__(self, alias: str, embedding: str | None = None):
        self.a = alias
        self.embedding = embedding
        self.terms = 0        # conditions compiled so far (MAX_TERMS)
        self.label_terms = 0  # of them, on labels: each is a subquery (MAX_LABEL_TERMS)

    def count(self, n: int = 1, label: bool = False) -> None:
        self.terms += n
        if self.terms > MAX_TERMS:
            raise bad_filter(f"filter has more than {MAX_TERMS:,} conditions; "
                             "use $in with a list of values (any length) instead of many alternatives")
        if label:
            self.label_terms += 1
            if self.label_terms > MAX_LABEL_TERMS:
                raise bad_filter(f"filter has more than {MAX_LABEL_TERMS} conditions on labels; "
                                 "use {\"label\": {\"$in\": [...]}} instead of many alternatives")

    # -- documents: {field: condition, "$and": [...], ...} ------------------------------------
    def document(self, doc, depth):
        if depth > MAX_DEPTH:
            raise bad_filter(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not isinstance(doc, dict):
            raise bad_filter(f"a filter must be a JSON object of field conditions, got {desc(doc)}")
        if len(doc) > MAX_TERMS:
            raise bad_filter(f"a filter object has {len(doc):,} fields; at most {MAX_TERMS:,} are allowed")
        parts = []
        for key, cond in doc.items():
            if not isinstance(key, str):
                raise bad_filter(f"filter keys must be strings, got {desc(key)}")
            if key.startswith("$"):
                parts.append(self.logical(key, cond, depth))
            else:
                parts.append(self.field(key, cond, depth))
        return _and(parts)

    def logical(self, op, cond, depth):
        if op == "$not":
            if not isinstance(cond, dict) or not cond:
                raise bad_filter(f"$not needs a non-empty filter object, got {desc(cond)}")
            return _not(self.document(cond, depth + 1))
        if op not in ("$and", "$or", "$nor"):
            hint = " (field operators go inside a field: {\"size\": {\"%s\": ...}})" % op if op in _FIELD_OPS else ""
            raise bad_filter(f"unknown filter operator {op!r} at the top level; use $and, $or, $nor or $not{hint}")
        if not isinstance(cond, list) or not cond:
            raise bad_filter(f"{op} needs a non-empty list of filters, got {desc(cond)}")
        if len(cond) > MAX_TERMS:
            raise bad_filter(f"{op} has {len(cond):,} filters; at most {MAX_TERMS:,} are allowed")
        parts = [self.document(c, depth + 1) for c in cond]
        if op == "$and":
            return _and(parts)
        return _or(parts) if op == "$or" else _not(_or(parts))

    def field(self, key, cond, depth):
        if depth > MAX_DEPTH:
            raise bad_filter(f"filter is nested deeper than {MAX_DEPTH} levels")
        if key in _COLUMNS:
            expr, kind = _COLUMNS[key]
            return self.conditions(key, cond, depth, lambda op, v: self.column(expr.format(a=self.a), kind, key, op, v))
        if key in _LABEL_FIELDS:
            return self.label_field(key, cond, depth)
        if key == "labeled":
            return self.labeled(cond)
        if key == "labels":
            return self.label_match(cond, depth)
        if key == "uniqueness":
            return self.uniqueness(cond, depth)
        path = key[len("metadata."):] if key.startswith("metadata.") else key
        jpath = json_path(path, "where")
        return self.conditions(key, cond, depth, lambda op, v: self.metadata(jpath, key, op, v))

    def conditions(self, key, cond, depth, leaf):
        """AND of ``leaf(op, value)`` for each operator in ``cond`` (implicit ``$eq`` for a plain value)."""
        if depth > MAX_DEPTH:
            raise bad_filter(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not _op_dict(cond):
            self.count()
            return leaf("$eq", cond)
        parts = []
        for op, v in cond.items():
            if op == "$not":
                if not _op_dict(v):
                    raise bad_filter(f"$not on {key!r} needs an operator object such as {{\"$gt\": 5}}, got {desc(v)}")
                parts.append(_not(self.conditions(key, v, depth + 1, leaf)))
            elif op in _FIELD_OPS:
                self.count()
                parts.append(leaf(op, v))
            else:
                raise bad_filter(f"unknown filter operator {op!r} on {key!r}; use one of {', '.join(_FIELD_OPS)}")
        return _and(parts)

    # -- metadata paths -------------------------------------------------------------------------
    def metadata(self, jpath, key, op, v, where=None):
        where = where or f"{op} on {key!r}"
        if op == "$exists":
            if not isinstance(v, bool):
                raise bad_filter(f"{where} needs true or false, got {desc(v)}")
            s = f"coalesce(json_exists({self.a}.metadata, ?), false)"
            return (s, [jpath]) if v else (f"NOT {s}", [jpath])
        if op in ("$ne", "$nin"):
            return _not(self.metadata(jpath, key, "$eq" if op == "$ne" else "$in", v, where))
        if op == "$in":
            if not isinstance(v, list):
                raise bad_filter(f"{where} needs a list of values, got {desc(v)}")
            if not v:
                return "FALSE", []
            strs = [check_str(x, where) for x in v if isinstance(x, str)]
            nums = [check_number(x, where) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
            preds = [self.json_predicate("$eq", x, where) for x in v
                     if not isinstance(x, (str, int, float)) or isinstance(x, bool)]
            self.count(max(0, len(preds) - 1))  # each object, list, true/false or null value is a test
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
            check_str(v, where)
            return "(json_type({e}) = 'VARCHAR' AND starts_with(json_extract_string({e}, '$'), ?))", [v]
        if op in _RANGE:
            cmp = _SQL_CMP[op]
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise bad_filter(f"{where} needs a number or a string, got {desc(v)}")
            if isinstance(v, str):
                check_str(v, where)
                return "(json_type({e}) = 'VARCHAR' AND json_extract_string({e}, '$') %s ?)" % cmp, [v]
            return "(json_type({e}) IN %s AND TRY_CAST({e} AS DOUBLE) %s ?)" % (_NUMERIC_TYPES, cmp), \
                [check_number(v, where)]
        if op != "$eq":
            raise bad_filter(f"unknown filter operator {op!r}")
        if v is None:
            return "(json_type({e}) = 'NULL')", []
        if isinstance(v, bool):
            return "(json_type({e}) = 'BOOLEAN' AND TRY_CAST({e} AS BOOLEAN) = ?)", [v]
        if isinstance(v, (int, float)):
            return "(json_type({e}) IN %s AND TRY_CAST({e} AS DOUBLE) = ?)" % _NUMERIC_TYPES, \
                [check_number(v, where)]
        if isinstance(v, str):
            check_str(v, where)
            return "(json_type({e}) = 'VARCHAR' AND json_extract_string({e}, '$') = ?)", [v]
        if isinstance(v, (list, dict)):
            if nesting(v) > MAX_DEPTH:
                raise bad_filter(f"{where}: value is nested deeper than {MAX_DEPTH} levels")
            try:
                text = json.dumps(v, ensure_ascii=False, allow_nan=False)
            except (ValueError, TypeError):
                raise bad_filter(f"{where}: {desc(v)} is not a JSON value") from None
            if "\x00" in text:
                raise bad_filter(f"{where}: strings must not contain NUL characters")
            check_utf8(text, where)
            return "(json({e}) = json(?))", [text]
        raise bad_filter(f"{where}: {desc(v)} is not a JSON value")

    def any_element(self, jpath, preds, missing=False):
        """The value at ``jpath`` matches one of ``preds``, or it is an array and one of its elements does
        (``missing``: a row without the key matches too).

        Each predicate is ``(template, values)``: SQL where ``{e}`` stands for the JSON value and each
        ``?`` takes the next of ``values``. The value is extracted inline where it is tested (a scalar
        subquery per condition made DuckDB plan a filter of a few hundred conditions for minutes, and
        fail past its expression-depth limit).
        """
        x = (f"json_extract({self.a}.metadata, ?)", [jpath])
        whole = _or([_render(t, vals, x) for t, vals in preds])
        elem = _or([_render(t, vals, ("__e", [])) for t, vals in preds])
        parts = [f"({whole[0]})", "(json_type(", x[0], ") = 'ARRAY' AND list_bool_or(list_transform(TRY_CAST(",
                 x[0], f" AS JSON[]), lambda __e: {elem[0]})))"]
        test = parts[0] + " OR " + "".join(parts[1:])
        params = [*whole[1], jpath, jpath, *elem[1]]
        if missing:
            test = f"({x[0]} IS NULL) OR {test}"
            params = [jpath, *params]
        return f"coalesce({test}, false)", params

    # -- columns ---------------------------------------------------------------------------------
    def column(self, expr, kind, key, op, v, where=None):
        where = where or f"{op} on {key!r}"
        if op == "$exists":
            if not isinstance(v, bool):
                raise bad_filter(f"{where} needs true or false, got {desc(v)}")
            return f"(({expr}) IS NOT NULL) = ?", [v]
        if op in ("$in", "$nin"):
            if not isinstance(v, list):
                raise bad_filter(f"{where} needs a list of values, got {desc(v)}")
            if not v:
                return ("FALSE", []) if op == "$in" else ("TRUE", [])
            fast = kind == "str" and all_strings(v) and "\x00" not in "".join(v)  # checked joined (parse)
            vals = list(v) if fast else [self.column_value(kind, x, where) for x in v]
            s = f"({expr}) IN (SELECT unnest(CAST(? AS VARCHAR[])))" if fast and len(vals) > 64 else \
                f"({expr}) IN ({', '.join('?' * len(vals))})"  # a long list is one parameter: fast to bind
            vals = [vals] if fast and len(vals) > 64 else vals
            return (s, vals) if op == "$in" else (f"NOT coalesce({s}, false)", vals)
        if op == "$prefix":
            if kind != "str":
                raise bad_filter(f"{where}: $prefix works on string fields only")
            return f"starts_with({expr}, ?)", [check_str(v, where)]
        if op in ("$eq", "$ne"):
            if v is None:
                return f"({expr}) IS {'' if op == '$eq' else 'NOT '}NULL", []
            s = f"({expr}) = ?"
            val = self.column_value(kind, v, where)
            return (s, [val]) if op == "$eq" else (f"NOT coalesce({s}, false)", [val])
        if op in _RANGE:
            if kind == "bool":
                raise bad_filter(f"{where}: {op} does not apply to a true/false field")
            return f"({expr}) {_SQL_CMP[op]} ?", [self.column_value(kind, v, where)]
        raise bad_filter(f"unknown filter operator {op!r} on {key!r}")

    @staticmethod
    def column_value(kind, v, where):
        if kind == "ts":
            return timestamp(v, where)
        if kind == "bool":
            if not isinstance(v, bool):
                raise bad_filter(f"{where} needs true or false, got {desc(v)}")
            return v
        if kind == "num":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad_filter(f"{where} needs a number, got {desc(v)}")
            return check_number(v, where)
        return check_str(v, where)

    def uniqueness(self, cond, depth):
        """The row's uniqueness under the search's embedding (a number in [0, 1]; rows without one match
        no comparison)."""
        if self.embedding is None:
            raise bad_filter("a filter on 'uniqueness' needs an embedding: use it in a similarity search")
        expr = (f"(SELECT __u.score FROM uniqueness __u WHERE __u.row_id = {self.a}.id "
                "AND __u.embedding_id = TRY_CAST(? AS UUID))")

        def leaf(op, v):
            if op in ("$prefix",):
                raise bad_filter(f"{op} on 'uniqueness' is not supported; it is a number (use $gte, $lt, ...)")
            sql, params = self.column("{u}", "num", "uniqueness", op, v)
            pieces = sql.split("{u}")
            return expr.join(pieces), [self.embedding] * (len(pieces) - 1) + params

        return self.conditions("uniqueness", cond, depth, leaf)

    # -- labels ----------------------------------------------------------------------------------
    def _exists_label(self, cond_sql, params, negate=False):
        self.count(0, label=True)
        s = f"EXISTS (SELECT 1 FROM labels __l WHERE __l.row_id = {self.a}.id AND ({cond_sql}))"
        return (f"NOT {s}" if negate else s), params

    def label_field(self, key, cond, depth):
        column, kind = _LABEL_FIELDS[key]
        expr = f"__l.{column}"

        def leaf(op, v):
            where = f"{op} on {key!r}"
            if op == "$exists":
                if not isinstance(v, bool):
                    raise bad_filter(f"{where} needs true or false, got {desc(v)}")
                return self._exists_label("TRUE", [], negate=not v)
            if op in ("$ne", "$nin"):  # the row has no such label
                s, p = self.column(expr, kind, key, "$eq" if op == "$ne" else "$in", v, where)
                return self._exists_label(s, p, negate=True)
            if op in _RANGE:
                raise bad_filter(f"{where} is not supported; use $eq, $ne, $in, $nin, $exists or $prefix")
            if v is None:
                raise bad_filter(f"{where} needs a value, not null (use {{\"labeled\": false}} for rows without labels)")
            s, p = self.column(expr, kind, key, op, v)
            return self._exists_label(s, p)

        return self.conditions(key, cond, depth, leaf)

    def labeled(self, cond):
        self.count()
        value = cond.get("$eq") if isinstance(cond, dict) and list(cond) == ["$eq"] else cond
        if not isinstance(value, bool):
            raise bad_filter(f"'labeled' needs true or false, got {desc(cond)}")
        return self._exists_label("TRUE", [], negate=not value)

    def label_match(self, cond, depth):
        if not isinstance(cond, dict) or not cond or _op_dict(cond):
            raise bad_filter("'labels' needs an object of label conditions such as "
                               "{\"label\": \"cat\", \"source\": \"similarity\", \"reviewed\": false}")
        parts = []
        for k, c in cond.items():
            if k not in _LABEL_COLUMNS:
                raise bad_filter(f"unknown label field {k!r} in 'labels'; use label, source, reviewed or score")
            kind = _LABEL_COLUMNS[k]
            parts.append(self.conditions(f"labels.{k}", c, depth + 1,
                                         lambda op, v, k=k, kind=kind: self.column(f"__l.{k}", kind, f"labels.{k}", op, v)))
        return self._exists_label(*_and(parts))
