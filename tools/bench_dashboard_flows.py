"""Dashboard flows in a real browser, each beside a baseline measured in the same run.

On a catalog (the demo by default), in chromium against ``streamlit run app.py``, as the median of
``--repeat`` repetitions:

1. **First load**: a new session opens the catalog page until the heading and every thumbnail of the
   first page are there (server warm, thumbnails made), in a fresh browser profile (the app's scripts
   are downloaded too) and in a new tab of a browser that has opened the app before. Baseline: the
   library calls behind that page (``list_datarows`` + thumbnails).
2. **Slider step**: one arrow-key step of the score slider (a new range every time) until the new results
   are drawn. Baseline: the same ``Catalog.search`` + ``get_datarows`` in this process.
3. **Held arrow key**: ten presses 40 ms apart (a held key's auto-repeat); how long after the last press
   the results for the last range are drawn and the page is idle. Baseline: one search.
4. **Review tick**: on *Label by similarity*, after *Suggest labels*, ticking one suggestion until the run
   ends (a fragment of the review list). Baseline: a run of the whole page (changing "Rows per batch",
   which recomputes nothing).
5. **Dialog**: opening *Save search as slice* at the start of a session and again after 60 page turns.
   Baseline: the same dialog at the start.

    python tools/bench_dashboard_flows.py                  # the demo catalog (python tools/build_demo.py)
    python tools/bench_dashboard_flows.py --db other.duckdb --embedding NAME
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from catalog import Catalog, SearchSpec, thumbnails  # noqa: E402
from catalog.search import Page  # noqa: E402
from dashboard_support import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

PER_PAGE = 48
IDLE = ("() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')")
TARGETS = {"first load": 1.5, "first load, browser cache warm": 1.5, "slider step": 0.35, "held arrow settles": 0.6, "review tick": 0.3, "dialog": 0.8}


def idle(page, timeout=60_000) -> None:
    page.wait_for_function(IDLE, timeout=timeout)


def images_loaded(page, timeout=60_000) -> None:
    page.wait_for_function("() => { const g = document.querySelector('.cat-grid .cat-box');"
                           " const i = [...document.querySelectorAll('.cat-grid img')];"
                           " return g && i.every(x => x.complete && x.naturalWidth > 0); }",
                           timeout=timeout)


def first_load(browser, url, cat, repeat, cached=False):
    """A new session opening the page: in a fresh browser profile (nothing cached: the app's scripts are
    downloaded too) or, ``cached``, in a new tab of a browser that has opened the app before."""
    ui, lib = [], []
    shared = browser.new_context(viewport={"width": 1440, "height": 1000}) if cached else None
    if shared is not None:
        warm = shared.new_page()
        warm.goto(url)
        warm.locator(".st-key-results_head h3").first.wait_for(timeout=60_000)
        warm.close()
    for _ in range(repeat):
        ctx = shared or browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(url)
        page.locator(".st-key-results_head h3").first.wait_for(timeout=60_000)
        images_loaded(page)
        ui.append(time.perf_counter() - t)
        page.close()
        if shared is None:
            ctx.close()
        t = time.perf_counter()
        thumbnails.thumbnails(cat.store, cat.list_datarows(limit=PER_PAGE))
        lib.append(time.perf_counter() - t)
    return ui, lib


def _slider_page(browser, url, emb, anchor):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{url}/?emb={emb}&a={anchor}&min=0.99&max=1")
    page.locator(".st-key-results_head h3").first.wait_for(timeout=600_000)
    idle(page, 600_000)
    return page


def slider(browser, url, cat, emb, anchor, repeat):
    page = _slider_page(browser, url, emb, anchor)
    thumb = page.locator(".st-key-w_range input[type='range']").first
    ui, lib, value = [], [], 0.99
    for _ in range(repeat * 2):
        value = round(value - 0.01, 2)
        idle(page)
        thumb.focus()
        t = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.locator(".st-key-results_head h3", has_text=f"{value:.2f}–1.00").first.wait_for(timeout=60_000)
        idle(page)
        ui.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = cat.search(SearchSpec(emb, anchors=[anchor], min_score=value, max_score=1.0), Page(PER_PAGE))
        cat.get_datarows([h.id for h in res.results])
        lib.append(time.perf_counter() - t)
    page.close()
    return ui, lib


def held_arrow(browser, url, cat, emb, anchor, repeat, presses=10):
    page = _slider_page(browser, url, emb, anchor)
    thumb = page.locator(".st-key-w_range input[type='range']").first
    ui, lib, value = [], [], 0.99
    for _ in range(repeat):
        idle(page)
        thumb.focus()
        for _ in range(presses):
            page.keyboard.press("ArrowLeft")
            page.wait_for_timeout(40)
        t = time.perf_counter()
        value = round(value - 0.01 * presses, 2)
        page.locator(".st-key-results_head h3", has_text=f"{value:.2f}–1.00").first.wait_for(timeout=60_000)
        idle(page)
        ui.append(time.perf_counter() - t)
        page.keyboard.press("Home")  # back to a high range (the lower thumb at 0) ... then to 0.99 by URL
        page.goto(f"{url}/?emb={emb}&a={anchor}&min=0.99&max=1")
        page.locator(".st-key-results_head h3", has_text="0.99–1.00").first.wait_for(timeout=60_000)
        idle(page)
        value = 0.99
        t = time.perf_counter()
        cat.search(SearchSpec(emb, anchors=[anchor], min_score=0.5, max_score=1.0), Page(PER_PAGE))
        lib.append(time.perf_counter() - t)
    page.close()
    return ui, lib


def review_tick(browser, url, emb, repeat):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{url}/?emb={emb}")  # the labeling page starts on the catalog page's embedding
    page.locator(".st-key-results_head h3").first.wait_for(timeout=60_000)
    idle(page)
    page.locator("a[href$='/labeling']").first.click()
    page.get_by_role("button", name="Suggest labels").click()
    page.locator("[class*='st-key-lbs_row_']").first.wait_for(timeout=600_000)
    idle(page)
    boxes = page.locator("[class*='st-key-lbs_row_'] [data-testid='stCheckbox'] label")
    ui, base = [], []
    limit = page.locator(".st-key-lbs_limit input")
    for i in range(repeat * 2):
        idle(page)
        t = time.perf_counter()
        boxes.nth(i % max(1, boxes.count())).click()
        page.wait_for_timeout(50)
        idle(page)
        ui.append(time.perf_counter() - t - 0.05)
        t = time.perf_counter()
        limit.fill(str(50 + (i % 2)))
        limit.press("Enter")
        page.wait_for_timeout(50)
        idle(page)
        base.append(time.perf_counter() - t - 0.05)
    page.close()
    return ui, base


def dialog(browser, url, emb, anchor, turns=60):
    def open_once(page) -> float:
        idle(page)
        t = time.perf_counter()
        page.locator(".st-key-act_save_search button").first.click()
        page.get_by_role("dialog").first.wait_for(timeout=60_000)
        idle(page)
        took = time.perf_counter() - t
        page.keyboard.press("Escape")
        page.get_by_role("dialog").first.wait_for(state="detached", timeout=60_000)
        idle(page)
        return took

    page = _slider_page(browser, url, emb, anchor)
    page.goto(f"{url}/?emb={emb}&a={anchor}&min=0&max=1")
    page.locator(".st-key-results_head h3").first.wait_for(timeout=60_000)
    start = [open_once(page) for _ in range(3)]
    for i in range(turns):  # back and forth
        idle(page)
        page.locator(f".st-key-w_page button[aria-label='{'Next page' if i % 2 == 0 else 'Previous page'}']").first.click()
        page.wait_for_timeout(30)
    late = [open_once(page) for _ in range(3)]
    page.close()
    return late, start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=ROOT / "demo" / "catalog.duckdb")
    ap.add_argument("--embedding", default=None, help="embedding for the slider (default: the best-filled one)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if not args.db.exists():
        print(f"{args.db} is missing: build the demo with python tools/build_demo.py", file=sys.stderr)
        return 2
    cat = Catalog(args.db)
    counts = cat.embedding_counts()
    emb = args.embedding or max(cat.get_embeddings(), key=lambda e: counts.get(e.id, 0)).name
    first = [r["id"] for r in cat.list_datarows(limit=500)]
    with_vector = cat.rows_with_vectors(emb, first)
    anchor = next(r for r in first if r in with_vector)
    cat.search(SearchSpec(emb, anchors=[anchor]), Page(PER_PAGE))  # warm the vector cache here too

    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as logs, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        srv = Server(args.db, Path(logs) / "streamlit.log")
        try:
            warm = browser.new_page()
            warm.goto(srv.url)
            warm.locator(".st-key-results_head h3").first.wait_for(timeout=600_000)
            images_loaded(warm, 600_000)
            warm.close()
            print("first load…", flush=True)
            results["first load"] = first_load(browser, srv.url, cat, args.repeat)
            results["first load, browser cache warm"] = first_load(browser, srv.url, cat, args.repeat, cached=True)
            print("slider…", flush=True)
            results["slider step"] = slider(browser, srv.url, cat, emb, anchor, args.repeat)
            print("held arrow…", flush=True)
            results["held arrow settles"] = held_arrow(browser, srv.url, cat, emb, anchor, args.repeat)
            print("review tick…", flush=True)
            results["review tick"] = review_tick(browser, srv.url, emb, args.repeat)
            print("dialog…", flush=True)
            results["dialog"] = dialog(browser, srv.url, emb, anchor)
        finally:
            srv.stop()
            browser.close()
    med = statistics.median
    load_after = os.getloadavg()
    n = cat.count_datarows()
    print(f"\ncatalog {args.db} ({n:,} rows), slider embedding {emb}; load average before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after {'/'.join(f'{x:.1f}' for x in load_after)} "
          f"({os.cpu_count()} cores)")
    baselines = {"first load": "library calls", "first load, browser cache warm": "library calls", "slider step": "library search", "held arrow settles": "one search",
                 "review tick": "whole-page run", "dialog": "same dialog at session start"}
    print("| flow | dashboard in chromium (median) | baseline (median) | ratio | target |")
    print("|---|---|---|---|---|")
    ok = True
    for name, (ui, base) in results.items():
        m, b = med(ui), med(base)
        ok &= m <= TARGETS[name]
        print(f"| {name} | {m * 1000:.0f} ms | {baselines[name]}: {b * 1000:.0f} ms | {m / b:.2f}× "
              f"| ≤ {TARGETS[name] * 1000:.0f} ms |")
    for name, (ui, base) in results.items():
        print(f"  {name}: {[round(x, 3) for x in ui]} vs {[round(x, 3) for x in base]}")
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
