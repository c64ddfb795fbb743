"""Shape sweep of exact search: the 8-bit codes (with and without the pooled first level) against the
float32 path, in the same run, over rows × dims × anchors, and the SAD kernels side by side.

    .venv/bin/python tools/bench_codes_shapes.py                       # the default sweep
    .venv/bin/python tools/bench_codes_shapes.py --shapes 100000x512 --anchors 1,20 --repeat 3

Catalogs are the ones tools/bench_search.py builds and reuses (``/tmp/bench_search_<n>x<dims>.duckdb``,
same data: gaussian clusters + 10 % noise). For every shape and anchor count, two queries through
``Catalog.search`` (the whole query): ``max`` over the anchors with range [0.85, 1] (total + first
page), and ``max`` top-100 of [0, 1]; each run with ``CATALOG_SEARCH_CODES=off`` (float32), ``on``
with the pooled level off, ``on`` with it on, and ``auto`` (the default rule). Times are medians of
``--repeat`` runs: wall seconds and cpu = the process's CPU seconds (all threads) / 2, the wall time
of CPU-bound work on an idle 2-core machine. ``same`` says whether every mode gave the float32
path's ``to_dict(details=True)``. With ``--isa``, the codes rows are also run with each SAD kernel
forced (``CATALOG_SEARCH_CODES_ISA``), side by side on one machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_search import build, noise_rows  # noqa: E402
from catalog import Catalog  # noqa: E402
from catalog.vectors import codes as codes_mod  # noqa: E402
from catalog.vectors import pooled as pooled_mod  # noqa: E402

MODES = (("float32", "off", "off"), ("codes", "on", "off"), ("codes+pooled", "on", "on"), ("auto", "", ""))


def measure(fn, repeat: int, budget_s: float = 20.0, short_s: float = 1.0):
    """``((median wall s, median cpu s / 2), last result)``: at least ``repeat`` runs unless
    ``budget_s`` is spent, and more (up to 50) until ``short_s`` is, so that short queries are
    medians of many runs."""
    out, res = [], None
    while len(out) < 50:
        w, c = time.perf_counter(), time.process_time()
        res = fn()
        out.append((time.perf_counter() - w, (time.process_time() - c) / 2))
        spent = sum(t for t, _ in out)
        if spent > budget_s or (len(out) >= repeat and spent > short_s):
            break
    return (statistics.median(t for t, _ in out), statistics.median(c for _, c in out)), res


def setenv(codes: str, pool: str, isa: str = "") -> None:
    for name, value in ((codes_mod.CODES_ENV, codes), (pooled_mod.POOL_ENV, pool), (codes_mod.ISA_ENV, isa)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def sweep_shape(n, dims, anchor_counts, repeat, isas, rows):
    db = f"/tmp/bench_search_{n}x{dims}.duckdb"
    cat = Catalog(db)
    emb = build(cat, db, n, dims)
    ids, mat = cat.cache.load(emb)
    _ = float(np.asarray(mat[::97]).sum())
    codes_mod.load(cat.cache, emb)
    pooled_mod.load(cat.cache, emb)
    rng = np.random.default_rng(42)
    clean = np.flatnonzero(~noise_rows(n, dims))
    picks = np.sort(rng.choice(clean, size=min(len(clean), max(anchor_counts)), replace=False))
    anchors = cat.resolve_row_ids([f"r{int(i):07d}" for i in picks])
    from catalog.search.scan import l1_scan
    from catalog.threads import threads

    q1 = np.asarray(mat[picks[:1]], dtype=np.float32)
    bare = measure(lambda: l1_scan(mat, q1), repeat)[0]
    print(f"| {n:,} × {dims} | bare float32 scan, {threads()} threads (faiss, rows split), 1 anchor: "
          f"{bare[0] * 1000:.1f} / {bare[1] * 1000:.1f} ms | load {os.getloadavg()[0]:.1f} |", flush=True)
    queries = [("max [0.85,1]", dict(min_score=0.85)), ("max top-100", dict(min_score=0.0, limit=100))]
    for m in anchor_counts:
        for qname, kw in queries:
            spec = dict(anchors=anchors[:m], aggregate="max", **kw)
            got, same = {}, True
            def run():
                return cat.search("bench", backend="exact", **spec).to_dict(details=True)

            for label, codes, pool in MODES:
                setenv(codes, pool)
                res = run()  # warm, and the result compared
                if label == "float32":
                    ref = res
                same &= res == ref
                got[label] = measure(run, repeat)[0]
            for isa in isas:
                setenv("on", "", isa)
                got[isa], res = measure(run, repeat)
                same &= res == ref
            setenv("", "")
            rows.append((n, dims, m, qname, got, same, os.getloadavg()[0]))
            print_row(rows[-1], isas)


def print_row(r, isas):
    n, dims, m, qname, got, same, load = r
    base = got["float32"][1]
    cells = " | ".join(f"{got[k][0] * 1000:.1f} / {got[k][1] * 1000:.1f}" for k, *_ in MODES)
    extra = "".join(f" | {got[i][0] * 1000:.1f} / {got[i][1] * 1000:.1f}" for i in isas)
    best = min(("codes", "codes+pooled"), key=lambda k: got[k][1])
    print(f"| {n:,} × {dims} | {m} | {qname} | {cells}{extra} | {got[best][1] / base:.2f}× ({best}) | "
          f"{got['auto'][1] / base:.2f}× | {same} | {load:.1f} |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1000x512,100000x512,1000000x512,100000x8,100000x64,100000x2048")
    ap.add_argument("--anchors", default="1,20,100")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--isa", action="store_true", help="also force each SAD kernel (avx512bw, avx2)")
    args = ap.parse_args(argv)
    isas = ("avx512bw", "avx2") if args.isa else ()
    heads = " | ".join(f"{k} wall / cpu ms" for k, *_ in MODES) + "".join(f" | {i} wall / cpu ms" for i in isas)
    print(f"SAD kernel here: {codes_mod.kernel_isa()}")
    print(f"| rows × dims | anchors | query | {heads} | best codes / float32 (cpu) | auto / float32 (cpu) | "
          f"same | load |")
    print("|" + "---|" * (8 + len(MODES) + len(isas)))
    rows = []
    for shape in args.shapes.split(","):
        n, dims = (int(v) for v in shape.lower().split("x"))
        sweep_shape(n, dims, [int(a) for a in args.anchors.split(",")], args.repeat, isas, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
