"""The one export writer: records to a text stream as NDJSON (one JSON object a line) or CSV.

Every export (data rows, slices, batches, labels) builds its records as plain dicts and hands them
here, so the two formats read the same everywhere:

* NDJSON: each record's ``columns``, in that order, as one compact JSON object a line (a numpy array
  is written as its list of numbers; a float as the shortest text that reads back to it).
* CSV: a header of ``columns``, then one line a record. ``None`` is an empty cell, a float is written
  so that it reads back exactly (``repr``), a bool as ``true``/``false``, and a list or object as its
  JSON text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence

import orjson

from .errors import CatalogError

FORMATS = ("ndjson", "csv")


def check_format(fmt, formats: Sequence[str] = FORMATS) -> str:
    """``fmt`` if it is one of ``formats``; else a :class:`CatalogError` (``field="fmt"``) naming them
    in the order given. Call it before any work, so a bad format fails before anything is written."""
    if fmt not in formats:
        raise CatalogError(f"export format {fmt!r} is not supported; use {' or '.join(formats)}", field="fmt")
    return fmt


def csv_cell(value):
    """One CSV cell for a record value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_records(out, records: Iterable[dict], fmt: str, columns: Sequence[str], *,
                  lineterminator: str = "\r\n") -> int:
    """Write ``records`` (dicts with at least ``columns``) to the text stream ``out`` as ``fmt``
    (``ndjson`` or ``csv``); returns how many were written. ``lineterminator`` ends CSV lines."""
    check_format(fmt)
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator=lineterminator)
        writer.writerow(columns)
        for rec in records:
            writer.writerow([csv_cell(rec[c]) for c in columns])
            n += 1
        return n
    for rec in records:
        out.write(orjson.dumps({c: rec[c] for c in columns}, option=orjson.OPT_SERIALIZE_NUMPY).decode())
        out.write("\n")
        n += 1
    return n
