"""Computing an off-the-shelf embedding for the catalog's rows: batched, resumable, skipping what is unreadable.

Rows of the model's media type that have no vector yet (every such row with ``all=True``) are
embedded in batches (progress is reported after each one). The computed vectors gather in a buffer
of one whole DuckDB row group (122,880 rows; fewer, a multiple of 1,024, only where that would
exceed :data:`BUFFER_BYTES`), and each full buffer is written in its own transaction through the
validated vector import (the ``importer``): the table grows by whole row groups, which no
checkpoint has to rewrite, where small per-batch transactions each ended in a partial row group.
The last, partial buffer is written when the rows run out.

Resuming: every written buffer is committed, all or nothing, so an interrupted compute keeps every
buffer written before the interruption and the next run computes only the rest. The trade-off: on
Ctrl-C (or a kill) the vectors computed since the last full buffer — at most one buffer — are lost
and computed again next time. Unreadable images (missing files, corrupt data, URLs that cannot be
fetched within the timeout) are skipped and listed.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import CatalogError, ValidationError
from ..store import registered, scalar
from ..vectors.writing import ROW_GROUP
from .encoders import DEFAULT_BATCH, prepare_encoder
from .images import Unreadable, open_image
from .registry import get_spec
from .torch_env import check_device

MAX_BATCH = 4096
BUFFER_BYTES = 512 * 2**20  # the most float32 vectors one compute buffer holds: a row group up to 1,092 dims
URL_FAILURES_BEFORE_GIVING_UP = 3


@dataclass
class ComputeReport:
    model: str
    embedding_id: str
    device: str
    computed: int = 0
    already_had_vectors: int = 0  # rows of the media type left alone (they have a vector; `all` redoes them)
    skipped_other_media: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (global_key, reason)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "embedding_id": self.embedding_id, "device": self.device,
                "computed": self.computed, "already_had_vectors": self.already_had_vectors,
                "skipped_other_media": self.skipped_other_media,
                "unreadable": [{"global_key": k, "reason": r} for k, r in self.unreadable],
                "seconds": round(self.seconds, 3)}


class _ImageReader:
    """Opens the images of a batch in a few threads; gives up on URLs once the network looks absent."""

    def __init__(self, size_hint, transform=None):
        self.size_hint = size_hint
        self.transform = transform  # per-image work done in the reader threads (color-texture's descriptor)
        self.url_failures = 0
        self.pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))

    def _one(self, row_data):
        is_url = row_data.startswith(("http://", "https://"))
        if is_url and self.url_failures >= URL_FAILURES_BEFORE_GIVING_UP:
            raise Unreadable(f"not fetched: {self.url_failures} URLs in a row could not be fetched (offline?); "
                             "download the images and import the files instead")
        try:
            img = open_image(row_data, self.size_hint)
        except Unreadable as exc:
            if is_url and str(exc).startswith("cannot fetch URL within"):
                self.url_failures += 1
            raise
        if is_url:
            self.url_failures = 0
        return img if self.transform is None else self.transform(img)

    def submit(self, rows):
        """Start opening the images of ``rows`` (``(id, global_key, row_data)``) in the threads."""
        def attempt(row):
            try:
                return self._one(row[2]), None
            except Unreadable as exc:
                return None, str(exc)
        return rows, [self.pool.submit(attempt, row) for row in rows]

    @staticmethod
    def collect(started):
        """``(ok_rows, images, unreadable)`` of what :meth:`submit` started."""
        rows, futures = started
        ok, images, bad = [], [], []
        for row, future in zip(rows, futures):
            img, reason = future.result()
            if img is None:
                bad.append((row[1], reason))
            else:
                ok.append(row)
                images.append(img)
        return ok, images, bad

    def close(self):
        self.pool.shutdown(wait=True)


def check_batch_size(batch_size, default: int) -> int:
    if batch_size is None:
        return default
    try:
        value = int(batch_size)
    except (TypeError, ValueError):
        raise CatalogError(f"`batch_size` must be a whole number from 1 to {MAX_BATCH}, not {batch_size!r}",
                           field="batch_size") from None
    if not 1 <= value <= MAX_BATCH:
        raise CatalogError(f"`batch_size` must be from 1 to {MAX_BATCH}, not {value}", field="batch_size")
    return value


def buffer_rows(dims: int) -> int:
    """Rows of one compute buffer: a whole row group, or, where that exceeds :data:`BUFFER_BYTES`
    (over 1,092 dims), the most multiple of 1,024 rows that fits (at least 1,024)."""
    if ROW_GROUP * dims * 4 <= BUFFER_BYTES:
        return ROW_GROUP
    return max(1024, BUFFER_BYTES // (dims * 4) // 1024 * 1024)


class _Buffer:
    """Computed vectors waiting to be written: one preallocated float32 block of ``rows`` rows (no
    more than the rows to compute); ``add`` calls ``write(ids, vectors)`` each time it is full."""

    def __init__(self, rows: int, dims: int, write):
        self.ids: list[str] = []
        self.block = np.empty((rows, dims), dtype=np.float32)
        self.write = write

    def add(self, ids, vectors) -> None:
        at = 0
        while at < len(ids):
            n = min(len(ids) - at, len(self.block) - len(self.ids))
            self.block[len(self.ids):len(self.ids) + n] = vectors[at:at + n]
            self.ids.extend(ids[at:at + n])
            at += n
            if len(self.ids) == len(self.block):
                self.flush()

    def flush(self) -> None:
        if self.ids:
            ids, self.ids = self.ids, []
            self.write(ids, self.block[:len(ids)])


def _embed_images(encoder, reader, rows, batch, report, advance, add) -> None:
    """The vectors of the readable images among ``rows``, batch by batch, given to ``add(row ids,
    vectors)`` before that batch's progress is reported. The threads open the next batch meanwhile
    (at most two batches in flight)."""
    per_image = reader.transform is not None  # the reader threads already made the vectors
    starts = range(0, len(rows), batch)
    ahead = reader.submit(rows[:batch])
    for b in starts:
        started, ahead = ahead, (reader.submit(rows[b + batch:b + 2 * batch]) if b + batch < len(rows) else None)
        part, images, bad = reader.collect(started)
        report.unreadable.extend(bad)
        if images:
            add([r[0] for r in part], np.stack(images) if per_image else encoder.encode_images(images, batch))
        advance(len(started[0]))


class EmbeddingComputer:
    """Fills an off-the-shelf embedding from its model.

    ``store``: the catalog's :class:`~catalog.store.Store`; ``embeddings``: what resolves an
    embedding (``get_embedding(ref)``); ``importer``: the validated vector import
    (``import_array(emb, ids, vectors, allow_builtin=True)``), which also invalidates the caches;
    ``buffer_rows``: rows per written buffer (default :func:`buffer_rows` of the embedding's dims)."""

    def __init__(self, store, embeddings, importer, buffer_rows: int | None = None):
        if buffer_rows is not None and not 1 <= int(buffer_rows) <= ROW_GROUP:
            raise CatalogError(f"`buffer_rows` must be from 1 to {ROW_GROUP}, not {buffer_rows}", field="buffer_rows")
        self.store = store
        self.embeddings = embeddings
        self.importer = importer
        self.buffer_rows = buffer_rows

    def _rows_data(self, ids):
        tbl = pa.table({"pos": pa.array(range(len(ids)), pa.int64()), "id": pa.array(ids, pa.string())})
        with self.store.connect() as con, registered(con, tbl, "compute_ids") as name:
            return con.execute(
                "SELECT CAST(d.id AS VARCHAR), d.global_key, d.row_data "
                f"FROM {name} c JOIN datarows d ON d.id = CAST(c.id AS UUID) ORDER BY c.pos").fetchall()

    def _write(self, emb, ids, vectors) -> int:
        """One transaction per buffer; rows deleted meanwhile are dropped instead of failing the chunk."""
        try:
            return self.importer.import_array(emb, ids, vectors, allow_builtin=True)
        except ValidationError:
            still = {r[0] for r in self._rows_data(ids)}
            keep = [i for i, rid in enumerate(ids) if rid in still]
            if len(keep) == len(ids):
                raise
            if not keep:
                return 0
            return self.importer.import_array(emb, [ids[i] for i in keep], vectors[keep], allow_builtin=True)

    def _pending(self, spec, emb, all: bool, report: ComputeReport) -> list[str]:
        """Ids of the rows to embed (creation order); fills the report's counts of rows left alone."""
        missing_only = "" if all else (
            " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.embedding_id = ? AND v.row_id = d.id)")
        params = [spec.media_type] + ([] if all else [emb.id])
        with self.store.connect() as con:
            report.skipped_other_media = scalar(con, "SELECT count(*) FROM datarows WHERE media_type <> ?",
                                                [spec.media_type])
            of_type = scalar(con, "SELECT count(*) FROM datarows WHERE media_type = ?", [spec.media_type])
            ids = [r[0] for r in con.execute(
                f"SELECT CAST(d.id AS VARCHAR) FROM datarows d WHERE d.media_type = ?{missing_only} "
                "ORDER BY d.created_at, d.id", params).fetchall()]
        report.already_had_vectors = of_type - len(ids)
        return ids

    def run(self, model, all=False, device=None, batch_size=None, progress=None, weights=None,
            pretrained=None) -> ComputeReport:
        started = time.perf_counter()
        spec = get_spec(model)
        batch = check_batch_size(batch_size, DEFAULT_BATCH[spec.family])
        load = prepare_encoder(spec, device=device, weights=weights, pretrained=pretrained)
        emb = self.embeddings.get_embedding(spec.embedding_id)
        report = ComputeReport(spec.name, emb.id, check_device(device))
        ids = self._pending(spec, emb, all, report)
        total = len(ids)
        if progress is not None:
            progress(0, total)
        if total == 0:  # nothing to do: the model is not even loaded
            report.seconds = time.perf_counter() - started
            return report
        encoder = load()
        report.device = encoder.device
        chunk = min(max(batch * 8, 256), 4096)
        reader = _ImageReader(encoder.size_hint, encoder.per_image()) if spec.media_type == "image" else None
        done = 0

        def write(out_ids, vectors):
            report.computed += self._write(emb, out_ids, vectors)

        buffer = _Buffer(min(self.buffer_rows or buffer_rows(emb.dims), total), emb.dims, write)

        def advance(n):
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        try:
            for start in range(0, total, chunk):
                rows = self._rows_data(ids[start:start + chunk])
                if reader is None:  # texts: one library call per chunk, which sorts them by length into batches
                    buffer.add([r[0] for r in rows], encoder.encode_texts([r[2] for r in rows], batch))
                    advance(len(rows))
                else:
                    _embed_images(encoder, reader, rows, batch, report, advance, buffer.add)
            buffer.flush()  # the last, partial buffer; on an error or Ctrl-C it is lost (see the module)
        finally:
            if reader is not None:
                reader.close()
        report.seconds = time.perf_counter() - started
        return report
