"""Benchmark label-by-similarity: speed against baselines, and quality on handwritten digits.

(a) speed: Q query rows against a P-row labeled pool at D dims (default 10k × 100k × 512), end to
    end through ``Catalog.label_by_similarity`` (vector cache warm), and its neighbour search alone
    (the native kernel of ``catalog.search.l1_knn`` when built), measured side by side in the same run with
    the faiss path of ``catalog.search.l1_knn`` (all queries unless ``--faiss-queries``) and, on a subset
    of the queries extrapolated per query, a plain faiss ``IndexFlat(METRIC_L1)`` and numpy brute
    force (|q − pool| summed per query). Prints the load average: the machine may be shared.
(b) quality: scikit-learn's ``load_digits`` (1797 8×8 images) rendered as PNGs, 10% of the rows
    labeled at random (per seed), the other 90% labeled by similarity; top-label accuracy,
    precision and coverage of the suggestions, for the ``color-texture`` descriptor and for the raw
    pixels imported as a 64-d custom embedding, at the default parameters (k=10, threshold 0.30) and
    at the pair ``evaluate`` recommends from the labeled 10%.

    .venv/bin/python tools/bench_labeling.py                # both parts
    .venv/bin/python tools/bench_labeling.py --part speed --queries 2000 --pool 20000   # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog import Catalog  # noqa: E402
from catalog.search import l1_knn  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- (a) speed -------------------------------------------------------------------------------------
def clustered(n, d, classes, rng):
    centres = rng.standard_normal((classes, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = centres[y] + 0.8 * rng.standard_normal((n, d)).astype(np.float32)
    return x, y


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def bench_speed(work: Path, nq: int, npool: int, dims: int, nbase: int, nfaiss: int, k: int = 10) -> dict:
    rng = np.random.default_rng(0)
    n = nq + npool
    x, y = clustered(n, dims, 100, rng)
    keys = [f"row-{i:07d}" for i in range(n)]
    records = work / "rows.ndjson"
    with open(records, "w") as fh:
        for key in keys:
            fh.write(f'{{"global_key": "{key}", "text": "{key}"}}\n')
    cat = Catalog(work / "speed.duckdb")
    t0 = time.perf_counter()
    cat.import_datarows([records])
    emb = cat.create_embedding("bench", dims)
    emb.import_vectors(keys, x)
    labels = work / "labels.csv"
    with open(labels, "w") as fh:
        fh.write("id,label\n")
        for key, c in zip(keys[nq:], y[nq:]):
            fh.write(f"{key},class-{c}\n")
    cat.import_labels(labels)
    log(f"setup {time.perf_counter() - t0:.1f} s")
    emb = cat.get_embedding("bench")
    t0 = time.perf_counter()
    ids, mat = cat.cache.load(emb)
    cache_s = time.perf_counter() - t0
    load_before = load_average()

    t0 = time.perf_counter()
    res = cat.label_by_similarity("bench", "unlabeled", results=k)
    ours_s = time.perf_counter() - t0
    assert len(res.results) == nq
    acc = float(np.mean([r.labels[0].label == f"class-{y[keys.index(r.global_key)]}" for r in res.results[:500]]))
    log(f"label_by_similarity {ours_s:.2f} s (kernel: {l1_knn.kernel()})")

    pos = {r: i for i, r in enumerate(ids)}
    xn = np.asarray(mat)
    order = np.array([pos[r] for r in cat.resolve_row_ids(keys)])
    queries, pool = np.ascontiguousarray(xn[order[:nq]]), np.ascontiguousarray(xn[order[nq:]])

    out = {"queries": nq, "pool": npool, "dims": dims, "k": k, "cache_build_s": cache_s,
           "label_by_similarity_s": ours_s, "label_by_similarity_kernel": l1_knn.kernel(),
           "top_label_accuracy_first_500": acc, "threads": l1_knn.threads()}
    native = l1_knn.native_available()
    if native:
        stats = {}
        t0 = time.perf_counter()
        d_nat, i_nat = l1_knn.knn_l1_native(queries, pool, k, stats=stats)
        out["native_s"] = time.perf_counter() - t0
        out["native_full_compare_share"] = stats["full_compares"] / stats["pairs"]
        out["native_rescored_per_query"] = stats["rescored"] / nq
        out["native_avx2"] = stats["avx2"]
        log(f"native kernel {out['native_s']:.2f} s")

    nf = nq if nfaiss <= 0 else min(nq, nfaiss)
    t0 = time.perf_counter()
    d_fa, i_fa = l1_knn.knn_l1_faiss(queries[:nf], pool, k)
    out["faiss_blocked_s"] = (time.perf_counter() - t0) / nf * nq
    out["faiss_blocked_queries"] = nf
    log(f"faiss blocked path {out['faiss_blocked_s']:.2f} s (from {nf} queries)")

    sub = queries[:nbase]
    t0 = time.perf_counter()
    i_np = np.empty((nbase, k), dtype=np.int64)
    for j, q in enumerate(sub):
        dist = np.abs(pool - q).sum(axis=1)
        top = np.argpartition(dist, k)[:k]
        i_np[j] = top[np.lexsort((top, dist[top]))]
    out["numpy_bruteforce_s"] = (time.perf_counter() - t0) / nbase * nq
    out["numpy_queries"] = nbase

    import faiss

    nflat = min(nq, nbase * 4)
    index = faiss.IndexFlat(dims, faiss.METRIC_L1)
    index.add(pool)
    t0 = time.perf_counter()
    _, i_flat = index.search(queries[:nflat], k)
    out["faiss_indexflat_s"] = (time.perf_counter() - t0) / nflat * nq
    out["faiss_indexflat_queries"] = nflat
    out["load_average_before"], out["load_average_after"] = load_before, load_average()

    ref = out["native_s"] if native else out["faiss_blocked_s"]
    out["ours_s"] = ref
    for name in ("faiss_blocked", "faiss_indexflat", "numpy_bruteforce"):
        out[f"ratio_{name}_over_ours"] = out[f"{name}_s"] / ref
    i_ours = i_nat if native else i_fa
    out["same_neighbours_as_numpy"] = float(np.mean([set(a) == set(b) for a, b in zip(i_ours[:nbase], i_np)]))
    out["same_neighbours_as_faiss_flat"] = float(np.mean([set(a) == set(b) for a, b in zip(i_ours[:nflat], i_flat)]))
    if native:
        out["native_identical_to_faiss_path"] = bool(np.array_equal(i_nat[:nf], i_fa) and np.array_equal(d_nat[:nf], d_fa))
    return out


def print_speed(s: dict):
    print(f"\n## Speed: {s['queries']} queries x {s['pool']} labeled rows, {s['dims']}-d, k={s['k']}, "
          f"{s['threads']} threads; load average {s['load_average_before']} (before) / {s['load_average_after']} (after)")
    print("| what | seconds | ratio vs ours (search) |\n|---|---:|---:|")
    print(f"| label_by_similarity end to end (cache warm, kernel: {s['label_by_similarity_kernel']}) "
          f"| {s['label_by_similarity_s']:.2f} | |")
    if "native_s" in s:
        print(f"| its neighbour search: native kernel (8-bit bounds + exact float32 re-score) | {s['native_s']:.2f} | 1.0 |")
    print(f"| faiss path (pool in cache-sized blocks; from {s['faiss_blocked_queries']} queries) "
          f"| {s['faiss_blocked_s']:.2f} | {s['ratio_faiss_blocked_over_ours']:.1f}x slower |")
    print(f"| faiss IndexFlat(METRIC_L1), unblocked (from {s['faiss_indexflat_queries']} queries) "
          f"| {s['faiss_indexflat_s']:.2f} | {s['ratio_faiss_indexflat_over_ours']:.1f}x slower |")
    print(f"| numpy brute force (from {s['numpy_queries']} queries) | {s['numpy_bruteforce_s']:.2f} "
          f"| {s['ratio_numpy_bruteforce_over_ours']:.1f}x slower |")
    print(f"| vector cache build (once per embedding version) | {s['cache_build_s']:.2f} | |")
    print(f"same neighbours as numpy: {s['same_neighbours_as_numpy']:.3f}, "
          f"as faiss flat: {s['same_neighbours_as_faiss_flat']:.3f}")
    if "native_s" in s:
        print(f"native identical to the faiss path (ids, distances, order): {s['native_identical_to_faiss_path']}; "
              f"AVX2: {s['native_avx2']}; pairs needing the full 8-bit compare: {100 * s['native_full_compare_share']:.2f}%; "
              f"rows re-scored in float32 per query: {s['native_rescored_per_query']:.0f}")


# -- (b) quality on digits -------------------------------------------------------------------------
def render_digits(folder: Path, size: int):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    keys = []
    for i, (img, _) in enumerate(zip(digits.images, digits.target)):
        px = np.clip(255.0 - img * (255.0 / 16.0), 0, 255).astype(np.uint8)  # as sample_data/: dark ink on white
        Image.fromarray(px, mode="L").resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{i:04d}.png")
        keys.append(f"{i:04d}.png")
    return keys, digits.data.astype(np.float32), digits.target


def score_run(res, truth: dict) -> dict:
    n = len(res.results)
    top_ok = sum(1 for r in res.results if r.labels and r.labels[0].label == truth[r.global_key])
    suggested = [(s.label, truth[r.global_key]) for r in res.results for s in r.labels if s.suggested]
    covered = sum(1 for r in res.results if r.suggested)
    return {"accuracy": top_ok / n, "precision": (sum(a == b for a, b in suggested) / len(suggested)) if suggested else None,
            "coverage": covered / n}


def bench_quality(work: Path, seeds: int, size: int, fraction: float = 0.10) -> dict:
    keys, pixels, target = render_digits(work / "digits", size)
    cat = Catalog(work / "digits.duckdb")
    cat.import_datarows([work / "digits"])
    truth = {k: f"digit-{t}" for k, t in zip(keys, target)}
    embeddings = []
    try:
        t0 = time.perf_counter()
        cat.compute_embeddings("color-texture")
        log(f"color-texture computed in {time.perf_counter() - t0:.1f} s")
        embeddings.append("color-texture")
    except Exception as exc:  # noqa: BLE001 - report what is missing instead of failing the whole run
        log(f"color-texture not available: {exc}")
    pix = cat.create_embedding("digits-pixels", 64)
    pix.import_vectors(keys, pixels)
    embeddings.append("digits-pixels")
    out = {}
    grid_k, grid_t = (1, 2, 3, 5, 10), tuple(round(x, 2) for x in np.arange(0.1, 0.95, 0.05))
    for name in embeddings:
        runs = {"default": [], "recommended": []}
        picked = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = sorted(rng.choice(len(keys), int(round(fraction * len(keys))), replace=False))
            csv_path = work / f"labels-{seed}.csv"
            csv_path.write_text("id,label\n" + "".join(f"{keys[i]},{truth[keys[i]]}\n" for i in chosen))
            cat.import_labels(csv_path)
            ev = cat.evaluate_label_by_similarity(name, results=grid_k, thresholds=grid_t)
            rec = ev.recommended or max(ev.grid, key=lambda g: (g["coverage"], g["accuracy"]))
            picked.append((rec["k"], rec["threshold"]))
            runs["default"].append(score_run(cat.label_by_similarity(name, "unlabeled"), truth))
            runs["recommended"].append(score_run(
                cat.label_by_similarity(name, "unlabeled", results=rec["k"], threshold=rec["threshold"]), truth))
            cat.remove_labels([keys[i] for i in chosen])
        summary = {}
        for which, items in runs.items():
            summary[which] = {m: (statistics.mean(v for v in (r[m] for r in items) if v is not None),
                                  statistics.pstdev(v for v in (r[m] for r in items) if v is not None))
                              for m in ("accuracy", "precision", "coverage")}
        summary["recommended_params"] = picked
        out[name] = summary
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["speed", "quality", "both"], default="both")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--baseline-queries", type=int, default=100, help="queries the numpy baseline runs (extrapolated)")
    ap.add_argument("--faiss-queries", type=int, default=0,
                    help="queries the faiss path runs (extrapolated; default: all)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--size", type=int, default=32, help="digit PNG size in pixels (8x8 upscaled, bilinear, as the demo data)")
    ap.add_argument("--workdir", help="folder for the catalogs (default: a temporary folder)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-labeling-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    if args.part in ("speed", "both"):
        s = bench_speed(work, args.queries, args.pool, args.dims, args.baseline_queries, args.faiss_queries)
        results["speed"] = s
        print_speed(s)
    if args.part in ("quality", "both"):
        q = bench_quality(work, args.seeds, args.size)
        results["quality"] = q
        print(f"\n## Quality: digits, 10% labeled, {args.seeds} seeds (mean ± std)")
        print("| embedding | parameters | accuracy | precision | coverage |\n|---|---|---:|---:|---:|")
        for name, summ in q.items():
            for which in ("default", "recommended"):
                m = summ[which]
                params = "k=10, t=0.30" if which == "default" else "recommended: " + ", ".join(
                    f"k={k} t={t:g}" for k, t in summ["recommended_params"])
                print(f"| {name} | {params} | {m['accuracy'][0]:.3f} ± {m['accuracy'][1]:.3f} | "
                      f"{m['precision'][0]:.3f} ± {m['precision'][1]:.3f} | {m['coverage'][0]:.3f} ± {m['coverage'][1]:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
