"""Exact search on the 8-bit codes: the codes pick candidates with a proven bound, the float32 cache
re-scores them, and the answer is the float32 scan's (rows, order, scores).

For one or several query vectors (``max``: a row's distance is its smallest over them), every row has
real-L1 bounds ``LB ≤ min_a L1(q_a, x) ≤ UB`` from the codes (:mod:`catalog.vectors.codes`, (1)).

* **Range**: a row can score in ``[min, max]`` only if its float32 distance lies in the range's
  distance window (:func:`~.backends.base.range_thresholds`), so only if ``LB ≤ hi`` and ``UB ≥ lo``
  after the float32 widening (:func:`~catalog.vectors.codes.l1_window`). Those rows are re-scored
  with the float32 scan's own kernel (:func:`~.scan.l1_rows`) and the range is checked on the
  scores, as the float32 path does.
* **Top k** (descending order, no filter): rows whose bounds put them certainly in range
  (:func:`~catalog.vectors.codes.certain_window`) are counted; ``U`` is the ``(k + E)``-th smallest
  upper bound among them (``E``: the rows the service will exclude, the anchors). At least k rows that
  are not excluded then have a float32 distance ``≤ U·(1+γ)``, so every row of the float32 top k has
  ``LB ≤ U·(1+γ)/(1−γ)`` (:func:`~catalog.vectors.codes.topk_widen`); those rows, the rows not
  certainly in range (needed for the total) and the excluded rows are re-scored. The rows certainly in
  range that were not re-scored are not listed but counted (``Matches.unlisted``), so the total is
  the float32 scan's too.

With the pooled first level (:mod:`catalog.vectors.pooled`) ``LB`` is ``max(LB, LBp)``, another lower
bound of the same distance; every rule above holds unchanged for it.
"""

from __future__ import annotations

import math

import numpy as np

from ..scoring import scale, score_from_l1
from ..vectors import codes as codes_mod
from .backends.base import in_range, range_thresholds
from .scan import l1_rows

_FLOOR_SLACK = 1e-6  # a top-k bound this close to score 0 could tie clipped scores: list the whole range


def distance_window(min_score: float, max_score: float, dims: int) -> tuple[float, float, float, float]:
    """``(lo, hi, clo, chi)`` in float32-distance terms: a row in range has ``lo ≤ d32 ≤ hi``; a row with
    ``clo ≤ d32 ≤ chi`` is certainly in range (the score check in float64 included)."""
    lo, hi = range_thresholds(min_score, max_score, dims)
    s = scale(dims)
    if min_score <= 0:
        hi = chi = math.inf
    else:
        chi = (1.0 - min_score) * s * (1.0 - 1e-12) - 1e-12
    if max_score >= 1:
        lo = clo = -math.inf
    else:
        clo = (1.0 - max_score) * s * (1.0 + 1e-12) + 1e-12
    return lo, hi, clo, chi


def codes_search(codes, matrix, queries, dims: int, min_score: float, max_score: float, k: int | None = None,
                 exclude: np.ndarray | None = None, nearest: bool = False, isa: str | None = None, pooled=None):
    """``(positions, scores, which, unlisted)`` as the exact backend's float32 scan gives them (with
    ``k``: the rows the top k needs, see the module text). ``which`` (with ``nearest``) is the nearest
    query per listed row; ``exclude`` holds the cache positions the caller will drop; ``pooled``: the
    pooled first level (:class:`~catalog.vectors.pooled.Pooled`) or None."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    qcodes, eq = codes.encode(queries)
    if pooled is not None:
        pooled = (pooled, *pooled.encode(queries))
    lo32, hi32, clo32, chi32 = distance_window(min_score, max_score, dims)
    lo, hi = codes_mod.l1_window(lo32, hi32, dims)
    clo, chi = codes_mod.certain_window(clo32, chi32, dims)
    exclude = np.unique(np.asarray([] if exclude is None else exclude, dtype=np.int64))
    kk = 0 if k is None else int(k) + len(exclude)
    pos, certain, count, uk = codes_mod.scan(codes, qcodes, eq, lo, hi, clo, chi, kk, isa, pooled)
    if kk and math.isfinite(uk) and uk * codes_mod.topk_widen(dims)[0] >= scale(dims) * (1 - _FLOOR_SLACK):
        kk = 0
        pos, certain, count, uk = codes_mod.scan(codes, qcodes, eq, lo, hi, clo, chi, 0, isa, pooled)
    if kk and len(exclude):
        extra = np.setdiff1d(exclude, pos)
        if len(extra):
            lb, ub = bounds(codes, qcodes, eq, extra, pooled)
            maybe = (lb <= hi) & (ub >= lo)
            extra = extra[maybe]
            pos = np.concatenate([pos, extra])
            certain = np.concatenate([certain, (ub[maybe] <= chi) & (lb[maybe] >= clo)])
            o = np.argsort(pos, kind="stable")
            pos, certain = pos[o], certain[o]
    found = l1_rows(matrix, pos, queries, nearest=nearest)
    dist, which = found if nearest else (found, None)
    scores = score_from_l1(dist, dims)
    keep = in_range(scores, min_score, max_score)
    unlisted = count - int(np.count_nonzero(certain)) if kk else 0
    if not keep.all():
        pos, scores = pos[keep], scores[keep]
        which = None if which is None else which[keep]
    return pos, scores, which, unlisted


def bounds(codes, qcodes: np.ndarray, eq: np.ndarray, rows: np.ndarray, pooled=None) -> tuple[np.ndarray, np.ndarray]:
    """``(LB, UB)`` of the given rows, with the same float64 operations as the scan (``LB`` raised to
    the pooled bound where ``pooled`` = ``(Pooled, query codes, residuals)`` is given)."""
    lb, ub = codes_mod.lower_bounds(codes, qcodes, eq, np.asarray(rows, dtype=np.int64))
    if pooled is not None:
        lb = np.maximum(lb, codes_mod.lower_bounds(*pooled, np.asarray(rows, dtype=np.int64), upper=False)[0])
    return lb, ub
