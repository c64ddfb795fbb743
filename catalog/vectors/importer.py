"""Validated, all-or-nothing vector import (NDJSON files and numpy arrays).

A file is read in three phases so that nothing becomes visible unless every line is valid:

1. parse (no lock held): each line is checked and its vector written to a scratch file (files over
   64 MB: the second half by a second interpreter, :mod:`catalog.vectors.splitting`);
2. resolve (one query): ids are matched against data-row ids and global keys (the one rule of
   :mod:`catalog.store.rowrefs`), repeats found;
3. write (one transaction, :mod:`catalog.vectors.writing`): the old vectors of those rows go, the
   new ones are appended in blocks of whole DuckDB row groups read back from the scratch file
   (bounded memory), and the embedding's version moves on, so derived caches rebuild. Nothing is
   visible before the commit; a kill at any point leaves the catalog as it was.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..store import ambiguity, registered, resolution_sql
from ..store.scratch import ScratchDir
from ..store.space import DiskFull, disk_full, free_bytes, is_out_of_space
from .parsing import Errors, block_problems, clip
from .reading import DamagedGzip
from .splitting import parse_file
from .writing import Scratch, write_rows, write_vectors

ROW_OVERHEAD = 64  # bytes a stored vector row takes beyond its floats (about: row ids, list offsets)
OFF_THE_SHELF_HINT = "compute its vectors with its model, or import into a custom embedding instead"
CALLBACK_VECTORS = 1_000  # vectors per call of an import's ``callback`` (the SDK uploads 1,000 lines a request)


class VectorImport:
    """Imports vectors into the embeddings of one catalog file; the vector cache of an embedding is
    dropped after each import into it."""

    def __init__(self, store, cache):
        self.store = store
        self.cache = cache

    def import_file(self, emb, path, progress=None, allow_builtin=False, callback=None) -> int:
        """Validate and import an NDJSON(.gz) file of ``{"id", "vector"}`` lines; all-or-nothing.
        ``progress(bytes read)`` is called as the file is read (``None`` at its end);
        ``callback(dict)`` once per 1,000 vectors as they are written, after validation (see
        :func:`_reporting`). Returns the number imported."""
        path = Path(path)
        if callback is not None and not callable(callback):
            raise CatalogError(f"`callback` must be a function, not {type(callback).__name__}", field="callback")
        if not path.is_file():
            raise CatalogError(f"vector file {path} does not exist or is not a file", field="path")
        if not allow_builtin:
            _require_custom(emb)
        errors = Errors()
        read = _Progress(progress)
        with ScratchDir(self.store.path) as space:  # removed on every exit; a killed run's, at the next open
            scratch = Scratch(emb.dims, space.path)
            extra: list[Scratch] = []
            try:
                try:  # parsing holds no lock: the catalog stays usable while a big file is read
                    keys, extra = parse_file(path, emb.dims, scratch, space, errors, read)
                except DamagedGzip as exc:
                    raise CatalogError(f"cannot read vector file {path}: it is a damaged gzip file ({exc}); "
                                       "nothing was imported", field="path") from None
                except OSError as exc:
                    if is_out_of_space(exc):
                        raise self._full(read.estimate(scratch.n, path), emb.dims, scratch.bytes()) from None
                    raise CatalogError(f"cannot read vector file {path}: {exc}; nothing was imported",
                                       field="path") from None
                except (EOFError, zlib.error) as exc:
                    raise CatalogError(f"cannot read vector file {path}: {exc}; nothing was imported",
                                       field="path") from None
                row_ids = self._resolve(keys, errors)
                errors.raise_if_any(str(path))
                if not keys:
                    raise CatalogError(f"vector file {path} has no vectors; expected one {{\"id\", \"vector\"}} "
                                       "per line", field="path")
                chunks = Scratch.chain([scratch, *extra])
                if callback is not None:
                    chunks = _reporting(chunks, len(keys), path.stat().st_size, callback)
                return self._write(emb, row_ids, chunks)
            finally:
                for sc in [scratch, *extra]:
                    sc.close()

    def import_array(self, emb, ids, vectors, allow_builtin=False) -> int:
        """Import a numpy array (one row per id or global_key) with the same validation as a file."""
        if not allow_builtin:
            _require_custom(emb)
        ids = [str(i) for i in ids]
        try:  # float32 arrays (computed vectors) are checked as they are: no float64 copy
            arr = vectors if isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 else \
                np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            raise CatalogError("vectors must be a 2-D array of numbers", field="vectors") from None
        if arr.ndim != 2:
            raise CatalogError(f"vectors must be a 2-D array (rows × {emb.dims}), got {arr.ndim}-D", field="vectors")
        if arr.shape[0] != len(ids):
            raise CatalogError(f"{len(ids)} ids but {arr.shape[0]} vectors; give one id per vector", field="ids")
        if arr.shape[1] != emb.dims:
            raise CatalogError(f"vectors have {arr.shape[1]} values, embedding {emb.name} has {emb.dims} dims",
                               field="vectors")
        errors = Errors(unit="row")
        for i, reason in block_problems(arr):
            errors.add(i + 1, reason)
        keys = [(i, key.strip()) for i, key in enumerate(ids, start=1)]
        row_ids = self._resolve(keys, errors)
        errors.raise_if_any("vectors")
        if not keys:
            return 0
        step = write_rows(emb.dims)
        return self._write(emb, row_ids, ((s, arr[s:s + step]) for s in range(0, len(arr), step)))

    def _full(self, n: int, dims: int, scratch_bytes: int = 0):
        """The disk-full error of an import of about ``n`` vectors: its scratch file (removed again)
        and the catalog's growth (the vectors, their row ids and list offsets)."""
        return disk_full(self.store.path.parent, needed=n * dims * 4 + n * (dims * 4 + ROW_OVERHEAD),
                         what="the import (scratch file and catalog)", nothing="nothing was imported",
                         freed=scratch_bytes)

    def _write(self, emb, row_ids: pa.Array, chunks) -> int:
        n = len(row_ids)
        free = free_bytes(self.store.path.parent)
        if free is not None and free < n * emb.dims * 4 - self.store.free_space():
            raise self._full(n, emb.dims, n * emb.dims * 4)  # the floats alone will not fit: refuse now
        try:
            n = write_vectors(self.store, emb, row_ids, chunks)
        except DiskFull:
            raise self._full(n, emb.dims, n * emb.dims * 4) from None
        self.cache.invalidate(emb.id)
        return n

    def _resolve(self, keys: list[tuple[int, str]], errors: Errors) -> pa.Array | None:
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
        with self.store.connect() as con, registered(con, tbl, "import_keys") as t:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE import_resolved AS
                WITH m AS ({resolution_sql(t)})
                SELECT pos, line, k, CAST(rid AS VARCHAR) AS rid, alias_kind, alias_rows,
                       min(line) OVER (PARTITION BY k) AS first_key_line,
                       CASE WHEN rid IS NULL THEN NULL ELSE min(line) OVER (PARTITION BY rid) END AS first_row_line
                FROM m
                """
            )
            problems = con.execute(
                """
                SELECT line, k, rid, first_key_line, first_row_line, alias_kind, alias_rows FROM import_resolved
                WHERE rid IS NULL OR first_key_line < line OR first_row_line < line
                ORDER BY line LIMIT 1000
                """
            ).fetchall()
            total = con.execute(
                "SELECT count(*) FROM import_resolved WHERE rid IS NULL OR first_key_line < line OR first_row_line < line"
            ).fetchall()[0][0]
            row_ids = con.sql("SELECT rid FROM import_resolved ORDER BY pos").to_arrow_table().column(0).combine_chunks()
            con.execute("DROP TABLE import_resolved")
        for line, key, rid, first_key, first_row, kind, n in problems:
            if first_key < line:
                errors.add(line, f"id {clip(key)} appears twice in the file (first on line {first_key})")
            elif rid is None and ambiguity(kind, n):
                errors.add(line, f"id {clip(key)} is ambiguous: it is {ambiguity(kind, n)} (give a global_key or id)")
            elif rid is None:
                errors.add(line, f"id {clip(key)} matches no data row (not an id, global_key, Labelbox id or "
                                 "external_id)")
            else:
                errors.add(line, f"id {clip(key)} is the same data row as line {first_row}")
        errors.total += total - len(problems)
        return row_ids


class _Progress:
    """The caller's byte progress, remembering how far the file has been read (for estimates)."""

    def __init__(self, progress):
        self.progress = progress
        self.pos = 0

    def __call__(self, pos):
        if pos is not None:
            self.pos = pos
        if self.progress is not None:
            self.progress(pos)

    def estimate(self, done: int, path: Path) -> int:
        """About how many vectors the whole file holds, from ``done`` in the part read so far."""
        try:
            size = path.stat().st_size
        except OSError:
            return done
        return int(done * size / self.pos) if self.pos else done


def _reporting(chunks, n: int, size: int, callback):
    """``chunks`` passed through; after each one is written (the writer asks for the next), the
    Labelbox SDK's per-chunk callback for every 1,000 vectors now written:
    ``{"importedFileSizeOfBytes": share of the file's size, "vectors": count}``. The shares are in
    proportion to the vectors and add up to ``size``."""
    reported = 0
    for item in chunks:
        end = item[0] + len(item[1])
        yield item
        del item  # the writer is done with the block: let its mapping go
        while reported < n and min(reported + CALLBACK_VECTORS, n) <= end:
            stop = min(reported + CALLBACK_VECTORS, n)
            callback({"importedFileSizeOfBytes": size * stop // n - size * reported // n, "vectors": stop - reported})
            reported = stop


def _require_custom(emb) -> None:
    if not emb.custom:
        raise CatalogError(f"{emb.name} is an off-the-shelf embedding", field="embedding", hint=OFF_THE_SHELF_HINT)
