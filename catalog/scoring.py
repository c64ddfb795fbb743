"""The similarity score, defined once (PRODUCT.md §3).

For an embedding of dimension D, vectors are L2-normalised and

    score(a, b) = 1 − ‖â − b̂‖₁ / (2·√D)

which is 1 for identical directions and always lies in [0, 1]. Every surface (library, CLI,
dashboard, slices, label-by-similarity) gets its numbers from here.
"""

from __future__ import annotations

import math

import faiss
import numpy as np


def normalize(matrix) -> np.ndarray:
    """Rows (or a single vector) divided by their L2 norm, as float32. Zero rows stay zero."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(m / norms, dtype=np.float32)


def scale(dims: int) -> float:
    """The L1 distance at which the score reaches 0: 2·√D."""
    return 2.0 * math.sqrt(dims)


def score_from_l1(distance, dims: int):
    """Score(s) from L1 distance(s) between normalised vectors, clipped to [0, 1]."""
    s = 1.0 - np.asarray(distance, dtype=np.float64) / scale(dims)
    return np.clip(s, 0.0, 1.0)


def l1_from_score(score: float, dims: int) -> float:
    """The L1 distance that corresponds to ``score`` (for range searches)."""
    return (1.0 - float(score)) * scale(dims)


def pairwise_scores(queries, rows) -> np.ndarray:
    """``len(queries) × len(rows)`` scores; both are normalised here (float32)."""
    q = normalize(np.atleast_2d(queries))
    x = normalize(np.atleast_2d(rows))
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape[1]} vs {x.shape[1]}")
    if len(x) == 0 or len(q) == 0:
        return np.zeros((len(q), len(x)), dtype=np.float32)
    dist = faiss.pairwise_distances(q, x, faiss.METRIC_L1)
    return score_from_l1(dist, q.shape[1]).astype(np.float32)


def score(a, b) -> float:
    """The score of two single vectors."""
    return float(pairwise_scores(a, b)[0, 0])
