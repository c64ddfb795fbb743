"""Writing imported vectors: the scratch file the parser fills, and the one write transaction.

The vectors of the valid lines wait in a temporary float32 file (bounded memory whatever the file
size). The write replaces the old vectors of the imported rows and appends the new ones in blocks
of whole DuckDB row groups read back from that file; the embedding's version moves on in the same
transaction, so derived caches rebuild. Nothing is visible before the commit; a kill at any point
leaves the catalog as it was.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..store import one, registered

ROW_GROUP = 122_880  # DuckDB's rows per row group
WRITE_BLOCK_BYTES = 512 * 2**20
WRITE_MEMORY_LIMIT = "512MB"


def write_rows(dims: int) -> int:
    """Rows per INSERT: whole DuckDB row groups (an insert that ends in a partial one makes the next
    checkpoint rewrite the table), up to about 512 MB of vectors; one row group per core is
    written in parallel. A multiple of 1,024, so that every block of a scratch file starts on a
    page boundary."""
    groups = WRITE_BLOCK_BYTES // (ROW_GROUP * dims * 4)
    return ROW_GROUP * max(1, min(os.cpu_count() or 1, groups))


class Scratch:
    """Vectors of the valid lines, appended to a temporary float32 file."""

    def __init__(self, dims, where):
        self.dims = dims
        self.dir = where
        self.fh = tempfile.NamedTemporaryFile(prefix="vectors-", suffix=".f32", dir=where, delete=False)
        self.n = 0
        self.owned_dir = None

    @classmethod
    def adopt(cls, name, n, dims, owned_dir=None):
        """A scratch file written by another process; ``owned_dir`` (its private folder) is removed
        with it."""
        obj = cls.__new__(cls)
        obj.dims, obj.dir, obj.n = dims, os.path.dirname(name), n
        obj.owned_dir = owned_dir
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

    def bytes(self) -> int:
        """Bytes of the file on the disk now (0 once it is gone)."""
        try:
            return os.stat(self.fh.name).st_size
        except OSError:
            return 0

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
        try:
            self.fh.close()  # flushes what is buffered: on a full disk that fails, and the file goes anyway
        except OSError:
            pass
        try:
            os.unlink(self.fh.name)
        except OSError:
            pass
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def write_vectors(store, emb, row_ids: pa.Array, chunks) -> int:
    """Give the rows ``row_ids`` (row ids as strings, in file order) the vectors of ``chunks``
    (``(start, float32 block)`` in the same order) in one transaction: their old vectors go, the
    new ones come, the embedding's version moves on. Until the commit nothing is visible; an error
    or a kill at any point leaves the catalog exactly as it was. DuckDB writes the rows of a big
    transaction to the file as it goes (whole row groups), so memory stays bounded."""
    n = len(row_ids)
    written = 0
    try:
        with store.transaction() as con:
            con.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")  # DuckDB's pages, not ours
            # first: a concurrent delete of the embedding then conflicts instead of leaving orphans
            if not con.execute("UPDATE embeddings SET version = version + 1 WHERE id = ? RETURNING id",
                               [emb.id]).fetchall():
                raise CatalogError(f"embedding {emb.name} was deleted during the import; nothing was imported")
            if one(con, "SELECT 1 FROM vectors WHERE embedding_id = ? LIMIT 1", [emb.id]) is not None:
                with registered(con, pa.table({"rid": row_ids}), "import_rows") as t:
                    # replace: the old vectors of the imported rows go, in one pass
                    con.execute(f"DELETE FROM vectors WHERE embedding_id = ? AND row_id IN "
                                f"(SELECT CAST(rid AS UUID) FROM {t})", [emb.id])
            for start, block in chunks:
                m, dims = block.shape
                tbl = pa.table({
                    "rid": row_ids.slice(start, m),
                    "vector": pa.ListArray.from_arrays(pa.array(np.arange(0, (m + 1) * dims, dims, dtype=np.int32)),
                                                       pa.array(np.ascontiguousarray(block, dtype=np.float32).reshape(-1))),
                })
                # registered as a stream (one batch): DuckDB lets go of it after the insert, where a
                # registered table would stay referenced (its block mapped) until the commit
                stream = pa.RecordBatchReader.from_batches(tbl.schema, tbl.to_batches())
                with registered(con, stream, "import_chunk") as t:
                    con.execute(f"INSERT INTO vectors SELECT ?::UUID, CAST(rid AS UUID), vector FROM {t}", [emb.id])
                written += m
                del tbl, block, stream  # lets the scratch file unmap this block before the next one
            if written != n:
                raise CatalogError(f"internal error: {written} vectors for {n} ids; nothing was imported")
    except duckdb.TransactionException as exc:
        raise CatalogError(f"embedding {emb.name} was changed by another operation during the import "
                           f"({str(exc).splitlines()[0]}); nothing was imported") from None
    return n
