"""UMAP of N × D (issue #17, target 100,000 × 512 ≤ 120 s): the exact L1 neighbour graph of the catalog's
kernel handed to umap (``knn="exact"``) against umap's own nndescent graph, same data, same run.

Both are timed after a small warm-up run of each (numba compiles umap's and pynndescent's code on first
use; that compile time is printed apart). For each: wall seconds and **cpu** = the process's CPU seconds
(all threads) / the cores, i.e. the wall time on an otherwise idle machine of that many cores; plus how
much the two graphs agree (share of nndescent's neighbours that are exact neighbours, on a sample).

    python tools/bench_umap.py --n 20000
    python tools/bench_umap.py --n 100000 --dims 512
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_map import clustered  # noqa: E402

from catalog.maps import projection  # noqa: E402


def timed(fn, *args, **kwargs):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--only", choices=("exact", "nndescent"), default=None, help="run one graph only")
    args = ap.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    warm = clustered(2_000, args.dims, None, seed=5)
    rows = []
    graphs = ("exact", "nndescent")
    for knn in graphs:
        _, w, c = timed(projection.umap, warm, knn=knn)
        rows.append((f"warm-up 2,000 × {args.dims}, {knn} (numba compile on first use)", w, c / args.cores))
    mat = clustered(args.n, args.dims, None, seed=2)
    for knn in ([args.only] if args.only else graphs):
        if knn == "exact":
            _, w, c = timed(projection.exact_knn, mat, projection.UMAP_NEIGHBOURS)
            rows.append((f"exact L1 graph alone, {args.n:,} × {args.dims}, k = {projection.UMAP_NEIGHBOURS}", w,
                         c / args.cores))
        xy, w, c = timed(projection.umap, mat, knn=knn)
        rows.append((f"UMAP {args.n:,} × {args.dims}, graph {knn}", w, c / args.cores))
        print(f"  {rows[-1]}", flush=True)
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print("\n| measurement | wall s | cpu s |\n|---|---:|---:|")
    for what, w, c in rows:
        print(f"| {what} | {w:.1f} | {c:.1f} |")


if __name__ == "__main__":
    main()
