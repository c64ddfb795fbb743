"""Embedding maps (issue #17): projection speed, lasso selection, and the Map page in a real browser.

1. **PCA of N × D** (default 1,000,000 × 512, target ≤ 30 s): ``catalog.maps.projection.pca`` on a
   memory-mapped, L2-normalised float32 ``.npy`` (what the vector cache is). Baseline in the same
   run: scikit-learn's ``PCA(n_components=2, svd_solver="randomized")`` fitted and applied on a
   ``--baseline-rows`` sample held in memory (the whole matrix would double the memory), next to our
   PCA of the same sample, with the agreement of the two (|correlation| per axis).
2. **UMAP of 100,000 × D** (target ≤ 120 s) when ``umap-learn`` imports (first-call JIT included).
3. **Lasso of 100,000 points → slice** on a catalog of ``--map-rows`` rows: ``select_in_polygon`` of a
   polygon holding about half the points, then the dashboard's *Save as slice* path
   (``cat.slices.save_rows`` of the selected ids), and the saved slice's first page.
4. With ``--browser``: the Map page of that catalog in Chromium: time until the canvas is drawn, a
   wheel zoom's redraw, and a lasso drawn with the mouse until the toolbar shows the selection.

    python tools/bench_map.py                          # everything at full size
    python tools/bench_map.py --n 100000 --map-rows 50000 --no-umap --browser
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from catalog import Catalog, SearchSpec  # noqa: E402
from catalog.maps import projection  # noqa: E402


def clustered(n: int, dims: int, path: Path | None, seed: int = 0, chunk: int = 100_000):
    """N unit rows around 1000 centres, in a memory-mapped .npy at ``path`` (or in memory)."""
    rng = np.random.default_rng(seed)
    spectrum = np.exp(-np.arange(dims) / 8.0).astype(np.float32) + 0.05  # a decaying spectrum, as real embeddings have
    centres = rng.standard_normal((1000, dims)).astype(np.float32) * spectrum
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = (np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dims)) if path
           else np.empty((n, dims), np.float32))
    for s in range(0, n, chunk):
        k = min(chunk, n - s)
        block = centres[rng.integers(0, 1000, k)] + rng.normal(0, 0.5 / np.sqrt(dims), (k, dims)).astype(np.float32)
        out[s:s + k] = block / np.linalg.norm(block, axis=1, keepdims=True)
    if path:
        out.flush()
        del out
        return np.load(path, mmap_mode="r")
    return out


def bench_pca(n: int, dims: int, baseline_rows: int, folder: Path) -> list[tuple]:
    rows = []
    t0 = time.perf_counter()
    mat = clustered(n, dims, folder / "vectors.npy")
    print(f"  data {n:,} × {dims} written in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    xy, explained = projection.pca(mat)
    ours = time.perf_counter() - t0
    rows.append((f"PCA {n:,} × {dims} (memory-mapped, ours)", ours, f"explained {explained[0]:.3f}, {explained[1]:.3f}"))
    print(f"  ours: {ours:.2f} s", flush=True)
    sample = np.asarray(mat[np.sort(np.random.default_rng(1).choice(n, min(n, baseline_rows), replace=False))])
    try:
        from sklearn.decomposition import PCA
    except ImportError:
        return rows
    t0 = time.perf_counter()
    ref = PCA(n_components=2, svd_solver="randomized", random_state=0).fit_transform(sample)
    sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    mine, _ = projection.pca(sample)
    same = time.perf_counter() - t0
    corr = [abs(np.corrcoef(mine[:, i], ref[:, i])[0, 1]) for i in range(2)]
    fit = np.linalg.lstsq(np.c_[ref, np.ones(len(ref))], mine, rcond=None)[0]  # same plane? R² of ours from theirs
    r2 = 1 - ((mine - np.c_[ref, np.ones(len(ref))] @ fit) ** 2).sum() / ((mine - mine.mean(0)) ** 2).sum()
    rows.append((f"PCA {len(sample):,} × {dims} in memory, scikit-learn randomized (baseline)", sk, ""))
    rows.append((f"PCA {len(sample):,} × {dims} in memory, ours", same,
                 f"|corr| per axis with scikit-learn {corr[0]:.4f}, {corr[1]:.4f}; same plane R² {r2:.5f}"))
    return rows


def bench_umap(dims: int) -> list[tuple]:
    if not projection.umap_available():
        print("  umap-learn is not installed: skipped", flush=True)
        return [("UMAP 100,000 × %d" % dims, None, "umap-learn not installed")]
    mat = clustered(100_000, dims, None, seed=2)
    t0 = time.perf_counter()
    projection.umap(mat)
    took = time.perf_counter() - t0
    print(f"  umap: {took:.1f} s", flush=True)
    return [(f"UMAP 100,000 × {dims}, Manhattan (JIT compile included)", took, "")]


def build_catalog(db: Path, n: int, dims: int) -> Catalog:
    cat = Catalog(db)
    if cat.count_datarows() == n:
        return cat
    recs = db.parent / "rows.ndjson"
    with open(recs, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"global_key": f"r{i:07d}", "text": f"row {i}", "metadata": {"part": i % 7}}) + "\n")
    cat.import_datarows([recs])
    emb = cat.create_embedding("bench", dims)
    mat = clustered(n, dims, None, seed=3)
    for s in range(0, n, 100_000):
        emb.import_vectors([f"r{i:07d}" for i in range(s, min(n, s + 100_000))], mat[s:s + 100_000])
    return cat


def half_polygon(xy: np.ndarray) -> list[list[float]]:
    """A 200-vertex lasso (an ellipse) around the median point holding about half the points."""
    c = np.median(xy, axis=0)
    spread = np.abs(xy - c)
    r = np.quantile(spread.max(axis=1), 0.5) * 1.12
    t = np.linspace(0, 2 * np.pi, 201)[:-1]
    return np.c_[c[0] + r * np.cos(t), c[1] + r * np.sin(t)].tolist()


def bench_lasso(cat: Catalog) -> tuple[list[tuple], list]:
    t0 = time.perf_counter()
    made = cat.maps.compute("bench")
    rows = [(f"compute_map of the {len(made):,}-row catalog (cache build + PCA)", time.perf_counter() - t0, "")]
    poly = half_polygon(made.xy)
    cat.maps.select_in_polygon("bench", poly)  # warm: the map file and the cache ids are read once
    w0, c0 = time.perf_counter(), time.process_time()
    ids = cat.maps.select_in_polygon("bench", poly)
    w1, c1 = time.perf_counter(), time.process_time()
    cat.slices.save_rows("lasso", ids, replace=True)  # what the Save-as-slice dialog does: the ids as they are
    w2, c2 = time.perf_counter(), time.process_time()
    cores = os.cpu_count() or 1
    rows.append((f"select_in_polygon, 200-vertex lasso → {len(ids):,} ids", w1 - w0, f"cpu {(c1 - c0) / cores:.3f} s"))
    rows.append((f"selection → slice: save_rows of {len(ids):,} ids", w2 - w1, f"cpu {(c2 - c1) / cores:.3f} s"))
    rows.append((f"lasso of {len(ids):,} points → slice, library total", w2 - w0, f"cpu {(c2 - c0) / cores:.3f} s"))
    w0, c0 = time.perf_counter(), time.process_time()  # baseline: the earlier path, through the global keys
    keys = cat.datarows.global_keys(ids.tolist())
    cat.save_slice("lasso-keys", SearchSpec(where={"global_key": {"$in": keys}}), replace=True)
    rows.append((f"baseline: global keys of the {len(ids):,} ids, then save_slice on them", time.perf_counter() - w0,
                 f"cpu {(time.process_time() - c0) / cores:.3f} s"))
    w0, c0 = time.perf_counter(), time.process_time()
    total = cat.get_slice("lasso").rows(limit=50).total
    rows.append((f"the slice's first page (of {total:,} rows)", time.perf_counter() - w0,
                 f"cpu {(time.process_time() - c0) / cores:.3f} s"))
    return rows, poly


def bench_browser(db: Path) -> list[tuple]:
    from playwright.sync_api import sync_playwright

    from dashboard_support import CHROMIUM, CHROMIUM_ARGS, Server, idle

    srv = Server(db, db.parent / "streamlit.log")
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            drawn = "() => { const r = document.querySelector('.cat-map'); return r && r._st && r._st.n > 0; }"
            t0 = time.perf_counter()
            page.goto(f"{srv.url}/map")  # the first visit also imports the app and reads the map file
            page.wait_for_function(drawn)
            rows.append(("Map page, first visit on a fresh server, until the points are drawn", time.perf_counter() - t0, ""))
            idle(page)
            t0 = time.perf_counter()
            page.reload()
            page.wait_for_function(drawn)
            rows.append(("Map page reload until the points are drawn (browser)", time.perf_counter() - t0, ""))
            idle(page)
            box = page.locator("canvas.cat-map-canvas").bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx, cy)
            ms = page.evaluate("""() => { const r = document.querySelector('.cat-map'), c = r.querySelector('canvas');
                const t0 = performance.now();
                for (let k = 0; k < 10; k++) c.dispatchEvent(new WheelEvent('wheel', {deltaY: -50, clientX: 700, clientY: 600, cancelable: true}));
                return (performance.now() - t0) / 10; }""")
            rows.append(("one wheel-zoom redraw of every point (browser, mean of 10)", ms / 1000, ""))
            page.locator(".cat-map-tools button[data-reset]").click()
            page.locator(".cat-map-tools button[data-mode='lasso']").click()
            r = min(box["width"], box["height"]) * 0.3
            t = np.linspace(0, 2 * np.pi, 120)
            page.mouse.move(cx + r, cy)
            page.mouse.down()
            for a in t[1:]:
                page.mouse.move(cx + r * np.cos(a), cy + r * np.sin(a))
            t0 = time.perf_counter()
            page.mouse.up()
            page.locator(".cat-map-status", has_text="points in the lasso").wait_for()
            idle(page)
            took = time.perf_counter() - t0 - 0.3  # idle() waits 300 ms after the run ends
            note = page.locator(".cat-map-status").inner_text()
            rows.append(("lasso drawn with the mouse → toolbar shows the selection (browser)", took, note))
            browser.close()
    finally:
        srv.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--baseline-rows", type=int, default=200_000)
    ap.add_argument("--map-rows", type=int, default=200_000)
    ap.add_argument("--map-dims", type=int, default=32)
    ap.add_argument("--no-umap", action="store_true")
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--db", type=Path, default=None, help="catalog for the lasso bench (built when missing)")
    args = ap.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-map-") as tmp:
        results += bench_pca(args.n, args.dims, args.baseline_rows, Path(tmp))
    if not args.no_umap:
        results += bench_umap(args.dims)
    db = args.db or Path(tempfile.mkdtemp(prefix="bench-map-db-")) / "catalog.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cat = build_catalog(db, args.map_rows, args.map_dims)
    print(f"  catalog of {args.map_rows:,} rows ready in {time.perf_counter() - t0:.0f} s", flush=True)
    lasso, _ = bench_lasso(cat)
    results += lasso
    if args.browser:
        results += bench_browser(db)
    print("\n| measurement | seconds | note |\n|---|---:|---|")
    for what, secs, note in results:
        print(f"| {what} | {'-' if secs is None else f'{secs:.3f}'} | {note} |")


if __name__ == "__main__":
    main()
