"""A full disk, on a real small file system (a 48 MB tmpfs mounted for this module; CI runs as root, so
it can mount one): every write command fails with one line naming the folder and the space, writes
nothing, leaves no scratch behind, and works once space is freed. Where mounting is refused (not root,
a container without the capability) the module is skipped and says why."""

from __future__ import annotations

import hashlib
import json
import os
import io
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from catalog import Catalog
from catalog.cli import main
from catalog.store.space import DiskFull

ADVTOOL = "import sys; from catalog.cli import main; sys.exit(main())"
N, DIMS = 60_000, 64  # the vector file needs ~15 MB of scratch and ~20 MB in the catalog


def _mount(point: Path) -> str | None:
    point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(point)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs here: {done.stderr.strip()}"


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    point = tmp_path_factory.mktemp("small") / f"fs-{uuid.uuid4().hex[:8]}"
    why = _mount(point)
    if why:
        pytest.skip(why)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")  # on the big disk
    rows = folder / "rows.ndjson"
    rows.write_text("".join(json.dumps({"global_key": f"k{i}", "text": f"row {i}"}) + "\n" for i in range(N)))
    vecs = np.random.default_rng(0).standard_normal((N, DIMS)).round(5)
    vectors = folder / "vectors.ndjson"
    with open(vectors, "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"id": f"k{i}", "vector": vecs[i].tolist()}) + "\n")
    small = folder / "small.ndjson"
    small.write_text("".join(json.dumps({"id": f"k{i}", "vector": vecs[i].tolist()}) + "\n" for i in range(2_000)))
    more = folder / "more.ndjson"
    more.write_text("".join(json.dumps({"global_key": f"m{i}", "text": f"more {i}"}) + "\n" for i in range(5_000)))
    archive = folder / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # images the import extracts into the media folder
        for i in range(40):
            buf = io.BytesIO()
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(buf, "PNG")
            zf.writestr(f"p{i}.png", buf.getvalue())
    return {"rows": rows, "vectors": vectors, "small": small, "more": more, "zip": archive}


@pytest.fixture
def db(disk, inputs):
    """A catalog on the small disk: 60,000 rows, 2,000 vectors in `e`, labels and a slice."""
    for p in disk.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    path = disk / "c.duckdb"
    cat = Catalog(path)
    cat.import_datarows([inputs["rows"]])
    cat.create_embedding("e", DIMS).import_vectors_from_file(inputs["small"])
    cat.set_labels("k1", ["cat"])
    return path


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all free space of the disk but ``leave`` bytes (a file allocated for real)."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, max(free - leave, 1))
    return filler


def snapshot(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        h = hashlib.sha256()
        for sql in ("SELECT count(*) FROM datarows", "SELECT count(*), sum(list_sum(vector)) FROM vectors",
                    "SELECT CAST(row_id AS VARCHAR), label FROM labels ORDER BY 1, 2",
                    "SELECT name FROM embeddings ORDER BY 1", "SELECT name FROM slices ORDER BY 1",
                    "SELECT global_key, CAST(metadata AS VARCHAR) FROM datarows ORDER BY 1"):
            h.update(repr(con.execute(sql).fetchall()).encode())
        return h.hexdigest()
    finally:
        con.close()


def leftovers(disk: Path) -> list[str]:
    """Scratch folders, half-written files, and files in the media folder (nothing was imported that
    refers to them)."""
    found = sorted(p.name for p in disk.iterdir() if ".scratch-" in p.name or ".tmp" in p.name)
    media = disk / "c.duckdb.media"
    return found + sorted(str(p) for p in media.rglob("*") if p.is_file()) if media.exists() else found


def run(capsys, path: Path, *args) -> tuple[int, str]:
    code = main(["--db", str(path), *args])
    return code, capsys.readouterr().err.strip()


def commands(inputs):
    return {
        "vector import": ["embeddings", "import", "e", str(inputs["vectors"])],
        "record import": ["datarows", "import", str(inputs["more"])],
        "zip import": ["datarows", "import", str(inputs["zip"])],
        "labels set": ["labels", "set", "k2", "dog"],
        "embeddings create": ["embeddings", "create", "f", "8"],
        "slices save": ["slices", "save", "cats", "--where", '{"label": "cat"}'],
        "metadata set": ["metadata", "set", "--where", '{"media_type": "text"}', "checked=true"],
    }


@pytest.mark.parametrize("command", ["vector import", "record import", "zip import", "labels set", "embeddings create",
                                     "slices save", "metadata set"])
def test_with_no_space_left_every_write_is_one_line_and_writes_nothing(db, disk, inputs, capsys, command):
    args = commands(inputs)[command]
    before = snapshot(db)
    filler = fill(disk, 0)
    code, err = run(capsys, db, *args)
    assert code == 2, err
    assert err.startswith(f"error: not enough disk space in {disk}"), err  # the folder or its media folder
    assert "\n" not in err and "Traceback" not in err
    assert "free some space" in err
    filler.unlink()
    assert snapshot(db) == before
    assert leftovers(disk) == []
    code, err = run(capsys, db, *args)  # the same command works once space is freed
    assert code == 0, err
    assert snapshot(db) != before


def test_a_vector_import_that_does_not_fit_says_how_much_it_needs(db, disk, inputs, capsys):
    before = snapshot(db)
    for leave in (3 * 2**20, 24 * 2**20):  # the scratch file fills the disk; the catalog's write would
        filler = fill(disk, leave)
        code, err = run(capsys, db, "embeddings", "import", "e", str(inputs["vectors"]))
        assert code == 2, err
        assert err.startswith(f"error: not enough disk space in {disk}: "), err
        assert "the import (scratch file and catalog) needs about" in err and "nothing was imported" in err
        free, needed = (float(x) for x in re.search(r": ([\d.]+) MB free, .* needs about ([\d.]+) MB", err).groups())
        assert needed > free, err  # an honest message: what is needed does not fit in what is free
        assert snapshot(db) == before and leftovers(disk) == []
        filler.unlink()
    assert Catalog(db).get_embedding("e").import_vectors_from_file(inputs["vectors"]) == N


def test_the_library_raises_disk_full(db, disk, inputs):
    filler = fill(disk, 0)
    with pytest.raises(DiskFull, match=f"not enough disk space in {disk}"):
        Catalog(db).get_embedding("e").import_vectors_from_file(inputs["vectors"])
    filler.unlink()


def test_building_the_vector_cache_on_a_full_disk(db, disk, capsys):
    shutil.rmtree(db.with_name(db.name + ".cache"), ignore_errors=True)
    filler = fill(disk, 0)
    code, err = run(capsys, db, "search", "--embedding", "e", "--anchor", "k1", "--limit", "3")
    assert code == 2, err
    assert err.startswith(f"error: not enough disk space in {db}.cache: "), err
    assert "the vector cache of embedding e needs about" in err and "the catalog is unchanged" in err
    cache = db.with_name(db.name + ".cache")
    assert not cache.exists() or not any(p.name.startswith(tuple("0123456789abcdef")) for p in cache.iterdir())
    filler.unlink()
    code, err = run(capsys, db, "search", "--embedding", "e", "--anchor", "k1", "--limit", "3", "--min", "0")
    assert code == 0, err


def test_an_export_to_a_full_disk_is_one_line(db, disk):
    """The command line's last guard: a full disk met outside the library (its output file) is one line too."""
    out = disk / "rows.ndjson"
    filler = fill(disk, 0)
    with open(out, "wb") as fh:
        done = subprocess.run([sys.executable, "-c", ADVTOOL, "--db", str(db), "datarows", "export"],
                              stdout=fh, stderr=subprocess.PIPE, text=True)
    filler.unlink()
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert err == "error: not enough disk space for the output; the output is incomplete, the catalog is unchanged"
