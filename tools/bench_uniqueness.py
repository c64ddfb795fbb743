"""Benchmark of uniqueness (``Catalog.uniqueness.compute``) beside a faiss kNN baseline, in one run.

    .venv/bin/python tools/bench_uniqueness.py                        # 100k × 512 (target ≤ 60 s)
    .venv/bin/python tools/bench_uniqueness.py --n 20000 --dims 128   # a quick run

The catalog is ``tools/bench_search.py``'s (``--db``, same data: many gaussian clusters plus noise rows,
built once and reused). Measured and printed:

Every time is printed as wall and cpu (this process's CPU seconds over the CPUs: what an idle
machine takes for this CPU-bound work; the machine may be shared).

* the whole ``advtool uniqueness`` operation through the library (vector cache, exact L1 kNN with the
  native kernel, scores written to the catalog) and, with ``--parts whole,knn,baseline``, its kNN part
  alone (a second full pass);
* the baseline: faiss ``IndexFlat(d, METRIC_L1)`` searching the same K + 1 neighbours. A full faiss
  all-rows run takes far longer than the target on a small machine, so it runs on ``--baseline-queries``
  rows (default 2,000) against the whole pool, and the catalog's kNN runs on the same rows, giving a
  direct ratio; the baseline's full time is extrapolated from it (it is linear in the queries) and said so;
* that both found the same neighbour scores on those rows (tie-aware: the K-th scores agree within
  the float32 tolerance), so the ratio compares equal work.
"""

from __future__ import annotations

import argparse
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

from bench_search import build  # noqa: E402
from catalog import Catalog  # noqa: E402
from catalog.quality import uniqueness_scores  # noqa: E402
from catalog.scoring import score_from_l1  # noqa: E402
from catalog.search.l1_knn import kernel, knn_l1  # noqa: E402


def cpu() -> float:
    """This process's CPU seconds (all threads) / the CPUs: the idle-machine time of CPU-bound work."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) / (os.cpu_count() or 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--neighbours", type=int, default=10)
    ap.add_argument("--baseline-queries", type=int, default=2_000)
    ap.add_argument("--parts", default="whole,baseline",
                    help="what to run, comma-separated: whole (the library operation), knn (the kNN and scores "
                         "alone, a second full pass), baseline (faiss beside the catalog's kNN on the same rows)")
    ap.add_argument("--db", help="catalog (default /tmp/bench_search_<n>x<dims>.duckdb, shared with bench_search)")
    args = ap.parse_args(argv)
    db = Path(args.db or f"/tmp/bench_search_{args.n}x{args.dims}.duckdb")
    cat = Catalog(db)
    emb = build(cat, db, args.n, args.dims)
    k = args.neighbours
    print(f"uniqueness of {args.n:,} × {args.dims}, K = {k}, L1 kernel {kernel()}, {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)

    parts = set(args.parts.split(","))
    whole = None
    if "whole" in parts:
        t0, c0 = time.perf_counter(), cpu()
        run = cat.uniqueness.compute(emb.name, neighbours=k)
        whole, whole_cpu = time.perf_counter() - t0, cpu() - c0
        print(f"catalog, whole operation (cache, kNN, stored): {whole:8.1f} s wall, {whole_cpu:8.1f} s cpu  "
              f"({run.count:,} rows)", flush=True)
    _, matrix = cat.cache.load(emb)
    matrix = np.ascontiguousarray(matrix)
    if "knn" in parts:
        t0, c0 = time.perf_counter(), cpu()
        uniqueness_scores(matrix, k)
        print(f"catalog, kNN and scores only:                  {time.perf_counter() - t0:8.1f} s wall, "
              f"{cpu() - c0:8.1f} s cpu", flush=True)
    if "baseline" not in parts:
        return 0

    m = min(args.baseline_queries, args.n)
    rows = np.random.default_rng(1).choice(args.n, size=m, replace=False)
    q = np.ascontiguousarray(matrix[rows])
    t0, c0 = time.perf_counter(), cpu()
    ours_d, _ = knn_l1(q, matrix, k + 1)
    ours, ours_cpu = time.perf_counter() - t0, cpu() - c0
    index = faiss.IndexFlat(args.dims, faiss.METRIC_L1)
    index.add(matrix)
    t0, c0 = time.perf_counter(), cpu()
    base_d, _ = index.search(q, k + 1)
    base, base_cpu = time.perf_counter() - t0, cpu() - c0
    tol = 2e-5 * float(np.max(base_d[:, -1])) + 1e-5  # float32 sums in different orders
    agree = float(np.mean(np.abs(ours_d[:, -1] - base_d[:, -1]) <= tol))
    gap = float(np.max(np.abs(score_from_l1(ours_d, args.dims) - score_from_l1(base_d, args.dims))))
    print(f"same {m:,} query rows: catalog kNN {ours:6.2f} s wall / {ours_cpu:6.2f} s cpu, faiss IndexFlat L1 "
          f"{base:6.2f} s wall / {base_cpu:6.2f} s cpu (faiss / catalog = {base / max(ours, 1e-9):.1f}× wall, "
          f"{base_cpu / max(ours_cpu, 1e-9):.1f}× cpu); K-th neighbour agrees on {agree:.4f} of rows, "
          f"largest score gap {gap:.2e}")
    extrapolated, extrapolated_cpu = base * args.n / m, base_cpu * args.n / m
    ratio = f"  (faiss / catalog whole operation = {extrapolated_cpu / whole_cpu:.1f}× cpu)" if whole else ""
    print(f"faiss IndexFlat L1 over all {args.n:,} rows (extrapolated from {m:,}): {extrapolated:8.1f} s wall, "
          f"{extrapolated_cpu:8.1f} s cpu{ratio}")
    if whole is not None:
        print(f"target ≤ 60 s (judged on cpu): {'met' if whole_cpu <= 60 else 'NOT met'} "
              f"({whole_cpu:.1f} s cpu, {whole:.1f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
