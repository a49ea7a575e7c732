"""Optax transforms that train sparse: a fixed mask (:func:`keep_mask`, old name ``masked``) and gradual magnitude or
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
import numpy as np
import optax

from sparsejax.core.densities import DISTRIBUTIONS
from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.packed import WORDS, pack_masks, unpack_masks
from sparsejax.core.sparsity_types import Unstructured, parse_sparsity_type
from sparsejax.core.tree import Predicate, check_like, check_sparsity, is_none, leaves_with_paths, select
from sparsejax.core.validation import check_choice, check_int, check_number, is_traced, check_type


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


def check_premasked(params, mask, what: str = "keep_mask") -> None:
    """Raise ``ValueError`` if concrete ``params`` are non-zero where ``mask`` is ``False``.

    A mask-keeping transform zeros the *gradients* of pruned weights, so pruned weights stay exactly
    zero in any position of an ``optax.chain`` (also before ``optax.add_decayed_weights``) only if
    they start at zero: apply :func:`sparsejax.apply_mask` first."""
    for (path, w), (_, m) in zip(leaves_with_paths(params), leaves_with_paths(mask)):
        if m is None or is_traced(w) or is_traced(m):
            continue
        bad = int(jnp.count_nonzero(jnp.where(m, 0, w)))
        if bad:
            raise ValueError(
                f"{what}: params leaf {path!r} has {bad} non-zero entries where the mask is False. Apply "
                f"sparsejax.apply_mask(params, mask) before init, or pass prune_on_first_update=True when "
                f"the transform is the last one of the chain (the first update then zeros them)")


def keep_mask(inner: optax.GradientTransformation, mask, *, prune_on_first_update: bool = False,
              packed: str | None = None) -> optax.GradientTransformation:
    """Wrap ``inner`` so that weights where ``mask`` is ``False`` stay exactly zero: their gradients
    are zeroed before ``inner`` (Adam's moments stay zero there) and their updates set them to 0.

    ``mask`` is a tree like the params (bool arrays, ``None`` = dense leaf), or a function
    ``params -> mask`` called at ``init`` (then the first update zeros the pruned weights). It lives
    in the state, so swapping it (``state._replace(mask=new)``) does not recompile a jitted step.

    Position in a chain: with params that are zero where the mask is ``False`` (``init`` checks
    this) pruned weights stay zero wherever ``keep_mask`` sits in an ``optax.chain``, e.g. before
    or after ``optax.add_decayed_weights`` (a later transform that creates updates from zero inputs,
    such as ``optax.add_noise``, is the exception: wrap it inside ``inner``). With
    ``prune_on_first_update=True`` the params are not checked and the first update sets the pruned
    weights to 0, which is exact only when ``keep_mask`` is the last transform of the chain.

    ``packed="uint8"`` or ``"uint32"`` stores the mask in the state as packed bits
    (:class:`sparsejax.core.packed.PackedMask`, one bit per weight instead of a byte), unpacked
    inside every update; swap it with ``state._replace(mask=sparsejax.pack_masks(new, packed))``.

    Not :func:`optax.masked`: that one applies ``inner`` to a *subset of leaves*; this one keeps an
    element-wise sparsity mask. :func:`masked` is the old name of this function.
    """
    check_type("inner", inner, optax.GradientTransformation, "optax GradientTransformation")
    if packed is not None:
        check_choice("packed", packed, tuple(WORDS))

    def init_fn(params):
        m = mask(params) if callable(mask) else mask
        check_like(params, m)
        if not (prune_on_first_update or callable(mask)):
            check_premasked(params, m)
        m = jax.tree_util.tree_map(jnp.asarray, m)
        return MaskedState(m if packed is None else pack_masks(m, packed), inner.init(params))

    def update_fn(grads, state, params=None):
        updates, inner_state = masked_update(inner, unpack_masks(state.mask), grads, state.inner_state, params)
        return updates, MaskedState(state.mask, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def masked(inner: optax.GradientTransformation, mask, *, prune_on_first_update: bool = True
           ) -> optax.GradientTransformation:
    """Deprecated alias of :func:`keep_mask` (kept for existing code and notebooks).

    The name clashes with :func:`optax.masked`, which has the same signature and another meaning
    (apply ``inner`` to a subset of leaves). The alias keeps the old behaviour: params are not
    checked at init and the first update zeros the pruned weights (exact when it is last in a chain).
    """
    check_type("inner", inner, optax.GradientTransformation, "optax GradientTransformation")
    return keep_mask(inner, mask, prune_on_first_update=prune_on_first_update)


def polynomial_sparsity(step, target_sparsity: float, begin_step: int, end_step: int, power: float = 3,
                        initial_sparsity: float = 0.0):
    """Zhu & Gupta (2017), Eq. 1: ``s_t = s_f + (s_i - s_f) (1 - (t - t0)/(t1 - t0))^power``,
    ``s_i`` before ``begin_step`` and ``s_f`` from ``end_step`` on (``step`` may be traced)."""
    if not is_traced(step) and not isinstance(step, jax.Array):
        check_number("step", step)
    target_sparsity = check_number("target_sparsity", target_sparsity, minimum=0.0, maximum=1.0,
                                   max_inclusive=False, allow_traced=True)
    initial_sparsity = check_number("initial_sparsity", initial_sparsity, minimum=0.0, maximum=1.0,
                                    max_inclusive=False, allow_traced=True)
    begin_step = check_int("begin_step", begin_step, minimum=0)
    end_step = check_int("end_step", end_step, minimum=begin_step)
    power = check_number("power", power, minimum=0.0, min_inclusive=False)
    span = max(end_step - begin_step, 1)
    step = jnp.asarray(step, jnp.float32)
    frac = jnp.where(step >= end_step, 1.0, jnp.clip((step - begin_step) / span, 0.0, 1.0))
    return target_sparsity + (initial_sparsity - target_sparsity) * (1.0 - frac) ** power


METHODS = ("magnitude", "random", "saliency", "global_magnitude", "global_saliency")


def _scores(method, params, grads, key, leaves_mask):
    """Element-wise scores of the pruning ``method`` (larger = keep)."""
    p_leaves = jax.tree_util.tree_leaves(params)
    g_leaves = jax.tree_util.tree_leaves(grads)
    keys = jax.random.split(key, max(len(p_leaves), 1))
    out = []
    for i, (m, w, g) in enumerate(zip(leaves_mask, p_leaves, g_leaves)):
        if m is None:
            out.append(None)
        elif method.endswith("magnitude"):
            out.append(jnp.abs(w).astype(jnp.float32))
        elif method.endswith("saliency"):
            out.append(jnp.abs(w * g).astype(jnp.float32))
        else:
            out.append(jax.random.uniform(keys[i], w.shape))
    return out


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
    sparsity_type=None,
    power: float = 3,
    initial_sparsity: float = 0.0,
    overrides=None,
    erk_power_scale: float = 1.0,
) -> optax.GradientTransformation:
    """Gradual pruning to ``target_sparsity`` between ``begin_step`` and ``end_step``.

    Every ``frequency`` steps from ``begin_step`` (and at ``end_step``) the mask is recomputed at
    the sparsity of :func:`polynomial_sparsity` (``power``, ``initial_sparsity``), distributed over
    leaves by ``distribution`` (``"uniform"``, ``"er"`` or ``"erk"``, with ``overrides``) and chosen by
    ``method``: ``"magnitude"`` keeps the largest ``|w|``, ``"saliency"`` the largest ``|w * g|``
    (first-order Taylor, the gradient passed to ``update``), ``"random"`` a random subset, and
    ``"global_magnitude"`` / ``"global_saliency"`` rank all sparsifiable weights together (one
    threshold; ``distribution`` is then unused). Pruning only removes weights from the current
    mask, so pruned weights never come back. ``sparsity_type`` (:mod:`sparsejax.core.sparsity_types`)
    prunes whole units (N:M groups: dense to exactly N:M; blocks; channels; groups); global methods
    need unstructured sparsity.
    """
    check_sparsity(target_sparsity, "target_sparsity")
    check_choice("method", method, METHODS)
    check_choice("distribution", distribution, tuple(DISTRIBUTIONS))
    begin_step = check_int("begin_step", begin_step, minimum=0)
    if not isinstance(end_step, int) or end_step < begin_step:
        raise ValueError(f"need 0 <= begin_step <= end_step, got {begin_step}, {end_step}")
    frequency = check_int("frequency", frequency, minimum=1)
    polynomial_sparsity(0, target_sparsity, begin_step, end_step, power, initial_sparsity)  # checks the knobs
    if not float(initial_sparsity) <= float(target_sparsity):
        raise ValueError(f"initial_sparsity {initial_sparsity} must be <= target_sparsity {target_sparsity}")
    stype = parse_sparsity_type(sparsity_type)
    is_global = method.startswith("global_")
    if is_global and not isinstance(stype, Unstructured):
        raise ValueError(f"method {method!r} ranks single weights; got sparsity_type {stype!r}")

    def init_fn(params):
        selected = select(params, predicate)
        if overrides:
            selected = _apply_dense_overrides(params, selected, overrides, predicate)
        for (path, s), (_, w) in zip(leaves_with_paths(selected), leaves_with_paths(params)):
            if s is not None:
                stype.check(np.shape(w), where=f"params leaf {path!r}")
        mask = jax.tree_util.tree_map(
            lambda s, p: None if s is None else jnp.ones(p.shape, bool), selected, params, is_leaf=is_none
        )
        return GradualPruningState(jnp.zeros((), jnp.int32), mask, jax.random.PRNGKey(seed), inner.init(params))

    def prune(state, params, grads):
        sparsity = polynomial_sparsity(state.count, target_sparsity, begin_step, end_step, power, initial_sparsity)
        leaves, treedef = jax.tree_util.tree_flatten(state.mask, is_leaf=is_none)
        scores = _scores(method, params, grads, jax.random.fold_in(state.key, state.count), leaves)
        if is_global:
            chosen = [jnp.where(m, s, -1.0).reshape(-1) for m, s in zip(leaves, scores) if m is not None]
            flat = jnp.concatenate(chosen)
            keep = top_k_mask(flat, keep_count(1.0 - sparsity, flat.size))
            new, offset = [], 0
            for m in leaves:
                if m is None:
                    new.append(None)
                    continue
                new.append(keep[offset:offset + m.size].reshape(m.shape))
                offset += m.size
            return jax.tree_util.tree_unflatten(treedef, new)
        dens = DISTRIBUTIONS[distribution](params, sparsity, predicate=predicate, overrides=overrides,
                                           **({"erk_power_scale": erk_power_scale} if distribution == "erk" else {}))
        d_leaves = jax.tree_util.tree_leaves(dens, is_leaf=is_none)
        new = []
        for m, d, s in zip(leaves, d_leaves, scores):
            if m is None:
                new.append(None)
            elif isinstance(stype, Unstructured):
                new.append(top_k_mask(jnp.where(m, s, -1.0), keep_count(d, m.size)))
            else:
                new.append(stype.mask(s, d, current=m))
        return jax.tree_util.tree_unflatten(treedef, new)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("gradual_pruning needs params: call tx.update(grads, state, params)")
        t = state.count
        due = (t >= begin_step) & (t <= end_step) & (((t - begin_step) % frequency == 0) | (t == end_step))
        mask = jax.lax.cond(due, prune, lambda s, p, g: s.mask, state, params, grads)
        updates, inner_state = masked_update(inner, mask, grads, state.inner_state, params)
        return updates, GradualPruningState(t + 1, mask, state.key, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def _apply_dense_overrides(params, selected, overrides, predicate):
    """``selected`` with ``None`` at leaves that ``overrides`` maps to ``None`` (kept dense)."""
    dens = DISTRIBUTIONS["uniform"](params, 0.0, predicate=predicate, overrides=overrides)
    return jax.tree_util.tree_map(lambda s, d: None if d is None else s, selected, dens, is_leaf=is_none)
