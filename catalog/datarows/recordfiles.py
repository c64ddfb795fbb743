"""Reading record files: JSON lines (``.ndjson``, ``.jsonl``, ``.json``, gzipped ``.ndjson.gz``/``.jsonl.gz``),
one JSON array (``.json``) and the metadata files of an import (CSV or NDJSON keyed by global_key).

A ``.json`` file whose first non-blank character is ``[`` is one JSON array of records (as Ximilar's
tools and ``json.dump(list_of_dicts)`` write them); any other ``.json`` file is read as JSON lines
(Ximilar's ``real_estate.json``). An array file is read whole, so it may be at most
``MAX_ARRAY_BYTES`` (256 MiB; its parsed records take a few times that in memory); bigger ones are
refused as a whole (convert them to JSON lines, which are read a line at a time). Each record of an
array is reported by the line it starts on. A syntax error inside an array ends the array: the file
is refused as a whole (none of its records are imported), as a damaged gzip file is.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import orjson

MAX_ARRAY_BYTES = 256 * 2**20
LINE_SUFFIXES = (".ndjson", ".jsonl", ".json", ".ndjson.gz", ".jsonl.gz")
_MAX_DEPTH = 64


class BrokenFile(Exception):
    """The file as a whole cannot be read as records (a broken array, too big, not UTF-8)."""


def is_record_file(path: Path) -> bool:
    return path.name.lower().endswith(LINE_SUFFIXES)


def _is_array(path: Path) -> bool:
    if not path.name.lower().endswith(".json"):
        return False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(4096)
            if not chunk:
                return False
            head = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if head:
                return head[:1] == b"["


def read_objects(path: Path):
    """``(line_no, object or ValueError(reason))`` for each record of the file; blank lines and a
    trailing comma after a line are accepted in JSON lines. Raises :class:`BrokenFile` (or OSError,
    EOFError, zlib.error for a damaged gzip) when the file as a whole cannot be read."""
    if _is_array(path):
        yield from _array(path)
        return
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.strip()
            if line.endswith(b","):
                line = line[:-1].rstrip()
            if not line:
                continue
            try:
                yield line_no, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                reason = str(exc).split(":")[0]
                deep = "depth" in reason or "ecursion" in reason
                yield line_no, ValueError(f"metadata nests more than {_MAX_DEPTH} levels deep" if deep
                                          else f"malformed JSON ({reason})")


def _no_constants(name):
    raise ValueError(f"{name} is not JSON (NaN and Infinity are not allowed)")


def _array(path: Path):
    size = path.stat().st_size
    if size > MAX_ARRAY_BYTES:
        raise BrokenFile(f"a JSON array file may be at most {MAX_ARRAY_BYTES // 2**20} MiB, this one is "
                         f"{size:,} bytes; write it as JSON lines (one record per line) instead")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BrokenFile(f"not UTF-8 text (byte {exc.start:,})") from None
    decoder = json.JSONDecoder(parse_constant=_no_constants)
    pos = text.index("[") + 1
    line_no, counted = 1, 0

    def line_at(p):
        nonlocal line_no, counted
        line_no += text.count("\n", counted, p)
        counted = p
        return line_no

    def skip(p):
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise BrokenFile(f"malformed JSON array at line {exc.lineno} ({exc.msg})") from None
        except RecursionError:
            raise BrokenFile(f"a record at line {line_at(pos)} nests too deeply") from None
        except ValueError as exc:
            raise BrokenFile(f"{exc} (near line {line_at(pos)})") from None
        yield line_at(pos), obj
        pos = skip(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            if skip(pos + 1) != len(text):
                raise BrokenFile(f"text after the end of the JSON array (line {line_at(skip(pos + 1))})")
            return
        raise BrokenFile(f"malformed JSON array at line {line_at(min(pos, len(text)))} "
                         "(expected ',' or ']' after a record)")


def too_deep(value, limit: int = _MAX_DEPTH) -> bool:
    """True if ``value`` nests more than ``limit`` objects/arrays deep (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def read_metadata_file(path: Path) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """``{global_key: metadata}`` from a CSV (column ``global_key``) or NDJSON file."""
    out: dict[str, dict] = {}
    problems: list[tuple[str, str]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "global_key" not in reader.fieldnames:
                raise ValueError(f"metadata file {path} needs a header with a global_key column")
            for line_no, row in enumerate(reader, start=2):
                key = (row.pop("global_key") or "").strip()
                if not key:
                    problems.append((f"{path}:{line_no}", "empty global_key"))
                    continue
                out.setdefault(key, {}).update({k: _csv_value(v) for k, v in row.items() if k})
        return out, problems
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.strip().rstrip(b",")
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                problems.append((f"{path}:{line_no}", "malformed JSON"))
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("global_key"), str) or not obj["global_key"].strip():
                problems.append((f"{path}:{line_no}", "expected an object with a non-empty string \"global_key\""))
                continue
            if too_deep(obj, _MAX_DEPTH + 1):
                problems.append((f"{path}:{line_no}", f"metadata nests more than {_MAX_DEPTH} levels deep"))
                continue
            key = obj.pop("global_key").strip()
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj
            out.setdefault(key, {}).update(meta)
    return out, problems


def _csv_value(text):
    if text is None:
        return None
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            value = cast(t)
        except ValueError:
            continue
        return value if value == value and value not in (float("inf"), float("-inf")) else text
    return text
