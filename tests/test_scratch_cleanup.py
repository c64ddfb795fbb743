"""Scratch files of vector imports: removed on every exit path (success, invalid file, Ctrl-C, SIGTERM),
and what a SIGKILL leaves behind removed by the next process that opens the catalog, but never a
folder whose owner is alive. Kills land at a moment the test observes (the scratch folder exists), not
after a delay, so the outcome does not depend on the machine's speed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from catalog import Catalog
from catalog.errors import ValidationError
from catalog.store.scratch import ScratchDir, sweep
from catalog.vectors.splitting import PARALLEL_MIN_BYTES

ADVTOOL = "import sys; from catalog.cli import main; sys.exit(main())"
HOLD_LOCK = ("import os, fcntl, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
             "fcntl.flock(fd, fcntl.LOCK_SH); print('locked', flush=True); time.sleep(600)")


def scratch_of(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f".{db.name}.scratch-*"))


def counts(db: Path) -> tuple:
    cat = Catalog(db)
    return cat.count_datarows(), cat.get_embedding("e").get_imported_vector_count()


def make_catalog(folder: Path, name: str, n: int, dims: int) -> tuple[Path, Path]:
    """A catalog of ``n`` text rows with an empty custom embedding `e`, and a vector file for it."""
    db = folder / f"{name}.duckdb"
    cat = Catalog(db)
    recs = folder / f"{name}-rows.ndjson"
    recs.write_text("".join(json.dumps({"global_key": f"k{i}", "text": f"row {i}"}) + "\n" for i in range(n)))
    cat.import_datarows([recs])
    cat.create_embedding("e", dims)
    vecs = np.random.default_rng(0).standard_normal((n, dims))
    path = folder / f"{name}-vectors.ndjson"
    with open(path, "w") as fh:
        for i in range(n):
            fh.write('{"id": "k%d", "vector": [%s]}\n' % (i, ", ".join(f"{v:.6f}" for v in vecs[i])))
    return db, path


@pytest.fixture
def catalog_with_file(tmp_path):
    """60,000 rows and a vector file that takes a while to parse (so a signal can land while its
    scratch folder exists)."""
    return make_catalog(tmp_path, "c", 60_000, 64)


def _start_import(db: Path, path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ADVTOOL, "--db", str(db), "embeddings", "import", "e", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_scratch(db: Path, proc: subprocess.Popen, timeout: float = 120) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = scratch_of(db)
        if found and any(any(True for _ in p.iterdir()) for p in found):  # the scratch file is in it
            return found
        assert proc.poll() is None, "the import ended before its scratch folder was seen"
        time.sleep(0.001)
    raise AssertionError("no scratch folder appeared")


def test_a_finished_import_leaves_no_scratch(catalog_with_file):
    db, path = catalog_with_file
    assert Catalog(db).get_embedding("e").import_vectors_from_file(path) == 60_000
    assert scratch_of(db) == []


def test_a_refused_import_leaves_no_scratch(catalog_with_file, tmp_path):
    db, _ = catalog_with_file
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"id": "k1", "vector": [1.0] * 64}) + "\n" + '{"id": "k2", "vector": [1, 2]}\n')
    with pytest.raises(ValidationError, match="1 invalid line; nothing was imported") as info:
        Catalog(db).get_embedding("e").import_vectors_from_file(bad)
    assert info.value.errors[0][0] == 2
    assert scratch_of(db) == []
    assert counts(db)[1] == 0


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_ctrl_c_remove_the_scratch_and_write_nothing(catalog_with_file, sig, code, word):
    db, path = catalog_with_file
    before = counts(db)
    proc = _start_import(db, path)
    _wait_for_scratch(db, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    text = err.decode().strip()
    assert scratch_of(db) == []
    assert "Traceback" not in text
    if proc.returncode == 0:  # the signal came too late to stop it (DuckDB may finish a running write):
        assert counts(db) == (before[0], 60_000)  # then it is whole
        return
    assert proc.returncode == code, text
    assert text.startswith(word) and "nothing was written" in text
    assert counts(db) == before


def test_a_sigkilled_import_is_swept_at_the_next_open(catalog_with_file):
    db, path = catalog_with_file
    before = counts(db)
    proc = _start_import(db, path)
    left = _wait_for_scratch(db, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(p.exists() for p in left)  # a SIGKILL runs no clean-up ...
    assert counts(db) == before           # ... the next open removes it
    assert scratch_of(db) == []


def test_a_killed_split_import_leaves_no_helper_behind(tmp_path):
    """Files over 64 MB are parsed by a second interpreter: killing the import kills it too, and the
    next open removes their scratch."""
    dims = 256
    db, path = make_catalog(tmp_path, "big", PARALLEL_MIN_BYTES // (dims * 9) + 2_000, dims)
    assert path.stat().st_size >= PARALLEL_MIN_BYTES
    proc = _start_import(db, path)
    deadline = time.monotonic() + 120
    helper = []
    while not helper and time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        helper = [int(p) for p in out]
        assert proc.poll() is None, "the import ended before its helper was seen"
        time.sleep(0.005)
    assert helper, "no helper interpreter started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{helper[0]}"):
        state = Path(f"/proc/{helper[0]}/stat").read_text().split()[2] if os.path.exists(f"/proc/{helper[0]}") else "X"
        if state == "Z":
            break
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{helper[0]}") or \
        Path(f"/proc/{helper[0]}/stat").read_text().split()[2] == "Z", "the helper outlived the import"
    assert Catalog(db).get_embedding("e").get_imported_vector_count() == 0
    assert scratch_of(db) == []


def test_the_sweep_spares_folders_whose_owner_lives(tmp_path):
    db = tmp_path / "c.duckdb"
    mine = ScratchDir(db)
    assert stat.S_IMODE(os.stat(mine.path).st_mode) == 0o700  # private to its user
    holder_dir = ScratchDir(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(holder_dir.path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        os.close(holder_dir.fd)  # this process lets go; the other one still holds the lock
        holder_dir.fd = None
        dead = tmp_path / f".{db.name}.scratch-999999-abc"  # a folder nobody holds: its owner is gone
        dead.mkdir()
        (dead / "vectors-x.f32").write_bytes(b"\0" * 1024)
        other = tmp_path / ".other.duckdb.scratch-1-x"  # another catalog's: not ours to touch
        other.mkdir()
        removed = sweep(db)
        assert removed == [dead]
        assert mine.path.exists() and holder_dir.path.exists() and other.exists()
    finally:
        holder.kill()
        holder.wait()
    assert sweep(db) == [holder_dir.path]  # its owner is gone now
    kept = mine.path
    mine.close()
    assert not kept.exists()


def test_the_sweep_removes_half_built_caches_of_dead_processes(tmp_path):
    db = tmp_path / "c.duckdb"
    cache = tmp_path / "c.duckdb.cache"
    live = cache / f"emb-v1.tmp{os.getpid()}-1"
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
    dead = cache / f"emb-v1.tmp{dead_pid}-1"
    inner = cache / "emb-v2" / f"keys.tmp{dead_pid}-7.npy"
    keep = cache / "emb-v2" / "keys.npy"
    for d in (live, dead):
        d.mkdir(parents=True)
        (d / "vectors.npy").write_bytes(b"x")
    inner.parent.mkdir(parents=True)
    inner.write_bytes(b"x")
    keep.write_bytes(b"x")
    assert sorted(sweep(db, cache)) == sorted([dead, inner])
    assert live.exists() and keep.exists()


def test_opening_a_catalog_sweeps_but_a_read_only_one_is_left_alone(catalog_with_file, monkeypatch):
    db, _ = catalog_with_file
    stale = db.parent / f".{db.name}.scratch-999999-zz"
    stale.mkdir()
    Catalog(db).count_datarows()
    assert not stale.exists()
    stale.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(db) else True)
    Catalog(db).count_datarows()  # read-only: it reads, and changes nothing beside the file
    assert stale.exists()
