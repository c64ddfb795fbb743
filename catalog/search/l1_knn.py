"""Exact batched k-nearest-neighbour search under L1 distance (many queries against one pool).

Label-by-similarity asks for the k best rows of a labeled pool for thousands of query rows at once.
Two interchangeable implementations give the same exact answer (same neighbours, same float32
distances, same order; ties go to the smaller pool index):

``native`` (the C extension ``catalog._l1kernel``, built by ``pip install`` where a C compiler is
present; AVX-512 BW or AVX2 where the CPU has them): both matrices are quantised to 8 bits with one
global step ``s`` and every row keeps its quantisation residual ``e`` (the L1 norm of what the 8-bit
copy misses). By the triangle inequality ``|L1(a, b) − s·SAD(a8, b8)| ≤ e_a + e_b``, so the sum of
absolute byte differences (``vpsadbw``, 64 bytes per instruction with AVX-512 BW, 32 with AVX2)
bounds every distance from both sides. Per query, the k-th smallest upper bound caps the k-th
nearest distance; a row whose lower bound lies above that cap (widened by the float32 rounding bound
of the exact sum) cannot be among the k nearest. A first pass bounds from sums of dimension pairs
(half the bytes; L1 of pair sums never exceeds L1) and the full 8-bit SAD runs only where that pass
cannot decide; where most pairs would go on anyway (measured per pool tile) the full SAD runs alone.
The remaining candidates are re-scored exactly in float32, nearest lower bound first until a bound
passes the k-th exact distance found (summed in the order of faiss's AVX2 L1 kernel; faiss's
AVX-512 and scalar kernels sum in other orders, so the two implementations agree to float32
rounding, not bit for bit, on every CPU). Queries are spread over :func:`catalog.threads.threads`
threads.

``faiss`` (the fallback): a flat faiss L1 scan over pool blocks that stay in the L3 cache; every
block is scanned by all queries (faiss parallelises over queries) and the per-block top-k lists are
merged with faiss's ``ResultHeap``.

``CATALOG_L1_KERNEL=faiss|native`` forces one (unset or ``auto``: native when built). Distances are
L1 between the given (already normalised) float32 rows; turn them into scores with
:func:`catalog.scoring.score_from_l1`.
"""

from __future__ import annotations

import os

import faiss
import numpy as np

from ..errors import CatalogError
from ..threads import threads

try:  # optional: built from catalog/_native/l1kernel.c where a C compiler is available
    from .. import _l1kernel
except ImportError:  # pragma: no cover - depends on the build
    _l1kernel = None

KERNEL_ENV = "CATALOG_L1_KERNEL"
KERNELS = ("native", "faiss")

# 4096 rows × 512 dims × 4 bytes = 8 MiB: comfortably inside a shared L3 cache.
BLOCK_BYTES = 8 << 20
QUERY_BATCH = 16_384


def native_available() -> bool:
    """Whether the C kernel was built for this installation."""
    return _l1kernel is not None


def kernel(choice: str | None = None) -> str:
    """The implementation :func:`knn_l1` uses: ``choice``, else ``$CATALOG_L1_KERNEL``, else the
    native kernel when it is built and faiss otherwise."""
    raw = choice if choice is not None else os.environ.get(KERNEL_ENV, "")
    want = raw.strip().lower()
    if want in ("", "auto"):
        return "native" if native_available() else "faiss"
    if want not in KERNELS:
        raise CatalogError(f"{KERNEL_ENV}={raw!r} is not a known L1 kernel; use native, faiss or auto (or unset it)")
    if want == "native" and not native_available():
        raise CatalogError(
            f"{KERNEL_ENV}=native but the native L1 kernel (catalog._l1kernel) is not built here; it needs a C "
            f"compiler and the Python headers at install time (pip install -e .), or unset {KERNEL_ENV} to use faiss")
    return want


def knn_l1(queries: np.ndarray, pool: np.ndarray, k: int, kernel_choice: str | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)``, each ``len(queries) × k``, nearest first; ties by smaller index.

    Where the pool has fewer than ``k`` rows the missing places hold ``inf`` and ``-1``.
    ``kernel_choice`` (``"native"``/``"faiss"``) overrides ``$CATALOG_L1_KERNEL``.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.asarray(pool, dtype=np.float32)
    nq, nb = len(q), len(x)
    if nq and nb and k > 0 and q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape[1]} vs {x.shape[1]}")
    if kernel(kernel_choice) == "native" and nq and nb and k > 0:
        found = knn_l1_native(q, x, k)
        if found is not None:
            return found
    return knn_l1_faiss(q, x, k)


SIMD = {"portable": 0, "best": 1, "avx2": 2}
LEVELS = {"auto": 0, "pooled": 1, "full": 2}


def knn_l1_native(queries: np.ndarray, pool: np.ndarray, k: int, avx2: bool = True, stats: dict | None = None,
                  simd: str = "best", level: str = "auto"):
    """The native kernel; ``None`` when the input holds NaN or infinity (faiss handles those).

    ``simd`` picks the SAD kernels: ``"best"`` (AVX-512 BW, else AVX2, else portable), ``"avx2"``
    (at most AVX2) or ``"portable"``; ``avx2=False`` is ``"portable"``. ``level`` picks how pairs are
    compared: ``"auto"`` (per pool tile, by the measured pass rate of the pooled level), ``"pooled"``
    (pooled SAD first) or ``"full"`` (full SAD only); all give the same answer (for tests and
    benchmarks). ``stats``, when given, receives the quantisation step, the rows re-scored exactly,
    the pairs that needed the full 8-bit comparison and the SAD kernel used.
    """
    if _l1kernel is None:
        raise CatalogError("the native L1 kernel (catalog._l1kernel) is not built here")
    if simd not in SIMD or level not in LEVELS:
        raise ValueError(f"simd must be one of {sorted(SIMD)} and level one of {sorted(LEVELS)}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.ascontiguousarray(pool, dtype=np.float32)
    nq, nb = len(q), len(x)
    out_d = np.full((nq, k), np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or nb == 0 or k <= 0:
        return out_d, out_i
    if q.ndim != 2 or x.ndim != 2 or q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape} vs {x.shape}")
    code = SIMD[simd] if avx2 else 0
    res = _l1kernel.knn_l1(q, x, nq, nb, q.shape[1], int(k), out_d, out_i, threads(), code, np.inf, LEVELS[level])
    if res is None:
        return None
    if stats is not None:
        stats.update(step=res[0], rescored=res[1], full_compares=res[2], pairs=nq * nb, isa=res[3],
                     avx2=res[3] != "portable")
    return out_d, out_i


def _block_rows(dims: int) -> int:
    return max(256, BLOCK_BYTES // (4 * max(1, dims)))


def knn_l1_faiss(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The faiss implementation (pool in cache-sized blocks, per-block top-k merged)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.asarray(pool, dtype=np.float32)
    nq, nb = len(q), len(x)
    out_d = np.full((nq, k), np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or nb == 0 or k <= 0:
        return out_d, out_i
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape[1]} vs {x.shape[1]}")
    step = _block_rows(q.shape[1])
    blocks = [np.ascontiguousarray(x[s:s + step]) for s in range(0, nb, step)] if nb > step else [
        np.ascontiguousarray(x)]
    for q0 in range(0, nq, QUERY_BATCH):
        qb = q[q0:q0 + QUERY_BATCH]
        heap = faiss.ResultHeap(len(qb), k, keep_max=False)
        start = 0
        for block in blocks:
            kb = min(k, len(block))
            d, i = faiss.knn(qb, block, kb, metric=faiss.METRIC_L1)
            if kb < k:
                d = np.pad(d, ((0, 0), (0, k - kb)), constant_values=np.inf)
                i = np.pad(i, ((0, 0), (0, k - kb)), constant_values=-1)
            i = np.where(i >= 0, i + start, -1)
            heap.add_result(np.ascontiguousarray(d, dtype=np.float32), np.ascontiguousarray(i, dtype=np.int64))
            start += len(block)
        heap.finalize()
        out_d[q0:q0 + len(qb)] = heap.D
        out_i[q0:q0 + len(qb)] = heap.I
    bad = out_i < 0
    if bad.any():
        out_d[bad] = np.inf
    return out_d, out_i
