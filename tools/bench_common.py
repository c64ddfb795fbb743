"""Helpers shared by the benchmark scripts in this folder."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int) -> tuple[float, object]:
    """The median wall time of ``repeat`` calls of ``fn`` (seconds) and the last call's result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
