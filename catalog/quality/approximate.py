"""Approximate all-pairs range search over the IVF lists (:mod:`catalog.search.ivf`), with measured recall.

The embedding's IVF index (built on first use, as for approximate search) groups rows into about
4·√N lists around unit centroids. Each list's rows are searched, with the exact kernel, against the
rows of the ``PROBE_LISTS`` (8) lists whose centroids are nearest to its own centroid (itself
included): near duplicates sit in the same or a neighbouring list, so the work drops from N² to
about ``PROBE_LISTS``·N²/nlist pairs. A pair is found when either row's list reaches the other's.

The pair recall is measured on every run: ``RECALL_SAMPLE`` (2,000) rows drawn with a fixed seed are
searched exactly against all the rows considered; recall = the share of their exact pairs that the
approximate run found (None when the sample has no pair at all).
"""

from __future__ import annotations

import faiss
import numpy as np

from ..search.ivf import load_index
from ..search.l1_range import range_search_l1

PROBE_LISTS = 8
RECALL_SAMPLE = 2_000


def _pairs_key(i, j, n):
    a, b = np.minimum(i, j), np.maximum(i, j)
    return a.astype(np.int64) * n + b


def approximate_pairs(store, emb, exact, pos: np.ndarray, max_dist: float, progress=None):
    """``(i, j, distance, pair recall, sample size)`` over the cache positions ``pos`` (sorted); ``i < j``
    index into ``pos``."""
    n = len(pos)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    if n < 2:
        return (*empty, None, 0)
    ivf = load_index(store, emb, exact)
    mat = exact.matrix
    local = np.full(len(mat), -1, dtype=np.int64)
    local[pos] = np.arange(n)
    cent = np.ascontiguousarray(ivf.centroids, dtype=np.float32)
    probe = min(PROBE_LISTS, len(cent))
    _, near = faiss.knn(cent, cent, probe, metric=faiss.METRIC_L1)
    members = []
    for c in range(len(cent)):
        m = local[np.asarray(ivf.members[int(ivf.offsets[c]):int(ivf.offsets[c + 1])], dtype=np.int64)]
        members.append(np.sort(m[m >= 0]))
    out_i, out_j, out_d = [], [], []
    for c in range(len(cent)):
        q = members[c]
        if len(q) == 0:
            continue
        pool = np.concatenate([members[int(o)] for o in near[c] if o >= 0])
        qi, pj, d = range_search_l1(np.asarray(mat[pos[q]]), np.asarray(mat[pos[pool]]), max_dist)
        a, b = q[qi], pool[pj]
        keep = a != b
        out_i.append(a[keep]), out_j.append(b[keep]), out_d.append(d[keep])
        if progress is not None:
            progress(c + 1, len(cent))
    if not out_i:
        return (*empty, None, 0)
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    key = _pairs_key(i, j, n)
    key, first = np.unique(key, return_index=True)
    i, j, d = key // n, key % n, d[first]
    return i, j, d, *_recall(mat, pos, key, max_dist)


def _recall(mat, pos, found_keys, max_dist):
    n = len(pos)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(RECALL_SAMPLE, n), replace=False))
    qi, pj, _ = range_search_l1(np.asarray(mat[pos[sample]]), np.asarray(mat[pos]), max_dist)
    a = sample[qi]
    keep = a != pj
    truth = np.unique(_pairs_key(a[keep], pj[keep], n))
    if len(truth) == 0:
        return None, len(sample)
    return float(np.isin(truth, found_keys).mean()), len(sample)
