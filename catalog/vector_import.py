"""Validated, all-or-nothing vector import (NDJSON files and numpy arrays).

A file is read in three phases so that nothing becomes visible unless every line is valid:

1. parse (no lock held): each line is checked and its vector written to a scratch file (files over
   64 MB: the second half by a second interpreter);
2. resolve (one query): ids are matched against data-row ids and global keys, repeats found;
3. write (one transaction): the old vectors of those rows go, the new ones are appended in blocks
   of whole DuckDB row groups read back from the scratch file (bounded memory), and the embedding's
   version moves on, so derived caches rebuild. Nothing is visible before the commit; a kill at any
   point leaves the catalog as it was.
"""

from __future__ import annotations

import gzip
import math
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from .errors import CatalogError, ValidationError
from .store import one

ROW_GROUP = 122_880  # DuckDB's rows per row group
WRITE_BLOCK_BYTES = 512 * 2**20
WRITE_MEMORY_LIMIT = "512MB"
PARSE_BLOCK = 8_192
READ_BLOCK = 8 * 2**20
PAD = 8
FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def write_rows(dims: int) -> int:
    """Rows per INSERT: whole DuckDB row groups (an insert that ends in a partial one makes the next
    checkpoint rewrite the table), up to about 512 MB of vectors; one row group per core is
    written in parallel. A multiple of 1,024, so that every block of a scratch file starts on a
    page boundary."""
    groups = WRITE_BLOCK_BYTES // (ROW_GROUP * dims * 4)
    return ROW_GROUP * max(1, min(os.cpu_count() or 1, groups))


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
        self.dir = where
        self.fh = tempfile.NamedTemporaryFile(prefix="vectors-", suffix=".f32", dir=where, delete=False)
        self.n = 0

    @classmethod
    def adopt(cls, name, n, dims):
        """A scratch file written by another process."""
        obj = cls.__new__(cls)
        obj.dims, obj.dir, obj.n = dims, os.path.dirname(name), n
        obj.fh = open(name, "rb")
        return obj

    @staticmethod
    def chain(scratches, size=None):
        """``(start, block)`` over several scratch files, as one sequence."""
        offset = 0
        for sc in scratches:
            for start, block in sc.chunks(size):
                yield offset + start, block
            offset += sc.n

    def append(self, block: np.ndarray):
        self.fh.write(np.ascontiguousarray(block, dtype=np.float32).data)
        self.n += len(block)

    def chunks(self, size=None):
        """``(start, block)`` in order; each block maps its part of the file (no copy), unmapped
        once the caller lets go of it, so one block at a time is resident."""
        if not self.fh.closed and self.fh.writable():
            self.fh.flush()
        if self.n == 0:
            return
        row_bytes = self.dims * 4
        size = size or write_rows(self.dims)
        with open(self.fh.name, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < self.n * row_bytes:
                raise CatalogError("the import's scratch file was truncated (disk full?); nothing was imported")
            for start in range(0, self.n, size):
                count = min(size, self.n - start)
                view = mmap.mmap(fh.fileno(), count * row_bytes, offset=start * row_bytes, access=mmap.ACCESS_READ)
                block = np.frombuffer(view, dtype=np.float32).reshape(count, self.dims)
                del view  # the block holds the mapping; it is unmapped when the block is freed
                yield start, block
                del block

    def close(self):
        self.fh.close()
        try:
            os.unlink(self.fh.name)
        except OSError:
            pass


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


def _block_problems(block: np.ndarray) -> list[tuple[int, str]]:
    """Vectorised checks of a block of float64 vectors: (row index, reason) for each bad row."""
    peak = np.abs(block).max(axis=1)  # NaN and Infinity propagate
    bad = []
    for i in np.flatnonzero(~((peak <= FLOAT32_MAX) & (peak > 0))):
        row = block[i]
        if not np.isfinite(row).all():
            bad.append((int(i), "vector contains NaN or Infinity"))
        elif peak[i] > FLOAT32_MAX:
            bad.append((int(i), "vector value does not fit in float32"))
        else:
            bad.append((int(i), "vector is all zeros (a zero vector has no direction)"))
    return bad


def _native_parser():
    """The C fast path (``catalog._ndjson``), or None where it was not built or is switched off with
    ``CATALOG_NDJSON_NATIVE=0``; the general parser below gives the same results, slower."""
    if os.environ.get("CATALOG_NDJSON_NATIVE", "1") == "0":
        return None
    try:
        from . import _ndjson
    except ImportError:
        return None
    return _ndjson


def _position(fh) -> int:
    """How far into the file on disk ``fh`` has read (compressed bytes for gzip)."""
    return fh.fileobj.tell() if isinstance(fh, gzip.GzipFile) else fh.tell()


def _read_blocks(fh, limit=None):
    """The file as ``(buffer, size)`` blocks of whole lines (the last line may lack its newline);
    ``buffer[size:size + PAD]`` holds newlines, the padding the fast path reads past a line's end.
    With ``limit``, reading stops after that many bytes (a line boundary)."""
    buf = bytearray(READ_BLOCK + PAD)
    carry = 0  # bytes of an unfinished line, moved to the front
    remaining = limit
    while True:
        want = len(buf) - PAD - carry
        if remaining is not None:
            want = min(want, remaining)
        got = fh.readinto(memoryview(buf)[carry:carry + want]) if want > 0 else 0
        if remaining is not None:
            remaining -= got
        size = carry + got
        if got == 0:  # end of file (or of the limit): what is left is the last line
            if size:
                buf[size:size + PAD] = b"\n" * PAD
                yield buf, size
            return
        cut = buf.rfind(b"\n", 0, size) + 1
        if cut == 0:  # one line longer than the buffer: grow it and read on
            buf.extend(bytes(len(buf)))
            carry = size
            continue
        tail = bytes(buf[cut:size])
        buf[cut:cut + PAD] = b"\n" * PAD
        yield buf, cut
        buf[:len(tail)] = tail
        carry = len(tail)


def _parse_line(raw: bytes, dims: int, parser, errors: _Errors, line_no: int):
    """The general parser for one line: ``(key, float64 vector)``, or None (blank, or an error
    recorded in ``errors``)."""
    line = raw.strip()
    if not line:
        return None
    if line[-1:] == b",":
        line = line[:-1].rstrip()
    try:
        doc = parser.parse(line)
        key = doc["id"]
        vec = np.frombuffer(doc["vector"].as_buffer(of_type="d"), dtype=np.float64)
        del doc
        if not isinstance(key, str) or not key.strip():
            raise TypeError
    except Exception:  # noqa: BLE001 - anything unusual gets the careful parser's verdict
        try:
            key, vec = _slow_parse(line, dims)
        except ValueError as exc:
            errors.add(line_no, str(exc))
            return None
    if vec.shape[0] != dims:
        errors.add(line_no, f"vector has {vec.shape[0]} values, expected {dims}")
        return None
    for _, reason in _block_problems(vec.reshape(1, -1)):
        errors.add(line_no, reason)
        return None
    return key.strip(), vec


def _parse_lines(fh, dims: int, scratch: _Scratch, errors: _Errors, progress=None, limit=None):
    """Parse every line (up to ``limit`` bytes); returns ``(keys, lines)``: the (line_no, key) of the
    valid lines in scratch order, and the number of lines read.

    Plain ``{"id", "vector"}`` lines go through the C fast path, whole blocks at a time; it stops at
    any line it does not fully accept, which then gets the general parser (and its messages)."""
    import simdjson

    native = _native_parser()
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

    for buf, size in _read_blocks(fh, limit):
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
            parsed = _parse_line(raw, dims, parser, errors, line_no)
            if parsed is not None:
                keys.append((line_no, parsed[0]))
                block[filled] = parsed[1]
                filled += 1
        if progress is not None:
            progress(_position(fh))
    if filled:
        flush()
    if progress is not None:
        progress(None)
    return keys, line_no


def _resolve(catalog, keys: list[tuple[int, str]], errors: _Errors) -> pa.Array | None:
    """Row ids for the keys (id or global_key), in order; unknown and repeated ids are errors.

    Matching and duplicate detection run in DuckDB over Arrow arrays, so no per-line Python
    objects are built for large files."""
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
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE import_resolved AS
                WITH m AS (
                    SELECT s.pos, s.line, s.k, coalesce(g.id, i.id) AS rid FROM import_keys s
                    LEFT JOIN datarows g ON g.global_key = s.k
                    LEFT JOIN datarows i ON i.id = TRY_CAST(s.k AS UUID))
                SELECT pos, line, k, CAST(rid AS VARCHAR) AS rid,
                       min(line) OVER (PARTITION BY k) AS first_key_line,
                       CASE WHEN rid IS NULL THEN NULL ELSE min(line) OVER (PARTITION BY rid) END AS first_row_line
                FROM m
                """
            )
            problems = con.execute(
                """
                SELECT line, k, rid, first_key_line, first_row_line FROM import_resolved
                WHERE rid IS NULL OR first_key_line < line OR first_row_line < line
                ORDER BY line LIMIT 1000
                """
            ).fetchall()
            total = con.execute(
                "SELECT count(*) FROM import_resolved WHERE rid IS NULL OR first_key_line < line OR first_row_line < line"
            ).fetchall()[0][0]
            row_ids = con.sql("SELECT rid FROM import_resolved ORDER BY pos").to_arrow_table().column(0).combine_chunks()
            con.execute("DROP TABLE import_resolved")
        finally:
            con.unregister("import_keys")
    for line, key, rid, first_key, first_row in problems:
        if first_key < line:
            errors.add(line, f"id {key!r} appears twice in the file (first on line {first_key})")
        elif rid is None:
            errors.add(line, f"id {key!r} matches no data row (neither an id nor a global_key)")
        else:
            errors.add(line, f"id {key!r} is the same data row as line {first_row}")
    errors.total += total - len(problems)
    return row_ids


def _write(catalog, emb, row_ids: pa.Array, chunks) -> int:
    """Give the rows ``row_ids`` (row ids as strings, in file order) the vectors of ``chunks``
    (``(start, float32 block)`` in the same order) in one transaction: their old vectors go, the
    new ones come, the embedding's version moves on. Until the commit nothing is visible; an error
    or a kill at any point leaves the catalog exactly as it was. DuckDB writes the rows of a big
    transaction to the file as it goes (whole row groups), so memory stays bounded."""
    n = len(row_ids)
    written = 0
    try:
        with catalog.store.transaction() as con:
            con.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")  # DuckDB's pages, not ours
            # first: a concurrent delete of the embedding then conflicts instead of leaving orphans
            if not con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ? RETURNING id",
                               [emb.id]).fetchall():
                raise CatalogError(f"embedding {emb.name} was deleted during the import; nothing was imported")
            if one(con, "SELECT 1 FROM vectors WHERE embedding_id = ? LIMIT 1", [emb.id]) is not None:
                con.register("import_rows", pa.table({"rid": row_ids}))
                try:  # replace: the old vectors of the imported rows go, in one pass
                    con.execute("DELETE FROM vectors WHERE embedding_id = ? AND row_id IN "
                                "(SELECT CAST(rid AS UUID) FROM import_rows)", [emb.id])
                finally:
                    con.unregister("import_rows")
            for start, block in chunks:
                m, dims = block.shape
                tbl = pa.table({
                    "rid": row_ids.slice(start, m),
                    "vector": pa.ListArray.from_arrays(pa.array(np.arange(0, (m + 1) * dims, dims, dtype=np.int32)),
                                                       pa.array(np.ascontiguousarray(block, dtype=np.float32).reshape(-1))),
                })
                # registered as a stream (one batch): DuckDB lets go of it after the insert, where a
                # registered table would stay referenced (its block mapped) until the commit
                con.register("import_chunk", pa.RecordBatchReader.from_batches(tbl.schema, tbl.to_batches()))
                try:
                    con.execute("INSERT INTO vectors SELECT ?::UUID, CAST(rid AS UUID), vector FROM import_chunk", [emb.id])
                finally:
                    con.unregister("import_chunk")
                written += m
                del tbl, block  # lets the scratch file unmap this block before the next one
            if written != n:
                raise CatalogError(f"internal error: {written} vectors for {n} ids; nothing was imported")
    except duckdb.TransactionException as exc:
        raise CatalogError(f"embedding {emb.name} was changed by another operation during the import "
                           f"({str(exc).splitlines()[0]}); nothing was imported") from None
    catalog._on_vectors_changed(emb.id)
    return n


def _require_custom(emb):
    if not emb.custom:
        raise CatalogError(
            f"{emb.name} is an off-the-shelf embedding; its vectors come from `advtool embeddings compute {emb.name}`, "
            "import into a custom embedding instead (advtool embeddings create NAME DIMS)"
        )


PARALLEL_MIN_BYTES = 64 * 2**20


def _parse_tail(path: str, offset: int, dims: int, scratch_dir: str):
    """Worker process: parse the lines of ``path`` from byte ``offset`` to the end."""
    errors = _Errors()
    scratch = _Scratch(dims, scratch_dir)
    scratch.keep = True
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            keys, lines = _parse_lines(fh, dims, scratch, errors)
    finally:
        scratch.fh.close()
    return keys, lines, errors.items, errors.total, scratch.fh.name, scratch.n


def _tail_main(argv) -> None:
    """Entry point of the helper interpreter that parses the second half of a big file."""
    path, offset, dims, scratch_dir, out = argv
    res = _parse_tail(path, int(offset), int(dims), scratch_dir)
    with open(out, "wb") as fh:
        pickle.dump(res, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _parse_file(path: Path, dims: int, sink, scratch_dir: Path, errors: _Errors, progress):
    """Parse the whole file; big plain files are split in two halves parsed on two cores."""
    size = path.stat().st_size
    with _open_lines(path) as fh:
        if isinstance(fh, gzip.GzipFile) or size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
            keys, _ = _parse_lines(fh, dims, sink, errors, progress)
            return keys, []
        fh.seek(size // 2)
        fh.readline()
        split = fh.tell()
        fh.seek(0)
        # the second half is parsed by a fresh interpreter (not multiprocessing, which would
        # re-import the caller's main module)
        result = tempfile.NamedTemporaryFile(prefix="tail-", suffix=".pickle", dir=scratch_dir, delete=False)
        result.close()
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; from catalog.vector_import import _tail_main; _tail_main(sys.argv[1:])",
             str(path), str(split), str(dims), str(scratch_dir), result.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            half = (lambda pos: progress(pos if pos is None else pos * size / max(split, 1))) if progress else None
            keys, head_lines = _parse_lines(fh, dims, sink, errors, half, limit=split)
            _, err = child.communicate()
            if child.returncode != 0:
                raise CatalogError(f"cannot read vector file {path}: the parser of its second half failed "
                                   f"({(err or b'').decode(errors='replace').strip().splitlines()[-1:] or 'killed'})")
            with open(result.name, "rb") as rf:
                t_keys, _, t_items, t_total, t_name, t_n = pickle.load(rf)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            os.unlink(result.name)
    extra = _Scratch.adopt(t_name, t_n, dims)
    keys.extend((line + head_lines, key) for line, key in t_keys)
    for line, reason in t_items:
        errors.add(line + head_lines if line is not None else None, reason)
    errors.total += t_total - len(t_items)
    return keys, [extra]


def import_file(emb, path, progress=None, allow_builtin=False) -> int:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"vector file {path} does not exist or is not a file")
    if not allow_builtin:
        _require_custom(emb)
    catalog = emb.catalog
    errors = _Errors()
    scratch = _Scratch(emb.dims, catalog.store.path.parent)
    extra: list[_Scratch] = []
    try:
        try:  # parsing holds no lock: the catalog stays usable while a big file is read
            keys, extra = _parse_file(path, emb.dims, scratch, catalog.store.path.parent, errors, progress)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CatalogError(f"cannot read vector file {path}: {exc}") from None
        row_ids = _resolve(catalog, keys, errors)
        errors.raise_if_any(str(path))
        if not keys:
            raise CatalogError(f"vector file {path} has no vectors; expected one {{\"id\", \"vector\"}} per line")
        return _write(catalog, emb, row_ids, _Scratch.chain([scratch, *extra]))
    finally:
        for sc in [scratch, *extra]:
            sc.close()


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
    for i, reason in _block_problems(arr):
        errors.add(i + 1, reason)
    keys = [(i, key.strip()) for i, key in enumerate(ids, start=1)]
    row_ids = _resolve(emb.catalog, keys, errors)
    errors.raise_if_any("vectors")
    if not keys:
        return 0
    step = write_rows(emb.dims)
    return _write(emb.catalog, emb, row_ids, ((s, arr[s:s + step]) for s in range(0, len(arr), step)))
