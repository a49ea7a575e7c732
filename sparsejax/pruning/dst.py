"""Dynamic sparse training as optax transforms: SET (Mocanu et al. 2018, "Scalable training of
artificial neural networks with adaptive sparse connectivity") and RigL (Evci et al. 2020, "Rigging
the lottery: making all tickets winners").

The wrapped optimizer trains only the active weights (as :func:`sparsejax.masked`). Every
``update_every`` steps until ``end_step`` each sparse leaf drops the ``k = floor(zeta_t * nnz)``
active weights of smallest magnitude and grows ``k`` inactive ones, so every leaf keeps *exactly*
its number of non-zeros (and the model its FLOPs):

* SET grows uniformly at random among the inactive weights;
* RigL grows the inactive weights with the largest dense-gradient magnitude ``|dL/dW|`` (RigL
  Alg. 1); the gradient passed to ``update`` is dense because masked weights are zeros, not
  absent.

Grown weights start at zero (RigL Sec. 3). ``zeta_t`` is constant (SET) or cosine-annealed
``zeta_t = zeta_0 / 2 * (1 + cos(pi * t / end_step))`` (RigL eq. 1). The mask changes inside the
jitted update via ``lax.cond``: connectivity updates never recompile.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sparsejax.core.masks import top_k_mask
from sparsejax.core.transforms import masked_update
from sparsejax.core.tree import check_like, is_none

SCHEDULES = ("constant", "cosine")
GROWTH = ("random", "gradient")


class DSTState(NamedTuple):
    """Step count, current mask, PRNG key (for random growth) and the inner optimizer state."""

    count: jax.Array
    mask: Any
    key: jax.Array
    inner_state: Any


def drop_fraction_at(step, drop_fraction: float, end_step: int, schedule: str = "cosine") -> jax.Array:
    """``zeta_t``: ``drop_fraction`` (constant) or ``drop_fraction / 2 * (1 + cos(pi t / end_step))``
    (cosine, RigL eq. 1); 0 from ``end_step`` on."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    t = jnp.asarray(step, jnp.float32)
    zeta = jnp.asarray(drop_fraction, jnp.float32)
    if schedule == "cosine":
        zeta = zeta / 2 * (1 + jnp.cos(jnp.pi * jnp.minimum(t, end_step) / end_step))
    return jnp.where(t < end_step, zeta, 0.0)


def drop_and_grow(mask: jax.Array, weights: jax.Array, grow_scores: jax.Array, zeta) -> jax.Array:
    """One connectivity update of a leaf: drop the ``floor(zeta * nnz)`` active entries of smallest
    ``|weights|``, grow as many inactive entries (after the drop) with the largest ``grow_scores``.
    The number of ``True`` entries is unchanged."""
    nnz = jnp.sum(mask)
    k = jnp.floor(zeta * nnz).astype(jnp.int32)
    dropped = top_k_mask(jnp.where(mask, -jnp.abs(weights), -jnp.inf), k)
    kept = mask & ~dropped
    grown = top_k_mask(jnp.where(kept, -jnp.inf, grow_scores), k)
    return kept | grown


def dynamic_sparse(inner: optax.GradientTransformation, mask, *, grow: str, update_every: int, end_step: int,
                   drop_fraction: float = 0.3, schedule: str = "cosine", key: jax.Array | None = None
                   ) -> optax.GradientTransformation:
    """Wrap ``inner`` with dynamic sparse connectivity (``grow="random"``: SET, ``"gradient"``: RigL).

    ``mask`` is the initial mask tree (bool arrays, ``None`` = dense leaf), e.g. from
    :func:`sparsejax.random_mask` with ERK densities; apply it to the params before training.
    Connectivity updates happen at steps ``t`` with ``t % update_every == 0`` and ``0 < t < end_step``.
    """
    if grow not in GROWTH:
        raise ValueError(f"grow must be one of {GROWTH}, got {grow!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if update_every < 1 or end_step < 1:
        raise ValueError(f"update_every and end_step must be >= 1, got {update_every}, {end_step}")
    if not 0.0 < drop_fraction <= 1.0:
        raise ValueError(f"drop_fraction must be in (0, 1], got {drop_fraction}")
    if grow == "random" and key is None:
        raise ValueError("random growth (SET) needs a PRNG key")
    key = jax.random.key(0) if key is None else key

    def init_fn(params):
        check_like(params, mask)
        return DSTState(jnp.zeros((), jnp.int32), jax.tree_util.tree_map(jnp.asarray, mask), key, inner.init(params))

    def update_fn(grads, state, params=None):
        updates, inner_state = masked_update(inner, state.mask, grads, state.inner_state, params)
        count = state.count + 1
        is_update = (count % update_every == 0) & (count < end_step)
        key, sub = jax.random.split(state.key)
        zeta = drop_fraction_at(count, drop_fraction, end_step, schedule)

        def reconnect(_):
            new_params = optax.apply_updates(params, updates)
            leaves, treedef = jax.tree_util.tree_flatten(state.mask, is_leaf=is_none)
            keys = jax.random.split(sub, len(leaves))
            key_tree = jax.tree_util.tree_unflatten(treedef, list(keys))

            def leaf(m, w, g, k):
                if m is None:
                    return None
                scores = jnp.abs(g) if grow == "gradient" else jax.random.uniform(k, m.shape)
                return drop_and_grow(m, w, scores, zeta)

            new_mask = jax.tree_util.tree_map(leaf, state.mask, new_params, grads, key_tree, is_leaf=is_none)
            # dropped weights -> 0; grown weights were 0 (masked) and start there
            final = jax.tree_util.tree_map(
                lambda m, u, p: u if m is None else jnp.where(m, u, -p.astype(u.dtype)),
                new_mask, updates, params, is_leaf=is_none,
            )
            return final, new_mask

        updates, new_mask = jax.lax.cond(is_update, reconnect, lambda _: (updates, state.mask), None)
        return updates, DSTState(count, new_mask, key, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def sparse_evolutionary_training(inner: optax.GradientTransformation, mask, *, key: jax.Array, update_every: int,
                                 end_step: int, drop_fraction: float = 0.3, schedule: str = "constant"
                                 ) -> optax.GradientTransformation:
    """SET: magnitude drop, random growth (Mocanu et al. 2018, Alg. 1; zeta = 0.3 constant)."""
    return dynamic_sparse(inner, mask, grow="random", update_every=update_every, end_step=end_step,
                          drop_fraction=drop_fraction, schedule=schedule, key=key)


def rigl(inner: optax.GradientTransformation, mask, *, update_every: int, end_step: int,
         drop_fraction: float = 0.3, schedule: str = "cosine") -> optax.GradientTransformation:
    """RigL: magnitude drop, gradient-magnitude growth, cosine-annealed drop fraction (Evci et al. 2020)."""
    return dynamic_sparse(inner, mask, grow="gradient", update_every=update_every, end_step=end_step,
                          drop_fraction=drop_fraction, schedule=schedule)
