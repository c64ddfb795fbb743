"""Validated, all-or-nothing vector import (NDJSON files and numpy arrays).

A file is read in three phases so that nothing is written unless every line is valid:

1. parse (no lock held): each line is checked and its vector written to a scratch file; memory
   stays flat in the file size;
2. resolve (a short read): ids are matched against data-row ids and global keys;
3. write (one transaction): old vectors of those rows are replaced and the embedding's version is
   bumped, so derived caches rebuild. A kill at any point leaves the catalog as it was.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import CatalogError, ValidationError
from .store import one

CHUNK = 20_000
MAX_REPORTED = 20


class _Errors:
    def __init__(self, unit="line"):
        self.unit = unit
        self.items: list[tuple[int | None, str]] = []
        self.total = 0

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


def _open_lines(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


class _Scratch:
    """Vectors of the valid lines, appended to a temporary float32 file."""

    def __init__(self, dims, where):
        self.dims = dims
        self.fh = tempfile.NamedTemporaryFile(prefix="vectors-", suffix=".f32", dir=where, delete=False)
        self.n = 0

    def append(self, block: np.ndarray):
        self.fh.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.n += len(block)

    def chunks(self, size=CHUNK):
        self.fh.flush()
        if self.n == 0:
            return
        mm = np.memmap(self.fh.name, dtype=np.float32, mode="r", shape=(self.n, self.dims))
        for start in range(0, self.n, size):
            yield start, np.asarray(mm[start:start + size])
        del mm

    def close(self):
        self.fh.close()
        try:
            os.unlink(self.fh.name)
        except OSError:
            pass


def _check_vector(vec: np.ndarray, dims: int) -> str | None:
    if vec.shape[0] != dims:
        return f"vector has {vec.shape[0]} values, expected {dims}"
    if not np.all(np.isfinite(vec)):
        return "vector contains NaN or Infinity"
    if not np.any(vec):
        return "vector is all zeros (a zero vector has no direction)"
    return None


def _slow_parse(raw: bytes, dims: int):
    """Parse one line with full diagnostics; returns (key, vector) or raises ValueError(reason)."""
    import orjson

    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if any(tok in raw for tok in (b"NaN", b"Infinity")):
            raise ValueError("vector contains NaN or Infinity (not allowed)") from None
        raise ValueError(f"malformed JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with \"id\" and \"vector\"")
    missing = [k for k in ("id", "vector") if k not in obj]
    if missing:
        raise ValueError(f"missing field {' and '.join(repr(m) for m in missing)}")
    key = obj["id"]
    if not isinstance(key, str) or not key.strip():
        raise ValueError("\"id\" must be a non-empty string (a data row id or global_key)")
    vec = obj["vector"]
    if not isinstance(vec, list):
        raise ValueError("\"vector\" must be a list of numbers")
    for i, x in enumerate(vec):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"\"vector\" value {i} is not a number: {str(orjson.dumps(x), 'utf-8')[:40]}")
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError("vector contains NaN or Infinity")
    arr = np.asarray(vec, dtype=np.float64)
    if np.any(np.abs(arr) > np.finfo(np.float32).max):
        raise ValueError("vector value does not fit in float32")
    return key, arr.astype(np.float32)


def _parse_lines(fh, dims: int, scratch: _Scratch, errors: _Errors, progress=None):
    """Parse every line; returns the list of (line_no, key) of valid lines, in scratch order."""
    import simdjson

    parser = simdjson.Parser()
    keys: list[tuple[int, str]] = []
    block = np.empty((CHUNK, dims), dtype=np.float32)
    filled = 0
    line_no = 0
    for raw in fh:
        line_no += 1
        if progress is not None and line_no % 5000 == 0:
            progress(fh.tell() if hasattr(fh, "tell") else None)
        line = raw.strip()
        if not line:
            continue
        if line.endswith(b","):
            line = line[:-1].rstrip()
        try:
            try:
                doc = parser.parse(line)
                key = doc["id"]
                vec = np.frombuffer(doc["vector"].as_buffer(of_type="d"), dtype=np.float64)
                del doc
                if not isinstance(key, str) or not key.strip():
                    raise TypeError
            except Exception:  # noqa: BLE001 - anything unusual gets the careful parser's verdict
                key, vec = _slow_parse(line, dims)
            if vec.shape[0] == dims and np.any(np.abs(vec) > 3.4028234663852886e38):
                raise ValueError("vector value does not fit in float32")
            reason = _check_vector(vec, dims)
            if reason:
                raise ValueError(reason)
        except ValueError as exc:
            errors.add(line_no, str(exc))
            continue
        keys.append((line_no, key.strip()))
        if errors.total == 0:  # once invalid, stop storing vectors: nothing will be written
            block[filled] = vec
            filled += 1
            if filled == CHUNK:
                scratch.append(block)
                filled = 0
    if filled and errors.total == 0:
        scratch.append(block[:filled])
    if progress is not None:
        progress(None)
    return keys


def _resolve(catalog, keys: list[tuple[int, str]], errors: _Errors) -> pa.Array | None:
    """Row ids for the keys (id or global_key), in order; unknown and repeated ids are errors."""
    seen: dict[str, int] = {}
    for line, key in keys:
        if key in seen:
            errors.add(line, f"id {key!r} appears twice in the file (first on line {seen[key]})")
        else:
            seen[key] = line
    if not keys:
        return None
    tbl = pa.table({
        "pos": pa.array(range(len(keys)), pa.int64()),
        "line": pa.array([k[0] for k in keys], pa.int64()),
        "k": pa.array([k[1] for k in keys], pa.string()),
    })
    with catalog.store.connect() as con:
        con.register("import_keys", tbl)
        try:
            rows = con.execute(
                """
                SELECT s.pos, s.line, s.k, CAST(coalesce(g.id, i.id) AS VARCHAR) AS row_id
                FROM import_keys s
                LEFT JOIN datarows g ON g.global_key = s.k
                LEFT JOIN datarows i ON i.id = TRY_CAST(s.k AS UUID)
                ORDER BY s.pos
                """
            ).fetchall()
        finally:
            con.unregister("import_keys")
    row_ids = []
    first_line: dict[str, int] = {}
    for pos, line, key, row_id in rows:
        if row_id is None:
            errors.add(line, f"id {key!r} matches no data row (neither an id nor a global_key)")
        elif row_id in first_line and seen.get(key) == line:
            errors.add(line, f"id {key!r} is the same data row as line {first_line[row_id]}")
        else:
            first_line.setdefault(row_id, line)
        row_ids.append(row_id)
    return pa.array(row_ids, pa.string())


def _write(catalog, emb, row_ids: pa.Array, chunks) -> int:
    n = 0
    with catalog.store.transaction() as con:
        if one(con, "SELECT dims FROM embeddings WHERE id = ?", [emb.id]) is None:
            raise CatalogError(f"embedding {emb.name} was deleted during the import; nothing was imported")
        for start, block in chunks:
            count = len(block)
            tbl = pa.table({
                "row_id": row_ids.slice(start, count),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), emb.dims),
            })
            con.register("import_chunk", tbl)
            try:
                con.execute(
                    "DELETE FROM vectors WHERE embedding_id = ? AND row_id IN (SELECT CAST(row_id AS UUID) FROM import_chunk)",
                    [emb.id],
                )
                con.execute(
                    "INSERT INTO vectors SELECT ?::UUID, CAST(row_id AS UUID), CAST(vector AS FLOAT[]) FROM import_chunk",
                    [emb.id],
                )
            finally:
                con.unregister("import_chunk")
            n += count
        con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ?", [emb.id])
    catalog._on_vectors_changed(emb.id)
    return n


def _require_custom(emb):
    if not emb.custom:
        raise CatalogError(
            f"{emb.name} is an off-the-shelf embedding; its vectors come from `advtool embeddings compute {emb.name}`, "
            "import into a custom embedding instead (advtool embeddings create NAME DIMS)"
        )


def import_file(emb, path, progress=None, allow_builtin=False) -> int:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"vector file {path} does not exist or is not a file")
    if not allow_builtin:
        _require_custom(emb)
    catalog = emb.catalog
    errors = _Errors()
    scratch = _Scratch(emb.dims, catalog.store.path.parent)
    try:
        try:
            with _open_lines(path) as fh:
                keys = _parse_lines(fh, emb.dims, scratch, errors, progress)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CatalogError(f"cannot read vector file {path}: {exc}") from None
        row_ids = _resolve(catalog, keys, errors)
        errors.raise_if_any(str(path))
        if not keys:
            raise CatalogError(f"vector file {path} has no vectors; expected one {{\"id\", \"vector\"}} per line")
        return _write(catalog, emb, row_ids, scratch.chunks())
    finally:
        scratch.close()


def import_array(emb, ids, vectors, allow_builtin=False) -> int:
    if not allow_builtin:
        _require_custom(emb)
    ids = [str(i) for i in ids]
    try:
        arr = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise CatalogError("vectors must be a 2-D array of numbers") from None
    if arr.ndim != 2:
        raise CatalogError(f"vectors must be a 2-D array (rows × {emb.dims}), got {arr.ndim}-D")
    if arr.shape[0] != len(ids):
        raise CatalogError(f"{len(ids)} ids but {arr.shape[0]} vectors; give one id per vector")
    if arr.shape[1] != emb.dims:
        raise CatalogError(f"vectors have {arr.shape[1]} values, embedding {emb.name} has {emb.dims} dims")
    errors = _Errors(unit="row")
    keys = []
    for i, (key, vec) in enumerate(zip(ids, arr), start=1):
        reason = _check_vector(vec, emb.dims)
        if reason is None and np.any(np.abs(vec) > np.finfo(np.float32).max):
            reason = "vector value does not fit in float32"
        if reason:
            errors.add(i, reason)
        keys.append((i, key.strip()))
    row_ids = _resolve(emb.catalog, keys, errors)
    errors.raise_if_any("vectors")
    if not keys:
        return 0
    block = arr.astype(np.float32)
    return _write(emb.catalog, emb, row_ids, ((s, block[s:s + CHUNK]) for s in range(0, len(block), CHUNK)))
