"""Hardening of the vector import: no pickles between interpreters, nested arrays, float32 rounding
and scale, bounded line length, damaged gzip, repeated members, long values in messages."""

from __future__ import annotations

import gzip
import inspect
import json
import os
import pickle
import stat
import tracemalloc

import numpy as np
import pytest

from catalog import CatalogError, ValidationError
from catalog.store import one
from catalog.vectors import parsing, reading, splitting

D = 8


@pytest.fixture
def rows(cat, text_records):
    cat.import_datarows([text_records])
    return sorted(r["global_key"] for r in cat.list_datarows(limit=100))


@pytest.fixture
def emb(cat, rows):
    return cat.create_embedding("custom-8", D)


@pytest.fixture(params=["native", "general"])
def native(request, monkeypatch):
    """Each parser test runs with the C fast path and with the general parser alone."""
    if request.param == "native":
        assert parsing._ndjson is not None, "the C fast path is not built"
        monkeypatch.setenv(parsing.NATIVE_ENV, "1")
    else:
        monkeypatch.setenv(parsing.NATIVE_ENV, "0")
    return request.param


def vec_line(key, vec):
    return json.dumps({"id": key, "vector": [float(x) for x in vec]})


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def count(cat):
    with cat.store.connect() as con:
        return one(con, "SELECT count(*) FROM vectors")[0]


def stored(cat, emb):
    with cat.store.connect() as con:
        got = con.execute(
            "SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
            "WHERE v.embedding_id = ? ORDER BY d.global_key", [emb.id]).fetchall()
    return {k: np.array(v, dtype=np.float32) for k, v in got}


def refused(cat, emb, path, line, *words):
    """The import of ``path`` fails on ``line`` with a reason holding ``words``; nothing is written."""
    before = count(cat)
    with pytest.raises(ValidationError) as info:
        emb.import_vectors_from_file(path)
    assert "nothing was imported" in str(info.value)
    lines = dict(info.value.errors)
    assert line in lines, info.value.errors
    for w in words:
        assert w in lines[line], lines[line]
    assert count(cat) == before
    return info.value


# -- 1. the second interpreter hands back data only ------------------------------------------------
class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_split_import_uses_no_pickle_and_matches_the_single_interpreter(cat, rows, emb, tmp_path, monkeypatch):
    assert "pickle" not in inspect.getsource(splitting).replace("never a pickle", "")
    marker = tmp_path / "planted-code-ran"
    folder = cat.store.path.parent
    for name in ("tail-0.pickle", "tail-planted.pickle", "result.json.pickle"):
        (folder / name).write_bytes(pickle.dumps(_Planted(str(marker))))

    def no_pickle(*a, **k):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    modes = []
    real_mkdtemp = splitting.tempfile.mkdtemp

    def mkdtemp(*a, **k):
        path = real_mkdtemp(*a, **k)
        if k.get("prefix") == "import-":  # the split's helper folder (the import's own scratch folder is 0700 too)
            modes.append(stat.S_IMODE(os.stat(path).st_mode))
        return path

    monkeypatch.setattr(splitting.tempfile, "mkdtemp", mkdtemp)
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((len(rows), D))
    path = write(tmp_path / "v.ndjson", [vec_line(k, v) for k, v in zip(rows, vecs)])
    single = cat.create_embedding("custom-8b", D)
    assert single.import_vectors_from_file(path) == len(rows)
    assert modes == []  # small file: one interpreter
    monkeypatch.setattr(splitting, "PARALLEL_MIN_BYTES", 0)
    assert emb.import_vectors_from_file(path) == len(rows)
    assert modes == [0o700]  # the split path ran, in a private folder
    a, b = stored(cat, emb), stored(cat, single)
    assert sorted(a) == sorted(b) == rows
    for k in rows:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-7, atol=0)
    assert not marker.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(("import-", "vectors-"))]


def test_split_import_reports_tail_errors_with_line_numbers_and_writes_nothing(cat, rows, emb, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(splitting, "PARALLEL_MIN_BYTES", 0)
    lines = [vec_line(k, np.arange(D) + 1) for k in rows]
    lines[-1] = f'{{"id": "{rows[-1]}", "vector": [[1, 2, 3, 4], [5, 6, 7, 8]]}}'
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), len(lines), "flat array of numbers")


# -- 2. nested arrays --------------------------------------------------------------------------------
@pytest.mark.parametrize("vector", ["[[1, 2, 3, 4], [5, 6, 7, 8]]", "[[1], [2], [3], [4], [5], [6], [7], [8]]",
                                    "[1, 2, 3, 4, 5, 6, 7, [8]]", "[[1, 2, 3, 4, 5, 6, 7, 8]]"])
def test_nested_arrays_are_refused(cat, rows, emb, tmp_path, native, vector):
    lines = [vec_line(rows[0], np.ones(D)), f'{{"id": "{rows[1]}", "vector": {vector}}}']
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), 2, "the vector must be a flat array of numbers")


def test_the_fast_path_takes_plain_lines(cat, rows, emb, tmp_path, monkeypatch):
    monkeypatch.setenv(parsing.NATIVE_ENV, "1")
    calls = []
    general = parsing.parse_line
    monkeypatch.setattr(parsing, "parse_line", lambda *a: calls.append(a) or general(*a))
    path = write(tmp_path / "v.ndjson", [vec_line(k, np.arange(D) + 1) for k in rows])
    assert emb.import_vectors_from_file(path) == len(rows)
    assert calls == []


# -- 3. float32 rounding and scale -----------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e-46", "-1e-50", "1.0e-300"])
def test_values_that_round_to_zero_in_float32_are_refused(cat, rows, emb, tmp_path, native, value):
    lines = [vec_line(rows[0], np.ones(D)), f'{{"id": "{rows[1]}", "vector": [{", ".join([value] * D)}]}}']
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), 2, "all zeros once rounded to float32")


def test_arrays_that_round_to_zero_in_float32_are_refused(cat, rows, emb):
    with pytest.raises(ValidationError) as info:
        emb.import_vectors(rows[:2], np.array([np.ones(D), np.full(D, 1e-46)]))
    assert info.value.errors == [(2, info.value.errors[0][1])] and "rounded to float32" in info.value.errors[0][1]
    assert count(cat) == 0


def test_tiny_and_huge_vectors_keep_their_direction(cat, rows, emb, tmp_path, native):
    v = np.random.default_rng(7).uniform(0.5, 2.0, D) * np.where(np.arange(D) % 2, 1, -1)
    lines = [vec_line(rows[0], v), vec_line(rows[1], v * 1e20), vec_line(rows[2], v * 1e-25),
             vec_line(rows[3], -v * 1e-25)]
    assert emb.import_vectors_from_file(write(tmp_path / "v.ndjson", lines)) == 4
    res = cat.search(emb.name, anchors=[rows[0]], min_score=0.0, max_score=1.0, limit=None)
    scores = {h.global_key: h.score for h in res.results}
    assert scores[rows[1]] == pytest.approx(1.0, abs=1e-5)
    assert scores[rows[2]] == pytest.approx(1.0, abs=1e-5)
    assert scores.get(rows[3], 0.0) < 0.5  # the opposite direction, not a zero row
    for scale in (1e20, 1e-25, 1e300):  # raw vectors as anchors keep their direction too
        res = cat.search(emb.name, anchors=[v * scale], min_score=0.0, max_score=1.0, limit=None)
        scores = {h.global_key: h.score for h in res.results}
        assert scores[rows[0]] == pytest.approx(1.0, abs=1e-5), scale


# -- 4. bounded line length ------------------------------------------------------------------------
def test_a_gzip_line_that_expands_to_hundreds_of_megabytes_is_refused_in_bounded_memory(cat, rows, emb, tmp_path):
    path = tmp_path / "bomb.ndjson.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write((vec_line(rows[0], np.ones(D)) + "\n").encode())
        fh.write(b'{"id": "%s", "vector": [1' % rows[1].encode())
        chunk = b" " * 2**20
        for _ in range(300):  # 300 MB of one line
            fh.write(chunk)
        fh.write(b"]}\n")
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        err = refused(cat, emb, path, 2, "bytes long, longer than the", f"{reading.max_line_bytes(D):,} bytes",
                      "reading stopped here")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20
    assert "line 2:" in err.report()


def test_a_long_line_inside_a_block_is_refused_by_number(cat, rows, emb, tmp_path, native):
    limit = reading.max_line_bytes(D)
    padded = "1, " * (D - 1) + " " * limit
    lines = [vec_line(rows[0], np.ones(D)), f'{{"id": "{rows[1]}", "vector": [{padded}1]}}', vec_line(rows[2], np.ones(D))]
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), 2, "longer than the")


def test_lines_up_to_the_limit_are_read(cat, rows, emb, tmp_path, native, monkeypatch):
    monkeypatch.setattr(reading, "READ_BLOCK", 512)  # the buffer has to grow to the longest line
    limit = reading.max_line_bytes(D)
    body = f'{{"id": "{rows[0]}", "vector": [{"1, " * (D - 1)}1]}}'
    line = body[:-1] + " " * (limit - len(body)) + "}"
    assert len(line) == limit
    assert emb.import_vectors_from_file(write(tmp_path / "v.ndjson", [line, vec_line(rows[1], np.ones(D))])) == 2


# -- 5. damaged gzip -------------------------------------------------------------------------------
def test_damaged_gzip_is_one_error_naming_the_file(cat, rows, emb, tmp_path):
    good = gzip.compress("".join(vec_line(k, np.arange(D) + i) + "\n" for i, k in enumerate(rows)).encode() * 4)
    emb.import_vectors(rows[:1], np.ones((1, D)))
    body = range(12, len(good) - 8)
    positions = sorted({12, 13, body[len(body) // 4], body[len(body) // 2], body[-1], len(good) - 8, len(good) - 5,
                        len(good) - 3})
    cases = [(f"flip{p}", good[:p] + bytes([good[p] ^ 0x55]) + good[p + 1:]) for p in positions]
    cases += [("cut", good[:len(good) // 2]), ("no-trailer", good[:-8]), ("header-only", good[:10])]
    for name, data in cases:
        path = tmp_path / f"{name}.ndjson.gz"
        path.write_bytes(data)
        with pytest.raises(CatalogError) as info:
            emb.import_vectors_from_file(path)
        msg = str(info.value)
        assert "damaged gzip" in msg and str(path) in msg and "nothing was imported" in msg, (name, msg)
        assert not isinstance(info.value, ValidationError) and "\n" not in msg
        assert count(cat) == 1


# -- 6. repeated members ---------------------------------------------------------------------------
@pytest.mark.parametrize("template", ['{"id": "%(a)s", "id": "%(b)s", "vector": %(v)s}',
                                      '{"id": "%(a)s", "vector": %(v)s, "id": "%(a)s"}',
                                      '{"id": "%(a)s", "vector": %(v)s, "vector": %(v)s}',
                                      '{"id": "%(a)s", "\\u0069d": "%(b)s", "vector": %(v)s}'])
def test_a_member_given_twice_is_refused(cat, rows, emb, tmp_path, native, template):
    v = json.dumps([1.0] * D)
    lines = [vec_line(rows[2], np.ones(D)), template % {"a": rows[0], "b": rows[1], "v": v}]
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), 2, "appears twice in one object")


# -- 7. long values in messages --------------------------------------------------------------------
def test_long_ids_are_cut_in_messages(cat, rows, emb, tmp_path, native):
    long_id = "x" * 3000
    err = refused(cat, emb, write(tmp_path / "v.ndjson", [vec_line(long_id, np.ones(D))]), 1,
                  "matches no data row", "… (3,000 characters)")
    assert len(err.report()) < 400
    with pytest.raises(ValidationError) as info:
        emb.import_vectors(["y" * 10_000_000], np.ones((1, D)))
    assert "… (10,000,000 characters)" in info.value.report() and len(info.value.report()) < 400
    assert count(cat) == 0


def test_clip_keeps_short_values_whole():
    assert parsing.clip("abc") == "'abc'"
    assert parsing.clip("a" * 80) == repr("a" * 80)
    assert parsing.clip("a" * 81) == repr("a" * 80) + "… (81 characters)"


def test_split_import_stopped_by_a_long_line_in_the_head_leaves_nothing(cat, rows, emb, tmp_path, monkeypatch):
    monkeypatch.setattr(splitting, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(reading, "READ_BLOCK", 1024)  # the long line does not fit the (grown) buffer
    padded = "1, " * (D - 1) + " " * 2 * reading.max_line_bytes(D)
    lines = [f'{{"id": "{rows[0]}", "vector": [{padded}1]}}'] + [vec_line(k, np.ones(D)) for k in rows[1:]] * 50
    refused(cat, emb, write(tmp_path / "v.ndjson", lines), 1, "reading stopped here")
    assert not [p for p in cat.store.path.parent.iterdir() if p.name.startswith(("import-", "vectors-"))]
