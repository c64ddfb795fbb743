"""Getting vectors out: an embedding's stored vectors as import-ready NDJSON, or as a NumPy matrix.

* ``ndjson``: one ``{"id", "vector"}`` a line, exactly the import format, so export → import gives
  back the same float32 bits. ``id`` is the row's ``global_key`` (it names the same row in another
  catalog that imported the same records), or the row id where the key would not read back as itself
  (surrounding whitespace). Each float32 value is written as the shortest decimal of its exact
  float64 value: import reads a number as the correctly rounded float64 and then rounds it to
  float32, and both steps give the value back unchanged (also ``-0.0``, subnormals and the float32
  extremes). A path ending in ``.gz`` is gzip-compressed (import reads it as it is).
* ``npy``: the file holds the ``(n, dims)`` float32 matrix (``np.load(path, mmap_mode="r")``), and
  ``<path without .npy>.ids.json`` the same ``id`` values as one JSON array, row ``i`` for line ``i``.
  ``emb.import_vectors(json.load(ids), np.load(path))`` imports it back.

Rows come from DuckDB in blocks of :data:`BLOCK_ROWS` (bounded memory whatever the size), all of them
in storage order, or those of ``rows`` in the order given. One read transaction: the count and the
rows agree. The catalog file is held only while the rows are read: NDJSON (text, several times
slower to write than to read) is staged as raw float32 and ids in a temporary folder (beside the
output file, or in the system's temporary folder for a stream) and written after the file is let go.
Files are written beside their final path and renamed when complete, so a failed export leaves no
file behind; on a stream, what was written before a failure stays written.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from ..errors import CatalogError, NotFound
from ..export import check_format, write_records
from ..store import registered, resolution_sql, scalar
from ..store.rowrefs import shown

FORMATS = ("ndjson", "npy")
BLOCK_ROWS = 8_192
MEMORY_LIMIT = "256MB"  # DuckDB's pages (its cache of the file, the join): the bound on memory; it spills beyond
SHOWN_MISSING = 20


@dataclass
class VectorExportReport:
    """What an export wrote: ``exported`` vectors, to ``files`` (empty for a stream); of the rows
    asked for, ``without_vector`` have none in the embedding (the first 20 keys in ``missing``)."""

    exported: int
    without_vector: int = 0
    missing: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"exported": self.exported, "without_vector": self.without_vector, "missing": self.missing,
                "files": self.files}


def ids_path(path) -> Path:
    """Where an ``npy`` export puts its ids: ``vectors.npy`` → ``vectors.ids.json``."""
    path = Path(path)
    stem = path.name[:-4] if path.name.lower().endswith(".npy") else path.name
    return path.with_name(stem + ".ids.json")


def _row_key(key, rid) -> str:
    """The ``id`` an exported line carries: the global_key when an import reads it back as itself."""
    return key if key and key == key.strip() else rid


class VectorExport:
    """Exports the vectors of the embeddings of one catalog file (``store``)."""

    def __init__(self, store):
        self.store = store

    def export(self, emb, out, fmt: str = "ndjson", rows=None, progress=None) -> VectorExportReport:
        """Write ``emb``'s vectors (of ``rows``, ids or global_keys, when given) to ``out``: a text
        stream or a path for ``ndjson``, a path for ``npy``. ``progress(done, total)`` after each block.
        Unknown rows raise :class:`NotFound` before anything is written."""
        check_format(fmt, FORMATS)
        to_file = isinstance(out, (str, os.PathLike))
        if fmt == "npy" and not to_file:
            raise CatalogError("an npy export is written to a file; give a path for `out`", field="out")
        if out is None:
            raise CatalogError("give a text stream or a path for `out`", field="out")
        refs = None if rows is None else [str(r) for r in ([rows] if isinstance(rows, str) else rows)]
        if to_file and not Path(out).parent.is_dir():
            raise CatalogError(f"cannot write {out}: folder {Path(out).parent} does not exist", field="out")
        staging = (contextlib.nullcontext() if fmt == "npy" else
                   tempfile.TemporaryDirectory(prefix=".vector-export-", dir=Path(out).parent if to_file else None))
        with staging as work:
            with self.store.transaction() as con:  # one snapshot: the count and the rows agree
                con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
                try:
                    report, query = self._plan(con, emb, refs)
                    reader = con.sql(query, params=[emb.id]).to_arrow_reader(BLOCK_ROWS)
                    if fmt == "npy":
                        blocks = _blocks(reader, emb.dims, report.exported, progress)
                        report.files = _write_npy(Path(out), blocks, report.exported, emb.dims)
                    else:  # read at the speed of the database; the slower text is written after the file is let go
                        _stage(Path(work), _blocks(reader, emb.dims, report.exported, None))
                finally:
                    try:
                        con.execute("DROP TABLE IF EXISTS export_rows")
                    except duckdb.Error:  # an aborted transaction refuses it; the table goes with it
                        pass
            if fmt == "ndjson":
                blocks = _staged(Path(work), report.exported, emb.dims, progress)
                if to_file:
                    report.files = [_write_file(Path(out), lambda fh: _write_ndjson(fh, blocks))]
                else:
                    _write_ndjson(out, blocks)
        return report

    def _plan(self, con, emb, refs) -> tuple[VectorExportReport, str]:
        """The report's counts and the query of the rows to write."""
        cols = "d.global_key, CAST(v.row_id AS VARCHAR) AS rid, v.vector"
        if refs is None:
            n = scalar(con, "SELECT count(*) FROM vectors WHERE embedding_id = ?", [emb.id])
            return (VectorExportReport(n),
                    f"SELECT {cols} FROM vectors v JOIN datarows d ON d.id = v.row_id WHERE v.embedding_id = ?")
        tbl = pa.table({"pos": pa.array(range(len(refs)), pa.int64()), "k": pa.array(refs, pa.string())})
        with registered(con, tbl, "export_refs") as t:
            unknown = [r[0] for r in con.execute(
                f"SELECT k FROM ({resolution_sql(t)}) WHERE rid IS NULL ORDER BY pos LIMIT 6").fetchall()]
            if unknown:
                raise NotFound(f"no data row with id or global_key {shown(unknown)}; nothing was exported", field="rows")
            con.execute(f"CREATE OR REPLACE TEMP TABLE export_rows AS SELECT rid, min(pos) AS pos "
                        f"FROM ({resolution_sql(t)}) GROUP BY rid")
        n = scalar(con, "SELECT count(*) FROM export_rows e JOIN vectors v ON v.row_id = e.rid AND v.embedding_id = ?",
                   [emb.id])
        missing = con.execute(
            "SELECT d.global_key, count(*) OVER () FROM export_rows e JOIN datarows d ON d.id = e.rid "
            "WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.embedding_id = ? AND v.row_id = e.rid) "
            f"ORDER BY e.pos LIMIT {SHOWN_MISSING}", [emb.id]).fetchall()
        report = VectorExportReport(n, missing[0][1] if missing else 0, [m[0] for m in missing])
        return report, (f"SELECT {cols} FROM export_rows e JOIN vectors v ON v.row_id = e.rid AND v.embedding_id = ? "
                        "JOIN datarows d ON d.id = v.row_id ORDER BY e.pos")


def _blocks(reader, dims: int, total: int, progress):
    """``(ids, float32 matrix)`` per record batch of the reader."""
    done = 0
    if progress is not None:
        progress(0, total)
    for batch in reader:
        k = batch.num_rows
        if k == 0:
            continue
        flat = batch.column(2).flatten().to_numpy(zero_copy_only=False)
        if flat.shape[0] != k * dims:  # every stored vector has the embedding's dims
            raise CatalogError(f"internal error: {flat.shape[0]} values for {k} vectors of {dims} dims")
        ids = [_row_key(key, rid) for key, rid in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist())]
        yield ids, np.asarray(flat, dtype=np.float32).reshape(k, dims)
        done += k
        if progress is not None:
            progress(done, total)


def _stage(folder: Path, blocks) -> None:
    """The blocks into ``folder``: the raw float32 rows, and the ids as one JSON string a line."""
    with open(folder / "vectors.f32", "wb") as mat, open(folder / "ids.ndjson", "wb") as ids:
        for keys, block in blocks:
            mat.write(np.ascontiguousarray(block, dtype="<f4").data)
            ids.write(b"".join(orjson.dumps(k) + b"\n" for k in keys))


def _staged(folder: Path, n: int, dims: int, progress):
    """``(ids, float32 matrix)`` blocks read back from :func:`_stage`'s files."""
    if progress is not None:
        progress(0, n)
    if n == 0:
        return
    with open(folder / "vectors.f32", "rb") as mat, open(folder / "ids.ndjson", "rb") as fh:
        for start in range(0, n, BLOCK_ROWS):  # read, not mapped: only the block is resident
            stop = min(start + BLOCK_ROWS, n)
            keys = [orjson.loads(fh.readline()) for _ in range(stop - start)]
            block = np.fromfile(mat, dtype="<f4", count=(stop - start) * dims)
            if block.shape[0] != (stop - start) * dims:
                raise CatalogError("the export's staging file was truncated (disk full?); nothing was exported")
            yield keys, block.reshape(stop - start, dims)
            if progress is not None:
                progress(stop, n)


def _write_ndjson(out, blocks) -> int:
    def records():
        for ids, mat in blocks:
            exact = mat.astype(np.float64)  # float32 → float64 is exact; its shortest repr reads back to it
            for i, key in enumerate(ids):
                yield {"id": key, "vector": exact[i]}
    return write_records(out, records(), "ndjson", ("id", "vector"))


def _temp_beside(path: Path):
    return tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent, delete=False)


def _write_file(path: Path, write) -> str:
    """Run ``write(text stream)`` into a temporary file beside ``path`` and rename it to ``path``
    when done (gzip-compressed for a ``.gz`` path); on any error the temporary file goes."""
    tmp = _temp_beside(path)
    try:
        with tmp:
            if path.name.lower().endswith(".gz"):
                with gzip.open(tmp, "wt", encoding="utf-8", newline="\n") as fh:
                    write(fh)
            else:
                with open(tmp.fileno(), "w", encoding="utf-8", newline="\n", closefd=False) as fh:
                    write(fh)
        os.replace(tmp.name, path)
    except BaseException:
        _remove(tmp.name)
        raise
    return str(path)


def _write_npy(path: Path, blocks, n: int, dims: int) -> list[str]:
    """The matrix into ``path`` and the ids into :func:`ids_path`, both renamed into place at the end."""
    side = ids_path(path)
    mat_tmp, ids_tmp = _temp_beside(path), _temp_beside(side)
    try:
        with mat_tmp, open(ids_tmp.name, "w", encoding="utf-8", newline="\n") as ids_fh:
            ids_tmp.close()
            np.lib.format.write_array_header_1_0(
                mat_tmp, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                          "shape": (n, dims)})
            ids_fh.write("[")
            written = 0
            for ids, mat in blocks:
                mat_tmp.write(np.ascontiguousarray(mat, dtype="<f4").data)
                ids_fh.write("".join(("," if written + i else "") + "\n" + orjson.dumps(k).decode()
                                     for i, k in enumerate(ids)))
                written += len(ids)
            ids_fh.write("\n]\n")
            if written != n:
                raise CatalogError(f"internal error: {written} vectors for {n} counted; nothing was exported")
        os.replace(mat_tmp.name, path)
        os.replace(ids_tmp.name, side)
    except BaseException:
        _remove(mat_tmp.name)
        _remove(ids_tmp.name)
        raise
    return [str(path), str(side)]


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
