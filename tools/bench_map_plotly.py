"""The renderer the Map page did not choose, measured: Streamlit's ``st.plotly_chart`` with a Scattergl
trace and ``on_select="rerun"`` (lasso and box), in headless Chromium (docs/BENCHMARKS.md, maps).

Needs the ``plotly`` package (not a dependency of the project). Prints the page's load time, the time
to draw a 120-step lasso, the time until the selection is back in Python, the size of what the
browser sends back, and any request to another host.

    PYTHONPATH=/path/with/plotly python tools/bench_map_plotly.py --n 50000
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_support import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

APP = '''
import json
import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")
n = int(st.query_params.get("n", 200000))
xy = np.random.default_rng(0).normal(0, 1, (n, 2)).astype(np.float32)
fig = go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", marker=dict(size=3)))
fig.update_layout(height=620, dragmode="lasso", margin=dict(l=10, r=10, t=10, b=10))
ev = st.plotly_chart(fig, on_select="rerun", selection_mode=("lasso", "box"), key="chart")
sel = ev.get("selection", {}) if ev else {}
size = len(json.dumps(ev)) if ev else 0
st.markdown(f"**probe: {len(sel.get('point_indices', []))} selected, payload {size} bytes**")
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-plotly-"))
    (folder / "app.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(folder / "app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], env=dict(os.environ),
                            stdout=open(folder / "log", "w"), stderr=subprocess.STDOUT)
    url, away = f"http://127.0.0.1:{port}", []
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(300_000)
            page.on("request", lambda r: away.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
            for visit in ("first visit", "reload"):
                t0 = time.perf_counter()
                page.goto(f"{url}/?n={args.n}") if visit == "first visit" else page.reload()
                page.locator(".js-plotly-plot .gl-container canvas").first.wait_for()
                page.get_by_text(re.compile("probe: 0 selected")).wait_for()
                print(f"{visit} until drawn: {time.perf_counter() - t0:.2f} s", flush=True)
            page.wait_for_timeout(1500)
            box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            r = min(box["width"], box["height"]) * 0.35
            t0 = time.perf_counter()
            page.mouse.move(cx + r, cy)
            page.mouse.down()
            for k in range(1, 121):
                page.mouse.move(cx + r * math.cos(2 * math.pi * k / 120), cy + r * math.sin(2 * math.pi * k / 120))
            print(f"drawing the 120-step lasso: {time.perf_counter() - t0:.2f} s", flush=True)
            t0 = time.perf_counter()
            page.mouse.up()
            page.get_by_text(re.compile(r"probe: [1-9]\d* selected")).wait_for()
            print(f"lasso released -> selection in Python: {time.perf_counter() - t0:.2f} s", flush=True)
            print(page.get_by_text(re.compile("probe:")).inner_text())
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print("requests to other hosts:", away or "none")


if __name__ == "__main__":
    main()
