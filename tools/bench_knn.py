"""Benchmark of the exact batched L1 kNN kernel (label-by-similarity's neighbour search) with same-run baselines.

    .venv/bin/python tools/bench_knn.py                                  # 10k × 100k × 512 (target ≤ 2 s)
    .venv/bin/python tools/bench_knn.py --previous /path/to/old/_l1kernel.cpython-311-x86_64-linux-gnu.so
    .venv/bin/python tools/bench_knn.py --queries 2000 --pool 20000      # a quick run

Data (``--data``): ``labeling`` is ``tools/bench_labeling.py``'s speed data (100 gaussian classes,
normalised), the first ``--queries`` rows as queries and the next ``--pool`` rows as the labeled pool,
k = 10; ``search`` is ``tools/bench_search.py``'s (2,000 clusters of mixed spread plus 10 % noise rows,
normalised), ``--pool`` rows searched by the first ``--queries`` of them with k = 11 (uniqueness's
self-join: K = 10 neighbours plus the row itself). Measured in
one run and printed with wall time and cpu = the process's CPU seconds / the number of CPUs (what an
idle machine would take for this CPU-bound work; the machine may be shared):

* the native kernel as label-by-similarity calls it (``level="auto"``), and with each comparison level
  forced (``--levels``);
* ``--previous``: another build of ``catalog._l1kernel`` (e.g. the one before a change), loaded from
  its file, on the same queries; its answer must be identical;
* faiss ``IndexFlat(d, METRIC_L1)`` on ``--faiss-queries`` query rows, extrapolated per query (linear
  in the queries), and whether both found the same neighbours (tie-aware, float32 tolerance).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_labeling import clustered  # noqa: E402
from bench_search import vectors  # noqa: E402
from catalog.scoring import normalize  # noqa: E402
from catalog.search.l1_knn import knn_l1_native, threads  # noqa: E402


def cpu_seconds() -> float:
    """CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn):
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - t0, (cpu_seconds() - c0) / (os.cpu_count() or 1)


def load_previous(path: str):
    """A build of ``_l1kernel`` from a file, as a module of its own (its init symbol keeps the name)."""
    loader = importlib.machinery.ExtensionFileLoader("_l1kernel", path)
    spec = importlib.util.spec_from_file_location("_l1kernel", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run_previous(module, q, x, k):
    d = np.full((len(q), k), np.inf, np.float32)
    i = np.full((len(q), k), -1, np.int64)
    module.knn_l1(q, x, len(q), len(x), q.shape[1], k, d, i, threads(), True)
    return d, i


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--data", choices=("labeling", "search"), default="labeling")
    ap.add_argument("--k", type=int, help="neighbours (default 10 for labeling, 11 for search)")
    ap.add_argument("--levels", default="auto,pooled,full", help="comparison levels to run, comma-separated")
    ap.add_argument("--previous", help="path of another _l1kernel build to run beside this one")
    ap.add_argument("--faiss-queries", type=int, default=500)
    ap.add_argument("--target", type=float, help="seconds for the whole query set, judged on cpu (default 2 for "
                    "the labeling data: the label-by-similarity target at 10k × 100k × 512)")
    args = ap.parse_args(argv)
    if args.data == "labeling":
        x, _ = clustered(args.queries + args.pool, args.dims, 100, np.random.default_rng(0))
        x = normalize(x).astype(np.float32)
        q, pool = np.ascontiguousarray(x[:args.queries]), np.ascontiguousarray(x[args.queries:])
    else:
        pool = np.ascontiguousarray(normalize(vectors(args.pool, args.dims, 0, args.pool)), dtype=np.float32)
        q = np.ascontiguousarray(pool[:args.queries])
    k = args.k or (10 if args.data == "labeling" else 11)
    print(f"{args.data} data: {args.queries:,} queries × {args.pool:,} pool × {args.dims}, k = {k}, "
          f"{os.cpu_count()} CPUs, {threads()} threads; load {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
          flush=True)

    results = {}
    for level in args.levels.split(","):
        stats = {}
        (d, i), wall, cpu = timed(lambda: knn_l1_native(q, pool, k, stats=stats, level=level))
        results[level] = (d, i, wall, cpu)
        print(f"native, level {level:6s}: wall {wall:6.2f} s, cpu {cpu:6.2f} s  ({stats['isa']}; full SAD on "
              f"{stats['full_compares'] / stats['pairs']:.3f} of pairs, {stats['rescored'] / len(q):.0f} rows "
              "re-scored per query)", flush=True)
    first = next(iter(results))
    d, i, wall, cpu = results[first]
    for level, (dl, il, _, _) in results.items():
        assert np.array_equal(il, i) and np.array_equal(dl, d), f"level {level} gave another answer"

    if args.previous:
        prev = load_previous(args.previous)
        (pd, pi), pwall, pcpu = timed(lambda: run_previous(prev, q, pool, k))
        same = np.array_equal(pi, i) and np.array_equal(pd, d)
        print(f"previous kernel ({Path(args.previous).name}): wall {pwall:6.2f} s, cpu {pcpu:6.2f} s; "
              f"previous / now = {pwall / wall:.2f}× wall, {pcpu / max(cpu, 1e-9):.2f}× cpu; "
              f"identical answer: {same}", flush=True)

    m = min(args.faiss_queries, len(q))
    index = faiss.IndexFlat(args.dims, faiss.METRIC_L1)
    index.add(pool)
    (fd, fi), fwall, fcpu = timed(lambda: index.search(q[:m], k))
    scale = len(q) / m
    tol = 2e-5 * float(np.max(fd[:, -1])) + 1e-6  # float32 sums in different orders
    agree = float(np.mean(np.abs(fd[:, -1] - d[:m, -1]) <= tol))
    print(f"faiss IndexFlat L1 on {m:,} queries: wall {fwall:.2f} s, cpu {fcpu:.2f} s; extrapolated to "
          f"{len(q):,}: wall {fwall * scale:.1f} s, cpu {fcpu * scale:.1f} s; faiss / native = "
          f"{fwall * scale / wall:.1f}× wall, {fcpu * scale / max(cpu, 1e-9):.1f}× cpu; k-th distance agrees on "
          f"{agree:.4f} of rows")
    target = args.target if args.target is not None else (2.0 if args.data == "labeling" else None)
    if target is not None:
        verdict = "met" if cpu <= target else "NOT met"
        print(f"target ≤ {target:g} s (judged on cpu): {verdict} (cpu {cpu:.2f} s, wall {wall:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
