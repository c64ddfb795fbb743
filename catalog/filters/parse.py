"""Reading a filter and checking its parts: the JSON text, metadata paths, strings, numbers and times.

Every mistake in a filter raises :class:`CatalogError` with ``field="where"`` and a one-line message
naming the operator or path at fault.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone

from ..errors import CatalogError

MAX_DEPTH = 32        # filters inside filters ($and/$or/$nor/$not), and JSON values inside values
MAX_TERMS = 1_000     # conditions in one filter, all levels together (a $in list of any length is one)
MAX_LABEL_TERMS = 100  # of them, conditions on labels (label, label_source, reviewed, labels, labeled)
# One metadata key: letters and digits of any script, underscore, space and - : / @ + #
_SEGMENT_RE = re.compile(r"^[\w \-:/@+#]{1,200}$")
_EXAMPLE = '\'{"split": "train"}\''


def bad_filter(message: str) -> CatalogError:
    """The error for a mistake in a filter (the input named ``where``)."""
    return CatalogError(message, field="where")


def parse_filter(text: str | None) -> dict | None:
    """A filter from its JSON text; None for empty text."""
    if text is None or not text.strip():
        return None
    try:
        where = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_filter(f"`where` is not valid JSON ({exc.msg} at character {exc.pos}); "
                         f"write it like {_EXAMPLE}") from None
    except RecursionError:
        raise bad_filter(f"`where` is nested deeper than {MAX_DEPTH} levels of filters") from None
    except ValueError:  # e.g. an integer of more than 4,300 digits
        raise bad_filter("`where` holds a number too long to read; numbers must fit a double") from None
    if not isinstance(where, dict):
        raise bad_filter(f"`where` must be a JSON object such as {_EXAMPLE}")
    check_document(where)
    return where


def check_document(where) -> None:
    """Refuse, before any recursive step, JSON nested deeper than a filter can use (``MAX_DEPTH`` filters
    in filters, each a list and an object, holding values up to ``MAX_DEPTH`` deep) and text that is not
    valid Unicode (a lone surrogate escape cannot be stored, shown or sent to a browser)."""
    stack = [(where, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, str):
            check_utf8(v, "`where`")
        elif isinstance(v, (list, dict)):
            if d > 3 * MAX_DEPTH:
                raise bad_filter(f"`where` is nested deeper than {MAX_DEPTH} levels of filters")
            if isinstance(v, dict):
                stack.extend((k, d) for k in v)
            elif all_strings(v):  # a long $in list (a selection of 100,000 ids): one check for all of them
                check_utf8("".join(v), "`where`")
                continue
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


def all_strings(values: list) -> bool:
    """Whether every item of the list is a ``str`` (then they can be checked joined, at once)."""
    return all(type(x) is str for x in values)


def mentions(where, key: str) -> bool:
    """Whether a filter document has a condition on the field ``key`` at any level (iterative)."""
    stack = [where]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if key in v:
                return True
            stack.extend(x for k, x in v.items() if isinstance(k, str) and k.startswith("$"))
        elif isinstance(v, list):
            stack.extend(v)
    return False


def json_path(path: str, field: str | None = None) -> str:
    """The DuckDB JSON path (``$."a"."b"``) for a validated dotted key (``field``: the input it came from)."""
    segments = path.split(".")
    for seg in segments:
        if not _SEGMENT_RE.match(seg) or seg.strip() != seg:
            raise CatalogError(
                f"metadata path {path!r} is not allowed: keys are dot-separated names of letters, digits, "
                "spaces and _ - : / @ + # (no leading or trailing spaces)", field=field)
    return "$" + "".join(f'."{s}"' for s in segments)


def nesting(value) -> int:
    """How deeply lists and objects nest in ``value`` (iterative, so any depth is safe to measure)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def desc(value) -> str:
    """A short description of ``value`` for messages."""
    if nesting(value) > 4:
        return f"a deeply nested {'list' if isinstance(value, list) else 'object'}"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_str(value, where: str) -> str:
    if not isinstance(value, str):
        raise bad_filter(f"{where} needs a string, got {desc(value)}")
    if "\x00" in value:
        raise bad_filter(f"{where}: strings must not contain NUL characters")
    check_utf8(value, where)
    return value


def check_utf8(value: str, where: str) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate such as "\\ud800" from a JSON escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_filter(f"{where}: strings must be valid Unicode (no lone surrogate escapes like \\ud800)") from None


def check_number(value, where: str) -> float:
    try:
        f = float(value)
    except OverflowError:
        raise bad_filter(f"{where}: number {desc(value)} is out of range") from None
    if not math.isfinite(f):
        raise bad_filter(f"{where}: number must be finite, got {desc(value)}")
    return f


def timestamp(value, where: str) -> datetime:
    if not isinstance(value, str):
        raise bad_filter(f"{where} needs an ISO-8601 date or time string such as \"2026-11-21T08:00:00\", "
                         f"got {desc(value)}")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_filter(f"{where}: {desc(value)} is not an ISO-8601 date or time "
                         "(e.g. \"2026-11-21\" or \"2026-11-21T08:00:00Z\")") from None
    if ts.tzinfo is not None:  # stored times are UTC
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts
