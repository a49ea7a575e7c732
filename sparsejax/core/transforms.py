"""Optax transforms that train sparse: a fixed mask (:func:`masked`) and gradual magnitude or
random pruning on the cubic schedule of Zhu & Gupta 2017 (:func:`gradual_pruning`).

Both keep the mask in the optimizer state, zero the gradients of pruned weights before the inner
optimizer (so Adam's moments stay zero there) and return updates that set pruned weights to
exactly zero (``update = -param`` on pruned entries), whatever the inner optimizer does. Masks
change inside the jitted update through ``lax.cond``: no recompilation at pruning steps.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparsejax.core.densities import DISTRIBUTIONS
from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.tree import Predicate, check_like, check_sparsity, is_none, select


class MaskedState(NamedTuple):
    """State of :func:`masked`: the mask (replace it with ``state._replace(mask=...)``) and the inner state."""

    mask: Any
    inner_state: Any


class GradualPruningState(NamedTuple):
    """State of :func:`gradual_pruning`: step count, current mask, PRNG key, inner state."""

    count: jax.Array
    mask: Any
    key: jax.Array
    inner_state: Any


def _mask_grads(mask, grads):
    return jax.tree_util.tree_map(
        lambda m, g: g if m is None else jnp.where(m, g, jnp.zeros_like(g)), mask, grads, is_leaf=is_none
    )


def _mask_updates(mask, updates, params):
    return jax.tree_util.tree_map(
        lambda m, u, p: u if m is None else jnp.where(m, u, -p.astype(u.dtype)),
        mask, updates, params, is_leaf=is_none,
    )


def masked_update(inner, mask, grads, inner_state, params):
    """One step of ``inner`` on masked gradients, with updates that zero the pruned weights.

    The building block of every mask-keeping transform (:func:`masked`, :func:`gradual_pruning`,
    the dynamic sparse methods in :mod:`sparsejax.pruning`). Returns ``(updates, inner_state)``.
    """
    if params is None:
        raise ValueError("sparse transforms need params: call tx.update(grads, state, params)")
    updates, inner_state = inner.update(_mask_grads(mask, grads), inner_state, params)
    return _mask_updates(mask, updates, params), inner_state


def masked(inner: optax.GradientTransformation, mask) -> optax.GradientTransformation:
    """Wrap ``inner`` so that weights where ``mask`` is ``False`` are exactly zero after every update.

    ``mask`` is a tree like the params (bool arrays, ``None`` = dense leaf). It lives in the state,
    so swapping it (``state._replace(mask=new)``) does not recompile a jitted step.
    """

    def init_fn(params):
        check_like(params, mask)
        return MaskedState(jax.tree_util.tree_map(jnp.asarray, mask), inner.init(params))

    def update_fn(grads, state, params=None):
        updates, inner_state = masked_update(inner, state.mask, grads, state.inner_state, params)
        return updates, MaskedState(state.mask, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def polynomial_sparsity(step, target_sparsity: float, begin_step: int, end_step: int, power: int = 3):
    """Zhu & Gupta (2017), Eq. 1 with s_i = 0: ``s_t = s_f (1 - (1 - (t - t0)/(t1 - t0))^power)``,
    clipped to 0 before ``begin_step`` and ``s_f`` after ``end_step``."""
    span = max(end_step - begin_step, 1)
    step = jnp.asarray(step, jnp.float32)
    frac = jnp.where(step >= end_step, 1.0, jnp.clip((step - begin_step) / span, 0.0, 1.0))
    return target_sparsity * (1.0 - (1.0 - frac) ** power)


def _densities_vector(params, selected, sparsity, distribution, predicate):
    dens = DISTRIBUTIONS[distribution](params, sparsity, predicate=predicate)
    return jax.tree_util.tree_leaves(dens, is_leaf=is_none)


def gradual_pruning(
    inner: optax.GradientTransformation,
    target_sparsity: float,
    begin_step: int,
    end_step: int,
    frequency: int,
    method: str = "magnitude",
    distribution: str = "uniform",
    *,
    seed: int = 0,
    predicate: Predicate | None = None,
) -> optax.GradientTransformation:
    """Gradual pruning to ``target_sparsity`` between ``begin_step`` and ``end_step``.

    Every ``frequency`` steps from ``begin_step`` (and at ``end_step``) the mask is recomputed at
    the sparsity of :func:`polynomial_sparsity`, distributed over leaves by ``distribution``
    (``"uniform"`` or ``"erk"``) and chosen by ``method``: ``"magnitude"`` keeps the largest
    weights, ``"random"`` keeps a uniformly random subset; both only remove weights from the
    current mask, so pruned weights never come back.
    """
    check_sparsity(target_sparsity, "target_sparsity")
    if method not in ("magnitude", "random"):
        raise ValueError(f"method must be 'magnitude' or 'random', got {method!r}")
    if distribution not in ("uniform", "erk"):
        raise ValueError(f"distribution must be 'uniform' or 'erk', got {distribution!r}")
    if not 0 <= begin_step <= end_step:
        raise ValueError(f"need 0 <= begin_step <= end_step, got {begin_step}, {end_step}")
    if frequency < 1:
        raise ValueError(f"frequency must be >= 1, got {frequency}")

    def init_fn(params):
        selected = select(params, predicate)
        mask = jax.tree_util.tree_map(
            lambda s, p: None if s is None else jnp.ones(p.shape, bool), selected, params, is_leaf=is_none
        )
        return GradualPruningState(jnp.zeros((), jnp.int32), mask, jax.random.PRNGKey(seed), inner.init(params))

    def prune(state, params):
        sparsity = polynomial_sparsity(state.count, target_sparsity, begin_step, end_step)
        leaves, treedef = jax.tree_util.tree_flatten(state.mask, is_leaf=is_none)
        densities = _densities_vector(params, state.mask, sparsity, distribution, predicate)
        p_leaves = jax.tree_util.tree_leaves(params)
        keys = jax.random.split(jax.random.fold_in(state.key, state.count), len(leaves))
        new = []
        for m, d, w, k in zip(leaves, densities, p_leaves, keys):
            if m is None:
                new.append(None)
                continue
            score = jnp.abs(w) if method == "magnitude" else jax.random.uniform(k, w.shape)
            score = jnp.where(m, score.astype(jnp.float32), -1.0)
            new.append(top_k_mask(score, keep_count(d, w.size)))
        return jax.tree_util.tree_unflatten(treedef, new)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("gradual_pruning needs params: call tx.update(grads, state, params)")
        t = state.count
        due = (t >= begin_step) & (t <= end_step) & (((t - begin_step) % frequency == 0) | (t == end_step))
        mask = jax.lax.cond(due, prune, lambda s, p: s.mask, state, params)
        updates, inner_state = masked_update(inner, mask, grads, state.inner_state, params)
        return updates, GradualPruningState(t + 1, mask, state.key, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)
