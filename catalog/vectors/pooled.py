"""The pooled first level of the 8-bit codes: codes of the sums of 4 dimensions (a quarter of the
bytes), whose bound is weaker but valid, so that the SAD work of a many-anchor scan is spent on the
full codes (:mod:`catalog.vectors.codes`) only where the pooled bound cannot decide.

Pooling: dimension ``i`` belongs to group ``g = ⌊i / 4⌋`` (``G = ⌈D / 4⌉`` groups; when D is not a
multiple of 4 the last group has fewer dimensions, as if the vector were padded with zeros, which
add nothing). ``X_g = Σ_{i∈g} x_i`` is summed in float64. The sums are quantised like the codes,
with their own common step ``s'`` and per-group offsets ``o'_g`` (the same step search)::

    p_g = clamp(rint((X_g − o'_g) / s'), −128, 127) + 128        X̃_g = o'_g + s'·(p_g − 128)

and every row keeps ``e'_x = Σ_g |X_g − X̃_g|`` (widened and rounded up to float32 as the codes'
residual is); the query gets ``e'_q`` the same way (float64, one more rounding margin).

**The bound.** For real vectors ``q``, ``x`` (the float32 values, exactly):

    L1(q, x) = Σ_g Σ_{i∈g} |q_i − x_i| ≥ Σ_g |Σ_{i∈g} (q_i − x_i)| = Σ_g |Q_g − X_g|          (a)

by the triangle inequality within each group. For each group, again by the triangle inequality,
``|Q_g − X_g| ≥ |Q̃_g − X̃_g| − |Q_g − Q̃_g| − |X_g − X̃_g|``, and ``Q̃_g − X̃_g = s'·(p_q,g − p_x,g)``
(the offsets cancel), so summing over the groups

    L1(q, x) ≥ s'·SAD(p_q, p_x) − e'_q − e'_x =: LBp                                         (b)

For several query vectors (``max``), ``min_a L1(q_a, x) ≥ min_a (s'·SAD(p_a, p_x) − e'_a) − e'_x``
because (b) holds for each ``a``. Rounding: ``X_g`` is a float64 sum of at most 4 float32 values of
magnitude ≤ 1 (normalised vectors), off by less than 2⁻⁵⁰ — far below the absolute widening of
``RESID_ABS`` per group that ``e'`` carries — and the residual sum's own rounding is covered by
``RESID_REL`` (the same argument as the codes'). The kernel computes ``LBp`` with the float64
operations written above; every threshold it is compared with already carries the float32 and
float64 margins of :func:`~catalog.vectors.codes.l1_window` / :func:`~catalog.vectors.codes.topk_widen`.

``LBp`` and the codes' ``LB`` are both lower bounds of the same quantity, so ``max(LB, LBp)`` is one
too: the scan drops a row whose ``LBp`` is above the window (or, in a top-k whose every row is
certainly in range, above the running k-th bound), and uses ``max(LB, LBp)`` for the rest
(catalog/_native/codes.c). No upper bound comes from the pooled level.

Files, beside the codes in ``<db>.cache/<embedding id>-v<version>/`` (derived, rebuilt when the
version changes, removed with the folder): ``codes_pool.npy`` (n × pp uint8, pp = G rounded up to 32,
padding 128), ``codes_pool_resid.npy`` (float32 n), ``codes_pool_params.npy`` (float64: s', offsets).

When it is used (:func:`wanted`): the pooled level costs a quarter of the full codes' SAD per row and
query code and saves the full SAD of every row it decides. It pays from :data:`MIN_ROWS` rows and
:data:`MIN_DIMS` dimensions
(at 64 a pooled row is one 32-byte block against the codes' two, and it lost in the shape sweep) for
a score range above 0; for a top k over the whole range its running bound starts at infinity and
tightens only as rows are scanned, so it pays only from :data:`TOPK_MIN_DIMS` dimensions (at 128 it
lost with 100 anchors), from :data:`TOPK_MIN_QUERIES` query vectors on caches of
:data:`TOPK_MIN_ROWS` rows and from :data:`TOPK_MANY_QUERIES` on caches of :data:`TOPK_MANY_MIN_ROWS`
(one query's top k is bound by the memory pass, and the full codes decide it as fast; at 10k rows
and at 100k with 20 anchors the full codes were faster). Measured: docs/BENCHMARKS.md (shape sweep).
"""

from __future__ import annotations

import os

import numpy as np

from . import codes as codes_mod

POOL = 4              # dimensions summed into one pooled code
MIN_DIMS = 128        # dimensions from which a scan uses the pooled level (its rows a quarter of the codes')
MIN_ROWS = 10_000     # rows from which it does (at 1k its second pass was not worth it)
TOPK_MIN_DIMS = 512   # a top k over the whole range: from this many dimensions, and ...
TOPK_MIN_QUERIES = 2  # ... from this many query vectors on large caches ...
TOPK_MIN_ROWS = 500_000
TOPK_MANY_QUERIES = 50  # ... and from this many on caches of TOPK_MANY_MIN_ROWS rows
TOPK_MANY_MIN_ROWS = 100_000
POOL_ENV = "CATALOG_SEARCH_POOLED"  # auto (default) | on | off: force the pooled level (benchmarks, tests)
_CHUNK = 65_536


class Pooled(codes_mod.Codes):
    """The pooled codes of one embedding version (``offsets``: one per group; ``encode`` pools first)."""

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        return codes_mod.quantise_numpy(sums(q), self.offsets, self.step, as_float64=True)


def groups(dims: int) -> int:
    return (dims + POOL - 1) // POOL


def sums(block: np.ndarray) -> np.ndarray:
    """Float64 sums of each run of 4 dimensions (the last run zero-padded) of float32 rows."""
    n, d = block.shape
    g = groups(d)
    out = np.zeros((n, g * POOL), dtype=np.float64)
    out[:, :d] = block
    return out.reshape(n, g, POOL).sum(axis=2)


def build(mat: np.ndarray) -> Pooled:
    """The pooled codes of a normalised float32 matrix (in memory)."""
    n, d = mat.shape
    g = groups(d)
    lo = np.full(g, np.inf)
    hi = np.full(g, -np.inf)
    for s in range(0, n, _CHUNK):
        block = sums(np.asarray(mat[s:s + _CHUNK], dtype=np.float32))
        lo = np.minimum(lo, block.min(axis=0))
        hi = np.maximum(hi, block.max(axis=0))
    offsets = ((lo + hi) / 2.0) if n else np.zeros(g)
    widest = float((hi - lo).max()) if n else 0.0
    step = 1.0 / 255.0
    if widest > 0:
        sample = sums(np.asarray(mat[np.linspace(0, n - 1, min(n, 2048)).astype(np.int64)], dtype=np.float32))
        step = codes_mod.pick_step(sample, offsets, widest)
    out = np.empty((n, codes_mod.dims_padded(g)), dtype=np.uint8)
    resid = np.empty(n, dtype=np.float32)
    for s in range(0, n, _CHUNK):
        out[s:s + _CHUNK], resid[s:s + _CHUNK] = codes_mod.quantise_numpy(
            sums(np.asarray(mat[s:s + _CHUNK], dtype=np.float32)), offsets, step)
    return Pooled(out, resid, float(step), np.ascontiguousarray(offsets, dtype=np.float64))


def load(cache, emb) -> Pooled:
    """The pooled codes of ``emb``'s current version (built and written beside the codes the first time)."""
    return codes_mod.load_derived(cache, emb, "codes_pool", groups(emb.dims), build, Pooled)


def wanted(rows: int, dims: int, queries: int, narrow: bool, choice: str | None = None) -> bool:
    """Whether a codes scan of ``queries`` vectors over ``rows`` × ``dims`` (``narrow``: a minimum score
    above 0) uses the pooled level: ``$CATALOG_SEARCH_POOLED`` ``on``/``off`` forces it; anything else
    (``auto``, the default) applies the measured rule above."""
    raw = (choice if choice is not None else os.environ.get(POOL_ENV, "")).strip().lower()
    if raw in ("on", "off"):
        return raw == "on"
    if dims < MIN_DIMS or rows < MIN_ROWS:
        return False
    if narrow:
        return True
    many = (queries >= TOPK_MANY_QUERIES and rows >= TOPK_MANY_MIN_ROWS) or \
        (queries >= TOPK_MIN_QUERIES and rows >= TOPK_MIN_ROWS)
    return dims >= TOPK_MIN_DIMS and many
