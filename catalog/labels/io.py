"""Reading label files: CSV with a header (``id,label``) or NDJSON (``{"id", "label"}`` per line).

Optional fields ``source`` (manual|similarity), ``score`` (0..1, similarity labels) and ``reviewed``
(true|false) let an exported file import back unchanged. Each problem is reported with its line
number; the caller decides (all-or-nothing) what to do with them.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import orjson

from ..errors import CatalogError
from .rules import MAX_LABEL_LENGTH, SOURCES

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


def _is_ndjson(path: Path, text: str) -> bool:
    suffix = path.name.lower()
    if suffix.endswith((".ndjson", ".jsonl", ".json")):
        return True
    if suffix.endswith((".csv", ".tsv")):
        return False
    return text.lstrip().startswith("{")


def _check(line: int, raw: dict, errors: list) -> dict | None:
    """One validated item from a record's fields, or None (the reason is appended to ``errors``)."""
    key = raw.get("id")
    if key is None or (isinstance(key, str) and not key.strip()):
        errors.append((line, "missing \"id\" (a data row id or global_key)"))
        return None
    if not isinstance(key, str):
        errors.append((line, "\"id\" must be text (a data row id or global_key)"))
        return None
    label = raw.get("label")
    if label is None:
        errors.append((line, "missing \"label\""))
        return None
    if not isinstance(label, str):
        errors.append((line, "\"label\" must be text"))
        return None
    label = label.strip()
    if not label:
        errors.append((line, "label is empty"))
        return None
    if len(label) > MAX_LABEL_LENGTH:
        errors.append((line, f"label is {len(label)} characters long; use at most {MAX_LABEL_LENGTH}"))
        return None
    source = raw.get("source") or "manual"
    if not isinstance(source, str) or source.strip().lower() not in SOURCES:
        errors.append((line, f"source {source!r} is not known; use manual or similarity"))
        return None
    source = source.strip().lower()
    score = raw.get("score")
    if isinstance(score, str):
        score = score.strip() or None
    if score is not None:
        try:
            if isinstance(score, bool):
                raise ValueError
            score = float(score)
        except (TypeError, ValueError):
            errors.append((line, f"score {raw.get('score')!r} is not a number"))
            return None
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            errors.append((line, f"score {score} is outside [0, 1]"))
            return None
    reviewed = raw.get("reviewed")
    if isinstance(reviewed, str):
        low = reviewed.strip().lower()
        if low in _TRUE:
            reviewed = True
        elif low in _FALSE:
            reviewed = False
        else:
            errors.append((line, f"reviewed {reviewed!r} is not true or false"))
            return None
    elif reviewed is None:
        reviewed = False
    elif not isinstance(reviewed, bool):
        errors.append((line, f"reviewed {reviewed!r} is not true or false"))
        return None
    if source == "manual":  # a person gave it: reviewed, no suggestion score
        reviewed, score = True, None
    return {"line": line, "id": key.strip(), "label": label, "source": source, "score": score, "reviewed": reviewed}


def _parse_csv(text: str, errors: list) -> list[dict]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    cols = [h.strip().lower() for h in header]
    if "id" not in cols or "label" not in cols:
        raise CatalogError("label CSV needs a header line with the columns id and label (e.g. `id,label`)")
    items = []
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) > len(cols):
            errors.append((line, f"{len(row)} fields but the header has {len(cols)}"))
            continue
        raw = {c: (row[i] if i < len(row) else None) for i, c in enumerate(cols)}
        item = _check(line, raw, errors)
        if item:
            items.append(item)
    return items


def _parse_ndjson(text: str, errors: list) -> list[dict]:
    items = []
    for line_no, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        if line.endswith(","):
            line = line[:-1].rstrip()
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            errors.append((line_no, "malformed JSON"))
            continue
        if not isinstance(obj, dict):
            errors.append((line_no, "expected a JSON object with \"id\" and \"label\""))
            continue
        item = _check(line_no, obj, errors)
        if item:
            items.append(item)
    return items


def parse_label_file(path: Path) -> tuple[list[dict], list[tuple[int, str]]]:
    """``(items, errors)``: items carry ``line, id, label, source, score, reviewed``."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogError(f"label file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise CatalogError(f"cannot read label file {path}: {exc}") from None
    errors: list[tuple[int, str]] = []
    items = _parse_ndjson(text, errors) if _is_ndjson(path, text) else _parse_csv(text, errors)
    return items, errors
