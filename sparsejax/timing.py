"""Timing of jitted calls, shared by every benchmark: wall time, and process CPU time for shared machines."""
from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np


def cpu_and_wall_per_call(fn: Callable, *args, repeats: int = 5) -> tuple[float, float]:
    """Median process CPU time (s, all threads) and median wall time (s) of ``fn(*args)`` after one warm-up
    (compile) call, blocking on results. On a shared machine the CPU time measures the work done far more stably
    than the wall time, which also waits for other processes."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    jax.block_until_ready(fn(*args))
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        jax.block_until_ready(fn(*args))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(cpu)), float(np.median(wall))


def time_per_call(fn: Callable, *args, repeats: int = 5) -> float:
    """Median wall time (s) of ``fn(*args)`` after one warm-up (compile) call, blocking on results."""
    return cpu_and_wall_per_call(fn, *args, repeats=repeats)[1]
