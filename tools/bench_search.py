"""Benchmark of anchor search: our exact and approximate backends against raw faiss and numpy.

    .venv/bin/python tools/bench_search.py                      # 1M × 512 (builds the catalog once)
    .venv/bin/python tools/bench_search.py --n 100000 --db /tmp/bench100k.duckdb

The catalog is built once at ``--db`` (default ``/tmp/bench_search_<n>x<dims>.duckdb``) and reused:
data rows, a custom embedding ``bench`` and vectors drawn from a mixture of many gaussian clusters
with per-cluster spread plus 10 % background noise (not trivially clustered). Everything below is
measured in the same run, side by side, and printed as ratios:

* exact search (``Catalog.search``, the whole query: anchor lookup to first page) on the 8-bit codes
  and on the float32 path (``CATALOG_SEARCH_CODES=on|off``) for range [0.85, 1] with total and page,
  top-100 of [0, 1], 20 anchors mean and max, and a filtered range, each against a bare float32 scan of
  the cache on all scan threads (faiss, rows split), one raw faiss scan (one core) and chunked numpy;
  whether the two paths gave the same results, and which SAD kernel ran (AVX-512 BW, AVX2, portable);
* approximate backend: p50 latency and recall against exact, for top-100 and for score ranges,
  with anchors drawn from the clustered rows, and separately for anchors that are noise rows;
* peak memory of a search process vs the raw float32 vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog  # noqa: E402
from bench_common import timed  # noqa: E402
from catalog.errors import NotFound  # noqa: E402

CHUNK = 100_000


def vectors(n, dims, start, stop, seed=0, clusters=2000):
    """Rows ``start:stop`` of the dataset (deterministic, generated in pieces)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.15, 1.2, size=clusters).astype(np.float32)
    out = np.empty((stop - start, dims), dtype=np.float32)
    for s in range(start, stop, CHUNK):
        e = min(stop, s + CHUNK)
        r = np.random.default_rng([seed, s])
        which = r.integers(0, clusters, size=e - s)
        block = centres[which] + (spread[which, None] / np.sqrt(dims)) * r.standard_normal((e - s, dims), dtype=np.float32)
        noise = r.random(e - s) < 0.10
        block[noise] = r.standard_normal((int(noise.sum()), dims), dtype=np.float32)
        out[s - start:e - start] = block
    return out


def noise_rows(n, dims, seed=0, clusters=2000):
    """Which rows of :func:`vectors` are background noise (uniformly random directions)."""
    rng = np.random.default_rng(seed)
    rng.standard_normal((clusters, dims))
    rng.uniform(0.15, 1.2, size=clusters)
    out = np.empty(n, dtype=bool)
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        r = np.random.default_rng([seed, s])
        r.integers(0, clusters, size=e - s)
        r.standard_normal((e - s, dims), dtype=np.float32)
        out[s:e] = r.random(e - s) < 0.10
    return out


def build(cat, db, n, dims):
    try:
        emb = cat.get_embedding("bench")
        if emb.get_imported_vector_count() == n and emb.dims == dims:
            return emb
        raise SystemExit(f"{db} holds a different benchmark; pass another --db")
    except NotFound:
        pass
    t0 = time.perf_counter()
    records = Path(str(db) + ".rows.ndjson")
    with open(records, "w") as fh:
        for i in range(n):
            fh.write(f'{{"global_key": "r{i:07d}", "text": "row {i}", "metadata": {{"part": {i % 10}}}}}\n')
    cat.import_datarows([records])
    records.unlink()
    emb = cat.create_embedding("bench", dims)
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        emb.import_vectors([f"r{i:07d}" for i in range(s, e)], vectors(n, dims, s, e))
        print(f"  imported {e}/{n} vectors", file=sys.stderr)
    print(f"built catalog in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return emb.refresh()


def memory_child(db, anchors_json, backend):
    """Run in a fresh process: searches only, then report peak RSS (MiB)."""
    cat = Catalog(db)
    anchors = json.loads(anchors_json)
    for a in anchors:
        cat.search("bench", anchors=[a], backend=backend)
        cat.search("bench", anchors=[a], min_score=0.0, limit=100, backend=backend)
    cat.search("bench", anchors=anchors[:20], aggregate="max", backend=backend)
    print(json.dumps({"peak_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's before exec)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--db", help="catalog to build once and reuse (default /tmp/bench_search_<n>x<dims>.duckdb)")
    ap.add_argument("--queries", type=int, default=20, help="anchors per measurement")
    ap.add_argument("--approx-queries", type=int, default=40, help="clustered anchors for the approximate rows")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exact-only", action="store_true", help="skip the approximate index and the memory runs")
    ap.add_argument("--memory-child", nargs=2, metavar=("ANCHORS_JSON", "BACKEND"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    db = args.db or f"/tmp/bench_search_{args.n}x{args.dims}.duckdb"
    if args.memory_child:
        memory_child(db, *args.memory_child)
        return 0

    import faiss

    from catalog.scoring import score_from_l1
    from catalog.threads import threads

    cat = Catalog(db)
    emb = build(cat, db, args.n, args.dims)
    t0 = time.perf_counter()
    ids, mat = cat.cache.load(emb)
    cache_s = time.perf_counter() - t0
    n, dims = mat.shape
    _ = float(np.asarray(mat[::97]).sum())  # page the matrix in (as a warm dashboard would have)
    key_of = {}
    rng = np.random.default_rng(42)
    noise = noise_rows(n, dims)
    # anchors from the clustered rows (a noise row's "neighbours" are arbitrary: all score ≈ 0.44);
    # noise anchors are measured separately below
    picks = np.sort(rng.choice(np.flatnonzero(~noise), size=20 + max(args.queries, args.approx_queries),
                               replace=False))
    noise_picks = rng.choice(np.flatnonzero(noise), size=max(5, args.queries // 4), replace=False)
    anchors = [f"r{int(i):07d}" for i in picks]
    anchor_ids = cat.resolve_row_ids(anchors)
    pos = np.searchsorted(ids, np.asarray(anchor_ids, dtype="U36"))
    key_of.update(zip(anchor_ids, anchors))
    anchors = anchor_ids  # anchors by row id, as the dashboard's "find similar" passes them
    noise_anchors = cat.resolve_row_ids([f"r{int(i):07d}" for i in noise_picks])
    q_vecs = np.asarray(mat[pos], dtype=np.float32)
    raw_mib = n * dims * 4 / 2**20
    rows = []

    def row(name, seconds, baseline=None, note=""):
        ratio = f"{seconds / baseline:.2f}×" if baseline else ""
        rows.append((name, seconds * 1000, ratio, note, os.getloadavg()[0]))

    print(f"{n} × {dims} float32 ({raw_mib:.0f} MiB), {threads()} scan threads, cache load {cache_s:.1f} s",
          file=sys.stderr)
    # -- exact: ours (8-bit codes, and the float32 scan) vs bare float32 scans vs numpy -------------
    from catalog.search.scan import l1_scan
    from catalog.vectors import codes as codes_mod

    t0 = time.perf_counter()
    codes_mod.load(cat.cache, emb)  # built once per embedding version (then read from the cache folder)
    codes_s = time.perf_counter() - t0
    isa = codes_mod.kernel_isa()
    faiss1_s = statistics.median(
        timed(lambda q=q: faiss.pairwise_distances(q[None], mat, faiss.METRIC_L1), 1)[0] for q in q_vecs[:args.queries])
    scan2_s = statistics.median(timed(lambda q=q: l1_scan(mat, q[None]), 1)[0] for q in q_vecs[:args.queries])

    def numpy_scan(q):
        out = np.empty(n, dtype=np.float32)
        for s in range(0, n, 65_536):
            out[s:s + 65_536] = np.abs(mat[s:s + 65_536] - q).sum(axis=1)
        return score_from_l1(out, dims)

    numpy_s = statistics.median(timed(lambda q=q: numpy_scan(q), 1)[0] for q in q_vecs[:3])
    row(f"bare float32 scan, {threads()} cores (faiss, rows split)", scan2_s, scan2_s, "baseline")
    row("raw faiss flat-L1 scan (1 query, 1 core)", faiss1_s, scan2_s)
    row("numpy brute force (chunked)", numpy_s, scan2_s)

    def exact(mode, **kw):
        os.environ[codes_mod.CODES_ENV] = mode
        return cat.search("bench", backend="exact", **kw)

    shapes = [
        ("[0.85,1], total + page of 50", lambda m, a: exact(m, anchors=[a], min_score=0.85), args.queries),
        ("[0,1] top-100 (all rows match)", lambda m, a: exact(m, anchors=[a], min_score=0.0, limit=100), args.queries),
        ("20 anchors mean, [0.85,1]", lambda m, a: exact(m, anchors=anchors[:20], min_score=0.85), args.repeat),
        ("20 anchors max (one pass), [0.85,1]", lambda m, a: exact(m, anchors=anchors[:20], aggregate="max",
                                                                   min_score=0.85), args.repeat),
        ("20 anchors max, [0,1] top-100", lambda m, a: exact(m, anchors=anchors[:20], aggregate="max", min_score=0.0,
                                                             limit=100), args.repeat),
        ("[0.5,1] + metadata filter", lambda m, a: exact(m, anchors=[a], min_score=0.5, where={"part": {"$lt": 5}}),
         args.repeat),
    ]
    one = {}
    for label, fn, reps in shapes:
        got = {}
        for mode in ("off", "on"):
            fn(mode, anchors[0])  # warm
            got[mode] = statistics.median(timed(lambda a=a: fn(mode, a), 1)[0] for a in anchors[:reps])
        same = fn("off", anchors[1]).to_dict(details=True) == fn("on", anchors[1]).to_dict(details=True)
        one.setdefault(label, got)
        row(f"ours exact, float32 path, {label}", got["off"], scan2_s)
        row(f"ours exact, 8-bit codes ({isa}), {label}", got["on"], scan2_s,
            f"codes/float32 = {got['on'] / got['off']:.2f}×; numpy/ours = {numpy_s / got['on']:.0f}×; "
            f"same results: {same}")
    os.environ.pop(codes_mod.CODES_ENV, None)
    auto = statistics.median(timed(lambda a=a: cat.search("bench", anchors=[a], backend="exact"), 1)[0]
                             for a in anchors[:args.queries])
    row("ours exact, no range given (automatic: every row scored for the histogram)", auto, scan2_s,
        "float32 path (the histogram needs every score)")
    base = one["[0.85,1], total + page of 50"]["on"]
    row("codes: 20 anchors max vs 1 anchor", one["20 anchors max (one pass), [0.85,1]"]["on"], base, "vs 1 anchor (codes)")
    row(f"codes build/load, once per version", codes_s, scan2_s, f"kernel {isa}")
    if args.exact_only:
        return report(rows, n, dims, None, cache_s, raw_mib, {})
    # -- approximate ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    from catalog.search.ivf import FORMAT
    info = cat.search_index_info("bench")
    if not info or info.get("format") != FORMAT or info.get("version") != emb.refresh().version:
        info = cat.build_search_index("bench")  # missing, or written by an older format: rebuilt
    build_s = time.perf_counter() - t0
    cat.search("bench", anchors=[anchors[0]], backend="approximate")  # load (mmap) the index
    def approx_runs(group):
        lat_top, lat_rng, rec_top, rec_rng, sizes = [], [], [], [], []
        for a in group:
            exact = cat.search("bench", anchors=[a], min_score=0.0, limit=100, backend="exact")
            t, approx = timed(lambda a=a: cat.search("bench", anchors=[a], min_score=0.0, limit=100,
                                                     backend="approximate"), 1)
            lat_top.append(t)
            rec_top.append(len({h.id for h in exact.results} & {h.id for h in approx.results}) / len(exact.results))
            for k in (30, 99):  # ranges holding about 30 and 100 rows
                lo = exact.results[k].score
                want = set(cat.search_row_ids("bench", anchors=[a], min_score=lo, backend="exact"))
                t, got = timed(lambda a=a, lo=lo: cat.search("bench", anchors=[a], min_score=lo, limit=None,
                                                             backend="approximate"), 1)
                lat_rng.append(t)
                sizes.append(len(want))
                rec_rng.append(len(want & {h.id for h in got.results}) / len(want))
        return lat_top, lat_rng, rec_top, rec_rng, sizes

    lat_top, lat_rng, rec_top, rec_rng, sizes = approx_runs(anchors[20:20 + args.approx_queries])
    faiss_s = scan2_s
    row("approximate top-100, p50", statistics.median(lat_top), faiss_s,
        f"recall@100 {np.mean(rec_top):.4f} (min {min(rec_top):.2f}); p90 {np.percentile(lat_top, 90) * 1000:.1f} ms")
    row("approximate score range, p50", statistics.median(lat_rng), faiss_s,
        f"range recall {np.mean(rec_rng):.4f} (min {min(rec_rng):.2f}), ~{int(np.median(sizes))} rows; "
        f"p90 {np.percentile(lat_rng, 90) * 1000:.1f} ms")
    lat_top, lat_rng, rec_top, rec_rng, _ = approx_runs(noise_anchors)
    row("approximate top-100, noise anchors, p50", statistics.median(lat_top), faiss_s,
        f"recall@100 {np.mean(rec_top):.4f} (min {min(rec_top):.2f}) [random directions]")
    row("approximate score range, noise anchors, p50", statistics.median(lat_rng), faiss_s,
        f"range recall {np.mean(rec_rng):.4f} (min {min(rec_rng):.2f})")
    dflt, r = timed(lambda: cat.search("bench", anchors=[anchors[21]]), args.repeat)
    row("auto backend, default [0.85,1]", dflt, faiss_s, f"answered by {r.backend}")
    # -- memory -----------------------------------------------------------------------------------
    mem = {}
    for backend in ("exact", "approximate"):
        out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--dims", str(args.dims), "--db", db,
                              "--memory-child", json.dumps(anchors[:20]), backend],
                             capture_output=True, text=True, check=True)
        mem[backend] = (json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"], os.getloadavg()[0])

    return report(rows, n, dims, info, cache_s, raw_mib, mem)


def report(rows, n, dims, info, cache_s, raw_mib, mem):
    from catalog.threads import threads
    from catalog.vectors import codes as codes_mod

    print(f"\n{n} × {dims}, {threads()} threads, SAD kernel {codes_mod.kernel_isa()}, cache build/load {cache_s:.1f} s")
    if info:
        print(f"\n{n} × {dims}, {threads()} threads; index: {info['nlist']} lists (largest {info.get('largest_list')} rows), "
              f"alpha {info.get('alpha')}, calibration needed up to {info['nprobe']} lists (cap {info.get('max_lists')}), "
              f"calibrated recall {info['recall_at_100']} (unstructured sample share "
              f"{info.get('unstructured_share')}, their recall {info.get('unstructured_recall')}), built in {info.get('build_seconds')} s; "
              f"cache build/load {cache_s:.1f} s\n")
    print("| measurement | median ms | ratio | note | load (1 min) |")
    print("|---|---:|---:|---|---:|")
    for name, ms, ratio, note, load in rows:
        print(f"| {name} | {ms:.1f} | {ratio} | {note} | {load:.1f} |")
    for backend, (mib, load) in mem.items():
        print(f"| peak RSS, {backend} search process | {mib:.0f} MiB | {mib / raw_mib:.2f}× | "
              f"raw float32 vectors {raw_mib:.0f} MiB | {load:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
