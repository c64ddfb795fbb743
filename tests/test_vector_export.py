"""Vector export (issue #14, item 10): NDJSON in the import format and npy, bit-for-bit round trips,
subsets by slice, bounded blocks, and failures that leave nothing behind."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest

from catalog import CatalogError, NotFound
from catalog.vectors import export as vexport
from catalog.vectors.export import ids_path

F32 = np.finfo(np.float32)
ODD_KEYS = ["ключ-1", 'quote"key', "tab\tinside", "new\nline", "back\\slash", "00000000-0000-0000-0000-00000000abcd"]


@pytest.fixture
def digits():
    """sklearn's digits (1797 × 64) standardised in float64 and rounded to float32: full mantissas."""
    from sklearn.datasets import load_digits

    x = load_digits().data
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3) + 1e-3 * np.arange(64)
    return z.astype(np.float32)


@pytest.fixture
def keys(cat, digits, tmp_path):
    """One text row per digit, with a few awkward global keys; metadata ``digit`` for slices."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    names = [ODD_KEYS[i] if i < len(ODD_KEYS) else f"digit-{i}" for i in range(len(digits))]
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": k, "text": f"digit {i}", "metadata": {"digit": int(t)}}) + "\n"
                            for i, (k, t) in enumerate(zip(names, target))))
    assert cat.import_datarows([path]).imported == len(names)
    return names


@pytest.fixture
def edge_vectors(digits):
    """The digits with the float32 edge values planted in the first rows."""
    v = digits.copy()
    v[0, :6] = [-0.0, 1e-38, 1.4e-45, F32.max, -F32.max, F32.tiny]  # 1e-38 and 1.4e-45 are subnormal
    v[1, :4] = [0.1, 1 / 3, -2.5e-40, 16777217.0]
    v[2, :] = -0.0
    v[2, 0] = 5e-45  # nothing but a subnormal and negative zeros: still a direction
    return v


def stored(cat, emb) -> dict[str, np.ndarray]:
    with cat.store.connect() as con:
        got = con.execute("SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
                          "WHERE v.embedding_id = ?", [emb.id]).fetchall()
    return {k: np.asarray(v, dtype=np.float32) for k, v in got}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(np.ascontiguousarray(a).view(np.uint32),
                                                 np.ascontiguousarray(b).view(np.uint32))


@pytest.mark.parametrize("native", ["1", "0"])  # the C fast path of the parser, and the general one
def test_ndjson_export_reimports_bit_for_bit(cat, keys, edge_vectors, tmp_path, monkeypatch, native):
    monkeypatch.setenv("CATALOG_NDJSON_NATIVE", native)
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys, edge_vectors)
    before = stored(cat, emb)
    assert np.signbit(before[keys[0]][0]) and before[keys[0]][2] == np.float32(1.4e-45)  # what we stored
    out = tmp_path / "digits.ndjson"
    report = emb.export_vectors(str(out))
    assert (report.exported, report.without_vector, report.files) == (len(keys), 0, [str(out)])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(keys)
    first = json.loads(lines[0])
    assert list(first) == ["id", "vector"] and len(first["vector"]) == 64
    assert {json.loads(line)["id"] for line in lines} == set(keys)  # global keys, the odd ones included
    assert '"vector":[-0.0,' in next(line for line in lines if json.loads(line)["id"] == keys[0])

    copy = cat.create_embedding("digits-copy", 64)
    assert copy.import_vectors_from_file(out) == len(keys)
    after = stored(cat, copy)
    assert after.keys() == before.keys()
    assert all(same_bits(after[k], before[k]) for k in keys)
    again = io.StringIO()
    copy.export_vectors(again)  # a second export of the copy writes the same lines
    assert sorted(again.getvalue().splitlines()) == sorted(lines)


def test_npy_export_holds_the_float32_matrix_and_its_ids(cat, keys, edge_vectors, tmp_path):
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys, edge_vectors)
    out = tmp_path / "digits.npy"
    report = cat.export_vectors("digits", out, fmt="npy")
    side = tmp_path / "digits.ids.json"
    assert report.files == [str(out), str(side)] and report.exported == len(keys)
    mat = np.load(out, mmap_mode="r")
    ids = json.loads(side.read_text(encoding="utf-8"))
    assert mat.dtype == np.float32 and mat.shape == (len(keys), 64) and len(ids) == len(keys)
    by_key = {k: i for i, k in enumerate(keys)}
    assert same_bits(np.asarray(mat), edge_vectors[[by_key[k] for k in ids]])
    copy = cat.create_embedding("digits-copy", 64)
    copy.import_vectors(ids, np.load(out))  # the documented way back in
    got = stored(cat, copy)
    assert all(same_bits(got[k], edge_vectors[i]) for i, k in enumerate(keys))
    assert ids_path("x/v.NPY").name == "v.ids.json" and ids_path("v.bin").name == "v.bin.ids.json"


def test_slice_and_rows_export_a_subset_in_their_order(cat, keys, digits, tmp_path):
    emb = cat.create_embedding("digits", 64)
    with_vectors = [k for i, k in enumerate(keys) if i % 2 == 0]  # odd rows get no vector
    emb.import_vectors(with_vectors, digits[::2])
    threes = cat.save_slice("threes", where={"digit": 3})
    members = threes.row_ids()
    buf = io.StringIO()
    report = cat.export_vectors(emb, buf, slice="threes")
    got = [json.loads(line) for line in buf.getvalue().splitlines()]
    rows = {r["id"]: r for r in cat.list_datarows(limit=5000)}
    expected = [rows[r]["global_key"] for r in members if rows[r]["global_key"] in set(with_vectors)]
    assert [g["id"] for g in got] == expected and report.exported == len(expected)
    assert report.without_vector == len(members) - len(expected) > 0
    assert len(report.missing) == min(20, report.without_vector)
    by_key = {k: i for i, k in enumerate(keys)}
    assert all(same_bits(np.asarray(g["vector"], dtype=np.float32), digits[by_key[g["id"]]]) for g in got)

    buf = io.StringIO()
    picked = [keys[10], rows[members[0]]["id"], keys[4]]
    emb.export_vectors(buf, rows=picked)  # ids or global keys, in the order given
    assert [json.loads(line)["id"] for line in buf.getvalue().splitlines()] == [
        k for k in (keys[10], rows[members[0]]["global_key"], keys[4]) if k in set(with_vectors)]
    with pytest.raises(NotFound, match="no data row with id or global_key 'ghost'; nothing was exported") as err:
        emb.export_vectors(tmp_path / "never.ndjson", rows=["digit-10", "ghost"])
    assert err.value.field == "rows"
    with pytest.raises(NotFound, match="no slice named 'nope'"):
        cat.export_vectors(emb, tmp_path / "never.ndjson", slice="nope")
    with pytest.raises(CatalogError, match="give `slice` or `rows`, not both"):
        cat.export_vectors(emb, tmp_path / "never.ndjson", slice="threes", rows=["digit-10"])
    assert not (tmp_path / "never.ndjson").exists()


def test_export_streams_in_blocks(cat, keys, digits, tmp_path, monkeypatch):
    monkeypatch.setattr(vexport, "BLOCK_ROWS", 100)
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys, digits)
    seen = []
    emb.export_vectors(tmp_path / "v.npy", fmt="npy", progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, len(keys)) and seen[-1] == (len(keys), len(keys))
    steps = np.diff([d for d, _ in seen])
    assert len(seen) > 10 and steps.max() <= 100  # one block at a time, never the whole matrix
    assert same_bits(np.load(tmp_path / "v.npy")[0], stored(cat, emb)[json.loads(
        (tmp_path / "v.ids.json").read_text())[0]])


def test_a_failed_export_leaves_no_file(cat, keys, digits, tmp_path, monkeypatch):
    monkeypatch.setattr(vexport, "BLOCK_ROWS", 100)
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys, digits)
    (tmp_path / "old.npy").write_bytes(b"keep me")

    def stop(done, total):
        if done > 300:
            raise KeyboardInterrupt

    for name, fmt in (("v.ndjson", "ndjson"), ("v.ndjson.gz", "ndjson"), ("old.npy", "npy")):
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(KeyboardInterrupt):
            emb.export_vectors(tmp_path / name, fmt=fmt, progress=stop)
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial file, no temporary one
    assert (tmp_path / "old.npy").read_bytes() == b"keep me"
    with pytest.raises(CatalogError, match="folder .*missing does not exist"):
        emb.export_vectors(tmp_path / "missing" / "v.ndjson")
    with pytest.raises(CatalogError, match="an npy export is written to a file; give a path for `out`") as err:
        emb.export_vectors(io.BytesIO(), fmt="npy")
    assert err.value.field == "out"
    with pytest.raises(CatalogError, match="export format 'csv' is not supported; use ndjson or npy"):
        emb.export_vectors(tmp_path / "v.csv", fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_row_key_falls_back_to_the_row_id_where_the_key_would_not_read_back():
    assert vexport._row_key("a b", "rid") == "a b"
    assert vexport._row_key(" padded", "rid") == "rid"
    assert vexport._row_key("tab\t", "rid") == "rid"
    assert vexport._row_key(None, "rid") == "rid"


def test_export_command(cli, cat, keys, digits, tmp_path):
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys[:200], digits[:200])
    r = cli("embeddings", "export", "digits")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 200 and "Exported 200 vectors" in r.stderr
    gz = tmp_path / "d.ndjson.gz"
    r = cli("embeddings", "export", emb.id, "-o", gz)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Exported 200 vectors to {gz}\n"
    assert sorted(gzip.decompress(gz.read_bytes()).decode().splitlines()) == sorted(cli(
        "embeddings", "export", "digits").stdout.splitlines())
    assert cli("embeddings", "create", "copy", "64").returncode == 0
    r = cli("embeddings", "import", "copy", gz)
    assert r.returncode == 0, r.stderr
    assert cli("embeddings", "count", "copy").stdout == "200\n"
    got, want = stored(cat, cat.get_embedding("copy")), stored(cat, emb)
    assert all(same_bits(got[k], want[k]) for k in want)

    cat.save_slice("threes", where={"digit": 3})
    r = cli("embeddings", "export", "digits", "--slice", "threes", "--format", "npy", "-o", tmp_path / "t.npy",
            "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["files"] == [str(tmp_path / "t.npy"), str(tmp_path / "t.ids.json")]
    assert summary["without_vector"] > 0 and "have no vector in digits and were left out" in r.stderr
    assert np.load(tmp_path / "t.npy").shape == (summary["exported"], 64)

    before = sorted(p.name for p in tmp_path.iterdir())
    for args, message in (
        (("--format", "npy"), "error: an npy export is written to a file; give a path for --output"),
        (("--slice", "nope", "-o", tmp_path / "x.ndjson"), "error: no slice named 'nope'"),
        (("-o", tmp_path / "no" / "x.ndjson"), "does not exist"),
    ):
        r = cli("embeddings", "export", "digits", *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stdout == ""
    r = cli("embeddings", "export", "ghost")
    assert r.returncode == 2 and "no embedding with id or name 'ghost'" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_catalog_file_is_free_while_ndjson_is_written(cat, keys, digits, tmp_path, monkeypatch):
    """NDJSON is formatted after the rows were read: another process can write meanwhile."""
    import subprocess
    import sys

    monkeypatch.setattr(vexport, "BLOCK_ROWS", 500)
    emb = cat.create_embedding("digits", 64)
    emb.import_vectors(keys, digits)
    runs = []

    def progress(done, total):
        if done and not runs:  # the first block has been written out
            runs.append(subprocess.run(
                [sys.executable, "-c", "import sys; from catalog import Catalog; "
                 "Catalog(sys.argv[1], lock_timeout=2).create_embedding('during', 8)", str(cat.path)],
                capture_output=True, text=True, timeout=300))

    report = emb.export_vectors(tmp_path / "v.ndjson", progress=progress)
    assert runs and runs[0].returncode == 0, runs[0].stderr
    assert report.exported == len(keys) == len((tmp_path / "v.ndjson").read_text().splitlines())
    assert "during" in [e.name for e in cat.get_embeddings()]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # staging gone
