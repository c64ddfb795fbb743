"""Build configuration for the optional native modules; the package metadata lives in pyproject.toml.

``catalog._l1kernel`` (C, pthreads; AVX-512 BW, AVX2 or portable SAD chosen at run time) speeds up
exact batched L1 nearest-neighbour search. It is optional: where it does not compile (no C compiler
or Python headers), the install still succeeds and ``catalog.search.l1_knn`` uses faiss instead.

``catalog._codes`` (C, pthreads; AVX-512 BW, AVX2 or portable SAD chosen at run time) builds the
8-bit codes of a vector cache and scans them (:mod:`catalog.vectors.codes`); without it the exact
backend scans the float32 cache (or, when the codes are forced on, the codes in numpy).

``catalog._ndjson`` (C) is the fast path of the NDJSON vector parser; without it
``catalog.vectors.parsing`` parses every line with simdjson (about half the speed).
"""

from setuptools import Extension, setup


def threaded(name: str, source: str, headers: tuple[str, ...] = ()) -> Extension:
    """An optional pthreads kernel with strict float semantics (no contraction, no fast math)."""
    return Extension(name, sources=[f"catalog/_native/{source}"],
                     depends=["catalog/_native/native.h", *(f"catalog/_native/{h}" for h in headers)],
                     extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-pthread"],
                     extra_link_args=["-pthread"], optional=True)


setup(
    ext_modules=[
        threaded("catalog._l1kernel", "l1kernel.c", ("l1sad.h",)),
        threaded("catalog._codes", "codes.c", ("codes_sad.h", "codes_quant.h", "codes_heap.h")),
        Extension(
            "catalog._ndjson",
            sources=["catalog/_native/ndjson.c"],
            extra_compile_args=["-O3", "-fno-fast-math"],
            optional=True,
        ),
    ],
)
