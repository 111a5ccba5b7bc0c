"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def seconds(fn: Callable[[], object], sync: Callable[[], object] | None = None) -> float:
    """Wall seconds of ``fn()``; ``sync()`` (e.g. ``wp.synchronize``) runs before and after."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], object] | None = None) -> float:
    """Median of ``repeats`` calls of :func:`seconds`."""
    return float(np.median([seconds(fn, sync) for _ in range(repeats)]))
