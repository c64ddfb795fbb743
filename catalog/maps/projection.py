"""2-D projections of an embedding's normalised vectors: PCA (default) and UMAP (optional).

PCA: the mean and the two principal axes are fitted on at most :data:`PCA_FIT_ROWS` rows (a seeded
uniform sample when there are more; every row otherwise, which is then the exact PCA), from the
covariance matrix in float64; every row is then projected in blocks read from the memory-mapped
vector cache, so memory stays at one block whatever the size. The sign of each axis is fixed (its
largest loading is positive), so the same vectors always give the same picture.

UMAP (``umap-learn``, the ``map-umap`` extra) uses the Manhattan metric, the distance the score is
made from; it runs on at most :data:`UMAP_MAX_ROWS` rows and needs at least :data:`UMAP_MIN_ROWS`.
Its neighbour graph: ``knn="exact"`` computes the exact L1 k-nearest-neighbour lists with the
catalog's own kernel (:func:`catalog.search.l1_knn.knn_l1`, every row with itself first) and hands them
to umap as ``precomputed_knn``, so that its approximate nearest-neighbour descent is skipped;
``knn="nndescent"`` lets umap build the graph itself. ``auto`` (the default) is exact up to
:data:`EXACT_KNN_MAX_ROWS` rows and nndescent above: the exact all-pairs search grows with n², and in
tools/bench_umap.py it cost 2.4× less CPU than nndescent at 20k × 512 but 2× more at 100k × 512.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import CatalogError

PCA_FIT_ROWS = 100_000   # rows the principal axes are fitted on (a seeded sample above that)
BLOCK_ROWS = 65_536      # rows projected (and read from the cache) at a time
UMAP_MAX_ROWS = 250_000  # UMAP's time and memory grow with the rows: above this, use PCA
UMAP_MIN_ROWS = 10
UMAP_NEIGHBOURS = 15
KNN = ("auto", "exact", "nndescent")
EXACT_KNN_MAX_ROWS = 50_000  # auto: the exact graph up to here (where the two cost about the same), then nndescent
KNN_CHUNK = 8_192        # query rows per exact kNN call (progress moves per chunk)
SEED = 0


def pca(matrix, progress=None) -> tuple[np.ndarray, list[float]]:
    """``(n, 2)`` float32 coordinates of ``matrix``'s rows on its first two principal axes, and the
    share of the variance each axis explains. ``progress(done, total)`` after each projected block."""
    n, dims = matrix.shape
    out = np.zeros((n, 2), dtype=np.float32)
    if n < 2:
        _report(progress, n, n)
        return out, [0.0, 0.0]
    mean, axes, explained = fit_axes(matrix)
    offset = (mean @ axes).astype(np.float32)
    w = axes.astype(np.float32)
    _report(progress, 0, n)
    for s in range(0, n, BLOCK_ROWS):
        block = np.asarray(matrix[s:s + BLOCK_ROWS], dtype=np.float32)
        out[s:s + len(block)] = block @ w - offset
        _report(progress, min(n, s + BLOCK_ROWS), n)
    return out, explained


def fit_axes(matrix) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """The mean (float64, ``(dims,)``), the first two principal axes (``(dims, 2)``, signs fixed)
    and their explained variance ratios, fitted on at most :data:`PCA_FIT_ROWS` rows."""
    n, dims = matrix.shape
    if n > PCA_FIT_ROWS:
        pick = np.sort(np.random.default_rng(SEED).choice(n, PCA_FIT_ROWS, replace=False))
    else:
        pick = None
    m = PCA_FIT_ROWS if pick is not None else n
    total = np.zeros(dims, dtype=np.float64)
    for s in range(0, m, BLOCK_ROWS):
        total += _rows(matrix, pick, s).sum(axis=0, dtype=np.float64)
    mean = total / m
    cov = np.zeros((dims, dims), dtype=np.float64)
    mean32 = mean.astype(np.float32)
    for s in range(0, m, BLOCK_ROWS):
        block = _rows(matrix, pick, s) - mean32
        cov += (block.T @ block).astype(np.float64)
    cov /= max(1, m - 1)
    values, vectors = np.linalg.eigh(cov)
    top = np.argsort(values)[::-1][:2]
    axes = vectors[:, top]
    if axes.shape[1] < 2:  # one dimension only: a zero second axis
        axes = np.hstack([axes, np.zeros((dims, 2 - axes.shape[1]))])
    big = np.argmax(np.abs(axes), axis=0)
    axes = axes * np.where(axes[big, np.arange(axes.shape[1])] < 0, -1.0, 1.0)
    trace = float(values.clip(min=0).sum())
    explained = [float(max(values[i], 0.0) / trace) if trace > 0 else 0.0 for i in top]
    return mean, axes, (explained + [0.0, 0.0])[:2]


def _rows(matrix, pick, s) -> np.ndarray:
    if pick is None:
        return np.asarray(matrix[s:s + BLOCK_ROWS], dtype=np.float32)
    return np.asarray(matrix[pick[s:s + BLOCK_ROWS]], dtype=np.float32)


def umap_available() -> bool:
    """Whether ``umap-learn`` (and the numba it compiles with) is installed here.

    Looked up without importing: importing umap compiles numba code, which takes from seconds to
    a minute on a fresh install, and a page that only offers the choice must not wait for that. An
    installed but broken umap then fails when a map is computed, with the error of :func:`umap`.
    """
    from importlib.util import find_spec
    return all(find_spec(name) is not None for name in ("umap", "numba", "pynndescent"))


def umap(matrix, progress=None, knn: str = "auto") -> tuple[np.ndarray, None]:
    """``(n, 2)`` float32 UMAP coordinates with the Manhattan metric (no explained variance);
    ``knn``: the neighbour graph, ``exact`` (the catalog's L1 kernel), ``nndescent`` (umap's own) or
    ``auto`` (exact up to :data:`EXACT_KNN_MAX_ROWS` rows)."""
    n = matrix.shape[0]
    if knn not in KNN:
        raise CatalogError(f"the UMAP neighbour graph is {' or '.join(KNN)}, not {knn!r}", field="knn")
    if n > UMAP_MAX_ROWS:
        raise CatalogError(f"UMAP is limited to {UMAP_MAX_ROWS:,} rows (this embedding has {n:,}); "
                           "use the `method` pca", field="method")
    if n < UMAP_MIN_ROWS:
        raise CatalogError(f"UMAP needs at least {UMAP_MIN_ROWS} rows (this embedding has {n}); "
                           "use the `method` pca", field="method")
    try:
        import umap as umap_lib
    except Exception:  # noqa: BLE001
        raise CatalogError("UMAP needs the umap-learn package (install embedding-catalog[map-umap]); "
                           "the `method` pca needs nothing more", field="method") from None
    data = np.ascontiguousarray(matrix, dtype=np.float32)
    k = min(UMAP_NEIGHBOURS, n - 1)
    _report(progress, 0, n)
    extra = {}
    if knn == "exact" or (knn == "auto" and n <= EXACT_KNN_MAX_ROWS):
        extra["precomputed_knn"] = exact_knn(data, k, progress)
    reducer = umap_lib.UMAP(n_components=2, metric="manhattan", n_neighbors=k, low_memory=True, verbose=False,
                            **extra)
    with warnings.catch_warnings():  # "no search index: transform unavailable" (a map never transforms)
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        xy = reducer.fit_transform(data)
    _report(progress, n, n)
    return np.ascontiguousarray(xy, dtype=np.float32), None


def exact_knn(data: np.ndarray, k: int, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """``(indices int64, distances float32)``, each ``n × k``: every row's ``k`` nearest rows by exact L1,
    the row itself first (as umap's own graph has it, even where exact copies tie with it)."""
    from ..search.l1_knn import knn_l1
    n = len(data)
    out_i = np.empty((n, k), dtype=np.int64)
    out_d = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, KNN_CHUNK):
        dist, idx = knn_l1(data[s:s + KNN_CHUNK], data, k)
        rows = np.arange(s, s + len(idx))[:, None]
        others = idx != rows
        keep = np.cumsum(others, axis=1) <= k - 1  # the first k - 1 rows that are not the row itself
        keep &= others
        out_i[s:s + len(idx), 0], out_d[s:s + len(idx), 0] = rows[:, 0], 0.0
        out_i[s:s + len(idx), 1:] = idx[keep].reshape(len(idx), k - 1)
        out_d[s:s + len(idx), 1:] = dist[keep].reshape(len(idx), k - 1)
        _report(progress, min(n, s + KNN_CHUNK) // 2, n)  # the graph is about half the work
    return out_i, out_d


def _report(progress, done, total) -> None:
    if progress is not None:
        progress(done, total)
