"""How well will label-by-similarity work? Leave-one-out over the labeled pool.

Every pool row (a row with manual or reviewed labels and a vector in the embedding) is predicted from
the other pool rows with the §4 rule, for each k in ``results`` and each ``threshold``. Measures, over
the n pool rows (a row's true labels are its manual and reviewed labels):

- ``accuracy``: fraction of rows whose best-scoring label is one of its true labels (the
  ``top_only`` outcome; it does not depend on the threshold);
- ``precision``: of all labels suggested at that threshold (``label_score ≥ threshold``), the
  fraction that are true labels of their row (``None`` when nothing is suggested);
- ``coverage``: fraction of rows with at least one suggested label;
- ``recall``: fraction of all true (row, label) pairs that were suggested;
- ``suggestions_per_row``: mean number of suggested labels per row.

The recommended pair is the one with the highest precision among those with coverage ≥ 0.8 (ties:
higher coverage, then smaller k, then higher threshold); when no pair reaches that coverage there is
no recommendation and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CatalogError
from .rule import TOLERANCE, Pool, check_params, label_scores, neighbours

DEFAULT_RESULTS = (1, 3, 5, 10)
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
COVERAGE_TARGET = 0.8
FEW_EXAMPLES = 5  # median examples per label below which small k is advised


@dataclass
class Evaluation:
    embedding: str
    pool_size: int
    labels: dict[str, int]  # examples per label in the pool
    grid: list[dict]  # one dict per (k, threshold)
    accuracy_by_k: dict[int, float]
    recommended: dict | None
    coverage_target: float = COVERAGE_TARGET
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"embedding": self.embedding, "pool_size": self.pool_size, "labels": self.labels,
                "coverage_target": self.coverage_target, "grid": self.grid,
                "accuracy_by_k": {str(k): v for k, v in self.accuracy_by_k.items()},
                "recommended": self.recommended, "notes": self.notes}


def _parse_list(values, kind, what):
    if isinstance(values, str):
        values = [v for v in values.replace(" ", "").split(",") if v]
    if isinstance(values, (int, float)):
        values = [values]
    out = []
    for v in values:
        try:
            out.append(kind(v))
        except (TypeError, ValueError):
            raise CatalogError(f"`{what}` must be a comma-separated list of numbers, not {v!r}", field=what) from None
    if not out:
        raise CatalogError(f"`{what}` is empty; give at least one value", field=what)
    return out


def grid_params(results=DEFAULT_RESULTS, thresholds=None) -> tuple[list[int], list[float]]:
    """The values of k and the thresholds to evaluate (lists or comma-separated text), validated,
    sorted and without duplicates."""
    ks = sorted({check_params(k, 0.3)[0] for k in _parse_list(results, float, "results")})
    ts = sorted({check_params(1, t)[1] for t in _parse_list(
        DEFAULT_THRESHOLDS if thresholds is None else thresholds, float, "thresholds")})
    return ks, ts


def evaluate(embedding: str, matrix, pool: Pool, ks: list[int], ts: list[float]) -> Evaluation:
    """Leave-one-out over ``pool`` (rows of the cached, normalised ``matrix`` of ``embedding``) for
    every k in ``ks`` and threshold in ``ts`` (as :func:`grid_params` returns them)."""
    n = len(pool)
    if n < 2:
        raise CatalogError(
            f"evaluation needs at least 2 labeled rows with vectors in embedding {embedding}, found {n}",
            field="embedding", hint="label more rows first")
    n_labels = max(1, len(pool.label_names))
    counts = np.diff(pool.ptr)
    truth_q = np.repeat(np.arange(n), counts)
    truth_keys = np.unique(truth_q.astype(np.int64) * n_labels + pool.label_ids)
    per_label = np.bincount(pool.label_ids, minlength=len(pool.label_names))
    kmax = ks[-1]
    idx, scores = neighbours(matrix, pool, pool.cache_pos, kmax, np.arange(n, dtype=np.int64))
    grid, acc_by_k = [], {}
    for k in ks:
        qq, ll, sums = label_scores(idx[:, :k], scores[:, :k], pool, k)
        correct = np.isin(qq.astype(np.int64) * n_labels + ll, truth_keys)
        first = np.ones(len(qq), dtype=bool)
        first[1:] = qq[1:] != qq[:-1]
        accuracy = float(correct[first].sum()) / n
        acc_by_k[k] = accuracy
        for t in ts:
            mask = sums >= t - TOLERANCE
            suggested = int(mask.sum())
            right = int((mask & correct).sum())
            grid.append({
                "k": k, "threshold": t, "accuracy": accuracy,
                "precision": right / suggested if suggested else None,
                "coverage": len(np.unique(qq[mask])) / n,
                "recall": right / len(truth_keys),
                "suggestions_per_row": suggested / n,
            })
    eligible = [g for g in grid if g["coverage"] >= COVERAGE_TARGET and g["precision"] is not None]
    recommended = None
    notes = []
    if eligible:
        best = max(eligible, key=lambda g: (g["precision"], g["coverage"], -g["k"], g["threshold"]))
        recommended = dict(best)
    else:
        top = max(grid, key=lambda g: g["coverage"])
        notes.append(f"no (k, threshold) pair reaches coverage {COVERAGE_TARGET:g} (the best reaches "
                     f"{top['coverage']:.2f} at k={top['k']}, threshold={top['threshold']:g}); try lower thresholds "
                     "or `top_only`, or label more rows")
    median = float(np.median(per_label)) if len(per_label) else 0.0
    if median < FEW_EXAMPLES:
        notes.append(f"few examples per label (median {median:g}): small k (1-2) usually works better than the default 10")
    return Evaluation(embedding, n, {name: int(c) for name, c in zip(pool.label_names, per_label)}, grid, acc_by_k,
                      recommended, COVERAGE_TARGET, notes)
