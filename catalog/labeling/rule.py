"""The label-by-similarity rule (PRODUCT.md §4) and its result types.

For each query row q, take the ``results`` (k) best-scoring rows of the *labeled pool* (rows with
manual or reviewed labels, never q itself; unreviewed suggestions never count) under the chosen
embedding. For each label ℓ of those hits::

    label_score(ℓ) = (1/k) · Σ score(q, h)   over the top-k hits h that carry ℓ

Labels with ``label_score ≥ threshold`` are suggested; with ``top_only`` only the best label is
(the threshold is then not used). When the pool holds fewer than k rows, the hits there are used and
the sum is still divided by k, so a label's score keeps meaning "share of k neighbours, weighted by
similarity" and a tiny pool does not produce confident suggestions.

Scores are the catalog's one score (:mod:`catalog.scoring`) on the cached normalised vectors; the
neighbour search is exact (:func:`knn_l1`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CatalogError
from ..scoring import score_from_l1
from ..search.l1_knn import knn_l1
from ..search.results import Hit
from ..vectors.cache import find_rows

DEFAULT_RESULTS = 10
DEFAULT_THRESHOLD = 0.30
MAX_RESULTS = 10_000
TOLERANCE = 1e-6  # scores carry float32 rounding: one within 1e-6 of the threshold reaches it


Neighbor = Hit  # a labeled row near the query row: the same shape as a search hit


@dataclass
class LabelSuggestion:
    label: str
    score: float
    suggested: bool

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "suggested": self.suggested}


@dataclass
class RowSuggestions:
    id: str
    global_key: str
    hits: list[Neighbor]
    labels: list[LabelSuggestion]  # best first; unticked ones too

    @property
    def suggested(self) -> list[str]:
        return [s.label for s in self.labels if s.suggested]

    def to_dict(self) -> dict:
        return {"id": self.id, "global_key": self.global_key, "hits": [h.to_dict() for h in self.hits],
                "labels": [s.to_dict() for s in self.labels]}


@dataclass
class LabelBySimilarityResult:
    results: list[RowSuggestions]
    embedding: str
    k: int
    threshold: float
    top_only: bool
    pool_size: int  # labeled rows with a vector in the embedding
    saved: int = 0  # suggestions written that were not there before
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.results]}


def check_params(results, threshold) -> tuple[int, float]:
    """``(k, threshold)`` validated: k a whole number from 1 to 10000, the threshold from 0 to 1."""
    try:
        k = int(results)
        if isinstance(results, float) and results != k:
            raise ValueError
    except (TypeError, ValueError):
        raise CatalogError(f"`results` (number of neighbours) must be a whole number >= 1, not {results!r}",
                           field="results") from None
    if k < 1 or k > MAX_RESULTS:
        raise CatalogError(f"`results` (number of neighbours) must be from 1 to {MAX_RESULTS}, not {k}",
                           field="results")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise CatalogError(f"`threshold` must be a number from 0 to 1, not {threshold!r}", field="threshold") from None
    if not 0.0 <= t <= 1.0:
        raise CatalogError(f"`threshold` must be from 0 to 1, not {t:g}", field="threshold")
    return k, t


# -- the labeled pool ------------------------------------------------------------------------------
@dataclass
class Pool:
    """Labeled rows that have a vector: positions into the vector cache and their labels (CSR)."""

    cache_pos: np.ndarray  # (n,) positions of the pool rows in the cached matrix
    row_ids: np.ndarray  # (n,) their ids
    label_names: list[str]  # sorted, so label id order is name order
    ptr: np.ndarray  # (n + 1,) offsets into label_ids
    label_ids: np.ndarray  # concatenated label ids per pool row
    labeled_rows: int  # labeled rows in the catalog, with or without a vector

    def __len__(self) -> int:
        return len(self.cache_pos)


def cache_positions(ids: np.ndarray):
    """A lookup ``row ids -> position in ids (or -1)`` for the cache's (sorted) id array."""
    return lambda wanted: find_rows(ids, wanted)


def build_pool(found, lookup) -> Pool:
    """The :class:`Pool` from the pool's ``(row id, label)`` Arrow table (sorted by row id and label)
    and a :func:`cache_positions` lookup."""
    rows = found.column(0).to_numpy(zero_copy_only=False).astype("U36") if found.num_rows else np.empty(0, "U36")
    labels = found.column(1).to_numpy(zero_copy_only=False) if found.num_rows else np.empty(0, object)
    if len(labels):
        names, label_idx = np.unique(labels.astype(str), return_inverse=True)
    else:
        names, label_idx = np.empty(0, str), np.empty(0, np.int64)
    uniq_rows, first = np.unique(rows, return_index=True)
    pos = lookup(uniq_rows)
    keep = pos >= 0
    counts = np.diff(np.append(first, len(rows)))
    # labels of the kept rows, in row order
    starts, counts = first[keep], counts[keep]
    take = np.repeat(starts, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Pool(cache_pos=pos[keep], row_ids=uniq_rows[keep], label_names=[str(n) for n in names],
                ptr=ptr, label_ids=np.asarray(label_idx, dtype=np.int64)[take], labeled_rows=len(uniq_rows))


# -- the rule ------------------------------------------------------------------------------------------
def neighbours(matrix, pool: Pool, query_pos: np.ndarray | None, k: int, self_pool_idx: np.ndarray | None,
               queries: np.ndarray | None = None):
    """``(hit pool indices, hit scores)``, each ``len(query_pos) × k``; -1 / nan where fewer than k.

    ``self_pool_idx`` gives, per query, its own index in the pool (or -1); it is never a hit.
    ``queries`` (normalised, float32, one per row) replaces ``matrix[query_pos]`` for vectors from outside.
    """
    dims = matrix.shape[1]
    pool_mat = np.ascontiguousarray(matrix[pool.cache_pos])
    extra = 1 if self_pool_idx is not None and np.any(self_pool_idx >= 0) else 0
    kk = min(k + extra, len(pool))
    queries = np.ascontiguousarray(matrix[query_pos] if queries is None else queries, dtype=matrix.dtype)
    dist, idx = knn_l1(queries, pool_mat, kk)
    if extra:
        own = idx == self_pool_idx[:, None]
        own &= self_pool_idx[:, None] >= 0
        # drop each query's own row, shift the rest left
        keep = ~own
        order = np.argsort(~keep, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
        keep = np.take_along_axis(keep, order, axis=1)
        idx = np.where(keep, idx, -1)
        dist = np.where(keep, dist, np.inf)
    if idx.shape[1] < k:
        idx = np.pad(idx, ((0, 0), (0, k - idx.shape[1])), constant_values=-1)
        dist = np.pad(dist, ((0, 0), (0, k - dist.shape[1])), constant_values=np.inf)
    idx, dist = idx[:, :k], dist[:, :k]
    scores = np.where(idx >= 0, score_from_l1(np.where(idx >= 0, dist, 0.0), dims), np.nan)
    return idx, scores


def label_scores(idx: np.ndarray, scores: np.ndarray, pool: Pool, k: int):
    """Per (query, label) scores: arrays ``q, label_id, score`` sorted by query, best label first
    (ties by label name)."""
    valid = idx >= 0
    q = np.nonzero(valid)[0]
    h = idx[valid]
    s = scores[valid].astype(np.float64)
    counts = pool.ptr[h + 1] - pool.ptr[h]
    q2 = np.repeat(q, counts)
    s2 = np.repeat(s, counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    lab = pool.label_ids[np.repeat(pool.ptr[h], counts) + offs]
    n_labels = max(1, len(pool.label_names))
    key = q2.astype(np.int64) * n_labels + lab
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, weights=s2, minlength=len(uniq)) / k
    qq, ll = uniq // n_labels, uniq % n_labels
    order = np.lexsort((ll, -sums, qq))
    return qq[order], ll[order], sums[order]


def suggest_mask(qq: np.ndarray, sums: np.ndarray, threshold: float, top_only: bool) -> np.ndarray:
    """Which (query, label) entries are ticked (entries sorted by query, best first)."""
    if top_only:
        first = np.ones(len(qq), dtype=bool)
        first[1:] = qq[1:] != qq[:-1]
        return first
    return sums >= threshold - TOLERANCE
