"""The one thread setting of the CPU kernels (the exact scan, the approximate index's scoring, the
batched L1 kNN kernel).

``$CATALOG_SEARCH_THREADS`` (a positive whole number) sets it; otherwise it is the count faiss's
OpenMP uses, that is ``$OMP_NUM_THREADS`` or else the cores this process may run on. Anything else
in ``$CATALOG_SEARCH_THREADS`` (empty, 0, not a number) is ignored.
"""

from __future__ import annotations

import os

import faiss

THREADS_ENV = "CATALOG_SEARCH_THREADS"


def threads() -> int:
    """Worker threads for one kernel call: ``$CATALOG_SEARCH_THREADS``, else faiss's OpenMP count
    (``$OMP_NUM_THREADS`` or the cores)."""
    env = os.environ.get(THREADS_ENV)
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, int(faiss.omp_get_max_threads()))
