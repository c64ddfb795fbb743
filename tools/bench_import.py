"""Benchmark: NDJSON vector import (advtool embeddings import) beside plain-Python baselines.

Measures, on the same file in the same run:
  * ours      — ``Embedding.import_vectors_from_file`` (validate every line, resolve ids, one transaction);
  * json      — ``json.loads`` per line + ``numpy.asarray`` (parse only, no validation, no write);
  * orjson    — ``orjson.loads`` per line + ``numpy.asarray`` (parse only);
  * simdjson  — pysimdjson per line + ``numpy.frombuffer`` (parse only);
and prints vectors/s and ratios. Our import is also run on the quarter file with the C fast path of
the parser switched off (``CATALOG_NDJSON_NATIVE=0``), the speed where it could not be built. Baselines run on the first ``--baseline-n`` lines (they are slow)
and are reported as rates. Peak memory of our import is measured in a child process for two file
sizes to show it stays flat in the file size.

Usage: python tools/bench_import.py [--n 1000000] [--dims 512] [--workdir /tmp/bench_import]
       python tools/bench_import.py --compare-tree /tmp/before     # this checkout against another
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog  # noqa: E402


def make_files(work: Path, n: int, dims: int) -> tuple[Path, Path]:
    rows, vecs = work / f"rows-{n}.ndjson", work / f"vectors-{n}x{dims}.ndjson"
    if not rows.exists():
        with open(rows, "wb") as fh:
            for i in range(n):
                fh.write(b'{"global_key": "row-%d", "text": "row %d"}\n' % (i, i))
    if not vecs.exists():
        rng = np.random.default_rng(0)
        tmp = vecs.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for start in range(0, n, 10_000):
                block = rng.standard_normal((min(10_000, n - start), dims)).astype(np.float32).astype(np.float64).round(6)
                fh.write(b"".join(orjson.dumps({"id": f"row-{start + i}", "vector": v.tolist()}) + b"\n"
                                  for i, v in enumerate(block)))
        tmp.replace(vecs)
    return rows, vecs


def catalog_with_rows(work: Path, rows: Path, n: int) -> Path:
    db = work / f"catalog-{n}.duckdb"
    if not db.exists():
        t = time.perf_counter()
        Catalog(db).import_datarows([rows])
        print(f"  (setup: {n:,} data rows imported in {time.perf_counter() - t:.1f} s)")
    return db


CHILD = """
import resource, sys, time
from catalog import Catalog
cat = Catalog(sys.argv[1])
for e in cat.get_embeddings():
    if e.name == "bench":
        cat.delete_embedding(e.id)
emb = cat.create_embedding("bench", int(sys.argv[3]))
t = time.perf_counter()
n = emb.import_vectors_from_file(sys.argv[2])
dt = time.perf_counter() - t
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_ours(db: Path, vecs: Path, dims: int, env=None, tree: Path = ROOT) -> tuple[int, float, float]:
    """One import in a child process running the code of ``tree`` (this checkout by default)."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(db), str(vecs), str(dims)], check=True,
                         capture_output=True, text=True, cwd=tree, env=env).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) / 1024


def baseline(vecs: Path, limit: int, loads) -> float:
    t = time.perf_counter()
    n = 0
    with open(vecs, "rb") as fh:
        for line in fh:
            obj = loads(line)
            np.asarray(obj["vector"], dtype=np.float32)
            n += 1
            if n >= limit:
                break
    return n / (time.perf_counter() - t)


def simdjson_loads():
    import simdjson

    parser = simdjson.Parser()

    def loads(line):
        doc = parser.parse(line)
        return {"vector": np.frombuffer(doc["vector"].as_buffer(of_type="d"), dtype=np.float64).copy()}

    return loads


def head(vecs: Path, n: int, work: Path) -> Path:
    out = work / f"{vecs.stem}-head{n}.ndjson"
    if not out.exists():
        with open(vecs, "rb") as src, open(out, "wb") as dst:
            for i, line in enumerate(src):
                if i >= n:
                    break
                dst.write(line)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--baseline-n", type=int, default=50_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_import"))
    ap.add_argument("--compare-tree", type=Path, metavar="DIR",
                    help="another checkout (e.g. a git worktree of an older commit, with its native modules "
                         "built): run only the full import, alternating this tree and DIR, and print the ratio")
    ap.add_argument("--compare-runs", type=int, default=3, help="imports of each tree with --compare-tree")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    native = "built" if importlib.util.find_spec("catalog._ndjson") else "NOT built (general parser only)"
    print(f"vector import benchmark: {args.n:,} × {args.dims}-d, {os.cpu_count()} cores; C fast path {native}")
    rows, vecs = make_files(args.workdir, args.n, args.dims)
    print(f"  file: {vecs} ({vecs.stat().st_size / 1e9:.2f} GB)")
    db = catalog_with_rows(args.workdir, rows, args.n)
    if args.compare_tree:
        return compare(db, vecs, args.dims, args.compare_tree.resolve(), args.compare_runs)

    n, dt, rss = run_ours(db, vecs, args.dims)
    ours = n / dt
    quarter = head(vecs, args.n // 4, args.workdir)
    n4, dt4, rss4 = run_ours(db, quarter, args.dims)
    n4g, dt4g, _ = run_ours(db, quarter, args.dims, env={"CATALOG_NDJSON_NATIVE": "0"})
    j = baseline(vecs, args.baseline_n, json.loads)
    o = baseline(vecs, args.baseline_n, orjson.loads)
    sj = baseline(vecs, args.baseline_n, simdjson_loads())
    raw = args.n * args.dims * 4 / 2**20

    print()
    print("| what | vectors/s | ours ÷ it |")
    print("|---|---:|---:|")
    print(f"| ours: validate + resolve + write, {n:,} vectors | {ours:,.0f} | 1.00 |")
    print(f"| json.loads + numpy (parse only) | {j:,.0f} | {ours / j:.1f}× |")
    print(f"| orjson.loads + numpy (parse only) | {o:,.0f} | {ours / o:.1f}× |")
    print(f"| pysimdjson + numpy (parse only) | {sj:,.0f} | {ours / sj:.1f}× |")
    print(f"| ours without the C fast path, {n4g:,} vectors | {n4g / dt4g:,.0f} | {ours / (n4g / dt4g):.1f}× |")
    print()
    print(f"peak RSS of our import: {rss:,.0f} MiB for {n:,} vectors, {rss4:,.0f} MiB for {n4:,} "
          f"(raw float32 of the full file: {raw:,.0f} MiB)")
    print(f"target ≥ 40,000 vectors/s: {'met' if ours >= 40_000 else 'NOT met'} ({ours:,.0f})")
    return 0


def compare(db: Path, vecs: Path, dims: int, other: Path, runs: int) -> int:
    """The full import with this tree's code and with ``other``'s, in turn (A B B A A B …, so that
    neither side always runs first), same file."""
    ours, theirs = [], []
    for i in range(runs):
        pair = ((ROOT, ours), (other, theirs))
        for tree, out in (pair if i % 2 == 0 else pair[::-1]):
            n, dt, rss = run_ours(db, vecs, dims, tree=tree)
            out.append(n / dt)
            print(f"  run {i + 1} {tree}: {n / dt:,.0f} vectors/s, peak {rss:,.0f} MiB", flush=True)
    a, b = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
    print(f"median: this tree {a:,.0f} vectors/s, {other} {b:,.0f} vectors/s; this ÷ other {a / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
