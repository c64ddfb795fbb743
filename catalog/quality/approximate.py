"""Approximate all-pairs range search over the IVF lists (:mod:`catalog.search.ivf`), with measured recall.

The embedding's IVF index (built on first use, as for approximate search) groups rows into about
4·√N lists around unit centroids. Every row is searched, with the exact kernel, against the members of
the ``PROBE_LISTS`` (8) lists whose centroids are nearest to the row itself: a near duplicate of a row
sits in one of them (for rows far from every centroid too, whose copies may fall into another list
than theirs), so the work drops from N² to about ``PROBE_LISTS``·N²/nlist pairs. A pair is found when
either row's lists hold the other.

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
_BLOCK = 65_536
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
    members = []
    for c in range(len(cent)):
        m = local[np.asarray(ivf.members[int(ivf.offsets[c]):int(ivf.offsets[c + 1])], dtype=np.int64)]
        members.append(np.sort(m[m >= 0]))
    # every row's PROBE_LISTS nearest centroids (unit rows and centroids: the largest inner products)
    search = faiss.IndexFlatIP(cent.shape[1])
    search.add(cent)
    near = np.empty((n, probe), dtype=np.int64)
    for s in range(0, n, _BLOCK):
        near[s:s + _BLOCK] = search.search(np.ascontiguousarray(mat[pos[s:s + _BLOCK]], dtype=np.float32), probe)[1]
    flat = near.ravel()
    order = np.argsort(flat, kind="stable")
    rows_of = np.arange(n).repeat(probe)[order]
    cuts = np.searchsorted(flat[order], np.arange(len(cent) + 1))
    out_i, out_j, out_d = [], [], []
    for c in range(len(cent)):
        q, pool = rows_of[cuts[c]:cuts[c + 1]], members[c]
        if len(q) == 0 or len(pool) == 0:
            continue
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
