"""Benchmark: vector export (advtool embeddings export) — speed beside a baseline, and peak memory.

For each size it builds a catalog with ``n`` text rows and an ``n × dims`` custom embedding, then, each
in a fresh child process (so peak memory is the export's own):
  * ndjson   — ``Catalog.export_vectors(emb, FILE)``, NDJSON in the import format;
  * npy      — ``Catalog.export_vectors(emb, FILE.npy, fmt="npy")``;
  * baseline — what a script does without it: read every vector with one DuckDB query
               (``fetchnumpy``, all in memory) and write ``json.dumps`` lines of the lists;
and prints seconds, vectors/s, the ratio to the baseline and the child's peak RSS. Peak memory of
the exports should stay flat as ``n`` grows (they read in blocks); the baseline's grows with ``n``.
Finally it re-imports the NDJSON into a second embedding and checks that the bits are equal.

The baseline holds every vector in memory as Python lists, so it runs only up to ``--baseline-max`` rows.

Usage: python tools/bench_export.py [--sizes 25000,100000,400000] [--dims 512] [--baseline-max 100000]
                                    [--workdir /tmp/bench_export]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog  # noqa: E402

CHILD = """
import json, sys, time
from catalog import Catalog
db, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
cat = Catalog(db)
emb = cat.get_embedding("bench")
t = time.perf_counter()
if mode == "baseline":
    with cat.store.connect() as con:
        got = con.execute("SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
                          "WHERE v.embedding_id = ?", [emb.id]).fetchall()
    with open(out, "w") as fh:
        for key, vec in got:
            fh.write(json.dumps({"id": key, "vector": vec}) + "\\n")
    n = len(got)
else:
    n = cat.export_vectors(emb, out, fmt=mode).exported
dt = time.perf_counter() - t
# VmHWM: the peak of this process's own memory (ru_maxrss would include the parent's at fork, as
# Linux keeps it across exec)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(n, dt, hwm)
"""


def build(work: Path, n: int, dims: int) -> Path:
    db = work / f"catalog-{n}x{dims}.duckdb"
    if db.exists():
        return db
    rows = work / f"rows-{n}.ndjson"
    with open(rows, "w") as fh:
        for i in range(n):
            fh.write('{"global_key": "row-%d", "text": "row %d"}\n' % (i, i))
    cat = Catalog(db)
    cat.import_datarows([rows])
    emb = cat.create_embedding("bench", dims)
    rng = np.random.default_rng(0)
    emb.import_vectors([f"row-{i}" for i in range(n)], rng.standard_normal((n, dims)).astype(np.float32))
    return db


def run(db: Path, mode: str, out: Path) -> tuple[int, float, float]:
    p = subprocess.run([sys.executable, "-c", CHILD, str(db), mode, str(out)], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if p.returncode:
        raise SystemExit(p.stderr)
    n, dt, rss = p.stdout.split()
    return int(n), float(dt), int(rss) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="25000,100000,400000")
    ap.add_argument("--baseline-max", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--workdir", default="/tmp/bench_export")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for n in (int(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        db = build(work, n, args.dims)
        print(f"{n:,} × {args.dims}: catalog ready in {time.perf_counter() - t:.1f} s "
              f"(vectors: {n * args.dims * 4 / 2**20:.0f} MiB as float32)")
        base = run(db, "baseline", work / "baseline.ndjson") if n <= args.baseline_max else None
        for mode, out in (("ndjson", work / "v.ndjson"), ("npy", work / "v.npy"), ("baseline", None)):
            if mode == "baseline" and base is None:
                continue
            got = base if mode == "baseline" else run(db, mode, out)
            ratio = f"{base[1] / got[1]:5.2f}x baseline speed" if base else "(no baseline)"
            print(f"  {mode:<9} {got[1]:7.2f} s  {got[0] / got[1]:>10,.0f} vectors/s  {ratio}  "
                  f"peak RSS {got[2]:7.0f} MiB")
        cat = Catalog(db)
        for e in cat.get_embeddings():
            if e.name == "bench-copy":
                cat.delete_embedding(e.id)
        copy = cat.create_embedding("bench-copy", args.dims)
        copy.import_vectors_from_file(work / "v.ndjson")
        with cat.store.connect() as con:
            diff = con.execute(
                "SELECT count(*) FROM vectors a JOIN vectors b ON a.row_id = b.row_id "
                "WHERE a.embedding_id = ? AND b.embedding_id = ? AND a.vector::VARCHAR <> b.vector::VARCHAR",
                [cat.get_embedding("bench").id, copy.id]).fetchall()[0][0]
        a = np.load(work / "v.npy", mmap_mode="r")
        print(f"  re-import of the NDJSON: {copy.get_imported_vector_count():,} vectors, {diff} differ; "
              f"npy shape {a.shape}")


if __name__ == "__main__":
    main()
