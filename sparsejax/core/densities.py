"""Per-layer density distributions: uniform, Erdős–Rényi (ER) and Erdős–Rényi-Kernel (ERK).

All three return a pytree like ``params`` holding the density (fraction kept) of each sparsifiable
leaf and ``None`` elsewhere, chosen so that the parameter-weighted total density over the
sparsifiable leaves equals ``1 - sparsity`` (Evci et al. 2020, "Rigging the Lottery", Sec. 3:
ER/ERK scale a layer's density by ``eps * sum(dims) / prod(dims)``; layers whose density would
exceed 1 are made dense and ``eps`` is recomputed for the rest). Computations are in ``jax.numpy``
so they also run on traced sparsities inside a jitted schedule.
"""
from __future__ import annotations

import fnmatch

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.tree import Predicate, check_sparsity, leaves_with_paths, select
from sparsejax.core.validation import check_number, check_type


def _sparsifiable(params, predicate):
    selected = select(params, predicate)
    pairs = [(path, leaf) for (path, leaf), (_, sel) in zip(leaves_with_paths(params), leaves_with_paths(selected))
             if sel is not None]
    if not pairs:
        raise ValueError("params have no sparsifiable leaves (check the predicate)")
    return selected, [p for p, _ in pairs], [np.shape(leaf) for _, leaf in pairs]


def layer_order(model, *args, method=None, **kwargs) -> list[str]:
    """Leaf paths of ``model``'s parameters in the order the model *calls* its modules.

    Pytrees flatten dicts in sorted key order (``Dense_10`` before ``Dense_2``), which is not the
    network order; this runs ``model.init`` once on ``args`` with a method interceptor and sorts
    the parameter leaves by the first call of the module that owns them. Use the result as
    ``layer_order=`` of the density functions (``dense_first_last``) and of :func:`uniform_plus_densities`.
    """
    import flax.linen as nn

    check_type("model", model, nn.Module, "flax.linen Module")

    calls: dict[tuple, int] = {}

    def record(next_fun, fargs, fkwargs, context):
        calls.setdefault(tuple(context.module.path), len(calls))
        return next_fun(*fargs, **fkwargs)

    with nn.intercept_methods(record):
        variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *args, method=method, **kwargs))
    paths = [p for p, _ in leaves_with_paths(variables) if p.startswith("params/")]
    big = len(calls) + 1

    def rank(path):
        parts = tuple(path.split("/")[1:-1])
        return calls.get(parts, big)

    return sorted(paths, key=rank)  # stable: leaves of one module keep their (name) order


def _forced_dense(paths, dense_first_last: bool, layer_order) -> np.ndarray:
    forced = np.zeros(len(paths), bool)
    if not dense_first_last:
        return forced
    if layer_order is None:
        raise ValueError("dense_first_last needs the layer order: pytree order is alphabetical (Dense_10 sorts "
                         "before Dense_2); pass layer_order=sparsejax.layer_order(model, x) or the leaf paths in "
                         "network order")
    order = [p for p in layer_order if p in set(paths)]
    if not order:
        raise ValueError(f"layer_order names none of the sparsifiable leaves {paths}")
    forced[paths.index(order[0])] = forced[paths.index(order[-1])] = True
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


def _overridden(paths, overrides):
    """``{index: sparsity or None}`` for leaves whose path matches an ``overrides`` glob pattern
    (the first matching pattern wins)."""
    if not overrides:
        return {}
    if not isinstance(overrides, dict):
        raise TypeError(f"overrides must be a dict from leaf-path pattern to sparsity (or None), got "
                        f"{type(overrides).__name__}")
    out, used = {}, set()
    for i, path in enumerate(paths):
        for pattern, value in overrides.items():
            if fnmatch.fnmatchcase(path, pattern) or path == pattern:
                if value is not None:
                    check_sparsity(value, f"overrides[{pattern!r}]")
                out[i] = value
                used.add(pattern)
                break
    unused = [p for p in overrides if p not in used]
    if unused:
        raise ValueError(f"overrides patterns {unused} match no sparsifiable leaf; leaves are {paths}")
    return out


def _distribute(params, sparsity, predicate, dense_first_last, raw_fn, layer_order=None, overrides=None):
    check_sparsity(sparsity)
    selected, paths, shapes = _sparsifiable(params, predicate)
    fixed = _overridden(paths, overrides)
    free_idx = [i for i in range(len(paths)) if i not in fixed]
    concrete = not isinstance(sparsity, jax.core.Tracer)
    values = [None] * len(paths)
    for i, s in fixed.items():
        values[i] = None if s is None else 1.0 - float(s)
    if free_idx:
        f_paths = [paths[i] for i in free_idx]
        f_shapes = [shapes[i] for i in free_idx]
        sizes = [int(np.prod(s)) for s in f_shapes]
        forced = _forced_dense(f_paths, dense_first_last, layer_order)
        if concrete and forced.any():
            needed = sum(s for s, f in zip(sizes, forced) if f)
            if needed > (1.0 - float(sparsity)) * sum(sizes) + 1e-9:
                raise ValueError(
                    f"sparsity {float(sparsity)} cannot be reached with the first and last layers dense: they "
                    f"alone hold {needed} of {sum(sizes)} parameters"
                )
        dens = _scaled_densities(sizes, [raw_fn(s) for s in f_shapes], forced, sparsity)
        dens = np.asarray(dens, np.float64).tolist() if concrete else list(dens)
        for i, d in zip(free_idx, dens):
            values[i] = d
    it = iter(values)
    return jax.tree_util.tree_map(lambda s: next(it), selected)


def uniform_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False,
                      layer_order=None, overrides=None):
    """The same density ``1 - sparsity`` for every sparsifiable leaf.

    With ``dense_first_last`` the first and last sparsifiable leaves of ``layer_order`` (network
    order, from :func:`layer_order` or given by hand; required) are kept dense and the others share
    the remaining budget uniformly, so the total still hits ``sparsity``. ``overrides`` maps leaf
    path glob patterns (``"params/head/*"``) to a fixed sparsity, or to ``None`` for a dense leaf
    (left out of the mask); the other leaves get ``sparsity`` (jaxpruner's ``custom_sparsity_map``).
    """
    return _distribute(params, sparsity, predicate, dense_first_last, lambda shape: 1.0, layer_order, overrides)


def er_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False,
                 layer_order=None, overrides=None):
    """Erdős–Rényi: density proportional to ``(n_in + n_out) / (n_in * n_out)`` (last two dims)."""
    return _distribute(
        params, sparsity, predicate, dense_first_last,
        lambda shape: (shape[-2] + shape[-1]) / (shape[-2] * shape[-1]), layer_order, overrides,
    )


def erk_densities(params, sparsity, *, predicate: Predicate | None = None, dense_first_last: bool = False,
                  layer_order=None, overrides=None, erk_power_scale: float = 1.0):
    """Erdős–Rényi-Kernel: density proportional to ``(sum(shape) / prod(shape)) ** erk_power_scale``
    (all dims; ``erk_power_scale`` as in RigL/jaxpruner: 1 is ERK, 0 is uniform)."""
    power = check_number("erk_power_scale", erk_power_scale, minimum=0.0)
    return _distribute(
        params, sparsity, predicate, dense_first_last,
        lambda shape: (float(sum(shape)) / float(np.prod(shape))) ** power, layer_order, overrides,
    )


def uniform_plus_densities(params, sparsity, *, layer_order, predicate: Predicate | None = None):
    """P4's ``uniform+`` (Liu et al. 2022, official ``sparselearning/core.py``): the first layer of
    ``layer_order`` dense, the last (classifier) layer at density ``max(0.2, 1 - sparsity)``, the
    others uniform, sharing the rest of the budget so that the total density is ``1 - sparsity``.

    Deviation: the official code divides the remaining budget by *all* parameters (and does not
    compensate for the dense first layer above density 0.2), so its total misses the target
    slightly; here the total is exact. Raises if the target cannot be reached.
    """
    check_sparsity(sparsity)
    if isinstance(sparsity, jax.core.Tracer):
        raise TypeError("uniform_plus_densities needs a concrete sparsity")
    selected, paths, shapes = _sparsifiable(params, predicate)
    order = [p for p in (layer_order or []) if p in set(paths)]
    if len(order) < 2:
        raise ValueError(f"uniform_plus_densities needs layer_order naming >= 2 sparsifiable leaves, got {layer_order}")
    sizes = np.array([int(np.prod(s)) for s in shapes], np.float64)
    first, last = paths.index(order[0]), paths.index(order[-1])
    density = 1.0 - float(sparsity)
    fixed = {first: 1.0, last: max(0.2, density)}
    rest = [i for i in range(len(paths)) if i not in fixed]
    remaining = density * sizes.sum() - sum(sizes[i] * d for i, d in fixed.items())
    share = remaining / sizes[rest].sum() if rest else 0.0
    if rest and not 0.0 <= share <= 1.0 or (not rest and remaining < -1e-9):
        raise ValueError(f"sparsity {float(sparsity)} cannot be reached by uniform+ (dense first layer, last layer "
                         f"at density {fixed[last]}): the other layers would need density {share:.4f}")
    values = [fixed.get(i, share) for i in range(len(paths))]
    it = iter(values)
    return jax.tree_util.tree_map(lambda s: next(it), selected)


DISTRIBUTIONS = {"uniform": uniform_densities, "er": er_densities, "erk": erk_densities}
