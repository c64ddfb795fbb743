"""Benchmark of the Qdrant engine (Qdrant Edge, in-process) beside the exact and IVF backends, in one run.

    .venv/bin/python tools/bench_engine.py                       # 1M × 512 (the catalog of bench_search.py)
    .venv/bin/python tools/bench_engine.py --n 50000 --dims 128  # a quick run

The catalog is the one ``tools/bench_search.py`` builds (``--db``, same data: a mixture of many
gaussian clusters plus 10 % noise rows) and is reused. Measured side by side and printed:

* sync throughput (vectors/s, a full sync into a fresh ``edge:`` folder) and a no-change resync;
* HNSW index build time and its calibration (``Engines.index``: ``EdgeShard.optimize``, then
  ``hnsw_ef`` chosen against the exact scan, with the measured recall);
* score-range searches (ranges holding ~100 rows around clustered anchors), p50/p99 for the exact,
  approximate (IVF), qdrant (exact mode) and qdrant-hnsw backends through ``Catalog.search``, and each
  one's recall against the exact rows;
* top-100 through ``Catalog.search`` on every backend, p50/p99 and recall against the exact top-100,
  and straight on the engine's HNSW index (``SearchParams(hnsw_ef=ef)``) for a sweep of ef;
* the process's peak memory against the raw float32 vectors.
Targets (issue 16): sync ≥ 20k vectors/s; HNSW p50 ≤ 5 ms at recall ≥ 0.99 for clustered anchors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_search import build, noise_rows, peak_rss_mib  # noqa: E402
from catalog import Catalog, Page, SearchSpec  # noqa: E402
from catalog.engine.client import connect, disconnect  # noqa: E402


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--db", help="catalog (default /tmp/bench_search_<n>x<dims>.duckdb, shared with bench_search)")
    ap.add_argument("--engine", help="edge folder (default <db>.edge, recreated)")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256, 512], help="HNSW ef values at query time")
    args = ap.parse_args(argv)
    db = Path(args.db or f"/tmp/bench_search_{args.n}x{args.dims}.duckdb")
    cat = Catalog(db)
    emb = build(cat, db, args.n, args.dims)
    folder = Path(args.engine or str(db) + ".edge")
    disconnect(f"edge:{folder.absolute()}")
    shutil.rmtree(folder, ignore_errors=True)
    cat.engines.set_engine(f"edge:{folder}")
    ids, _ = cat.cache.load(emb)
    rng = np.random.default_rng(5)
    clustered = np.flatnonzero(~noise_rows(args.n, args.dims))
    anchors = [str(ids[i]) for i in rng.choice(clustered, size=args.queries, replace=False)]

    print(f"# engine benchmark, {args.n} x {args.dims}, Qdrant Edge, {args.queries} clustered anchors")
    t0 = time.perf_counter()
    (report,) = cat.engines.sync(["bench"])
    sync_s = time.perf_counter() - t0
    print(f"sync: {report.sent} vectors in {sync_s:.1f} s = {report.sent / sync_s:,.0f} vectors/s (target >= 20,000)")
    t0 = time.perf_counter()
    cat.engines.sync(["bench"])
    print(f"resync without changes: {time.perf_counter() - t0:.1f} s")
    cfg = cat.engines.config()
    engine, name = connect(cfg), cfg.collection(emb)
    meta = cat.engines.index("bench")
    print(f"HNSW index build (optimize): {meta['index_seconds']:.1f} s, {meta['indexed_vectors']} vectors indexed; "
          f"calibration {meta['calibration_seconds']:.1f} s: hnsw_ef {meta['ef']}, measured recall {meta['recall']:.4f}")

    t0 = time.perf_counter()
    cat.build_search_index("bench")
    print(f"IVF index build (approximate backend): {time.perf_counter() - t0:.1f} s")

    # score ranges holding about 100 rows
    ranges = {}
    for a in anchors:
        top = cat.search(SearchSpec("bench", anchors=[a], min_score=0.0), Page(100), backend="exact").results
        ranges[a] = top[-1].score
    backends = ("exact", "approximate", "qdrant", "qdrant-hnsw")
    for label, page, spec_of in (("score range (~100 rows)", Page(None), lambda a: SearchSpec(
            "bench", anchors=[a], min_score=ranges[a])), ("top-100", Page(100), lambda a: SearchSpec(
            "bench", anchors=[a], min_score=0.0))):
        times, recall = {b: [] for b in backends}, {b: [] for b in backends}
        for a in anchors:
            got = {}
            for b in backends:
                t0 = time.perf_counter()
                res = cat.search(spec_of(a), page, backend=b)
                times[b].append(time.perf_counter() - t0)
                got[b] = {h.id for h in res.results}
            for b in backends:
                recall[b].append(len(got[b] & got["exact"]) / max(1, len(got["exact"])))
        for b, t in times.items():
            ratio = np.median(t) / np.median(times["exact"])
            print(f"{label} {b:>11}: p50 {pct(t, 50):7.2f} ms  p99 {pct(t, 99):7.2f} ms  ({ratio:.2f}x exact)  "
                  f"recall {np.mean(recall[b]):.4f}")

    # top-100 on the HNSW index, straight on the engine
    import qdrant_edge as q
    shard = engine._shard(name)
    matrix = cat.cache.load(emb)[1]
    exact_t, want = [], {}
    for a in anchors:
        t0 = time.perf_counter()
        res = cat.search(SearchSpec("bench", anchors=[a], min_score=0.0, include_anchors=True), Page(100),
                         backend="exact").results
        exact_t.append(time.perf_counter() - t0)
        want[a] = {h.id for h in res}
    for ef in args.ef:
        hnsw_t, rec = [], []
        for a in anchors:
            qv = np.asarray(matrix[np.searchsorted(ids, a)], np.float32).tolist()
            t0 = time.perf_counter()
            pts = shard.query(q.QueryRequest(limit=100, query=q.Query.Nearest(qv), with_payload=False,
                                             with_vector=False, params=q.SearchParams(hnsw_ef=ef, exact=False)))
            hnsw_t.append(time.perf_counter() - t0)
            rec.append(len({str(p.id) for p in pts} & want[a]) / max(1, len(want[a])))
        print(f"top-100 HNSW (ef={ef}): p50 {pct(hnsw_t, 50):.2f} ms  p99 {pct(hnsw_t, 99):.2f} ms  recall "
              f"{np.mean(rec):.4f} (target p50 <= 5 ms at recall >= 0.99)")
    print(f"top-100 exact scan:      p50 {pct(exact_t, 50):.2f} ms  p99 {pct(exact_t, 99):.2f} ms")
    raw = args.n * args.dims * 4 / 2**20
    print(f"peak memory: {peak_rss_mib():,.0f} MiB ({peak_rss_mib() / raw:.2f}x the raw float32 vectors, {raw:,.0f} MiB)")
    cat.engines.unset_engine()


if __name__ == "__main__":
    main()
