"""N:M sparse training recipes: SR-STE (Zhou et al. 2021) and the decaying gradient-flow recipes
of P7 (Bambhaniya et al. 2024, "Progressive Gradient Flow for Robust N:M Sparsity Training in
Transformers").

All recipes keep *dense* latent weights ``W`` and, at every step ``t``, run the model on
effective weights

    W~_t = W * (E_t + beta_t * (1 - E_t)),     E_t = nm_mask(W, N_t, M)          (P7 Fig. 2b,c)

with a straight-through backward pass ``dL/dW := dL/dW~`` (the custom backward of the paper's
code). The recipes differ in ``(beta_t, N_t)`` and in the gradient transform:

* ``srste``: ``beta = 0``, ``N_t = N``; the gradient gets the sparse-refined term
  ``lambda_W * (1 - E_t) * W`` (Zhou et al. 2021, Fig. 2b), see :func:`sr_ste`.
* ``mask_decay_linear`` / ``mask_decay_exponential`` (MDGF): ``N_t = N`` and the pruned
  elements' mask value decays ``beta_t = max(0, 1 - rate * (t - t_d))`` or
  ``beta_t = exp(-rate * (t - t_d))`` (:func:`linear_mask_decay`, :func:`exponential_mask_decay`).
* ``structure_decay_stepwise`` (SDGF): ``beta = 0`` and the pattern moves from a denser N:M to the
  target: ``(M-1):M, (M/2):M, (M/4):M, ..., N:M`` over equal frames (:func:`stepwise_structure_decay`).
* ``structure_decay_geometric`` (SDGF-Geometric, the official ``"fine"`` decay): ``beta = 0`` and the
  density stays ``N/M`` while the groups shrink over 4 equal frames: ``8N:8M, 4N:4M, 2N:2M, N:M``
  (1:8 -> 8:64, 4:32, 2:16, 1:8, P7 Sec. 4; the official code always uses 4 frames)
  (:func:`geometric_structure_levels`).
* ``structure_decay_densify`` (the official ``"densify"`` decay): ``beta = 0``, ``N`` fixed and the
  groups shrink, so the density grows to the target over 4 frames: ``N:8M, N:4M, N:2M, N:M``
  (:func:`densify_structure_levels`).

For both, ``max_m`` drops the levels whose group does not divide the kernels' input width (a
deviation only at small widths). The official ``"custom"`` decay (a user list of levels) is not
exposed as a method; :func:`level_mask` runs any such list.

MDGF decays at the official per-step coefficient ``2e-4`` by default (``decay_rate="per_T"`` gives
the earlier defaults ``1 / T_decay`` (linear) and ``5 / T_decay`` (exponential), which reach ~0 at the
start of fine-tuning in short runs).

A training run is split into ``dense_steps`` (dense training, ``beta = 1``/``N_t = M``), the decay
phase, and ``finetune_steps`` (binary target mask) as in P7's dense / sparse / fine-tune epochs.
Schedules are optax-style ``step -> value`` callables and :func:`sr_ste` is an
``optax.GradientTransformation``, so a recipe composes with any optax optimizer.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.tree import Predicate, is_none, check_like
from sparsejax.structured.nm import _check_nm_args, nm_mask
from sparsejax.core.validation import check_int, check_number, is_traced

METHODS = ("srste", "mask_decay_linear", "mask_decay_exponential", "structure_decay_stepwise",
           "structure_decay_geometric", "structure_decay_densify")
OFFICIAL_DECAY_COEF = 2e-4  # the official code's default decay_coef per step (train.py)


def _check_steps(**steps) -> None:
    for name, v in steps.items():
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v}")


def linear_mask_decay(rate: float, begin_step: int = 0) -> Callable:
    """MDGF-Linear: ``beta_t = clip(1 - rate * (t - begin_step), 0, 1)`` (1 before ``begin_step``)."""
    if isinstance(rate, (bool, str)) or not isinstance(rate, (int, float, np.floating)) or rate <= 0:
        raise ValueError(f"decay rate must be > 0, got {rate}")
    _check_steps(begin_step=begin_step)
    return lambda step: jnp.clip(1.0 - rate * (jnp.asarray(step, jnp.float32) - begin_step), 0.0, 1.0)


def exponential_mask_decay(rate: float, begin_step: int = 0) -> Callable:
    """MDGF-Exponential: ``beta_t = exp(-rate * max(t - begin_step, 0))``."""
    if isinstance(rate, (bool, str)) or not isinstance(rate, (int, float, np.floating)) or not rate > 0 \
            or not np.isfinite(rate):
        raise ValueError(f"decay rate must be > 0 and finite, got {rate}")
    _check_steps(begin_step=begin_step)
    return lambda step: jnp.exp(-rate * jnp.maximum(jnp.asarray(step, jnp.float32) - begin_step, 0.0))


def structure_decay_levels(n: int, m: int) -> tuple[int, ...]:
    """SDGF-Stepwise sequence of N for target ``n:m``: ``m-1``, then ``m/2, m/4, ...`` while above
    ``n``, ending at ``n`` (e.g. 1:16 -> 15, 8, 4, 2, 1; 2:4 -> 3, 2)."""
    _check_nm_args(n, m)
    levels, k = [m - 1], m // 2
    while k > n:
        if k < levels[-1]:
            levels.append(k)
        k //= 2
    if levels[-1] != n:
        levels.append(n)
    return tuple(levels)


def _fit_levels(levels, n: int, m: int, max_m: int | None) -> tuple[tuple[int, int], ...]:
    if max_m is not None:
        max_m = int(max_m)
        levels = [(a, b) for a, b in levels if b <= max_m and max_m % b == 0]
    if not levels or levels[-1] != (n, m):
        raise ValueError(f"max_m={max_m} does not fit the target {n}:{m}")
    return tuple(levels)


def geometric_structure_levels(n: int, m: int, max_m: int | None = None, frames: int = 4
                               ) -> tuple[tuple[int, int], ...]:
    """SDGF-Geometric (official ``"fine"``) levels for target ``n:m``: ``(2^k n, 2^k m)`` for
    ``k = frames-1 .. 0`` (1:8 -> 8:64, 4:32, 2:16, 1:8; 2:4 -> 16:32, 8:16, 4:8, 2:4), without the
    levels whose group size ``2^k m`` exceeds ``max_m`` or does not divide it."""
    _check_nm_args(n, m)
    return _fit_levels([(n * 2**k, m * 2**k) for k in range(frames - 1, -1, -1)], n, m, max_m)


def densify_structure_levels(n: int, m: int, max_m: int | None = None, frames: int = 4
                             ) -> tuple[tuple[int, int], ...]:
    """SDGF-"densify" (official ``"densify"``) levels for target ``n:m``: ``(n, 2^k m)`` for
    ``k = frames-1 .. 0`` (2:4 -> 2:32, 2:16, 2:8, 2:4): the density grows to ``n/m`` while ``n``
    stays fixed; levels whose group does not fit ``max_m`` are dropped as in
    :func:`geometric_structure_levels`."""
    _check_nm_args(n, m)
    return _fit_levels([(n, m * 2**k) for k in range(frames - 1, -1, -1)], n, m, max_m)


def level_schedule(method: str, n: int, m: int, max_m: int | None = None) -> tuple[tuple[int, int], ...] | None:
    """The ``(N, M)`` levels of a level-based structure decay (``structure_decay_geometric`` or
    ``structure_decay_densify``), ``None`` for the other methods."""
    if method == "structure_decay_geometric":
        return geometric_structure_levels(n, m, max_m)
    if method == "structure_decay_densify":
        return densify_structure_levels(n, m, max_m)
    return None


def frame_index(begin_step: int, end_step: int, frames: int) -> Callable:
    """``step -> `` index of the equal frame of ``[begin_step, end_step)`` it falls in (``-1`` before,
    ``frames - 1`` from ``end_step`` on), as int32."""
    _check_steps(begin_step=begin_step, end_step=end_step)
    if end_step <= begin_step:
        raise ValueError(f"end_step ({end_step}) must be > begin_step ({begin_step})")
    frames = check_int("frames", frames, minimum=1)
    frame = (end_step - begin_step) / frames

    def index(step):
        step = jnp.asarray(step, jnp.float32)
        idx = jnp.clip(jnp.floor((step - begin_step) / frame), 0, frames - 1).astype(jnp.int32)
        return jnp.where(step < begin_step, -1, idx)

    return index


def level_mask(params, levels, idx, *, axis: int = -2, predicate: Predicate | None = None):
    """The N:M mask of ``levels[idx]`` (a traced int; ``-1`` = dense) without recompiling: every
    level's mask is computed and the current one selected."""
    if not is_traced(idx) and not isinstance(idx, jax.Array):
        check_int("idx", idx, minimum=-1, maximum=len(levels) - 1)
    masks = [nm_mask(params, a, b, axis, predicate=predicate) for a, b in levels]

    def pick(*leaves):
        if leaves[0] is None:
            return None
        out = jnp.ones_like(leaves[0])
        for i, leaf in enumerate(leaves):
            out = jnp.where(idx == i, leaf, out)
        return out

    return jax.tree_util.tree_map(pick, *masks, is_leaf=is_none)


def stepwise_structure_decay(n: int, m: int, begin_step: int, end_step: int) -> Callable:
    """SDGF-Stepwise: ``N_t = m`` (dense) before ``begin_step``; ``[begin_step, end_step)`` is split
    into equal frames holding the levels of :func:`structure_decay_levels` in order (the last frame
    is the target); ``N_t = n`` from ``end_step`` on. Returns int32 ``N_t``."""
    _check_steps(begin_step=begin_step, end_step=end_step)
    if end_step <= begin_step:
        raise ValueError(f"end_step ({end_step}) must be > begin_step ({begin_step})")
    levels = jnp.asarray(structure_decay_levels(n, m), jnp.int32)
    frame = (end_step - begin_step) / len(levels)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        idx = jnp.clip(jnp.floor((step - begin_step) / frame), 0, len(levels) - 1).astype(jnp.int32)
        return jnp.where(step < begin_step, m, levels[idx])

    return schedule


def ste_sparse(params, mask, beta=0.0):
    """Effective weights ``W * (E + beta * (1 - E))`` at masked leaves (``None`` leaves unchanged)
    with a straight-through gradient: the backward pass is the identity w.r.t. ``W``."""
    check_number("beta", beta, minimum=0.0, maximum=1.0, allow_traced=True)
    check_like(params, mask, what="ste_sparse mask")

    def leaf(e, w):
        if e is None:
            return w
        w_eff = w * jnp.where(e, 1.0, beta).astype(w.dtype)
        return w + jax.lax.stop_gradient(w_eff - w)

    return jax.tree_util.tree_map(leaf, mask, params, is_leaf=is_none)


class SRSTEState(NamedTuple):
    """Number of updates applied so far."""

    count: jax.Array


def sr_ste(n: int, m: int, lambda_w: float = 2e-4, axis: int = -2, *, begin_step: int = 0,
           predicate: Predicate | None = None) -> optax.GradientTransformation:
    """SR-STE sparse-refined term (Zhou et al. 2021, Fig. 2b update rule): ``g <- g + lambda_W * (1 - E) * W``
    with ``E = nm_mask(W, n, m, axis)`` recomputed from the current params, from update
    ``begin_step`` on (``n`` and ``lambda_w`` may be traced, e.g. under ``vmap`` over recipes).
    Chain it before the optimizer: ``optax.chain(sr_ste(2, 4), optax.sgd(0.1))``.
    Needs ``params`` in ``update``."""
    _check_nm_args(n, m)
    _check_steps(begin_step=begin_step)
    if not isinstance(lambda_w, jax.core.Tracer) and lambda_w < 0:
        raise ValueError(f"lambda_w must be >= 0, got {lambda_w}")

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("sr_ste needs params: call tx.update(grads, state, params)")
        mask = nm_mask(params, n, m, axis, predicate=predicate)
        lam = jnp.where(state.count >= begin_step, lambda_w, 0.0)
        out = jax.tree_util.tree_map(
            lambda e, g, w: g if e is None else g + (lam * jnp.where(e, 0.0, w)).astype(g.dtype),
            mask, updates, params, is_leaf=is_none,
        )
        return out, SRSTEState(state.count + 1)

    return optax.GradientTransformation(lambda params: SRSTEState(jnp.zeros((), jnp.int32)), update)


class NMRecipe(NamedTuple):
    """A configured N:M training recipe.

    ``sparsify(params, step)`` -> effective params for the forward pass (straight-through grads);
    ``tx`` -> gradient transform to chain before the optimizer (SR-STE term or identity);
    ``mask_value(step)`` -> ``beta_t``; ``n_at(step)`` -> ``N_t``;
    ``final_mask(params)`` -> the target N:M mask pytree for the deployed model;
    ``mask_at(params, step)`` -> the mask the forward pass uses at ``step``.
    """

    sparsify: Callable
    tx: optax.GradientTransformation
    mask_value: Callable
    n_at: Callable
    final_mask: Callable
    mask_at: Callable | None = None


def nm_recipe(method: str, n: int, m: int, *, total_steps: int, dense_steps: int = 0, finetune_steps: int = 0,
              decay_rate: float | str = OFFICIAL_DECAY_COEF, lambda_w: float = 2e-4, axis: int = -2,
              predicate: Predicate | None = None, max_m: int | None = None) -> NMRecipe:
    """Build an :class:`NMRecipe` for ``method`` in :data:`METHODS` and target ``n:m``.

    The decay phase is ``[dense_steps, total_steps - finetune_steps)``. MDGF's ``decay_rate`` is
    the official per-step coefficient ``2e-4`` by default; ``"per_T"`` makes the mask value reach 0
    at the start of fine-tuning (linear: ``1 / T_decay``) or ``exp(-5)`` there (exponential:
    ``5 / T_decay``). ``max_m`` caps the group size of SDGF-Geometric's and SDGF-densify's levels.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_nm_args(n, m)
    _check_steps(total_steps=total_steps, dense_steps=dense_steps, finetune_steps=finetune_steps)
    decay_end = total_steps - finetune_steps
    if decay_end <= dense_steps:
        raise ValueError(f"no decay phase: dense_steps={dense_steps} + finetune_steps={finetune_steps} "
                         f">= total_steps={total_steps}")
    t_decay = decay_end - dense_steps

    def sparse_from(step):
        return jnp.asarray(step) >= dense_steps

    if isinstance(decay_rate, str):
        if decay_rate != "per_T":
            raise ValueError(f"decay_rate must be a positive number or 'per_T', got {decay_rate!r}")
        rates = {"mask_decay_linear": 1.0 / t_decay, "mask_decay_exponential": 5.0 / t_decay}
    else:
        rates = {"mask_decay_linear": decay_rate, "mask_decay_exponential": decay_rate}
    if method == "mask_decay_linear":
        decay = linear_mask_decay(rates[method], dense_steps)
    elif method == "mask_decay_exponential":
        decay = exponential_mask_decay(rates[method], dense_steps)
    else:
        decay = None

    def mask_value(step):
        dense = jnp.where(sparse_from(step), 0.0, 1.0)
        if decay is None:
            return dense
        return jnp.where(jnp.asarray(step) >= decay_end, 0.0, decay(step))

    levels = level_schedule(method, n, m, max_m)
    if method == "structure_decay_stepwise":
        n_at = stepwise_structure_decay(n, m, dense_steps, decay_end)
    elif levels is not None:
        level_of = frame_index(dense_steps, decay_end, len(levels))
        ns = jnp.asarray([a for a, _ in levels], jnp.int32)
        n_at = lambda step: jnp.where(level_of(step) < 0, m, ns[jnp.maximum(level_of(step), 0)])  # noqa: E731
    else:
        n_at = lambda step: jnp.where(sparse_from(step), n, m).astype(jnp.int32)  # noqa: E731

    def mask_at(params, step):
        if levels is not None:
            return level_mask(params, levels, level_of(step), axis=axis, predicate=predicate)
        return nm_mask(params, n_at(step), m, axis, predicate=predicate)

    def sparsify(params, step):
        return ste_sparse(params, mask_at(params, step), mask_value(step))

    if method == "srste":
        tx = sr_ste(n, m, lambda_w, axis, begin_step=dense_steps, predicate=predicate)
    else:
        tx = optax.identity()
    return NMRecipe(sparsify, tx, mask_value, n_at, lambda params: nm_mask(params, n, m, axis, predicate=predicate),
                    mask_at)

