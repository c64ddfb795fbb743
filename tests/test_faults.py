"""Fault injection: every write command killed with SIGKILL at several moments leaves the catalog either
exactly as before or exactly as after the command (row, vector, label, slice and metadata counts plus
a checksum of vectors, labels, metadata and slices), and the catalog opens and works afterwards.

Each command runs as its own ``advtool`` process on a copy of one base catalog; the kills land at fixed
delays after the start (during start-up, parsing, writing, committing) and at the first change of the
catalog file (the write transaction under way). Timing only decides *where* a kill lands: every
outcome is checked the same way, so the test does not depend on the machine's speed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from catalog import Catalog

N, D = 20_000, 32
DELAYS = (0.05, 0.6, 1.5)
ADVTOOL = "import sys; from catalog.cli import main; sys.exit(main())"  # the console script's body


def snapshot(db: Path) -> tuple:
    """Counts and a checksum of what a catalog holds (read straight from the file)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        h = hashlib.sha256()
        parts = [
            "SELECT count(*) FROM datarows", "SELECT count(*) FROM vectors", "SELECT count(*) FROM labels",
            "SELECT count(*) FROM slices",
        ]
        counts = tuple(con.execute(q).fetchone()[0] for q in parts)
        for sql in ("SELECT CAST(row_id AS VARCHAR), CAST(embedding_id AS VARCHAR), vector FROM vectors ORDER BY 1, 2",
                    "SELECT CAST(row_id AS VARCHAR), label, source, score, reviewed FROM labels ORDER BY 1, 2",
                    "SELECT global_key, CAST(metadata AS VARCHAR) FROM datarows ORDER BY 1",
                    "SELECT name, CAST(query AS VARCHAR) FROM slices ORDER BY 1"):
            for row in con.execute(sql).fetchall():
                h.update(repr(row).encode())
        return counts, h.hexdigest()
    finally:
        con.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("faults")
    db = folder / "base.duckdb"
    cat = Catalog(db)
    recs = folder / "rows.ndjson"
    recs.write_text("".join(json.dumps({"global_key": f"k{i}", "text": f"row {i}", "metadata": {"n": i}}) + "\n"
                            for i in range(N)))
    cat.import_datarows([recs])
    rng = np.random.default_rng(0)
    keys = [f"k{i}" for i in range(N)]
    vecs = rng.standard_normal((N, D)).astype(np.float32)
    cat.create_embedding("e", D).import_vectors(keys, vecs)
    cat.create_embedding("f", D)
    for i in range(0, N, 20):
        cat.set_labels(f"k{i}", ["even" if i % 40 == 0 else "odd"])
    # the inputs of the commands
    vec_file = folder / "vectors.ndjson"
    with open(vec_file, "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"id": f"k{i}", "vector": vecs[i].round(5).tolist()}) + "\n")
    new_rows = folder / "new_rows.ndjson"
    new_rows.write_text("".join(json.dumps({"global_key": f"new{i}", "text": f"new row {i}"}) + "\n"
                                for i in range(N)))
    labels = folder / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"k{i},bulk\n" for i in range(1, N, 2)))
    commands = {
        "vector import": ["embeddings", "import", "f", str(vec_file)],
        "record import": ["datarows", "import", str(new_rows)],
        "labels import": ["labels", "import", str(labels)],
        "label-by-similarity --save": ["label-by-similarity", "-e", "e", "--unlabeled", "--results", "3", "--save"],
        "slices save": ["slices", "save", "all-even", "--where", '{"label": "even"}'],
        "metadata set": ["metadata", "set", "--where", '{"media_type": "text"}', "checked=true", "round=2"],
        "datarows delete": ["datarows", "delete", *[f"k{i}" for i in range(0, N, 3)]],
    }
    return {"db": db, "folder": folder, "commands": commands, "before": snapshot(db)}


def _run(db: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ADVTOOL, "--db", str(db), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _copy(base: dict, name: str) -> Path:
    work = base["folder"] / f"{name}.duckdb"
    for extra in (work.with_name(work.name + ".wal"),):
        extra.unlink(missing_ok=True)
    shutil.rmtree(work.with_name(work.name + ".cache"), ignore_errors=True)
    shutil.copyfile(base["db"], work)
    return work


@pytest.mark.parametrize("command", ["vector import", "record import", "labels import", "label-by-similarity --save",
                                     "slices save", "metadata set", "datarows delete"])
def test_a_killed_write_leaves_the_catalog_before_or_after(base, command):
    args = base["commands"][command]
    work = _copy(base, "after")
    done = _run(work, args)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err.decode()
    after = snapshot(work)
    before = base["before"]
    assert after != before, "the command changed nothing"
    outcomes = []
    for point in ("first change", *DELAYS):
        work = _copy(base, "trial")
        stamp = (work.stat().st_size, work.stat().st_mtime_ns)
        p = _run(work, args)
        if point == "first change":  # the moment the write transaction starts changing the file
            while p.poll() is None and (work.stat().st_size, work.stat().st_mtime_ns) == stamp:
                time.sleep(0.002)
        else:
            time.sleep(point)
        p.send_signal(signal.SIGKILL)
        p.wait()
        Catalog(work).count_datarows()  # it opens (and recovers its journal, and removes scratch) ...
        assert list(work.parent.glob(f".{work.name}.scratch-*")) == [], f"killed at {point}: scratch left"
        got = snapshot(work)
        assert got in (before, after), f"killed at {point}: the catalog is neither as before nor as after"
        outcomes.append("before" if got == before else "after")
        Catalog(work).set_labels("k1", ["still-works"])  # ... and takes writes again
    assert "before" in outcomes, outcomes  # at least one kill landed before the commit
