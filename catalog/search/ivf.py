"""The inverted-file (IVF) L1 index over the vector cache, with measured recall (the approximate backend's).

The index holds no copy of the vectors. Rows are grouped into about 4·√N lists by spherical k-means
(L2 training on the normalised vectors is much faster than L1 and groups them the same way; unit
centroids keep rows that point in no particular direction spread over all lists instead of gathering
in a few huge lists around short centroids). A list is an array of cache positions, sorted by each
member's L1 distance to the list's centroid. The files (``ivf-*.npy`` and ``ivf-l1.json``) live in
the embedding's cache folder (``<db>.cache/<embedding id>-v<version>/``): derived, rebuilt when the
vectors change.

A query computes its exact L1 distance ``d(q, c)`` to every centroid and visits, nearest first, every
list whose centroid is within ``(1 + alpha)`` of the nearest one. It scores their members exactly from
the memory-mapped cache (both cores for large candidate sets). The reach then follows the answer: when
a list at distance ``d`` contributed rows to it, lists within ``(1 + alpha)·d`` are visited too (a
cluster split over several lists is followed to its end); a top-k query also goes on, nearest list
first, until it holds k rows. ``alpha`` is calibrated per index.

L1 is a metric, so ``d(q, x) ≥ |d(q, c) − d(x, c)|`` for every member ``x`` of list ``c``: members
outside that ring around the query's distance are skipped without being read, and when no unvisited
list can hold a row within the needed distance (``d(q, c) − radius(c)`` above the range radius or the
k-th distance found) the answer is proven exact (``complete``). Otherwise it is marked incomplete, and
an automatic backend choice re-runs the query on the exact scan.

``alpha`` is calibrated when the index is built: the smallest value of :data:`ALPHAS` whose mean
recall against the exact scan reaches :data:`TARGET_RECALL` on sample rows that have neighbours at
all, both for their top 100 and for the score ranges holding their ~30 and ~100 nearest rows, then
one step wider as a margin; a query visits at most ``max_lists`` lists (4× the most any sample
needed). Rows whose 100th neighbour is farther than :data:`STRUCTURE_RATIO` times their median
distance to the data sit in empty space (random directions), have no meaningful neighbourhood, and
are reported separately (``unstructured_share``, ``unstructured_recall``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time

import faiss
import numpy as np

from .scan import executor, l1_scan

META_FILE = "ivf-l1.json"
ARRAYS = ("centroids", "members", "member_dist", "offsets")
INDEX_FILE = "ivf-members.npy"  # the largest array file (kept as a name for callers and tests)
TARGET_RECALL = 0.99
STRUCTURE_RATIO = 0.85
CALIBRATION_QUERIES = 64
ALPHAS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, math.inf)
MIN_LIST_CAP = 32  # a query visits at most max(this, 4 × the most lists a calibration query needed)
PARALLEL_ROWS = 4096  # candidates from which both cores score one query
TRAIN_POINTS_PER_LIST = 40  # faiss asks for at least 39
FORMAT = 3

_lock = threading.Lock()
_memo: dict[tuple[str, str], tuple[int, "IvfIndex"]] = {}


def nlist_for(n: int) -> int:
    """About 4·√N lists, and at least 39 rows per list."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


def _folder(store, emb):
    return store.cache_dir / f"{emb.id}-v{emb.version}"


class IvfIndex:
    """Centroids, list members (cache positions) sorted by their L1 distance to the centroid."""

    def __init__(self, mat, centroids, members, member_dist, offsets, meta):
        self.mat, self.centroids, self.members, self.member_dist = mat, centroids, members, member_dist
        self.offsets, self.meta = offsets, meta
        sizes = np.diff(offsets)
        last = np.maximum(offsets[1:] - 1, 0)
        self.radius = np.where(sizes > 0, member_dist[last] if len(member_dist) else 0, 0).astype(np.float32)
        self.nlist = len(centroids)
        # a query right at a centroid (a list of one row) still reaches the lists around it: the
        # distance to the nearest centroid counts as at least a typical member's distance
        self.floor = float(np.percentile(member_dist[:: max(1, len(member_dist) // 65_536)], 25)) \
            if len(member_dist) else 0.0

    # -- one query vector ---------------------------------------------------------------------
    def _ring(self, lists, dc, tau):
        """``(member positions, their list)`` of ``lists`` in the ring ``|d(q,c) − d(x,c)| ≤ tau``."""
        parts, owner = [], []
        for c in lists:
            a, b = int(self.offsets[c]), int(self.offsets[c + 1])
            if a == b:
                continue
            if np.isfinite(tau):
                md = self.member_dist[a:b]
                lo = a + int(np.searchsorted(md, dc[c] - tau, "left"))
                hi = a + int(np.searchsorted(md, dc[c] + tau, "right"))
            else:
                lo, hi = a, b
            if hi > lo:
                parts.append(self.members[lo:hi])
                owner.append(np.full(hi - lo, c, dtype=np.int32))
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        return np.concatenate(parts).astype(np.int64), np.concatenate(owner)

    def _score(self, q, pos, n_threads):
        """L1 distances of the cache rows ``pos`` (any order) to ``q``."""
        if len(pos) == 0:
            return np.empty(0, np.float32)
        if n_threads > 1 and len(pos) >= PARALLEL_ROWS:
            cut = np.linspace(0, len(pos), n_threads + 1).astype(int)
            futs = [executor(n_threads).submit(self._score_part, q, pos[a:b]) for a, b in zip(cut[:-1], cut[1:])]
            return np.concatenate([f.result() for f in futs])
        return self._score_part(q, pos)

    def _score_part(self, q, pos):
        o = np.argsort(pos, kind="stable")  # read the memory-mapped cache in address order
        rows = np.asarray(self.mat[pos[o]], dtype=np.float32)
        out = np.empty(len(pos), np.float32)
        out[o] = faiss.pairwise_distances(q[None], rows, faiss.METRIC_L1)[0]
        return out

    def search_one(self, q, radius, k, alpha, max_lists=None, n_threads=1, stats=None):
        """``(positions, L1 distances, complete)`` of rows within ``radius`` (the ``k`` nearest
        suffice when ``k`` is given; ``complete`` then refers to the page, else to the whole range).

        Lists are visited nearest first while their centroid lies within ``(1 + alpha)`` of the
        nearest centroid or of a visited list that contributed rows, up to ``max_lists`` lists; a
        top-k query goes on until it holds ``k`` rows in range (past ``max_lists`` only while it has
        read fewer than ``k`` rows). ``complete`` is True only when the triangle-inequality bound
        proves that no unvisited list holds a match."""
        dc = faiss.pairwise_distances(q[None], self.centroids, faiss.METRIC_L1)[0]
        order = np.argsort(dc, kind="stable")
        ds = dc[order]
        cap = self.nlist if max_lists is None else max(1, min(self.nlist, int(max_lists)))
        grow = 1.0 + alpha
        reach = math.inf if math.isinf(grow) else max(float(ds[0]), self.floor) * grow
        tau = radius
        pos = np.empty(0, np.int64)
        dist = np.empty(0, np.float32)
        owner = np.empty(0, np.int32)
        done = 0
        while done < self.nlist:
            p = min(cap, int(np.searchsorted(ds, reach, "right")))
            if p <= done:  # a top-k query goes on, nearest first, until it holds k rows in range:
                if k is None or int(np.count_nonzero(dist <= radius)) >= k:
                    break
                p = min(self.nlist, max(done + 1, 2 * done))
                if len(pos) >= k:  # ... up to the list cap once it has read k rows (a narrow range)
                    p = min(p, cap)
                if p <= done:
                    break
            new_pos, new_owner = self._ring(order[done:p], dc, tau)
            pos = np.concatenate([pos, new_pos])
            dist = np.concatenate([dist, self._score(q, new_pos, n_threads)])
            owner = np.concatenate([owner, new_owner])
            done = p
            inside = dist <= radius
            if k is not None and int(inside.sum()) >= k:
                tau = min(radius, float(np.partition(dist[inside], k - 1)[k - 1]))
            useful = owner[dist <= tau]
            if len(useful) and not math.isinf(grow):  # follow the answer into lists near the
                reach = max(reach, float(dc[useful].max()) * grow)  # farthest list holding some of it
        rest = order[done:]
        certified = not len(rest) or bool(np.all(dc[rest] - self.radius[rest] > tau))
        if stats is not None:
            stats["lists"] = done
            stats["rows"] = len(pos)
        return pos, dist, certified


def _train(mat, n, dims, nlist, seed=1):
    rng = np.random.default_rng(0)
    train_n = min(n, max(TRAIN_POINTS_PER_LIST * nlist, 10_000))
    sample = np.sort(rng.choice(n, size=train_n, replace=False)) if train_n < n else np.arange(n)
    km = faiss.Kmeans(dims, nlist, niter=10, max_points_per_centroid=TRAIN_POINTS_PER_LIST, seed=seed,
                      spherical=True, verbose=False)
    km.train(np.ascontiguousarray(mat[sample], dtype=np.float32))
    centroids = km.centroids
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids = centroids[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _assign(mat, centroids, progress=None):
    """Nearest (unit) centroid of every row, and the row's L1 distance to it."""
    n = len(mat)
    quant = faiss.IndexFlatIP(centroids.shape[1])
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
    """``(alpha, lists, cap, recall, rows, unstructured share, unstructured recall)`` of the index.

    Each sample row is asked for its top ``k`` and for the score ranges that hold its ~30 and ``k``
    nearest rows (a range query has no row count to reach, so it depends on the list rule alone);
    the recall of an ``alpha`` is the smallest of the three means."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(CALIBRATION_QUERIES, n), replace=False))
    k = min(k, n)
    near = min(30, k) - 1
    cases = []
    for i in sample:
        q = np.asarray(mat[i], dtype=np.float32)
        d = l1_scan(mat, q)
        top = np.argpartition(d, k - 1)[:k]
        kth = float(d[top].max())
        r30 = float(np.partition(d[top], near)[near])
        ranges = [(r, set(np.flatnonzero(d <= r).tolist())) for r in (r30, kth)]
        cases.append((q, set(top.tolist()), ranges, kth <= STRUCTURE_RATIO * float(np.median(d))))
    structured = [c for c in cases if c[3]] or cases
    other = [c for c in cases if not c[3]]

    def run(group, alpha, cap=None):
        top_rec, rng_rec, lists, rows = [], ([], []), [], []
        for q, truth, ranges, _ in group:
            st = {}
            pos, dist, _ = ivf.search_one(q, np.inf, k, alpha, cap, stats=st)
            got = pos[np.argsort(dist, kind="stable")[:k]]
            top_rec.append(len(truth & set(got.tolist())) / len(truth))
            lists.append(st["lists"])
            rows.append(st["rows"])
            for (r, want), out in zip(ranges, rng_rec):
                pos, dist, _ = ivf.search_one(q, r, None, alpha, cap, stats=st)
                out.append(len(want & set(pos[dist <= r].tolist())) / len(want))
                lists.append(st["lists"])
        if not top_rec:
            return None, lists, rows
        return min(float(np.mean(top_rec)), *(float(np.mean(x)) for x in rng_rec)), lists, rows

    steps = list(ALPHAS)
    chosen = len(steps) - 1
    for i, alpha in enumerate(steps):
        if run(structured, alpha)[0] >= target:
            chosen = min(len(steps) - 1, i + 1)  # one step wider than needed: a margin
            break
    alpha = steps[chosen]
    recall, lists, rows = run(structured, alpha)
    cap = min(ivf.nlist, max(MIN_LIST_CAP, 4 * max(lists)))
    other_recall = run(other, alpha, cap)[0] if other else None
    return alpha, max(lists), cap, recall, float(np.mean(rows)), len(other) / len(cases), other_recall


def build_index(store, emb, exact, progress=None,
                target_recall: float = TARGET_RECALL) -> dict:
    """Build (or rebuild) the IVF index of ``emb``'s current vectors (``exact``: its exact backend,
    which holds the cached matrix); returns its description."""
    mat, n, dims = exact.matrix, exact.size, emb.dims
    folder = _folder(store, emb)
    started = time.perf_counter()
    centroids = _train(mat, n, dims, nlist_for(n))
    nlist = len(centroids)
    lists, dist = _assign(mat, centroids, progress)
    order = np.lexsort((dist, lists))
    members = order.astype(np.int32 if n < 2**31 else np.int64)
    member_dist = dist[order]
    offsets = np.searchsorted(lists[order], np.arange(nlist + 1)).astype(np.int64)
    ivf = IvfIndex(mat, centroids, members, member_dist, offsets, {})
    alpha, nprobe, cap, recall, rows, other_share, other_recall = _calibrate(ivf, mat, n, target=target_recall)
    sizes = np.diff(offsets)
    meta = {"format": FORMAT, "rows": n, "dims": dims, "nlist": nlist, "alpha": alpha,
            "nprobe": int(nprobe), "max_lists": int(cap), "calibration_rows": round(rows),
            # else a scan of a large share of the data: the exact backend is faster
            "useful": bool(nprobe <= max(1, nlist // 8) and rows <= n / 8),
            "recall_at_100": round(recall, 4), "target_recall": target_recall,
            "unstructured_share": round(other_share, 4),
            "unstructured_recall": None if other_recall is None else round(other_recall, 4),
            "largest_list": int(sizes.max()) if len(sizes) else 0,
            "build_seconds": round(time.perf_counter() - started, 2), "version": emb.version}
    if not math.isfinite(alpha):
        meta["alpha"] = None  # JSON has no infinity: None means every list within reach
    if not folder.exists():
        raise RuntimeError("vector cache vanished while the index was built")
    tag = f"tmp{os.getpid()}-{threading.get_ident()}"
    for name, arr in zip(ARRAYS, (centroids, members, member_dist, offsets)):
        np.save(folder / f"ivf-{name}.{tag}.npy", arr)
        os.replace(folder / f"ivf-{name}.{tag}.npy", folder / f"ivf-{name}.npy")
    (folder / f"{META_FILE}.{tag}").write_text(json.dumps(meta))
    os.replace(folder / f"{META_FILE}.{tag}", folder / META_FILE)  # written last: marks it complete
    with _lock:
        _memo.pop((str(store.path), emb.id), None)
    return meta
def load_index(store, emb, exact) -> IvfIndex:
    """The embedding's index (memory-mapped list arrays), building it first if needed."""
    key = (str(store.path), emb.id)
    with _lock:
        hit = _memo.get(key)
        if hit is not None and hit[0] == emb.version:
            return hit[1]
    folder = _folder(store, emb)
    meta = index_info(store, emb)
    if not meta or meta.get("format") != FORMAT or meta.get("rows") != exact.size:
        meta = build_index(store, emb, exact)
    # plain ndarray views of the mapped files: slicing an np.memmap costs ~7× more per call, and a
    # query slices every visited list
    arrays = [np.asarray(np.load(folder / f"ivf-{name}.npy", mmap_mode="r")) for name in ARRAYS]
    ivf = IvfIndex(np.asarray(exact.matrix), np.ascontiguousarray(arrays[0]), arrays[1], arrays[2], arrays[3], meta)
    with _lock:
        _memo[key] = (emb.version, ivf)
    return ivf


def index_info(store, emb) -> dict | None:
    """The stored index description (rows, nlist, calibrated alpha and list cap, recall), or None."""
    path = _folder(store, emb) / META_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def drop_index(store, emb) -> None:
    with _lock:
        _memo.pop((str(store.path), emb.id), None)
    folder = _folder(store, emb)
    for name in [META_FILE] + [f"ivf-{a}.npy" for a in ARRAYS]:
        try:
            os.unlink(folder / name)
        except OSError:
            pass
