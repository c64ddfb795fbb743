"""Validated, all-or-nothing vector import (NDJSON files and numpy arrays).

A file is read in three phases so that nothing becomes visible unless every line is valid:

1. parse (no lock held): each line is checked and its vector written to a scratch file (files over
   64 MB: the second half by a second interpreter);
2. resolve (one query): ids are matched against data-row ids and global keys, repeats found;
3. write: the vectors are staged under a private id and placeholder row ids, each 50,000-vector
   chunk its own transaction (bounded memory); then one short transaction maps the placeholders to
   the resolved rows, replaces the old vectors of those rows,
   makes the staged ones the embedding's and bumps its version, so derived caches rebuild. A kill
   at any point leaves the catalog as it was (staged rows of a killed import are invisible and are
   removed by the next import).
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import CatalogError, ValidationError
from .store import one

CHUNK = 50_000
WRITE_MEMORY_LIMIT = "512MB"
PARSE_BLOCK = 8_192
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
            for start, block in sc.chunks(size or CHUNK):
                yield offset + start, block
            offset += sc.n

    def append(self, block: np.ndarray):
        self.fh.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.n += len(block)

    def chunks(self, size=CHUNK):
        if not self.fh.closed and self.fh.writable():
            self.fh.flush()
        if self.n == 0:
            return
        with open(self.fh.name, "rb") as fh:  # plain reads: a memmap would keep every page resident
            for start in range(0, self.n, size):
                count = min(size, self.n - start)
                block = np.fromfile(fh, dtype=np.float32, count=count * self.dims)
                if block.size != count * self.dims:
                    raise CatalogError("the import's scratch file was truncated (disk full?); nothing was imported")
                yield start, block.reshape(count, self.dims)

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


def _parse_lines(fh, dims: int, scratch: _Scratch, errors: _Errors, progress=None, limit=None):
    """Parse every line (up to ``limit`` bytes); returns ``(keys, lines)``: the (line_no, key) of the
    valid lines in scratch order, and the number of lines read."""
    import simdjson

    parser = simdjson.Parser()
    keys: list[tuple[int, str] | None] = []
    block = np.empty((PARSE_BLOCK, dims), dtype=np.float64)
    filled = 0

    def flush():
        nonlocal filled
        part = block[:filled]
        for i, reason in _block_problems(part):
            pos = len(keys) - filled + i
            errors.add(keys[pos][0], reason)
            keys[pos] = None
        if errors.total == 0:  # once invalid, stop storing vectors: nothing will be written
            scratch.append(part)
        filled = 0

    line_no = 0
    consumed = 0
    for raw in fh:
        if limit is not None and consumed >= limit:
            break
        line_no += 1
        if limit is not None:
            consumed += len(raw)
        if progress is not None and line_no % 5000 == 0:
            progress(fh.tell() if hasattr(fh, "tell") else None)
        line = raw.strip()
        if not line:
            continue
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
                continue
        if vec.shape[0] != dims:
            errors.add(line_no, f"vector has {vec.shape[0]} values, expected {dims}")
            continue
        keys.append((line_no, key.strip()))
        block[filled] = vec
        filled += 1
        if filled == PARSE_BLOCK:
            flush()
    if filled:
        flush()
    if progress is not None:
        progress(None)
    return [k for k in keys if k is not None], line_no


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _drop_stale_staging(con) -> None:
    """Remove rows staged by imports that died (killed, crashed) before their final swap."""
    stale = [sid for sid, pid, old in con.execute(
        "SELECT CAST(staging_id AS VARCHAR), pid, started_at < now() - INTERVAL 1 DAY FROM import_staging").fetchall()
        if old or (pid != os.getpid() and not _pid_alive(pid))]
    for sid in stale:
        con.execute("DELETE FROM vectors WHERE embedding_id = ?", [sid])
        con.execute("DELETE FROM import_staging WHERE staging_id = ?", [sid])


PLACEHOLDER = "CAST(printf('00000000-0000-4000-8000-%012x', {pos}) AS UUID)"


class _Stager:
    """Writes vectors under a private staging id and placeholder row ids (one per position in the
    file), each block its own transaction on a background thread while the next block is read, so
    memory stays bounded. ``commit`` maps the placeholders to the
    resolved row ids and hands the rows to the embedding in one short transaction; until then
    nothing is visible. ``abort`` (or the next import, after a kill) removes what was staged."""

    def __init__(self, catalog, emb, con):
        import concurrent.futures
        import uuid

        self.catalog, self.emb, self.con = catalog, emb, con
        self.staging = str(uuid.uuid4())
        self.n = 0
        self.pending = []
        with catalog.store.transaction() as tx:
            _drop_stale_staging(tx)
            tx.execute("INSERT INTO import_staging (staging_id, embedding_id, pid) VALUES (?, ?, ?)",
                       [self.staging, emb.id, os.getpid()])
        con.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")  # DuckDB's pages, not ours
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def append(self, block: np.ndarray) -> None:
        """Stage the next rows (positions ``n`` onwards); at most two blocks wait in memory."""
        block = np.array(block, dtype=np.float32)  # a copy: the parser reuses its buffer
        start, self.n = self.n, self.n + len(block)
        while len(self.pending) >= 2:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(self._insert, start, block))

    def stage(self, chunks) -> None:
        for _, block in chunks:
            self.append(block)

    def _insert(self, start: int, block: np.ndarray) -> None:
        tbl = pa.table({
            "pos": pa.array(np.arange(start, start + len(block), dtype=np.int64)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), self.emb.dims),
        })
        cur = self.con.cursor()
        try:
            cur.register("import_chunk", tbl)
            cur.execute("BEGIN TRANSACTION")
            cur.execute(f"INSERT INTO vectors SELECT ?::UUID, {PLACEHOLDER.format(pos='pos')}, "
                        "CAST(vector AS FLOAT[]) FROM import_chunk", [self.staging])
            cur.execute("COMMIT")
        finally:
            cur.close()

    def wait(self) -> None:
        pending, self.pending = self.pending, []
        for fut in pending:
            fut.result()

    def commit(self, row_ids: pa.Array) -> int:
        self.wait()
        self.pool.shutdown()
        if len(row_ids) != self.n:
            raise CatalogError(f"internal error: {self.n} vectors staged for {len(row_ids)} ids; nothing was imported")
        emb, staging = self.emb, self.staging
        with self.catalog.store.transaction() as con:
            if one(con, "SELECT dims FROM embeddings WHERE id = ?", [emb.id]) is None:
                raise CatalogError(f"embedding {emb.name} was deleted during the import; nothing was imported")
            con.register("import_map", pa.table({"pos": pa.array(np.arange(self.n, dtype=np.int64)), "rid": row_ids}))
            try:
                con.execute(f"UPDATE vectors SET row_id = CAST(m.rid AS UUID) FROM import_map m "
                            f"WHERE vectors.embedding_id = ? AND vectors.row_id = {PLACEHOLDER.format(pos='m.pos')}",
                            [staging])
            finally:
                con.unregister("import_map")
            if one(con, "SELECT 1 FROM vectors WHERE embedding_id = ? LIMIT 1", [emb.id]) is not None:
                con.execute(  # replace: old vectors of the imported rows go, in one pass
                    "DELETE FROM vectors WHERE embedding_id = ? AND row_id IN "
                    "(SELECT row_id FROM vectors WHERE embedding_id = ?)", [emb.id, staging])
            con.execute("UPDATE vectors SET embedding_id = ? WHERE embedding_id = ?", [emb.id, staging])
            con.execute("DELETE FROM import_staging WHERE staging_id = ?", [staging])
            con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ?", [emb.id])
        self.catalog._on_vectors_changed(emb.id)
        return self.n

    def abort(self) -> None:
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - the staged rows are dropped below either way
            pass
        self.pool.shutdown()
        try:
            with self.catalog.store.transaction() as con:
                con.execute("DELETE FROM vectors WHERE embedding_id = ?", [self.staging])
                con.execute("DELETE FROM import_staging WHERE staging_id = ?", [self.staging])
        except Exception:  # noqa: BLE001 - the next import removes it
            pass


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
        with catalog.store.connect() as con:
            stager = _Stager(catalog, emb, con)
            try:
                stager.stage(_Scratch.chain([scratch, *extra]))
                return stager.commit(row_ids)
            except BaseException:
                stager.abort()
                raise
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
    with emb.catalog.store.connect() as con:
        stager = _Stager(emb.catalog, emb, con)
        try:
            for s in range(0, len(arr), CHUNK):
                stager.append(arr[s:s + CHUNK])
            return stager.commit(row_ids)
        except BaseException:
            stager.abort()
            raise
