"""Straight-through-estimator (STE) magnitude pruning as an optax transform (jaxpruner's
``magnitude_ste``; the N:M case is SR-STE without the refine term, Zhou et al. 2021).

The train state holds the *sparse* weights the model runs on; the dense latent weights live in the
optimizer state. Each update applies ``inner`` to the gradient taken at the sparse weights (the
straight-through estimator: ``dL/dW := dL/dW~``) on the dense latent weights, recomputes the mask by
magnitude of the new latent weights at the sparsity of the schedule (``polynomial_sparsity``;
constant when ``begin_step == end_step``) and returns the update that moves the params to the new
sparse weights. No hand-called ``sparsify``: it composes with any training loop (``fit``) as is.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparsejax.core.densities import DISTRIBUTIONS
from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.sparsity_types import Unstructured, parse_sparsity_type
from sparsejax.core.transforms import polynomial_sparsity
from sparsejax.core.tree import Predicate, check_sparsity, is_none, select
from sparsejax.core.validation import check_choice, check_int


class STEState(NamedTuple):
    """Step count, dense latent weights, current mask and the inner state."""

    count: jax.Array
    dense: Any
    mask: Any
    inner_state: Any


def ste_magnitude_pruning(inner: optax.GradientTransformation, sparsity: float, *, begin_step: int = 0,
                          end_step: int | None = None, distribution: str = "uniform", sparsity_type=None,
                          power: float = 3, predicate: Predicate | None = None) -> optax.GradientTransformation:
    """STE magnitude pruning to ``sparsity`` (reached at ``end_step``, default ``begin_step``: at once).

    ``init(params)`` takes the dense params; after every update the params are the sparse weights
    ``W * mask(W)`` of the latent dense ``W`` (``state.dense``). ``sparsity_type`` keeps a structure
    (e.g. ``"nm_2,4"``)."""
    check_sparsity(sparsity)
    check_choice("distribution", distribution, tuple(DISTRIBUTIONS))
    begin_step = check_int("begin_step", begin_step, minimum=0)
    end_step = begin_step if end_step is None else check_int("end_step", end_step, minimum=begin_step)
    stype = parse_sparsity_type(sparsity_type)

    def masks_of(dense, t):
        s = polynomial_sparsity(t, sparsity, begin_step, end_step, power)
        dens = DISTRIBUTIONS[distribution](dense, s, predicate=predicate)

        def leaf(d, w):
            if d is None:
                return None
            if isinstance(stype, Unstructured):
                return top_k_mask(jnp.abs(w), keep_count(d, w.size))
            return stype.mask(jnp.abs(w), d)

        return jax.tree_util.tree_map(leaf, dens, dense, is_leaf=is_none)

    def init_fn(params):
        selected = select(params, predicate)
        mask = jax.tree_util.tree_map(lambda s, p: None if s is None else jnp.ones(p.shape, bool), selected, params,
                                      is_leaf=is_none)
        return STEState(jnp.zeros((), jnp.int32), params, mask, inner.init(params))

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("ste_magnitude_pruning needs params: call tx.update(grads, state, params)")
        updates, inner_state = inner.update(grads, state.inner_state, state.dense)
        dense = optax.apply_updates(state.dense, updates)
        mask = masks_of(dense, state.count)
        sparse = jax.tree_util.tree_map(lambda m, w: w if m is None else jnp.where(m, w, jnp.zeros_like(w)),
                                        mask, dense, is_leaf=is_none)
        out = jax.tree_util.tree_map(lambda new, p: (new - p).astype(p.dtype), sparse, params)
        return out, STEState(state.count + 1, dense, mask, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)
