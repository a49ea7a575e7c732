"""Dynamic sparse training as optax transforms: SET (Mocanu et al. 2018, "Scalable training of
artificial neural networks with adaptive sparse connectivity") and RigL (Evci et al. 2020, "Rigging
the lottery: making all tickets winners").

The wrapped optimizer trains only the active weights (as :func:`sparsejax.keep_mask`). At steps
``t`` with ``t % update_every == 0`` and ``begin_step <= t < end_step`` (``t`` counts updates
from 0) each sparse leaf drops ``k = floor(zeta_t * active)`` active weights and grows ``k``
inactive ones, so every leaf keeps *exactly* its number of non-zeros (and the model its FLOPs):

* drop (``drop_rule``): ``"magnitude"`` drops the ``k`` smallest ``|w|`` (RigL); ``"sign"`` drops
  the ``floor(zeta * n_pos)`` smallest positive and the ``floor(zeta * n_neg)`` largest negative
  weights separately (the original SET code, ``set_mlp.py``: the fraction ``zeta`` of each sign
  closest to zero), the default of :func:`sparse_evolutionary_training`;
* grow: SET uniformly at random among the inactive weights; RigL the inactive weights with the
  largest dense-gradient magnitude ``|dL/dW|`` (RigL Alg. 1; the gradient passed to ``update`` is
  dense because masked weights are zeros, not absent). A just-dropped weight may be regrown (as in
  RigL and jaxpruner).

Grown weights start at zero and, as in jaxpruner's ``restart_inner_state``, the inner optimizer's
state (Adam's ``mu``/``nu``, momentum traces: every part of the state shaped like the params) is
reset to zero on the grown connections. With ``skip_step`` (default, as RigL and jaxpruner's
``skip_gradients``) the inner optimizer does not step on a connectivity-update step: the update
only zeros the dropped weights, and the inner state does not advance.

``zeta_t`` is constant (SET) or cosine-annealed ``zeta_0 / 2 * (1 + cos(pi * (t - t0) / (T - t0)))``
(RigL eq. 1 with ``t0 = begin_step``, ``T = end_step``). ``sparsity_type`` makes the update keep a
structure: N:M (drop and grow inside each group of ``m``), blocks, channels or groups (whole units,
scored by the L2 norm of the element scores). The mask changes inside the jitted update via
``lax.cond``: connectivity updates never recompile.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.sparsity_types import Unstructured, parse_sparsity_type
from sparsejax.core.transforms import check_premasked, masked_update
from sparsejax.core.tree import check_like, is_none, leaves_with_paths
from sparsejax.core.validation import check_choice, check_int, check_number, check_array

SCHEDULES = ("constant", "cosine")
GROWTH = ("random", "gradient")
DROP_RULES = ("magnitude", "sign")


class DSTState(NamedTuple):
    """Step count, current mask, PRNG key (for random growth) and the inner optimizer state."""

    count: jax.Array
    mask: Any
    key: jax.Array
    inner_state: Any


def drop_fraction_at(step, drop_fraction: float, end_step: int, schedule: str = "cosine",
                     begin_step: int = 0) -> jax.Array:
    """``zeta_t``: ``drop_fraction`` (constant) or ``drop_fraction / 2 * (1 + cos(pi (t - t0) / (T - t0)))``
    (cosine, RigL eq. 1, ``t0 = begin_step``, ``T = end_step``); 0 from ``end_step`` on."""
    check_choice("schedule", schedule, SCHEDULES)
    drop_fraction = check_number("drop_fraction", drop_fraction, minimum=0.0, maximum=1.0, allow_traced=True)
    begin_step = check_int("begin_step", begin_step, minimum=0)
    end_step = check_int("end_step", end_step, minimum=begin_step + 1)
    t = jnp.asarray(step, jnp.float32)
    zeta = jnp.asarray(drop_fraction, jnp.float32)
    if schedule == "cosine":
        frac = jnp.clip((t - begin_step) / (end_step - begin_step), 0.0, 1.0)
        zeta = zeta / 2 * (1 + jnp.cos(jnp.pi * frac))
    return jnp.where(t < end_step, zeta, 0.0)


def drop_and_grow(mask: jax.Array, weights: jax.Array, grow_scores: jax.Array, zeta, *,
                  sparsity_type=None) -> jax.Array:
    """One connectivity update of a leaf: drop the ``floor(zeta * nnz)`` active entries (units) of
    smallest ``|weights|``, grow as many inactive ones (after the drop) with the largest
    ``grow_scores``. The number of ``True`` entries (per row for N:M) is unchanged."""
    check_array("weights", weights, shape=tuple(np.shape(mask)))
    check_array("grow_scores", grow_scores, shape=tuple(np.shape(mask)))
    check_number("zeta", zeta, minimum=0.0, maximum=1.0, allow_traced=True)
    stype = parse_sparsity_type(sparsity_type)
    return stype.drop_and_grow(mask, jnp.abs(weights), grow_scores, zeta)


def sign_drop_and_grow(mask: jax.Array, weights: jax.Array, grow_scores: jax.Array, zeta) -> jax.Array:
    """SET's update (unstructured): drop ``floor(zeta * n_pos)`` smallest positive and
    ``floor(zeta * n_neg)`` largest negative active weights, grow as many inactive entries with
    the largest ``grow_scores``. Active zeros (never trained yet) count as neither sign and stay."""
    check_array("weights", weights, shape=tuple(np.shape(mask)))
    check_array("grow_scores", grow_scores, shape=tuple(np.shape(mask)))
    check_number("zeta", zeta, minimum=0.0, maximum=1.0, allow_traced=True)
    pos = mask & (weights > 0)
    neg = mask & (weights < 0)
    flat = lambda x: x.reshape(-1)  # noqa: E731
    k_pos = jnp.floor(zeta * jnp.sum(pos)).astype(jnp.int32)
    k_neg = jnp.floor(zeta * jnp.sum(neg)).astype(jnp.int32)
    from sparsejax.core.masks import top_k_mask

    drop_pos = top_k_mask(flat(jnp.where(pos, -weights, -jnp.inf)), k_pos)
    drop_neg = top_k_mask(flat(jnp.where(neg, weights, -jnp.inf)), k_neg)
    kept = flat(mask) & ~drop_pos & ~drop_neg
    grown = top_k_mask(jnp.where(kept, -jnp.inf, flat(grow_scores).astype(jnp.float32)), k_pos + k_neg)
    return (kept | grown).reshape(mask.shape)


def reset_on_grown(inner: optax.GradientTransformation, inner_state, grown):
    """Zero every params-shaped part of ``inner_state`` (Adam's moments, momentum) at the ``True``
    entries of ``grown`` (a tree like the params; ``None`` leaves untouched)."""
    full = jax.tree_util.tree_map(lambda g: jnp.zeros((), bool) if g is None else g, grown, is_leaf=is_none)

    def zero(x, g):
        if not hasattr(x, "shape") or getattr(x, "shape", None) is None:
            return x
        return jnp.where(g, jnp.zeros_like(x), x)

    try:
        return optax.tree_utils.tree_map_params(inner, zero, inner_state, full,
                                                transform_non_params=lambda x: x)
    except ValueError as e:
        raise ValueError(f"grown must be a tree like the params of inner_state: {str(e).splitlines()[0]}") from e


def dynamic_sparse(inner: optax.GradientTransformation, mask, *, grow: str, update_every: int, end_step: int,
                   drop_fraction: float = 0.3, schedule: str = "cosine", key: jax.Array | None = None,
                   begin_step: int = 0, skip_step: bool = True, reset_state: bool = True,
                   drop_rule: str = "magnitude", sparsity_type=None, prune_on_first_update: bool = False
                   ) -> optax.GradientTransformation:
    """Wrap ``inner`` with dynamic sparse connectivity (``grow="random"``: SET, ``"gradient"``: RigL).

    ``mask`` is the initial mask tree (bool arrays, ``None`` = dense leaf), e.g. from
    :func:`sparsejax.random_mask` with ERK densities, or a function ``params -> mask`` called at
    ``init`` (the first update then zeros the pruned weights); apply a given mask to the params before training (``init``
    checks it unless ``prune_on_first_update``). Connectivity updates happen at steps ``t`` with
    ``t % update_every == 0`` and ``begin_step <= t < end_step``, ``t >= 1``. See the module
    docstring for ``skip_step``, ``reset_state``, ``drop_rule`` and ``sparsity_type``.
    """
    check_choice("grow", grow, GROWTH)
    check_choice("schedule", schedule, SCHEDULES)
    check_choice("drop_rule", drop_rule, DROP_RULES)
    update_every = check_int("update_every", update_every, minimum=1)
    begin_step = check_int("begin_step", begin_step, minimum=0)
    end_step = check_int("end_step", end_step, minimum=max(begin_step, 0) + 1)
    drop_fraction = check_number("drop_fraction", drop_fraction, minimum=0.0, maximum=1.0, min_inclusive=False)
    if grow == "random" and key is None:
        raise ValueError("random growth (SET) needs a PRNG key")
    stype = parse_sparsity_type(sparsity_type)
    if drop_rule == "sign" and not isinstance(stype, Unstructured):
        raise ValueError(f"drop_rule='sign' (SET) drops single weights; use drop_rule='magnitude' with {stype!r}")
    key = jax.random.key(0) if key is None else key

    def init_fn(params):
        m0 = mask(params) if callable(mask) else mask
        check_like(params, m0)
        for path, m in leaves_with_paths(m0):
            if m is not None:
                stype.check(np.shape(m), where=f"mask leaf {path!r}")
        if not (prune_on_first_update or callable(mask)):
            check_premasked(params, m0, "dynamic_sparse")
        return DSTState(jnp.zeros((), jnp.int32), jax.tree_util.tree_map(jnp.asarray, m0), key, inner.init(params))

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("dynamic sparse training needs params: call tx.update(grads, state, params)")
        t = state.count
        is_update = (t % update_every == 0) & (t >= max(begin_step, 1)) & (t < end_step)
        key, sub = jax.random.split(state.key)
        zeta = drop_fraction_at(t, drop_fraction, end_step, schedule, begin_step)

        def new_mask_of(weights):
            leaves, treedef = jax.tree_util.tree_flatten(state.mask, is_leaf=is_none)
            keys = jax.random.split(sub, len(leaves))
            key_tree = jax.tree_util.tree_unflatten(treedef, list(keys))

            def leaf(m, w, g, k):
                if m is None:
                    return None
                scores = jnp.abs(g).astype(jnp.float32) if grow == "gradient" else jax.random.uniform(k, m.shape)
                if drop_rule == "sign":
                    return sign_drop_and_grow(m, w, scores, zeta)
                return stype.drop_and_grow(m, jnp.abs(w), scores, zeta)

            return jax.tree_util.tree_map(leaf, state.mask, weights, grads, key_tree, is_leaf=is_none)

        def grown_of(new_mask):
            return jax.tree_util.tree_map(lambda o, n: None if o is None else n & ~o, state.mask, new_mask,
                                          is_leaf=is_none)

        def zero_pruned(new_mask, updates):
            return jax.tree_util.tree_map(
                lambda m, u, p: u if m is None else jnp.where(m, u, -p.astype(u.dtype)),
                new_mask, updates, params, is_leaf=is_none)

        def reconnect(_):
            if skip_step:  # RigL / jaxpruner: no optimizer step, only the connectivity change
                new_mask = new_mask_of(params)
                updates = zero_pruned(new_mask, jax.tree_util.tree_map(jnp.zeros_like, params))
                inner_state = state.inner_state
            else:
                updates, inner_state = masked_update(inner, state.mask, grads, state.inner_state, params)
                new_mask = new_mask_of(optax.apply_updates(params, updates))
                updates = zero_pruned(new_mask, updates)
            if reset_state:
                inner_state = reset_on_grown(inner, inner_state, grown_of(new_mask))
            return updates, new_mask, inner_state

        def regular(_):
            updates, inner_state = masked_update(inner, state.mask, grads, state.inner_state, params)
            return updates, state.mask, inner_state

        updates, new_mask, inner_state = jax.lax.cond(is_update, reconnect, regular, None)
        return updates, DSTState(t + 1, new_mask, key, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def sparse_evolutionary_training(inner: optax.GradientTransformation, mask, *, key: jax.Array, update_every: int,
                                 end_step: int, drop_fraction: float = 0.3, schedule: str = "constant",
                                 drop_rule: str = "sign", **kwargs) -> optax.GradientTransformation:
    """SET: sign-wise magnitude drop (the fraction ``zeta`` of positive and of negative weights
    closest to zero), random growth (Mocanu et al. 2018, Alg. 1; ``zeta = 0.3`` constant). Other
    keyword arguments (``begin_step``, ``skip_step``, ``reset_state``, ``sparsity_type``) go to
    :func:`dynamic_sparse`; a structured ``sparsity_type`` needs ``drop_rule="magnitude"``."""
    return dynamic_sparse(inner, mask, grow="random", update_every=update_every, end_step=end_step,
                          drop_fraction=drop_fraction, schedule=schedule, key=key, drop_rule=drop_rule, **kwargs)


def rigl(inner: optax.GradientTransformation, mask, *, update_every: int, end_step: int,
         drop_fraction: float = 0.3, schedule: str = "cosine", **kwargs) -> optax.GradientTransformation:
    """RigL: magnitude drop, gradient-magnitude growth, cosine-annealed drop fraction (Evci et al.
    2020). Other keyword arguments go to :func:`dynamic_sparse`."""
    return dynamic_sparse(inner, mask, grow="gradient", update_every=update_every, end_step=end_step,
                          drop_fraction=drop_fraction, schedule=schedule, **kwargs)
