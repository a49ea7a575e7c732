"""Essential sparsity (P41; Jaiswal et al., "The emergence of essential sparsity in large
pre-trained models: the weights that matter"), after ``VITA-Group/essential_sparsity``
(``assets/bert_sparseland/pruner.py``: ``global_unstructured(L1Unstructured, amount=s)`` over the
attention and MLP kernels; ``bert_analysis.py``: prune once from the pre-trained weights at
``s = 0, 0.1, ..., 0.9``, then fine-tune with the mask fixed and evaluate).

* :func:`one_shot_sweep`: global magnitude masks of one trained model over a sparsity grid
  (nested in ``s``), evaluated without and (optionally) with fine-tuning at a fixed budget.
* :func:`essential_sparsity`: the largest ``s`` of the grid such that the metric at every grid
  point up to ``s`` stays within ``tolerance`` (default 1 %, relative to the dense value) of the
  dense model — "the largest s within a 1 % drop".
* :func:`knee`: the knee of the performance–sparsity curve, the grid point farthest from the
  chord joining the first and last points after both axes are scaled to [0, 1] (the
  max-distance-to-chord rule of Kneedle; for a piecewise-linear curve it is the break point).
* :func:`near_zero_fraction`: the "abrupt sparsification" statistic, the fraction of weights with
  ``|w| < rel * std(w)`` per leaf (relative threshold, since weight scales drift in training).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.masks import apply_mask, magnitude_mask
from sparsejax.core.tree import Predicate, leaves_with_paths, select
from sparsejax.core.validation import check_array, check_finite_array, check_number, check_callable, check_finite_tree


def _check_grid(sparsities) -> list[float]:
    grid = [check_number(f"sparsities[{i}]", s, minimum=0.0, maximum=1.0, max_inclusive=False)
            for i, s in enumerate(sparsities)]
    if not grid:
        raise ValueError("sparsities is empty")
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"sparsities must be strictly increasing, got {grid}")
    return grid


def one_shot_sweep(params, sparsities: Sequence[float], evaluate: Callable, *, finetune: Callable | None = None,
                   predicate: Predicate | None = None) -> dict:
    """One-shot global magnitude pruning of ``params`` at every sparsity of the grid.

    ``evaluate(params) -> float`` scores a model; ``finetune(pruned, mask) -> params`` (same
    budget at every ``s``) is applied to the pruned model when given. Returns
    ``{"sparsity", "pruned", "finetuned" (if finetune), "masks"}``.
    """
    check_callable("evaluate", evaluate)
    grid = _check_grid(sparsities)
    out = {"sparsity": grid, "pruned": [], "masks": []}
    if finetune is not None:
        out["finetuned"] = []
    for s in grid:
        mask = magnitude_mask(params, s, "global", predicate=predicate)
        pruned = apply_mask(params, mask)
        out["masks"].append(mask)
        out["pruned"].append(float(evaluate(pruned)))
        if finetune is not None:
            out["finetuned"].append(float(evaluate(apply_mask(finetune(pruned, mask), mask))))
    return out


def _curve(sparsities, metric):
    x = np.asarray(_check_grid(sparsities), np.float64)
    y = np.asarray(check_finite_array("metric", check_array("metric", np.asarray(metric, np.float64), ndim=1)))
    if y.shape != x.shape:
        raise ValueError(f"metric has {y.size} values for {x.size} sparsities")
    return x, y


def essential_sparsity(sparsities: Sequence[float], metric: Sequence[float], *, tolerance: float = 0.01,
                       higher_is_better: bool = True) -> float:
    """Largest grid sparsity ``s`` with every point up to ``s`` within ``tolerance`` of the first
    (dense, ``s = 0``) value: ``m >= (1 - tol) m_0`` (accuracy) or ``m <= (1 + tol) m_0``
    (perplexity, ``higher_is_better=False``)."""
    x, y = _curve(sparsities, metric)
    tol = check_number("tolerance", tolerance, minimum=0.0)
    ok = y >= (1 - tol) * y[0] if higher_is_better else y <= (1 + tol) * y[0]
    bad = np.flatnonzero(~ok)
    last = (bad[0] - 1) if bad.size else x.size - 1
    return float(x[max(last, 0)])


def knee(sparsities: Sequence[float], metric: Sequence[float]) -> float:
    """Grid point of maximal distance to the chord from the first to the last point, axes scaled to [0, 1]."""
    x, y = _curve(sparsities, metric)
    if x.size < 3:
        raise ValueError(f"the knee needs at least 3 points, got {x.size}")
    xs = (x - x[0]) / (x[-1] - x[0])
    span = y.max() - y.min()
    ys = (y - y.min()) / span if span > 0 else np.zeros_like(y)
    dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
    dist = np.abs(dy * (xs - xs[0]) - dx * (ys - ys[0])) / np.hypot(dx, dy)
    return float(x[int(np.argmax(dist))])


def near_zero_fraction(params, rel: float = 0.05, *, predicate: Predicate | None = None) -> dict:
    """Fraction of weights with ``|w| < rel * std(w)`` per sparsifiable leaf and in total
    (``{"total": f, "per_leaf": {path: f}}``)."""
    check_finite_tree("params", params)
    rel = check_number("rel", rel, minimum=0.0, min_inclusive=False)
    selected = select(params, predicate)
    per, small, total = {}, 0, 0
    for (path, w), (_, s) in zip(leaves_with_paths(params), leaves_with_paths(selected)):
        if s is None:
            continue
        w = jnp.asarray(w)
        count = int(jnp.sum(jnp.abs(w) < rel * jnp.std(w)))
        per[path] = count / w.size
        small += count
        total += w.size
    if not total:
        raise ValueError("params have no sparsifiable leaves (check the predicate)")
    return {"total": small / total, "per_leaf": per}


__all__ = ["one_shot_sweep", "essential_sparsity", "knee", "near_zero_fraction"]
