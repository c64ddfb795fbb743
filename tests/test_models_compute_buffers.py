"""Computed vectors are written in whole buffers (DuckDB row groups by default): an interrupted
compute keeps every buffer written before the interruption, and the next run computes only the rest."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from catalog import CatalogError
from catalog.models import color_texture
from catalog.models.compute import BUFFER_BYTES, EmbeddingComputer, buffer_rows
from catalog.vectors.writing import ROW_GROUP


class RecordingImport:
    """The catalog's vector import, recording the size of every write (one transaction each)."""

    def __init__(self, importer):
        self.importer = importer
        self.writes: list[int] = []

    def import_array(self, emb, ids, vectors, allow_builtin=False):
        assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32
        n = self.importer.import_array(emb, ids, vectors, allow_builtin=allow_builtin)
        self.writes.append(n)
        return n


@pytest.fixture
def many(cat, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(300):
        Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, 90)).save(root / f"{i:03d}.png")
    cat.import_datarows(root)
    return root


def computer(cat, rows):
    return EmbeddingComputer(cat.store, cat.embeddings, RecordingImport(cat.importer), buffer_rows=rows)


def stored(cat):
    """``{file name: vector}`` of the color-texture embedding as stored."""
    emb = cat.get_embedding("color-texture")
    ids, mat = cat.cache.load(emb)
    keys = {r["id"]: r["global_key"] for r in cat.get_datarows(list(ids))}
    return {keys[i]: np.asarray(v) for i, v in zip(ids, mat)}


def test_buffer_rows_are_whole_row_groups_within_the_memory_bound():
    assert ROW_GROUP == 122_880
    for dims in (8, 256, 384, 512, 768, 1092):  # every off-the-shelf model's width fits a row group
        assert buffer_rows(dims) == ROW_GROUP
    for dims in (1093, 2048, 4096, 10**6):
        rows = buffer_rows(dims)
        assert rows % 1024 == 0 and rows >= 1024
        assert rows * dims * 4 <= BUFFER_BYTES or rows == 1024
    assert buffer_rows(2048) == 65_536


def test_buffer_rows_argument_is_bounded(cat):
    for bad in (0, -1, ROW_GROUP + 1):
        with pytest.raises(CatalogError, match=r"`buffer_rows` must be from 1 to 122880") as exc:
            EmbeddingComputer(cat.store, cat.embeddings, cat.importer, buffer_rows=bad)
        assert exc.value.field == "buffer_rows"


def test_compute_writes_whole_buffers_and_reports_every_batch(cat, many):
    comp = computer(cat, 64)
    seen = []
    report = comp.run("color-texture", batch_size=16, progress=lambda done, total: seen.append(done))
    assert report.computed == 300 and not report.unreadable
    assert comp.importer.writes == [64, 64, 64, 64, 44]  # the last buffer is partial
    assert seen == [0] + list(range(16, 300, 16)) + [300]  # progress per batch, not per buffer
    vecs = stored(cat)
    assert len(vecs) == 300
    for name in ("000.png", "137.png", "299.png"):
        with Image.open(many / name) as img:
            want = color_texture.describe(img.convert("RGB"))
        np.testing.assert_allclose(vecs[name], want, atol=1e-6)


def test_default_compute_is_one_write(cat, many):
    comp = computer(cat, None)
    assert comp.run("color-texture", batch_size=7).computed == 300
    assert comp.importer.writes == [300]
    assert cat.get_embedding("color-texture").get_imported_vector_count() == 300


def test_interrupted_compute_keeps_written_buffers_and_resumes_with_the_rest(cat, many):
    comp = computer(cat, 64)

    def stop(done, total):
        if done > 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        comp.run("color-texture", batch_size=1, progress=stop)
    # buffers 1-3 (192 rows) were written whole; the 9 vectors of the fourth were lost
    assert comp.importer.writes == [64, 64, 64]
    emb = cat.get_embedding("color-texture")
    assert emb.get_imported_vector_count() == 192
    first = stored(cat)

    again = computer(cat, 64)
    report = again.run("color-texture")
    assert report.computed == 108 and report.already_had_vectors == 192
    assert again.importer.writes == [64, 44]
    after = stored(cat)
    assert len(after) == 300
    assert all(np.array_equal(first[k], after[k]) for k in first)  # the kept vectors were not redone


def test_failed_write_keeps_earlier_buffers_and_nothing_of_its_own(cat, many):
    class FailingSecond(RecordingImport):
        def import_array(self, emb, ids, vectors, allow_builtin=False):
            if len(self.writes) == 1:
                raise CatalogError("disk full (simulated)")
            return super().import_array(emb, ids, vectors, allow_builtin)

    comp = EmbeddingComputer(cat.store, cat.embeddings, FailingSecond(cat.importer), buffer_rows=100)
    with pytest.raises(CatalogError, match="disk full"):
        comp.run("color-texture", batch_size=10)
    assert cat.get_embedding("color-texture").get_imported_vector_count() == 100
    report = computer(cat, 100).run("color-texture")
    assert report.computed == 200 and report.already_had_vectors == 100
