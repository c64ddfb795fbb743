"""The automatic score range, and the score distribution it is chosen from (PRODUCT.md §3).

Scores depend on the embedding: near duplicates in CLIP score above 0.85, but a sentence model's best
match for a text prompt may score 0.6. A search that gives no range (``SearchSpec`` with
``min_score`` and ``max_score`` both None) therefore gets one chosen by :func:`choose_range`, one rule:

* a text prompt always opens on the best :data:`TOP_N` rows;
* any other query uses the default range 0.85–1 when at least one row scores in it,
  and the best :data:`TOP_N` rows otherwise.

"The best N rows" is the range [s, 1] where s is the N-th best score floored to 0.01 (the slider's
step), so at least N rows lie in it (more when scores tie or fall in the same hundredth); with fewer
than N rows it starts at the lowest score, floored. With no row at all it is [0, 1].

The rule reads only a :class:`ScoreDistribution`: the histogram of every matching row's score over
[0, 1] (one exact scan, the filter applied, the anchors left out unless included) and the best
:data:`TOP_N` scores.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import CatalogError
from .spec import DEFAULT_MAX_SCORE, DEFAULT_MIN_SCORE

TOP_N = 100          # the automatic "best rows" range holds at least this many rows (when there are)
DEFAULT_BINS = 50    # histogram bins over [0, 1]: 0.02 wide
MAX_BINS = 1000
STEP = 0.01          # the score slider's step; the top range's lower end is floored to it

REASONS = ("given", "default", "top")


def check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or not 1 <= bins <= MAX_BINS:
        raise CatalogError(f"`bins` must be a whole number from 1 to {MAX_BINS}, not {bins!r}", field="bins")
    return int(bins)


@dataclass(frozen=True)
class ScoreDistribution:
    """The scores of every row a query matches (any score from 0 to 1).

    ``counts[i]`` rows score in ``[edges[i], edges[i+1])`` (the last bin includes 1.0); ``total`` is
    the number of scored rows (``sum(counts)``); ``best`` the highest score (None without rows);
    ``top_scores`` the best ``min(total, top)`` scores, highest first (:meth:`nth_best`)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    total: int
    best: float | None
    top_scores: tuple[float, ...] = ()

    @property
    def bins(self) -> int:
        return len(self.counts)

    def nth_best(self, n: int) -> float | None:
        """The score of the ``n``-th best row (1-based); the lowest known score when fewer rows are
        known; None without rows."""
        if not self.top_scores:
            return None
        return self.top_scores[min(max(int(n), 1), len(self.top_scores)) - 1]

    def to_dict(self) -> dict:
        return {"edges": list(self.edges), "counts": list(self.counts), "total": self.total, "best": self.best,
                "top_scores": list(self.top_scores)}


def distribution_from_scores(scores, bins: int = DEFAULT_BINS, top: int = TOP_N) -> ScoreDistribution:
    """The :class:`ScoreDistribution` of an array of scores (any order)."""
    bins = check_bins(bins)
    s = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(s, bins=edges)
    n = len(s)
    k = min(n, max(int(top), 1))
    if k == 0:
        best_k = np.empty(0)
    elif k < n:
        best_k = np.partition(s, n - k)[n - k:]
    else:
        best_k = s
    best_k = np.sort(best_k)[::-1]
    return ScoreDistribution(edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts),
                             total=int(n), best=float(best_k[0]) if k else None,
                             top_scores=tuple(float(x) for x in best_k))


@dataclass(frozen=True)
class RangeChoice:
    """The score range a search used and why.

    ``automatic``: chosen by :func:`choose_range` (no range was given). ``reason``: ``"given"`` (the
    caller's range), ``"default"`` (0.85–1, which holds at least one row) or ``"top"`` (the best
    ``top_n`` rows). ``message`` says it in one sentence."""

    min_score: float
    max_score: float
    automatic: bool = False
    reason: str = "given"
    top_n: int = TOP_N
    message: str = ""

    def to_dict(self) -> dict:
        return {"min_score": self.min_score, "max_score": self.max_score, "automatic": self.automatic,
                "reason": self.reason, "top_n": self.top_n, "message": self.message}


def given_range(min_score: float, max_score: float) -> RangeChoice:
    return RangeChoice(float(min_score), float(max_score), automatic=False, reason="given",
                       message=f"scores {min_score:.2f}–{max_score:.2f}, as given")


def floor_step(score: float) -> float:
    """``score`` floored to the slider step (0.01), never above ``score``."""
    lo = round(math.floor(score / STEP + 1e-9) * STEP, 2)
    while lo > score:
        lo = round(lo - STEP, 2)
    return max(lo, 0.0)


def choose_range(dist: ScoreDistribution, text_prompt: bool = False, top_n: int = TOP_N) -> RangeChoice:
    """The automatic range for a query whose scores are ``dist`` (see the module's rule)."""
    lo_d, hi_d = DEFAULT_MIN_SCORE, DEFAULT_MAX_SCORE
    if not text_prompt and dist.best is not None and dist.best >= lo_d:
        return RangeChoice(lo_d, hi_d, automatic=True, reason="default", top_n=top_n,
                           message=f"At least one row scores {lo_d:.2f} or more; showing the default range {lo_d:.2f}–{hi_d:.2f}")
    nth = dist.nth_best(top_n)
    lo = 0.0 if nth is None else floor_step(nth)
    why = ("A text prompt opens on its best matches" if text_prompt
           else f"No row scores {lo_d:.2f} or more")
    if nth is None:
        what = "no row to score"
    elif dist.total < top_n:
        what = f"showing all {dist.total} row{'s' if dist.total != 1 else ''} (scores {lo:.2f}–1.00)"
    else:
        what = f"showing the best {top_n} rows (scores {lo:.2f}–1.00)"
    return RangeChoice(lo, 1.0, automatic=True, reason="top", top_n=top_n, message=f"{why}; {what}")
