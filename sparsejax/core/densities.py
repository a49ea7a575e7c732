"""Per-layer density distributions: uniform, Erdős–Rényi (ER) and Erdős–Rényi-Kernel (ERK).

All three return a pytree like ``params`` holding the density (fraction kept) of each sparsifiable
leaf and ``None`` elsewhere, chosen so that the parameter-weighted total density over the
sparsifiable leaves equals ``1 - sparsity`` (Evci et al. 2020, "Rigging the Lottery", Sec. 3:
ER/ERK scale a layer's density by ``eps * sum(dims) / prod(dims)``; layers whose density would
exceed 1 are made dense and ``eps`` is recomputed for the rest). Computations are in ``jax.numpy``
so they also run on traced sparsities inside a jitted schedule.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.tree import Predicate, check_sparsity, is_none, select


def _sparsifiable(params, predicate):
    selected = select(params, predicate)
    leaves = jax.tree_util.tree_leaves(selected, is_leaf=is_none)
    shapes = [leaf.shape for leaf, sel in zip(jax.tree_util.tree_leaves(params), leaves) if sel is not None]
    if not shapes:
        raise ValueError("params have no sparsifiable leaves (check the predicate)")
    return selected, shapes


def _forced_dense(n: int, dense_first_last: bool) -> np.ndarray:
    forced = np.zeros(n, bool)
    if dense_first_last:
        forced[0] = forced[-1] = True
    return forced


def _scaled_densities(sizes, raw, forced, sparsity) -> jax.Array:
    """Densities ``min(1, eps * raw)`` with ``sum(d * size) = (1 - sparsity) * sum(size)`` (ERK fixed point)."""
    sizes = jnp.asarray(sizes, jnp.float32)
    raw = jnp.asarray(raw, jnp.float32)
    budget = (1.0 - sparsity) * sizes.sum()

    def body(_, dense):
        free = ~dense
        eps = (budget - jnp.sum(jnp.where(dense, sizes, 0.0))) / jnp.sum(jnp.where(free, raw * sizes, 0.0))
        return dense | (free & (eps * raw > 1.0))

    dense = jax.lax.fori_loop(0, len(sizes), body, jnp.asarray(forced))
    free = ~dense
    eps = (budget - jnp.sum(jnp.where(dense, sizes, 0.0))) / jnp.maximum(
        jnp.sum(jnp.where(free, raw * sizes, 0.0)), 1e-30
    )
    return jnp.where(dense, 1.0, jnp.clip(eps * raw, 0.0, 1.0))


def _to_tree(selected, values, concrete: bool):
    it = iter(values.tolist() if concrete else list(values))
    return jax.tree_util.tree_map(lambda s: next(it), selected)


def _distribute(params, sparsity, predicate, dense_first_last, raw_fn):
    check_sparsity(sparsity)
    selected, shapes = _sparsifiable(params, predicate)
    sizes = [int(np.prod(s)) for s in shapes]
    forced = _forced_dense(len(shapes), dense_first_last)
    concrete = not isinstance(sparsity, jax.core.Tracer)
    if concrete and forced.any():
        needed = sum(s for s, f in zip(sizes, forced) if f)
        if needed > (1.0 - float(sparsity)) * sum(sizes) + 1e-9:
            raise ValueError(
                f"sparsity {float(sparsity)} cannot be reached with the first and last layers dense: they "
                f"alone hold {needed} of {sum(sizes)} parameters"
            )
    densities = _scaled_densities(sizes, [raw_fn(s) for s in shapes], forced, sparsity)
    if concrete:
        densities = np.asarray(densities, np.float64)
    return _to_tree(selected, densities, concrete)


def uniform_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False):
    """The same density ``1 - sparsity`` for every sparsifiable leaf.

    With ``dense_first_last`` the first and last sparsifiable leaves (flatten order) are kept dense
    and the others share the remaining budget uniformly, so the total still hits ``sparsity``.
    """
    return _distribute(params, sparsity, predicate, dense_first_last, lambda shape: 1.0)


def er_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False):
    """Erdős–Rényi: density proportional to ``(n_in + n_out) / (n_in * n_out)`` (last two dims)."""
    return _distribute(
        params, sparsity, predicate, dense_first_last,
        lambda shape: (shape[-2] + shape[-1]) / (shape[-2] * shape[-1]),
    )


def erk_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False):
    """Erdős–Rényi-Kernel: density proportional to ``sum(shape) / prod(shape)`` (all dims)."""
    return _distribute(
        params, sparsity, predicate, dense_first_last, lambda shape: float(sum(shape)) / float(np.prod(shape))
    )


DISTRIBUTIONS = {"uniform": uniform_densities, "er": er_densities, "erk": erk_densities}
