"""Derived 8-bit codes of an embedding's normalised vectors, beside the float32 cache, and the bound
that makes an exact search on them possible.

Quantiser (one per embedding version): one step ``s`` shared by every dimension and one offset
``o_i`` per dimension (the midpoint of the dimension's range over the rows)::

    c_i = clamp(rint((x_i − o_i) / s), −128, 127) + 128        x̃_i = o_i + s·(c_i − 128)

The step must be common: the SAD kernel (``vpsadbw``) sums unweighted byte differences, and only then
is ``s·SAD(c_q, c_x) = Σ|q̃_i − x̃_i|`` (the offsets cancel). The offsets are free and centre each
dimension, so fewer values clip. ``s`` is the candidate (a fraction of the widest dimension's range
/ 255) with the smallest mean residual on a sample; clipping is allowed because it is part of the
residual.

Every row keeps its residual ``e_x = Σ|x_i − x̃_i|`` (float64, widened by ``RESID_REL``/``RESID_ABS``
for float64 rounding, then rounded *up* to float32); the query gets the same (``e_q``). In real
arithmetic, by the triangle inequality,

    |L1(q, x) − s·SAD(c_q, c_x)| ≤ e_q + e_x                                          (1)

The float32 scan the results must equal computes ``d32`` with ``|d32 − L1| ≤ γ·L1``,
``γ = (D+2)·2⁻²⁴ / (1 − (D+2)·2⁻²⁴)`` (D rounded terms ``|q_i − x_i|``, any summation order). The
search (:mod:`catalog.search.codes_scan`) turns a range or the k-th bound into thresholds on (1)
with these margins (:func:`l1_window`, :func:`topk_widen`).

Files, in ``<db>.cache/<embedding id>-v<version>/`` (removed with the cache, rebuilt when the
version changes): ``codes.npy`` (n × dp uint8, dp = D rounded up to 32, padding 128),
``codes_resid.npy`` (float32 n), ``codes_params.npy`` (float64: s, then the D offsets).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..threads import threads

try:  # optional: built from catalog/_native/codes.c where a C compiler is available
    from .. import _codes
except ImportError:  # pragma: no cover - depends on the build
    _codes = None

CODES_ENV = "CATALOG_SEARCH_CODES"
ISA_ENV = "CATALOG_SEARCH_CODES_ISA"  # avx512bw | avx2 | portable | numpy: force a kernel (capped at the CPU's)
ISAS = ("avx512bw", "avx2", "portable", "numpy")
MODES = ("auto", "on", "off")
AUTO_MIN_ROWS = 10_000  # auto: a whole-range top k runs the float32 scan below this many rows (shape sweep)
MAX_QUERIES = 4096  # query vectors per scan (the C kernel's MAXQ); more anchors use the float32 scan
RESID_REL = 1e-12   # the C kernel's widening of a float64 residual (relative, and per dimension absolute)
RESID_ABS = 1e-12
MARGIN = 1e-9       # relative and absolute slack on every threshold (float64 rounding of the bounds)
_STEP_FRACTIONS = (1.0, 0.8, 0.65, 0.5, 0.4, 0.3)
_SAMPLE = 2048
_CHUNK = 65_536
_lock = threading.Lock()
_memo: dict[tuple[str, str, int], "Codes"] = {}


def native_available() -> bool:
    return _codes is not None


def kernel_isa() -> str:
    """The SAD kernel the scan runs here: ``avx512bw``, ``avx2``, ``portable`` or ``numpy`` (the best
    this CPU has, or the one ``$CATALOG_SEARCH_CODES_ISA`` forces, capped at the best)."""
    best = _codes.isa() if _codes is not None else "numpy"
    want = forced_isa()
    return best if want is None or ISAS.index(want) < ISAS.index(best) else want


def forced_isa() -> str | None:
    raw = os.environ.get(ISA_ENV, "").strip().lower()
    return raw if raw in ISAS else None


def mode(choice: str | None = None) -> str:
    """``$CATALOG_SEARCH_CODES``: ``auto`` (default: the codes where the native kernel is built and
    the shape is one they win, see :func:`use_codes`), ``on`` (always, in numpy where it is not built)
    or ``off`` (the float32 scan). Anything else: auto."""
    raw = (choice if choice is not None else os.environ.get(CODES_ENV, "")).strip().lower()
    want = raw if raw in MODES else "auto"
    if want == "auto":
        return "auto" if native_available() else "off"
    return want


def use_codes(rows: int, dims: int, queries: int, narrow: bool, choice: str | None = None) -> bool:
    """Whether a search of ``queries`` vectors over ``rows`` × ``dims`` (``narrow``: a minimum score
    above 0) runs on the codes: ``on``/``off`` as set; ``auto`` where the shape sweep
    (tools/bench_codes_shapes.py, docs/BENCHMARKS.md) found them faster than the float32 scan: a
    range on any cache, a whole-range top k from :data:`AUTO_MIN_ROWS` rows (at 1k rows the fixed
    costs of a codes query lost to the float32 top k), and neither for one query vector whose float32
    row is no larger than its code row (D ≤ 8: both one 32-byte block; one anchor tied or lost)."""
    m = mode(choice)
    if m != "auto":
        return m == "on"
    if queries == 1 and 4 * dims <= dims_padded(dims):
        return False
    return narrow or rows >= AUTO_MIN_ROWS


@dataclass
class Codes:
    """One embedding version's codes: ``codes`` (n × dp uint8), ``resid`` (float32 n, rounded up),
    ``step`` and ``offsets`` (float64 D)."""

    codes: np.ndarray
    resid: np.ndarray
    step: float
    offsets: np.ndarray

    @property
    def dims(self) -> int:
        return len(self.offsets)

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (m × dp) and residuals (float64, rounded up) of float32 query vectors."""
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        return quantise_numpy(q, self.offsets, self.step, as_float64=True)


def dims_padded(dims: int) -> int:
    return (dims + 31) // 32 * 32


def quantise_numpy(x: np.ndarray, offsets: np.ndarray, step: float, as_float64: bool = False):
    """The C quantiser's codes and residuals in numpy (the same float64 operations)."""
    n, d = x.shape
    dp = dims_padded(d)
    codes = np.full((n, dp), 128, dtype=np.uint8)
    resid = np.empty(n, dtype=np.float64 if as_float64 else np.float32)
    for s in range(0, n, _CHUNK):
        v = x[s:s + _CHUNK].astype(np.float64)
        c = np.clip(np.rint((v - offsets) / step), -128.0, 127.0)
        codes[s:s + _CHUNK, :d] = (c + 128.0).astype(np.uint8)
        e = np.abs(v - (offsets + step * c)).sum(axis=1) * (1.0 + RESID_REL) + RESID_ABS * d
        if as_float64:
            resid[s:s + _CHUNK] = e * (1.0 + 1e-15)  # the sum in numpy's order: one more rounding margin
        else:
            f = e.astype(np.float32)
            resid[s:s + _CHUNK] = np.where(f.astype(np.float64) < e, np.nextafter(f, np.float32(np.inf)), f)
    return codes, resid


def choose_quantiser(mat: np.ndarray) -> tuple[float, np.ndarray]:
    """``(step, offsets)`` for a normalised float32 matrix (see the module text)."""
    n, d = mat.shape
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    for s in range(0, n, _CHUNK):
        block = np.asarray(mat[s:s + _CHUNK])
        lo = np.minimum(lo, block.min(axis=0))
        hi = np.maximum(hi, block.max(axis=0))
    offsets = ((lo + hi) / 2.0).astype(np.float64)
    widest = float((hi - lo).max())
    if not widest > 0:
        return 1.0 / 255.0, offsets
    return pick_step(np.asarray(mat[np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.int64)]), offsets, widest), offsets


def pick_step(sample: np.ndarray, offsets: np.ndarray, widest: float) -> float:
    """The candidate step (a fraction of ``widest`` / 255) with the smallest mean residual on ``sample``."""
    best, step = math.inf, widest / 255.0
    for f in _STEP_FRACTIONS:
        s = f * widest / 255.0
        err = float(quantise_numpy(sample, offsets, s, as_float64=True)[1].mean())
        if err < best:
            best, step = err, s
    return step


def build(mat: np.ndarray, step: float | None = None, offsets: np.ndarray | None = None) -> Codes:
    """The codes of a normalised float32 matrix (in memory); ``step`` and ``offsets`` (both or neither)
    fix the quantiser instead of choosing it."""
    n, d = mat.shape
    if step is None:
        step, offsets = choose_quantiser(mat) if n else (1.0 / 255.0, np.zeros(d))
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    codes = np.empty((n, dims_padded(d)), dtype=np.uint8)
    resid = np.empty(n, dtype=np.float32)
    for s in range(0, n, 8 * _CHUNK):
        e = min(n, s + 8 * _CHUNK)
        block = np.ascontiguousarray(mat[s:e], dtype=np.float32)
        if _codes is not None:
            _codes.quantise(block, e - s, d, offsets, float(step), codes[s:e], resid[s:e], threads())
        else:
            codes[s:e], resid[s:e] = quantise_numpy(block, offsets, step)
    return Codes(codes, resid, float(step), offsets)


def load(cache, emb) -> Codes:
    """The codes of ``emb``'s current version from ``cache`` (a :class:`~catalog.vectors.cache.VectorCache`),
    built from its float32 matrix and written beside it the first time; kept in memory per process."""
    return load_derived(cache, emb, "codes", emb.dims, build, Codes)


def load_derived(cache, emb, prefix: str, groups: int, make, kind):
    """``kind`` (:class:`Codes` or a subclass) of ``emb``'s current version, read from the files
    ``<prefix>.npy``, ``<prefix>_resid.npy``, ``<prefix>_params.npy`` in its cache folder, or built with
    ``make(matrix)`` and written there; ``groups`` is the offsets' count."""
    ids, mat = cache.load(emb)
    key = (str(cache.store.path), emb.id, emb.version, prefix)
    with _lock:
        hit = _memo.get(key)
        if hit is not None and len(hit.resid) == len(ids):
            return hit
        folder = cache.store.cache_dir / f"{emb.id}-v{emb.version}"
        found = _read(folder, prefix, len(ids), groups, kind)
        if found is None:
            found = make(mat)
            _write(folder, prefix, found)
        for old in [k for k in _memo if k[:2] == key[:2] and k[3] == prefix]:
            del _memo[old]
        _memo[key] = found
        return found


def forget(store_path, embedding_id: str) -> None:
    """Drop the in-memory codes of an embedding (the files go with the cache folder)."""
    with _lock:
        for k in [k for k in _memo if k[0] == str(store_path) and k[1] == embedding_id]:
            del _memo[k]


def _read(folder: Path, prefix: str, n: int, dims: int, kind=Codes) -> Codes | None:
    try:
        params = np.load(folder / f"{prefix}_params.npy")
        resid = np.load(folder / f"{prefix}_resid.npy")
        codes = np.load(folder / f"{prefix}.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    if params.shape != (dims + 1,) or resid.shape != (n,) or codes.shape != (n, dims_padded(dims)) \
            or codes.dtype != np.uint8 or resid.dtype != np.float32:
        return None
    return kind(codes, resid, float(params[0]), params[1:].astype(np.float64))


def _write(folder: Path, prefix: str, c: Codes) -> None:
    """Params and residuals first, the codes last (their presence marks a whole set); a read-only or
    full folder keeps the codes in memory only."""
    tag = f"tmp{os.getpid()}-{threading.get_ident()}"
    parts = ((f"{prefix}_params", np.concatenate([[c.step], c.offsets])), (f"{prefix}_resid", c.resid),
             (prefix, c.codes))
    try:
        for name, arr in parts:
            np.save(folder / f"{name}.{tag}.npy", arr)
            os.replace(folder / f"{name}.{tag}.npy", folder / f"{name}.npy")
    except OSError:
        for name, _ in parts:
            (folder / f"{name}.{tag}.npy").unlink(missing_ok=True)


# -- the bound as thresholds --------------------------------------------------------------------
def gamma(dims: int) -> float:
    """Relative rounding bound of a float32 L1 distance of ``dims`` terms (any summation order)."""
    g = (dims + 2) * 2.0 ** -24
    return g / (1.0 - g)


def l1_window(lo32: float, hi32: float, dims: int) -> tuple[float, float]:
    """Real-L1 bounds of every row whose float32 distance lies in ``[lo32, hi32]``: a row can only be
    there if ``LB ≤ hi`` and ``UB ≥ lo`` (±inf pass through)."""
    g = gamma(dims)
    hi = hi32 / (1.0 - g) * (1.0 + MARGIN) + MARGIN if math.isfinite(hi32) else math.inf
    lo = lo32 / (1.0 + g) * (1.0 - MARGIN) - MARGIN if math.isfinite(lo32) else -math.inf
    return lo, hi


def certain_window(lo32: float, hi32: float, dims: int) -> tuple[float, float]:
    """Real-L1 bounds inside which a row's float32 distance certainly lies in ``[lo32, hi32]``:
    ``UB ≤ chi`` and ``LB ≥ clo``."""
    g = gamma(dims)
    chi = (hi32 * (1.0 - MARGIN) - MARGIN) / (1.0 + g) if math.isfinite(hi32) else math.inf
    clo = (lo32 * (1.0 + MARGIN) + MARGIN) / (1.0 - g) if math.isfinite(lo32) else -math.inf
    return clo, chi


def topk_widen(dims: int) -> tuple[float, float]:
    """``(wmul, wadd)``: a row of the float32 top k has ``LB ≤ U_k·wmul + wadd`` when ``U_k`` is the
    k-th smallest upper bound (real L1) of rows certainly in range: the k-th float32 distance is at
    most ``U_k·(1+γ)``, so such a row's real L1 is at most ``U_k·(1+γ)/(1−γ)``."""
    g = gamma(dims)
    return (1.0 + g) / (1.0 - g) * (1.0 + MARGIN), MARGIN


def scan(c: Codes, qcodes: np.ndarray, eq: np.ndarray, lo: float, hi: float, clo: float, chi: float,
         kk: int = 0, isa: str | None = None, pooled=None) -> tuple[np.ndarray, np.ndarray, int, float]:
    """``(positions, certain, certain_count, U_kk)`` of the rows whose bounds (1), minimised over the
    query codes, may lie in ``[lo, hi]`` (see catalog/_native/codes.c for the rule; ``kk`` > 0: top-k).
    ``isa``: ``avx512bw``/``avx2``/``portable`` (the native kernel, capped at what the CPU has) or
    ``numpy``; None: the best available. ``pooled``: ``(Pooled, its query codes, their residuals)``
    (:mod:`catalog.vectors.pooled`), the first level whose bound replaces LB by ``max(LB, LBp)``."""
    wmul, wadd = topk_widen(c.dims)
    qcodes = np.ascontiguousarray(qcodes, dtype=np.uint8)
    eq = np.ascontiguousarray(eq, dtype=np.float64)
    isa = forced_isa() if isa is None else isa
    if pooled is not None:
        p, pq, peq = pooled
        pooled = (p, np.ascontiguousarray(pq, dtype=np.uint8), np.ascontiguousarray(peq, dtype=np.float64))
    if isa == "numpy" or (isa is None and _codes is None):
        return _scan_numpy(c, qcodes, eq, lo, hi, clo, chi, kk, wmul, wadd, pooled)
    if _codes is None:
        raise RuntimeError("the native codes kernel (catalog._codes) is not built here")
    level = {"portable": 0, "avx2": 1, "avx512bw": 2, None: -1}[isa]
    extra = () if pooled is None else \
        ((pooled[0].codes, pooled[0].resid, pooled[0].codes.shape[1], pooled[1], pooled[2], pooled[0].step),)
    pos, flag, count, uk = _codes.scan(c.codes, c.resid, len(c.resid), c.codes.shape[1], qcodes, eq, len(eq),
                                       c.step, lo, hi, clo, chi, int(kk), wmul, wadd, threads(), level, *extra)
    return np.frombuffer(pos, dtype=np.int64), np.frombuffer(flag, dtype=np.uint8).astype(bool), int(count), uk


def lower_bounds(c: Codes, qcodes: np.ndarray, eq: np.ndarray, rows=None, upper: bool = True):
    """``(min_a (s·SAD_a − e_a) − e_x, min_a (s·SAD_a + e_a) + e_x)`` of ``rows`` (all: None) in the
    kernel's float64 operations; ``upper=False`` skips the second (None)."""
    n = len(c.resid) if rows is None else len(rows)
    lbm = np.full(n, np.inf)
    ubm = np.full(n, np.inf) if upper else None
    q16 = qcodes.astype(np.int16)
    for s in range(0, n, _CHUNK):
        block = np.asarray(c.codes[s:s + _CHUNK] if rows is None else c.codes[rows[s:s + _CHUNK]], dtype=np.int16)
        for a in range(len(eq)):
            base = c.step * np.abs(block - q16[a]).sum(axis=1, dtype=np.int64).astype(np.float64)
            np.minimum(lbm[s:s + _CHUNK], base - eq[a], out=lbm[s:s + _CHUNK])
            if upper:
                np.minimum(ubm[s:s + _CHUNK], base + eq[a], out=ubm[s:s + _CHUNK])
    ex = (c.resid if rows is None else c.resid[rows]).astype(np.float64)
    return lbm - ex, (ubm + ex if upper else None)


def _scan_numpy(c, qcodes, eq, lo, hi, clo, chi, kk, wmul, wadd, pooled=None):
    lb, ub = lower_bounds(c, qcodes, eq)
    if pooled is not None:
        lb = np.maximum(lb, lower_bounds(pooled[0], pooled[1], pooled[2], upper=False)[0])
    maybe = (lb <= hi) & (ub >= lo)
    certain = maybe & (ub <= chi) & (lb >= clo)
    uk = math.inf
    if kk > 0:
        ubs = ub[certain]
        if len(ubs) >= kk:
            uk = float(np.partition(ubs, kk - 1)[kk - 1])
        keep = maybe & (~certain | (lb <= uk * wmul + wadd))
        count = int(certain.sum())
    else:
        keep, count = maybe, 0
    pos = np.flatnonzero(keep).astype(np.int64)
    return pos, certain[pos], count, uk
