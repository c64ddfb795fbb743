"""Parsing vector lines (``{"id": ..., "vector": [...]}``) with the checks and messages of an import.

Plain lines go through the optional C fast path (``catalog._ndjson``) a block at a time; any line it
does not fully accept gets the general parser (simdjson, then orjson for the diagnosis), which gives
the same results, slower.

Refused, whatever the path: a vector that is not a flat array of numbers (nested arrays are not
flattened), an object with a member twice (``{"id": "a", "id": "b", ...}``), a vector that is all
zeros once rounded to float32, and a line longer than :func:`~.reading.max_line_bytes`.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import orjson
import simdjson

from ..errors import ValidationError
from .reading import LineTooLong, max_line_bytes, position, read_blocks

try:  # optional: built from catalog/_native/ndjson.c where a C compiler is available
    from .. import _ndjson
except ImportError:  # pragma: no cover - depends on the build
    _ndjson = None

PARSE_BLOCK = 8_192
FLOAT32_MAX = float(np.finfo(np.float32).max)
NATIVE_ENV = "CATALOG_NDJSON_NATIVE"
CLIP_CHARS = 80
NOT_FLAT = "the vector must be a flat array of numbers"


def clip(value) -> str:
    """``repr(value)`` for a message, cut to its first 80 characters when longer."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= CLIP_CHARS:
        return repr(text)
    return f"{text[:CLIP_CHARS]!r}… ({len(text):,} characters)"


def _no_repeats(pairs):
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise ValueError(f"member {clip(name)} appears twice in one object (each member may appear once)")
        seen.add(name)
    return dict(pairs)


class Errors:
    """The problems found so far: the first 1,000 as ``(line, reason)``, and their total."""

    def __init__(self, unit="line"):
        self.unit = unit
        self.items: list[tuple[int | None, str]] = []
        self.total = 0
        self.stopped = False  # reading stopped early (a line too long to read)

    def add(self, line, reason):
        self.total += 1
        if len(self.items) < 1000:
            self.items.append((line, reason))

    def raise_if_any(self, what):
        if self.total:
            self.items.sort(key=lambda e: (e[0] is None, e[0] or 0))
            raise ValidationError(
                f"{what}: {self.total} invalid {self.unit}{'s' if self.total != 1 else ''}; nothing was imported",
                self.items, self.total, unit=self.unit,
            )


def slow_parse(raw: bytes, dims: int):
    """Parse one line with full diagnostics; returns (key, vector) or raises ValueError(reason)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if any(tok in raw for tok in (b"NaN", b"Infinity")):
            raise ValueError("vector contains NaN or Infinity (not allowed)") from None
        raise ValueError(f"malformed JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with \"id\" and \"vector\"")
    try:
        json.loads(raw, object_pairs_hook=_no_repeats)  # orjson keeps the last of repeated members
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    missing = [k for k in ("id", "vector") if k not in obj]
    if missing:
        raise ValueError(f"missing field {' and '.join(repr(m) for m in missing)}")
    key = obj["id"]
    if not isinstance(key, str) or not key.strip():
        raise ValueError("\"id\" must be a non-empty string (a data row id or global_key)")
    return key, vector_values(obj["vector"]).astype(np.float32)


def vector_values(vec) -> np.ndarray:
    """A parsed JSON ``vector`` as float64, with the type checks of an import (a flat list of finite
    numbers that fit float32), or ValueError(reason)."""
    if not isinstance(vec, list):
        raise ValueError("\"vector\" must be a list of numbers")
    for i, x in enumerate(vec):
        if isinstance(x, list):
            raise ValueError(f"{NOT_FLAT} (value {i} is an array)")
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"\"vector\" value {i} is not a number: {str(orjson.dumps(x), 'utf-8')[:40]}")
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError("vector contains NaN or Infinity")
    arr = np.asarray(vec, dtype=np.float64)
    if np.any(np.abs(arr) > np.finfo(np.float32).max):
        raise ValueError("vector value does not fit in float32")
    return arr


def check_vector(vec, dims: int) -> np.ndarray:
    """Every check an import makes of one parsed JSON ``vector`` for an embedding of ``dims``: the
    float32 vector, or ValueError with the reason an NDJSON line would get."""
    arr = vector_values(vec)
    if arr.shape[0] != dims:
        raise ValueError(f"vector has {arr.shape[0]} values, expected {dims}")
    for _, reason in block_problems(arr.reshape(1, -1)):
        raise ValueError(reason)
    return arr.astype(np.float32)


def block_problems(block: np.ndarray) -> list[tuple[int, str]]:
    """Vectorised checks of a block of float64 (or float32) vectors: (row index, reason) for each bad row."""
    peak = np.abs(block).max(axis=1)  # NaN and Infinity propagate
    bad = []
    with np.errstate(over="ignore", invalid="ignore"):
        peak32 = peak.astype(np.float32)  # the stored values are float32: the zero check is on them
    for i in np.flatnonzero(~((peak <= FLOAT32_MAX) & (peak32 > 0))):
        row = block[i]
        if not np.isfinite(row).all():
            bad.append((int(i), "vector contains NaN or Infinity"))
        elif peak[i] > FLOAT32_MAX:
            bad.append((int(i), "vector value does not fit in float32"))
        elif peak[i] > 0:
            bad.append((int(i), ("vector is all zeros once rounded to float32 (its values are too small "
                                 "for float32; a zero vector has no direction)")))
        else:
            bad.append((int(i), "vector is all zeros (a zero vector has no direction)"))
    return bad


def native_parser():
    """The C fast path (``catalog._ndjson``), or None where it was not built or is switched off with
    ``CATALOG_NDJSON_NATIVE=0``; the general parser below gives the same results, slower."""
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    return _ndjson


def parse_line(raw: bytes, dims: int, parser, errors: Errors, line_no: int):
    """The general parser for one line: ``(key, float64 vector)``, or None (blank, or an error
    recorded in ``errors``)."""
    line = raw.strip()
    if not line:
        return None
    limit = max_line_bytes(dims)
    if len(raw) > limit:
        errors.add(line_no, too_long(len(raw), limit, dims))
        return None
    if line[-1:] == b",":
        line = line[:-1].rstrip()
    try:
        # simdjson flattens nested arrays and keeps the first of repeated members: such lines (and
        # escapes, which could spell a member name) get the careful parser
        if line.count(b"[") != 1 or line.count(b'"id"') != 1 or line.count(b'"vector"') != 1 or b"\\" in line:
            raise TypeError
        doc = parser.parse(line)
        key = doc["id"]
        vec = np.frombuffer(doc["vector"].as_buffer(of_type="d"), dtype=np.float64)
        del doc
        if not isinstance(key, str) or not key.strip():
            raise TypeError
    except Exception:  # noqa: BLE001 - anything unusual gets the careful parser's verdict
        try:
            key, vec = slow_parse(line, dims)
        except ValueError as exc:
            errors.add(line_no, str(exc))
            return None
    if vec.shape[0] != dims:
        errors.add(line_no, f"vector has {vec.shape[0]} values, expected {dims}")
        return None
    for _, reason in block_problems(vec.reshape(1, -1)):
        errors.add(line_no, reason)
        return None
    return key.strip(), vec


def too_long(length: int, limit: int, dims: int, more=False) -> str:
    return (f"line is {length:,}{'+' if more else ''} bytes long, longer than the {limit:,} bytes a vector "
            f"of {dims} values may take (64 bytes per value + 4 KiB)" + ("; reading stopped here" if more else ""))


def parse_lines(fh, dims: int, scratch, errors: Errors, progress=None, limit=None):
    """Parse every line (up to ``limit`` bytes); returns ``(keys, lines)``: the (line_no, key) of the
    valid lines in scratch order, and the number of lines read. The vectors go to ``scratch`` (its
    ``append(block)``), in blocks, as long as no line was invalid.

    Plain ``{"id", "vector"}`` lines go through the C fast path, whole blocks at a time; it stops at
    any line it does not fully accept, which then gets the general parser (and its messages)."""
    native = native_parser()
    parser = simdjson.Parser()
    keys: list[tuple[int, str]] = []
    block = np.empty((PARSE_BLOCK, dims), dtype=np.float32)
    filled = 0
    line_no = 0

    def flush():
        nonlocal filled
        if errors.total == 0:  # once invalid, stop storing vectors: nothing will be written
            scratch.append(block[:filled])
        filled = 0

    blocks = read_blocks(fh, limit, max_line_bytes(dims))
    while True:
        try:
            buf, size = next(blocks)
        except StopIteration:
            break
        except LineTooLong as exc:  # nothing after it is read: a line this long would not fit memory
            errors.add(line_no + 1, too_long(exc.length, exc.limit, dims, more=True))
            errors.stopped = True
            break
        pos = 0
        while pos < size:
            if filled == PARSE_BLOCK:
                flush()
            if native is not None:
                pos, filled, line_no, got, stopped = native.parse_block(buf, size, pos, dims, block, filled, line_no)
                keys.extend(got)
                if not stopped:
                    continue
            eol = buf.find(b"\n", pos, size)
            eol = size if eol < 0 else eol
            raw, pos = bytes(buf[pos:eol]), eol + 1
            line_no += 1
            parsed = parse_line(raw, dims, parser, errors, line_no)
            if parsed is not None:
                keys.append((line_no, parsed[0]))
                block[filled] = parsed[1]
                filled += 1
        if progress is not None:
            progress(position(fh))
    if filled:
        flush()
    if progress is not None:
        progress(None)
    return keys, line_no
