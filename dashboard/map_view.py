"""The map view: an embedding's points on a canvas, with pan, zoom, hover, click and lasso or box selection.

One small component (no plotting library, nothing fetched from another host): the points travel as
base64 float32 coordinates and one colour index per point, the selection as a bit mask; the browser
draws them into an ``ImageData`` (200,000 points take a few milliseconds), so panning and zooming
redraw at screen rate. It sends back four events:

* ``select``: ``{"polygon": [[x, y], ...], "add": bool, "shape": "lasso"|"box"}`` in map coordinates: the lasso or the box as
  drawn, simplified to at most :data:`MAX_SENT_VERTICES` vertices; the server selects the points in it
  (``Catalog.maps.select_in_polygon``), so a lasso over 100,000 points sends a few hundred numbers;
* ``hover``: the index of the point the pointer rests on (after a short dwell), for its preview;
* ``open``: the index of a clicked point; ``clear``: an empty click in a selection mode.
"""

from __future__ import annotations

import base64

import numpy as np
import streamlit as st

MAX_SENT_VERTICES = 500  # the lasso is thinned to this many vertices before it is sent
NO_VALUE = 255           # colour index of points without a value (drawn grey)

_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".cat-map");
  if (!root) {
    root = document.createElement("div");
    root.className = "cat-map";
    root.innerHTML = `<div class="cat-map-tools" role="toolbar">
        <button type="button" data-mode="pan" title="Drag to pan, wheel to zoom">Pan</button>
        <button type="button" data-mode="lasso" title="Draw around points to select them (shift adds)">Lasso</button>
        <button type="button" data-mode="box" title="Drag a rectangle to select points (shift adds)">Box</button>
        <button type="button" data-reset title="Show every point">Reset view</button>
        <span class="cat-map-status"></span></div>
      <div class="cat-map-stage"><canvas class="cat-map-canvas"></canvas>
        <div class="cat-map-tip" hidden></div></div>`;
    parentElement.appendChild(root);
    const st = root._st = { mode: "pan", view: null, drag: null, hover: -1, timer: null, n: 0 };
    const canvas = root.querySelector("canvas"), tip = root.querySelector(".cat-map-tip");
    const setMode = (m) => { st.mode = m; root.dataset.mode = m;
      root.querySelectorAll("[data-mode]").forEach((b) => b.classList.toggle("on", b.dataset.mode === m)); };
    setMode("pan");
    root.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
    root.querySelector("[data-reset]").addEventListener("click", () => { st.view = null; draw(root); });
    const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [px, py] = local(e), v = st.view, f = Math.exp(-e.deltaY * 0.0015);
      const [mx, my] = toMap(root, px, py);
      v.s *= f; v.x0 = mx - px / v.s; v.y0 = my + py / v.s;
      draw(root);
    }, { passive: false });
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      const p = local(e);
      st.drag = { start: p, last: p, path: [p], moved: false, shift: e.shiftKey };
      hideTip(root);
    });
    canvas.addEventListener("pointermove", (e) => {
      const p = local(e), d = st.drag;
      if (!d) { hoverAt(root, p); return; }
      if (Math.hypot(p[0] - d.start[0], p[1] - d.start[1]) > 3) d.moved = true;
      if (st.mode === "pan") { st.view.x0 -= (p[0] - d.last[0]) / st.view.s; st.view.y0 += (p[1] - d.last[1]) / st.view.s; }
      else if (st.mode === "lasso") d.path.push(p);
      d.last = p;
      requestAnimationFrame(() => draw(root));
    });
    canvas.addEventListener("pointerup", (e) => {
      const d = st.drag; st.drag = null;
      if (!d) return;
      if (!d.moved) {
        const i = nearest(root, local(e));
        if (i >= 0) setTriggerValue("open", i);
        else if (st.mode !== "pan") setTriggerValue("clear", Date.now());
        draw(root); return;
      }
      let poly = null;
      if (st.mode === "box") {
        const [a, b] = [d.start, d.last];
        poly = [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]];
      } else if (st.mode === "lasso" && d.path.length >= 3) poly = thin(d.path, %(max_sent)d);
      draw(root);
      if (poly) setTriggerValue("select", { polygon: poly.map((q) => toMap(root, q[0], q[1])), add: d.shift, shape: st.mode });
    });
    canvas.addEventListener("pointerleave", () => { clearTimeout(st.timer); st.hover = -1; hideTip(root); });
    new ResizeObserver(() => draw(root)).observe(root.querySelector(".cat-map-stage"));
  }
  update(root, data || {}, setTriggerValue);
}

function decode(b64, Type) {
  const bin = atob(b64 || ""), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

function rgba(hex) {  // "#rrggbb" -> little-endian ABGR for a Uint32 pixel
  const v = parseInt(hex.slice(1), 16);
  return (255 << 24 | (v & 255) << 16 | ((v >> 8) & 255) << 8 | (v >> 16)) >>> 0;
}

function update(root, data, setTriggerValue) {
  const st = root._st;
  st.send = setTriggerValue;
  if (st.key !== data.key) {
    st.key = data.key;
    st.xy = decode(data.xy, Float32Array);
    st.n = st.xy.length / 2;
    if (!st.bounds || st.boundsKey !== data.bounds_key) { st.view = null; st.boundsKey = data.bounds_key; }
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < st.n; i++) { const x = st.xy[2 * i], y = st.xy[2 * i + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; }
    st.bounds = [x0, y0, x1, y1];
  }
  if (st.colourKey !== data.colour_key) {
    st.colourKey = data.colour_key;
    st.colour = decode(data.colour, Uint8Array);
    st.palette = new Uint32Array(256).fill(rgba("#c4c4cc"));
    (data.palette || []).forEach((c, i) => { st.palette[i] = rgba(c); });
  }
  if (st.selKey !== data.sel_key) { st.selKey = data.sel_key; st.sel = decode(data.selected, Uint8Array); }
  root.querySelector(".cat-map-status").textContent = data.status || "";
  draw(root);
  const p = data.preview;
  if (p && p.i === st.hover && st.tipAt) showTip(root, p.html);
}

function fit(root, w, h) {
  const st = root._st, [x0, y0, x1, y1] = st.bounds, pad = 28;
  const s = Math.min((w - 2 * pad) / Math.max(x1 - x0, 1e-9), (h - 2 * pad) / Math.max(y1 - y0, 1e-9));
  st.view = { s: s, x0: (x0 + x1) / 2 - w / 2 / s, y0: (y0 + y1) / 2 + h / 2 / s };
}

function toMap(root, px, py) { const v = root._st.view; return [v.x0 + px / v.s, v.y0 - py / v.s]; }

function draw(root) {
  const st = root._st, canvas = root.querySelector("canvas"), stage = root.querySelector(".cat-map-stage");
  if (!st.xy) return;
  const w = Math.max(50, stage.clientWidth), h = Math.max(50, stage.clientHeight);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  if (!st.view) fit(root, w, h);
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), px = new Uint32Array(img.data.buffer);
  px.fill(0xffffffff);
  const v = st.view, xy = st.xy, col = st.colour, pal = st.palette, sel = st.sel, n = st.n;
  const any = sel && sel.length > 0 && sel.some((b) => b !== 0);
  const dot = (i, c, r) => {
    const cx = Math.round((xy[2 * i] - v.x0) * v.s), cy = Math.round((v.y0 - xy[2 * i + 1]) * v.s);
    if (cx < r || cy < r || cx >= w - r || cy >= h - r) return;
    for (let dy = -r; dy <= r; dy++) { const row = (cy + dy) * w; for (let dx = -r; dx <= r; dx++) px[row + cx + dx] = c; }
  };
  const isSel = (i) => sel && (sel[i >> 3] >> (i & 7)) & 1;
  const r = n <= 2000 ? 3 : n <= 50000 ? 2 : 1;  // dots shrink as the points grow denser
  for (let i = 0; i < n; i++) if (!(any && isSel(i))) dot(i, pal[col[i]], r);
  if (any) { const ring = rgba("#111827");
    for (let i = 0; i < n; i++) if (isSel(i)) { dot(i, ring, r + 1); dot(i, pal[col[i]], r); } }
  ctx.putImageData(img, 0, 0);
  const d = st.drag;
  if (d && d.moved && st.mode !== "pan") {
    ctx.strokeStyle = "#4f46e5"; ctx.lineWidth = 1.5; ctx.fillStyle = "rgba(79,70,229,0.08)"; ctx.beginPath();
    if (st.mode === "box") ctx.rect(d.start[0], d.start[1], d.last[0] - d.start[0], d.last[1] - d.start[1]);
    else { ctx.moveTo(d.path[0][0], d.path[0][1]); for (const q of d.path) ctx.lineTo(q[0], q[1]); ctx.closePath(); }
    ctx.fill(); ctx.stroke();
  }
}

function nearest(root, p, radius = 6) {
  const st = root._st, v = st.view, xy = st.xy;
  let best = -1, bd = radius * radius;
  for (let i = 0; i < st.n; i++) {
    const dx = (xy[2 * i] - v.x0) * v.s - p[0], dy = (v.y0 - xy[2 * i + 1]) * v.s - p[1], d = dx * dx + dy * dy;
    if (d <= bd) { bd = d; best = i; }
  }
  return best;
}

function hoverAt(root, p) {
  const st = root._st;
  clearTimeout(st.timer);
  st.timer = setTimeout(() => {
    const i = nearest(root, p);
    if (i < 0) { st.hover = -1; hideTip(root); return; }
    st.tipAt = p;
    if (i !== st.hover) { st.hover = i; st.send("hover", i); }
  }, 250);
}

function showTip(root, html) {
  const tip = root.querySelector(".cat-map-tip"), p = root._st.tipAt;
  tip.innerHTML = html; tip.hidden = false;
  tip.style.left = `${p[0] + 14}px`; tip.style.top = `${p[1] + 14}px`;
}

function hideTip(root) { root.querySelector(".cat-map-tip").hidden = true; }

function thin(path, most) {  // drop points closer than 2 px, then keep every k-th so at most `most` remain
  const out = [path[0]];
  for (const q of path) { const l = out[out.length - 1]; if (Math.hypot(q[0] - l[0], q[1] - l[1]) >= 2) out.push(q); }
  if (out.length <= most) return out;
  const k = Math.ceil(out.length / most);
  return out.filter((_, i) => i %% k === 0);
}
""" % {"max_sent": MAX_SENT_VERTICES}

_CSS = """
.cat-map { display: flex; flex-direction: column; gap: 6px; }
.cat-map-tools { display: flex; gap: 6px; align-items: center; }
.cat-map-tools button { border: 1px solid #d4d4d8; background: #fff; border-radius: 6px; padding: 2px 10px; cursor: pointer; }
.cat-map-tools button.on { background: #4f46e5; color: #fff; border-color: #4f46e5; }
.cat-map-status { color: #6b7280; font-size: 0.85rem; margin-left: 8px; }
.cat-map-stage { position: relative; height: %(height)dpx; border: 1px solid #e4e4e7; border-radius: 8px; overflow: hidden; }
.cat-map-canvas { display: block; touch-action: none; }
.cat-map[data-mode=pan] canvas { cursor: grab; }
.cat-map[data-mode=lasso] canvas, .cat-map[data-mode=box] canvas { cursor: crosshair; }
.cat-map-tip { position: absolute; pointer-events: none; background: #fff; border: 1px solid #d4d4d8;
  border-radius: 6px; padding: 6px; box-shadow: 0 2px 8px rgba(0,0,0,.15); max-width: 220px; font-size: 0.8rem; }
.cat-map-tip img { max-width: 200px; max-height: 160px; display: block; }
"""

HEIGHT = 620
_MAP = st.components.v2.component("catalog_map", js=_JS, css=_CSS % {"height": HEIGHT}, isolate_styles=False)


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def render(key: str, *, xy: np.ndarray, data_key: str, colour: np.ndarray, palette: list[str], colour_key: str,
           selected: np.ndarray, sel_key: str, status: str, preview: dict | None, bounds_key: str,
           on_select, on_hover, on_open, on_clear):
    """Draw the map (``xy``: ``(n, 2)`` float32; ``colour``: a uint8 palette index per point;
    ``selected``: a boolean mask). The ``*_key`` strings say when each part changed, so the browser
    decodes only what is new; ``bounds_key`` changing resets the view."""
    data = {"key": data_key, "xy": b64(np.asarray(xy, dtype=np.float32)), "colour_key": colour_key,
            "colour": b64(np.asarray(colour, dtype=np.uint8)), "palette": palette, "sel_key": sel_key,
            "selected": b64(np.packbits(np.asarray(selected, dtype=bool), bitorder="little")),
            "status": status, "preview": preview, "bounds_key": bounds_key}
    return _MAP(key=key, data=data, on_select_change=on_select, on_hover_change=on_hover,
                on_open_change=on_open, on_clear_change=on_clear)
