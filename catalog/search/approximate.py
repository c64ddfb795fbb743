"""Approximate backend: faiss IVF-Flat with Manhattan (L1) distance, and measured recall.

The coarse quantizer is trained with L2 k-means (much faster than L1 training, same recall), about
4·√N lists. The index stores the normalised vectors with their cache positions as ids and lives in
the embedding's cache folder (``<db>.cache/<embedding id>-v<version>/``): it is derived, rebuilt when
the embedding's vectors change, and memory-mapped when searched.

When it is built, ``nprobe`` (lists scanned per query) is calibrated: the smallest power of two
whose top-100 recall against the exact scan reaches :data:`TARGET_RECALL` on sample anchors; the
measured recall is kept in ``ivf-l1.json``. A search scans those lists with faiss's range search,
re-scores the candidates exactly (the same numbers as the exact backend), and checks whether the
outer half of the scanned lists still held rows in the range: if so the range reaches beyond them,
the scan widens once, and if that is still not enough the result is flagged incomplete (an
automatic backend choice then falls back to the exact scan).
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
from .exact import ExactBackend, l1_scan

INDEX_FILE, META_FILE, LISTS_FILE = "ivf-l1.faiss", "ivf-l1.json", "ivf-l1-lists.npy"
TARGET_RECALL = 0.99    # calibration target: mean top-100 recall on sample anchors
CALIBRATION_QUERIES = 32
FORMAT = 1

_lock = threading.Lock()
_search_lock = threading.Lock()
_memo: dict[tuple[str, str], tuple[int, object, dict, np.ndarray]] = {}


def nlist_for(n: int) -> int:
    """About 4·√N lists, and at least 39 training points per list."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


def _folder(catalog, emb):
    return catalog.store.cache_dir / f"{emb.id}-v{emb.version}"


def _calibrate(index, mat: np.ndarray, nlist: int, k: int = 100, seed: int = 7) -> tuple[int, float]:
    n = len(mat)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(CALIBRATION_QUERIES, n), replace=False)
    queries = np.ascontiguousarray(mat[np.sort(sample)], dtype=np.float32)
    k = min(k, n)
    truth = []
    for q in queries:  # exact top-k with the same kernel as the exact backend
        d = l1_scan(mat, q)
        top = np.argpartition(d, k - 1)[:k] if k < n else np.arange(n)
        truth.append(set(top.tolist()))
    nprobe, recall = 1, 0.0
    while True:
        index.nprobe = nprobe
        _, found = index.search(queries, k)
        recall = float(np.mean([len(t & set(f.tolist())) / len(t) for t, f in zip(truth, found)]))
        if recall >= TARGET_RECALL or nprobe >= nlist:
            return nprobe, recall
        nprobe = min(nlist, nprobe * 2)


def build_index(catalog, emb, exact: ExactBackend | None = None, progress=None) -> dict:
    """Build (or rebuild) the IVF index of ``emb``'s current vectors; returns its description."""
    exact = exact or ExactBackend(catalog, emb)
    mat, n, dims = exact.matrix, exact.size, emb.dims
    folder = _folder(catalog, emb)
    started = time.perf_counter()
    nlist = nlist_for(n)
    quantizer = faiss.IndexFlatL2(dims)
    index = faiss.IndexIVFFlat(quantizer, dims, nlist, faiss.METRIC_L1)
    index.cp.niter = 8
    index.cp.max_points_per_centroid = 32
    rng = np.random.default_rng(0)
    train_n = min(n, max(32 * nlist, 10_000))
    sample = np.sort(rng.choice(n, size=train_n, replace=False)) if train_n < n else np.arange(n)
    index.train(np.ascontiguousarray(mat[sample], dtype=np.float32))
    step = 100_000
    for s in range(0, n, step):
        e = min(n, s + step)
        index.add_with_ids(np.ascontiguousarray(mat[s:e]), np.arange(s, e, dtype=np.int64))
        if progress:
            progress(e, n)
    lists = np.empty(n, dtype=np.int32)
    invlists = index.invlists
    for lst in range(nlist):
        size = invlists.list_size(lst)
        if size:
            lists[faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()] = lst
    nprobe, recall = _calibrate(index, mat, nlist)
    meta = {"format": FORMAT, "rows": n, "dims": dims, "nlist": nlist, "nprobe": nprobe,
            "useful": nprobe <= max(1, nlist // 8),  # else a scan of most lists: the exact backend is faster
            "recall_at_100": round(recall, 4), "build_seconds": round(time.perf_counter() - started, 2),
            "version": emb.version}
    tag = f"tmp{os.getpid()}-{threading.get_ident()}"
    if not folder.exists():
        raise RuntimeError("vector cache vanished while the index was built")
    faiss.write_index(index, str(folder / f"{INDEX_FILE}.{tag}"))
    np.save(folder / f"{LISTS_FILE}.{tag}.npy", lists)
    (folder / f"{META_FILE}.{tag}").write_text(json.dumps(meta))
    os.replace(folder / f"{INDEX_FILE}.{tag}", folder / INDEX_FILE)
    os.replace(folder / f"{LISTS_FILE}.{tag}.npy", folder / LISTS_FILE)
    os.replace(folder / f"{META_FILE}.{tag}", folder / META_FILE)  # written last: marks it complete
    return meta


def load_index(catalog, emb, exact: ExactBackend):
    """``(index, meta, list of each position)``, building the index first if needed."""
    key = (str(catalog.store.path), emb.id)
    with _lock:
        hit = _memo.get(key)
        if hit is not None and hit[0] == emb.version:
            return hit[1:]
        folder = _folder(catalog, emb)
        meta = None
        if (folder / META_FILE).exists():
            try:
                meta = json.loads((folder / META_FILE).read_text())
            except (OSError, ValueError):
                meta = None
        if not meta or meta.get("format") != FORMAT or meta.get("rows") != exact.size:
            meta = build_index(catalog, emb, exact)
        index = faiss.read_index(str(folder / INDEX_FILE), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        lists = np.load(folder / LISTS_FILE, mmap_mode="r")
        _memo[key] = (emb.version, index, meta, lists)
        return index, meta, lists


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
    for name in (META_FILE, INDEX_FILE, LISTS_FILE):
        try:
            os.unlink(folder / name)
        except OSError:
            pass


class ApproximateBackend(Backend):
    """IVF-Flat L1 candidates, exact re-scoring; ``Matches.complete`` says whether rows may be missing."""

    name = "approximate"

    def __init__(self, catalog, emb, exact: ExactBackend | None = None):
        self.emb = emb
        self.exact = exact or ExactBackend(catalog, emb)
        if self.exact.size:
            self.index, self.meta, self.lists = load_index(catalog, emb, self.exact)
        else:
            self.index, self.meta, self.lists = None, {}, np.empty(0, np.int32)

    @property
    def size(self) -> int:
        return self.exact.size

    def vectors(self, row_ids):
        return self.exact.vectors(row_ids)

    def _scan(self, queries, radius, nprobe):
        """``(positions, L1 distance to the nearest query, outer ring had hits)`` for ``nprobe`` lists."""
        coarse_d, coarse_i = self.index.quantizer.search(queries, nprobe)
        with _search_lock:  # nprobe and parallel_mode are settings of the shared index object
            self.index.nprobe = nprobe
            self.index.parallel_mode = 1 if len(queries) < faiss.omp_get_max_threads() else 0
            lims, dist, found = self.index.range_search_preassigned(queries, radius, coarse_i, coarse_d)
        outer = False
        if nprobe < self.meta["nlist"]:
            ring_from = nprobe - max(1, nprobe // 2)
            for i in range(len(queries)):
                hits = found[lims[i]:lims[i + 1]]
                if len(hits) and np.isin(self.lists[hits], coarse_i[i, ring_from:]).any():
                    outer = True
                    break
        if len(queries) > 1:  # several anchors (max): keep each row's smallest distance
            order = np.lexsort((dist, found))
            found, dist = found[order], dist[order]
            first = np.ones(len(found), dtype=bool)
            first[1:] = found[1:] != found[:-1]
            found, dist = found[first], dist[first]
        return found.astype(np.int64), dist, outer

    def _rescore(self, cand, dist, queries, query: Query) -> np.ndarray:
        """Scores from the exact kernel for the rows whose numbers can matter: the requested page
        (plus a margin) and rows near the range bounds; the rest keep the index's own L1 distance
        (the same vectors, so it differs from the exact kernel only in the last float bits)."""
        dims = self.emb.dims
        scores = score_from_l1(dist, dims)
        if query.limit_hint is None or len(cand) <= query.limit_hint + 256:
            pick = np.arange(len(cand))
        else:
            k = query.limit_hint + 64
            key = -scores if query.order == "desc" else scores
            top = np.argpartition(key, k - 1)[:k]
            edge = np.flatnonzero((np.abs(scores - query.min_score) < 1e-4) | (np.abs(scores - query.max_score) < 1e-4))
            pick = np.union1d(top, edge)
        sub = np.asarray(self.exact.matrix[cand[pick]], dtype=np.float32)
        scores[pick] = score_from_l1(l1_scan(sub, queries, n_threads=1 if len(pick) < 50_000 else None), dims)
        return scores

    def search(self, query: Query) -> Matches:
        if self.index is None:
            return Matches(self.exact.ids, np.empty(0, np.int64), np.empty(0), complete=True)
        queries = np.ascontiguousarray(query.vectors, dtype=np.float32)
        nlist = self.meta["nlist"]
        _, radius = range_thresholds(query.min_score, query.max_score, self.emb.dims)
        nprobe = min(nlist, int(self.meta["nprobe"]))
        widened = False
        while True:
            cand, dist, outer = self._scan(queries, radius, nprobe)
            scores = self._rescore(cand, dist, queries, query)
            keep = in_range(scores, query.min_score, query.max_score)
            cand, scores = cand[keep], scores[keep]
            if not outer or nprobe >= nlist:
                complete = True
                break
            if widened or (query.limit_hint is not None and len(cand) >= query.limit_hint):
                complete = False  # the page is served; rows in range may lie beyond the scanned lists
                break
            nprobe, widened = min(nlist, nprobe * 4), True
        order = np.argsort(cand, kind="stable")
        return Matches(self.exact.ids, cand[order], scores[order], complete=complete)
