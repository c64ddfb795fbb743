"""The catalog's Mongo-style filters (:mod:`catalog.filters`) as Qdrant payload filters, where they map.

A pushed-down filter only narrows what the engine returns; the search service still applies the
catalog's own filter (in DuckDB) to every match, so results equal the exact backend's whatever maps.
The rule here is therefore: the engine filter must keep every row the catalog's filter keeps (a
superset). Conditions that map exactly (:data:`MAPPED`) also narrow under ``$not``/``$ne``/``$nin``/
``$nor``; any other condition maps to "every row" (no narrowing), and a negation of it as well.

Maps exactly: ``$eq``/``$ne``/``$in``/``$nin`` with strings or numbers on metadata paths (numbers as
a closed range, so 5 matches 5 and 5.0, and an array matches when an element does, as in the catalog),
``$gt``/``$gte``/``$lt``/``$lte`` with numbers, ``$exists`` (through the payload's list of metadata
paths), ``global_key`` and ``media_type`` with strings, ``label`` (names), ``labeled``, and
``$and``/``$or``/``$nor``/``$not`` of them. Not mapped (the service filters): ``true``/``false``
values (Qdrant Edge reads a boolean match as the integer 1), ``null``, objects and lists as values,
string ranges, ``$prefix``, ``id``, ``created_at``/``updated_at``, ``label_source``, ``reviewed``,
``labels`` and ``uniqueness`` conditions, and metadata keys other than letters, digits and ``_``.

The neutral form: a filter is ``{"must": [...], "should": [...], "must_not": [...]}``; a condition is
a filter or a leaf ``("value", key, v)``, ``("any", key, [v...])``, ``("range", key, {"gte": x, ...})``,
``("empty", key)``.
"""

from __future__ import annotations

import re

MAPPED = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$and", "$or", "$nor", "$not",
          "global_key", "media_type", "label", "labeled")
_KEY_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
_RANGE = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_ALL = (None, False)  # every row (no narrowing), and not exact


def to_engine_filter(where: dict | None) -> dict | None:
    """The neutral engine filter for ``where`` (a superset of its rows), or None for no narrowing."""
    if not where:
        return None
    cond, _ = _document(where)
    if cond is None:
        return None
    return cond if isinstance(cond, dict) else {"must": [cond]}


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _and(parts):
    conds = [c for c, _ in parts if c is not None]
    exact = all(e for _, e in parts)
    if not conds:
        return None, exact and not parts
    return (conds[0] if len(conds) == 1 else {"must": conds}), exact


def _not(part):
    cond, exact = part
    return ({"must_not": [cond]}, True) if exact and cond is not None else _ALL


def _document(doc):
    if not isinstance(doc, dict) or not doc:
        return _ALL
    parts = []
    for key, cond in doc.items():
        if key in ("$and", "$or", "$nor"):
            subs = [_document(c) for c in cond] if isinstance(cond, list) and cond else None
            if subs is None:
                parts.append(_ALL)
            elif key == "$and":
                parts.append(_and(subs))
            elif any(c is None for c, _ in subs):
                parts.append(_ALL)
            else:
                alt = ({"should": [c for c, _ in subs]}, all(e for _, e in subs))
                parts.append(alt if key == "$or" else _not(alt))
        elif key == "$not":
            parts.append(_not(_document(cond)))
        elif key.startswith("$"):
            parts.append(_ALL)
        else:
            parts.append(_field(key, cond))
    return _and(parts)


def _field(key, cond):
    if key in ("global_key", "media_type"):
        return _conditions(cond, lambda op, v: _string_leaf(key, op, v))
    if key == "label":
        return _conditions(cond, lambda op, v: _string_leaf("labels", op, v))
    if key == "labeled":
        value = cond.get("$eq") if isinstance(cond, dict) and list(cond) == ["$eq"] else cond
        if not isinstance(value, bool):
            return _ALL
        empty = ("empty", "labels")
        return ({"must_not": [empty]}, True) if value else (empty, True)
    if key in ("id", "created_at", "updated_at", "label_source", "reviewed", "labels", "uniqueness"):
        return _ALL
    path = key[len("metadata."):] if key.startswith("metadata.") else key
    if not _KEY_RE.match(path):
        return _ALL
    return _conditions(cond, lambda op, v: _metadata_leaf(path, op, v))


def _conditions(cond, leaf):
    ops = isinstance(cond, dict) and cond and all(isinstance(k, str) and k.startswith("$") for k in cond)
    if not ops:
        return leaf("$eq", cond)
    parts = []
    for op, v in cond.items():
        parts.append(_not(_conditions(v, leaf)) if op == "$not" else leaf(op, v))
    return _and(parts)


def _string_leaf(key, op, v):
    if op in ("$ne", "$nin"):
        return _not(_string_leaf(key, "$eq" if op == "$ne" else "$in", v))
    if op == "$eq" and isinstance(v, str):
        return ("value", key, v), True
    if op == "$in" and isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return ("any", key, list(v)), True
    return _ALL


def _metadata_leaf(path, op, v):
    key = "metadata." + path
    if op in ("$ne", "$nin"):
        return _not(_metadata_leaf(path, "$eq" if op == "$ne" else "$in", v))
    if op == "$exists":
        if not isinstance(v, bool):
            return _ALL
        has = ("value", "keys", path)
        return (has, True) if v else ({"must_not": [has]}, True)
    if op == "$eq":
        if isinstance(v, str):
            return ("value", key, v), True
        if _is_num(v):
            return ("range", key, {"gte": float(v), "lte": float(v)}), True
        return _ALL
    if op == "$in":
        if not isinstance(v, list) or not v or not all(isinstance(x, str) or _is_num(x) for x in v):
            return _ALL
        strs = [x for x in v if isinstance(x, str)]
        alts = ([("any", key, strs)] if strs else []) + \
            [("range", key, {"gte": float(x), "lte": float(x)}) for x in v if _is_num(x)]
        return (alts[0] if len(alts) == 1 else {"should": alts}), True
    if op in _RANGE and _is_num(v):
        return ("range", key, {_RANGE[op]: float(v)}), True
    return _ALL


def metadata_paths(metadata, prefix: str = "", out=None, depth: int = 0) -> list[str]:
    """Every dotted path of keys in ``metadata`` through nested objects (what ``$exists`` asks about)."""
    out = [] if out is None else out
    if isinstance(metadata, dict) and depth < 32:
        for k, v in metadata.items():
            p = f"{prefix}{k}"
            out.append(p)
            metadata_paths(v, p + ".", out, depth + 1)
    return out
