"""Small helpers for the experiments' ``summarize`` cells: finite checks and ``mean ± std`` text.

Used by the geometry experiments (P2, P19, P45); nothing here computes a result, it only formats
numbers that come from ``results.json``.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence


def is_finite(value) -> bool:
    """True for a finite real number (results.json stores NaN/inf as strings, which are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of finite ``values``; raises on an empty or non-finite input."""
    values = list(values)
    if not values or not all(is_finite(v) for v in values):
        raise ValueError(f"mean_std needs finite numbers, got {values!r}")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def fmt_mean_std(values: Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    """``"m ± s"`` for several values, the value alone for one; ``scale`` multiplies (e.g. 100 for %)."""
    values = [scale * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}g}" if digits > 0 else f"{values[0]:.0f}"
    m, s = mean_std(values)
    return f"{m:.{digits}g} ± {s:.{max(1, digits - 1)}g}"


def best_finite(items: Iterable[tuple[str, float]], lower_is_better: bool = True) -> Optional[str]:
    """The name with the best finite score, or ``None`` when no score is finite (never rank NaN)."""
    finite = [(name, score) for name, score in items if is_finite(score)]
    if not finite:
        return None
    pick = min if lower_is_better else max
    return pick(finite, key=lambda item: item[1])[0]


def cell(*parts: str) -> str:
    """Join summary fragments into one markdown table cell (no ``|``, no newline)."""
    text = "; ".join(p for p in parts if p)
    return text.replace("|", "/").replace("\n", " ")


def loglog_slope(x: Sequence[float], y: Sequence[float], n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of ``log y`` on ``log x`` and a percentile bootstrap CI (resampling the
    points with replacement; resamples with a single distinct ``x`` are skipped)."""
    import numpy as np

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if lx.size < 3 or not (np.isfinite(lx).all() and np.isfinite(ly).all()):
        raise ValueError(f"loglog_slope needs >= 3 positive finite points, got x={list(x)!r}, y={list(y)!r}")
    slope = float(np.polyfit(lx, ly, 1)[0])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, lx.size, lx.size)
        if np.unique(lx[i]).size > 1:
            boots.append(np.polyfit(lx[i], ly[i], 1)[0])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return slope, float(lo), float(hi)
