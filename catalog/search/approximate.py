"""Approximate backend: an inverted-file (IVF) L1 index over the vector cache, with measured recall.

The index holds no copy of the vectors. Rows are grouped into about 2·√N lists by L2 k-means
(training with L2 is much faster than with L1 and groups normalised vectors the same way); a list is
an array of cache positions, sorted by each member's L1 distance to the list's centroid. The files
(``ivf-*.npy`` and ``ivf-l1.json``) live in the embedding's cache folder
(``<db>.cache/<embedding id>-v<version>/``): derived, rebuilt when the vectors change.

A query computes its exact L1 distance to every centroid, visits lists nearest first and scores
their members exactly from the memory-mapped cache (both cores: the candidates are split in two).
L1 is a metric, so ``d(q, x) ≥ |d(q, c) − d(x, c)|`` for every member ``x`` of list ``c``; members
outside that ring around the query's distance are skipped without being read, and when no unvisited
list can hold a row within the needed distance the result is exact (certified). Otherwise the scan
widens (×2 lists) while the outer half of the visited lists still contributed rows to the answer,
up to :data:`MAX_WIDEN` times the calibrated number of lists.

``nprobe`` (lists visited first) is calibrated when the index is built: the smallest power of two
whose mean top-100 recall against the exact scan reaches :data:`TARGET_RECALL` on sample rows that
have neighbours at all — rows whose 100th neighbour is farther than :data:`STRUCTURE_RATIO` times
their median distance to the data sit in empty space (random directions), have no meaningful
neighbourhood, and are reported separately (``unstructured_share``, ``unstructured_recall``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time

import faiss
import numpy as np

from ..scoring import score_from_l1
from .base import Backend, Matches, Query, in_range, range_thresholds
from .exact import ExactBackend, _executor, l1_scan, threads

META_FILE = "ivf-l1.json"
ARRAYS = ("centroids", "members", "member_dist", "offsets")
INDEX_FILE = "ivf-members.npy"  # the largest array file (kept as a name for callers and tests)
TARGET_RECALL = 0.99
STRUCTURE_RATIO = 0.85
CALIBRATION_QUERIES = 64
MAX_WIDEN = 16
PARALLEL_ROWS = 4096  # candidates from which both cores score one query
FORMAT = 2
DIFFUSE_NORM = 0.65  # centroids shorter than this share of the median length are dropped

_lock = threading.Lock()
_memo: dict[tuple[str, str], tuple[int, "IvfIndex"]] = {}


def nlist_for(n: int) -> int:
    """About 2·√N lists, and at least 39 rows per list."""
    return max(1, min(int(round(2 * math.sqrt(n))), n // 39))


def _folder(catalog, emb):
    return catalog.store.cache_dir / f"{emb.id}-v{emb.version}"


class IvfIndex:
    """Centroids, list members (cache positions) sorted by their L1 distance to the centroid."""

    def __init__(self, mat, centroids, members, member_dist, offsets, meta):
        self.mat, self.centroids, self.members, self.member_dist = mat, centroids, members, member_dist
        self.offsets, self.meta = offsets, meta
        sizes = np.diff(offsets)
        last = np.maximum(offsets[1:] - 1, 0)
        self.radius = np.where(sizes > 0, member_dist[last] if len(member_dist) else 0, 0).astype(np.float32)
        self.nlist = len(centroids)

    # -- one query vector ---------------------------------------------------------------------
    def _ring(self, lists, dc, tau):
        """Member positions of ``lists`` within ``tau`` of the ring ``|d(q,c) − d(x,c)| ≤ tau``."""
        parts = []
        for c in lists:
            a, b = self.offsets[c], self.offsets[c + 1]
            if a == b:
                continue
            md = self.member_dist[a:b]
            lo = a + np.searchsorted(md, dc[c] - tau, "left") if np.isfinite(tau) else a
            hi = a + np.searchsorted(md, dc[c] + tau, "right") if np.isfinite(tau) else b
            if hi > lo:
                parts.append(self.members[lo:hi])
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def _score(self, q, pos, n_threads):
        pos = np.sort(pos)
        if len(pos) == 0:
            return pos, np.empty(0, np.float32)
        if n_threads > 1 and len(pos) >= PARALLEL_ROWS:
            cut = np.linspace(0, len(pos), n_threads + 1).astype(int)
            futs = [_executor(n_threads).submit(self._score_part, q, pos[a:b]) for a, b in zip(cut[:-1], cut[1:])]
            return pos, np.concatenate([f.result() for f in futs])
        return pos, self._score_part(q, pos)

    def _score_part(self, q, pos):
        rows = np.asarray(self.mat[pos], dtype=np.float32)  # gathers from the memory-mapped cache
        return faiss.pairwise_distances(q[None], rows, faiss.METRIC_L1)[0]

    def search_one(self, q, radius, k, nprobe, n_threads=1, max_widen=MAX_WIDEN):
        """``(positions, L1 distances, complete)`` of rows within ``radius`` (the ``k`` nearest
        suffice when ``k`` is given; ``complete`` then refers to the page, else to the whole range).
        ``complete`` is True only when the triangle-inequality bound proves that no unvisited list
        holds a match; an answer that merely stopped growing is returned as incomplete."""
        dc = faiss.pairwise_distances(q[None], self.centroids, faiss.METRIC_L1)[0]
        order = np.argsort(dc, kind="stable")
        pos_all, dist_all = [], []
        done = 0
        p = min(self.nlist, max(2, nprobe))  # the second list tells whether the answer spills over
        limit = min(self.nlist, max(p, nprobe * max_widen))
        tau = radius
        while True:
            new = order[done:p]
            pos, dist = self._score(q, self._ring(new, dc, tau), n_threads)
            pos_all.append(pos)
            dist_all.append(dist)
            pos, dist = np.concatenate(pos_all), np.concatenate(dist_all)
            inside = dist <= radius
            if k is not None and int(inside.sum()) >= k:
                tau = min(radius, float(np.partition(dist[inside], k - 1)[k - 1]))
            rest = order[p:]
            certified = not len(rest) or bool(np.all(dc[rest] - self.radius[rest] > tau))
            if certified:
                return pos, dist, True
            outer = order[p // 2:p]
            hits = pos[dist <= tau]
            spill = len(outer) and len(hits) and bool(np.isin(hits, self._ring(outer, dc, tau)).any())
            if not spill:  # a good answer, but not a proven one: auto search re-checks exactly
                return pos, dist, False
            if p >= limit:
                return pos, dist, False
            done, p = p, min(limit, p * 2)


def _train(mat, n, dims, nlist, seed=1):
    rng = np.random.default_rng(0)
    train_n = min(n, max(64 * nlist, 10_000))
    sample = np.sort(rng.choice(n, size=train_n, replace=False)) if train_n < n else np.arange(n)
    km = faiss.Kmeans(dims, nlist, niter=10, max_points_per_centroid=64, seed=seed, verbose=False)
    km.train(np.ascontiguousarray(mat[sample], dtype=np.float32))
    centroids = km.centroids
    # A centroid near the origin stands for rows that point in no particular direction (the mean of
    # scattered unit vectors is short); its list would be the second-nearest list of almost every
    # query. Its rows go to their nearest directional list instead, where they sit far from the
    # centroid and the ring bound skips them for queries inside a cluster.
    norms = np.linalg.norm(centroids, axis=1)
    directional = norms >= DIFFUSE_NORM * float(np.median(norms))
    if directional.any():
        centroids = centroids[directional]
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _assign(mat, centroids, progress=None):
    n = len(mat)
    quant = faiss.IndexFlatL2(centroids.shape[1])
    quant.add(centroids)
    lists = np.empty(n, dtype=np.int32)
    dist = np.empty(n, dtype=np.float32)
    step = 65_536
    for s in range(0, n, step):
        x = np.ascontiguousarray(mat[s:s + step], dtype=np.float32)
        _, a = quant.search(x, 1)
        a = a[:, 0]
        lists[s:s + len(x)] = a
        dist[s:s + len(x)] = np.abs(x - centroids[a]).sum(axis=1)
        if progress:
            progress(min(n, s + step), n)
    return lists, dist


def _calibrate(ivf: IvfIndex, mat, n, k=100, target=TARGET_RECALL, seed=7):
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(CALIBRATION_QUERIES, n), replace=False))
    k = min(k, n)
    cases = []
    for i in sample:
        q = np.asarray(mat[i], dtype=np.float32)
        d = l1_scan(mat, q)
        top = np.argpartition(d, k - 1)[:k]
        kth = float(d[top].max())
        cases.append((q, set(top.tolist()), kth <= STRUCTURE_RATIO * float(np.median(d))))
    structured = [c for c in cases if c[2]] or cases
    other = [c for c in cases if not c[2]]

    def recall(group, nprobe):
        out = []
        for q, truth, _ in group:
            pos, dist, _ = ivf.search_one(q, np.inf, k, nprobe)
            got = pos[np.argsort(dist, kind="stable")[:k]]
            out.append(len(truth & set(got.tolist())) / len(truth))
        return float(np.mean(out)) if out else None

    nprobe = min(2, ivf.nlist)
    while True:
        r = recall(structured, nprobe)
        if r >= target or nprobe >= ivf.nlist:
            return nprobe, r, len(other) / len(cases), recall(other, nprobe)
        nprobe = min(ivf.nlist, nprobe * 2)


def build_index(catalog, emb, exact: ExactBackend | None = None, progress=None,
                target_recall: float = TARGET_RECALL) -> dict:
    """Build (or rebuild) the IVF index of ``emb``'s current vectors; returns its description."""
    exact = exact or ExactBackend(catalog, emb)
    mat, n, dims = exact.matrix, exact.size, emb.dims
    folder = _folder(catalog, emb)
    started = time.perf_counter()
    nlist = nlist_for(n)
    centroids = _train(mat, n, dims, nlist)
    nlist = len(centroids)
    lists, dist = _assign(mat, centroids, progress)
    order = np.lexsort((dist, lists))
    members = order.astype(np.int32 if n < 2**31 else np.int64)
    member_dist = dist[order]
    offsets = np.searchsorted(lists[order], np.arange(nlist + 1)).astype(np.int64)
    ivf = IvfIndex(mat, centroids, members, member_dist, offsets, {})
    nprobe, recall, other_share, other_recall = _calibrate(ivf, mat, n, target=target_recall)
    meta = {"format": FORMAT, "rows": n, "dims": dims, "nlist": nlist, "nprobe": nprobe,
            "useful": nprobe <= max(1, nlist // 8),  # else a scan of most lists: the exact backend is faster
            "recall_at_100": round(recall, 4), "target_recall": target_recall,
            "unstructured_share": round(other_share, 4),
            "unstructured_recall": None if other_recall is None else round(other_recall, 4),
            "build_seconds": round(time.perf_counter() - started, 2), "version": emb.version}
    if not folder.exists():
        raise RuntimeError("vector cache vanished while the index was built")
    tag = f"tmp{os.getpid()}-{threading.get_ident()}"
    for name, arr in zip(ARRAYS, (centroids, members, member_dist, offsets)):
        np.save(folder / f"ivf-{name}.{tag}.npy", arr)
        os.replace(folder / f"ivf-{name}.{tag}.npy", folder / f"ivf-{name}.npy")
    (folder / f"{META_FILE}.{tag}").write_text(json.dumps(meta))
    os.replace(folder / f"{META_FILE}.{tag}", folder / META_FILE)  # written last: marks it complete
    with _lock:
        _memo.pop((str(catalog.store.path), emb.id), None)
    return meta


def load_index(catalog, emb, exact: ExactBackend) -> IvfIndex:
    """The embedding's index (memory-mapped list arrays), building it first if needed."""
    key = (str(catalog.store.path), emb.id)
    with _lock:
        hit = _memo.get(key)
        if hit is not None and hit[0] == emb.version:
            return hit[1]
    folder = _folder(catalog, emb)
    meta = index_info(catalog, emb)
    if not meta or meta.get("format") != FORMAT or meta.get("rows") != exact.size:
        meta = build_index(catalog, emb, exact)
    arrays = [np.load(folder / f"ivf-{name}.npy", mmap_mode="r") for name in ARRAYS]
    ivf = IvfIndex(exact.matrix, np.ascontiguousarray(arrays[0]), arrays[1], np.asarray(arrays[2]),
                   np.asarray(arrays[3]), meta)
    with _lock:
        _memo[key] = (emb.version, ivf)
    return ivf


def index_info(catalog, emb) -> dict | None:
    """The stored index description (rows, nlist, calibrated nprobe, recall), or None if not built."""
    path = _folder(catalog, emb) / META_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def drop_index(catalog, emb) -> None:
    with _lock:
        _memo.pop((str(catalog.store.path), emb.id), None)
    folder = _folder(catalog, emb)
    for name in [META_FILE] + [f"ivf-{a}.npy" for a in ARRAYS]:
        try:
            os.unlink(folder / name)
        except OSError:
            pass


class ApproximateBackend(Backend):
    """IVF lists visited nearest first, members scored exactly; ``Matches.complete`` says whether
    rows in the range may be missing (an automatic backend choice then falls back to the exact scan)."""

    name = "approximate"

    def __init__(self, catalog, emb, exact: ExactBackend | None = None):
        self.emb = emb
        self.exact = exact or ExactBackend(catalog, emb)
        self.ivf = load_index(catalog, emb, self.exact) if self.exact.size else None
        self.meta = self.ivf.meta if self.ivf else {}

    @property
    def size(self) -> int:
        return self.exact.size

    def vectors(self, row_ids):
        return self.exact.vectors(row_ids)

    def search(self, query: Query) -> Matches:
        if self.ivf is None:
            return Matches(self.exact.ids, np.empty(0, np.int64), np.empty(0), complete=True)
        if query.order == "asc":  # the lowest scores lie everywhere: no list order helps
            return self.exact.search(query)
        queries = np.ascontiguousarray(np.atleast_2d(query.vectors), dtype=np.float32)
        _, radius = range_thresholds(query.min_score, query.max_score, self.emb.dims)
        k = query.limit_hint
        if k is not None and len(queries) > 1:
            k = None  # max over several anchors: each anchor's own top k would not be enough
        nprobe = int(self.meta["nprobe"])
        n_threads = threads()
        found, complete = [], True
        for q in queries:
            pos, dist, ok = self.ivf.search_one(q, radius, k, nprobe, n_threads)
            keep = dist <= radius
            found.append((pos[keep], dist[keep]))
            complete &= ok
        pos = np.concatenate([f[0] for f in found])
        dist = np.concatenate([f[1] for f in found])
        if len(queries) > 1:  # keep each row's smallest distance
            o = np.lexsort((dist, pos))
            pos, dist = pos[o], dist[o]
            first = np.ones(len(pos), dtype=bool)
            first[1:] = pos[1:] != pos[:-1]
            pos, dist = pos[first], dist[first]
        scores = score_from_l1(dist, self.emb.dims)
        keep = in_range(scores, query.min_score, query.max_score)
        pos, scores = pos[keep], scores[keep]
        if k is not None and len(pos) >= k:
            complete = False  # the page is served; the total may miss rows beyond it
        o = np.argsort(pos, kind="stable")
        return Matches(self.exact.ids, pos[o], scores[o], complete=complete)
