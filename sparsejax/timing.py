"""Wall-clock timing of jitted calls, shared by every benchmark."""
from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np


def time_per_call(fn: Callable, *args, repeats: int = 5) -> float:
    """Median wall time (s) of ``fn(*args)`` after one warm-up (compile) call, blocking on results."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))
