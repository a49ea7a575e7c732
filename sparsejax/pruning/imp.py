"""Iterative magnitude pruning (IMP) with weight or learning-rate rewinding.

The prune–retrain harness shared by Sparse Model Soups (P5), essential sparsity (P41, OMP vs IMP)
and the lottery-ticket baselines. Following the official SMS code (``ZIB-IOL/SMS``,
``strategies/strategies.py``, ``runners/baseRunner.py``):

* each of the ``P`` phases removes the fraction ``q = 1 - (1 - s)^(1/P)`` of the weights that are
  still alive, so phase ``p`` ends at sparsity ``1 - (1 - q)^p`` and phase ``P`` at ``s``
  (:func:`per_phase_rate`, :func:`phase_sparsity`);
* pruning is by magnitude, over all sparsifiable leaves at once (``scope="global"``, the SMS
  default ``pruning_selector='global'``) or leaf by leaf (``"layer"``); pruned weights never
  come back (masks are nested);
* after pruning the surviving weights are retrained. *Weight rewinding* (Frankle et al.) resets
  them to the weights of step ``k`` of the dense run; *learning-rate rewinding* keeps them and
  replays the schedule; :func:`retrain_schedule` gives the retrain schedules ``FT`` (constant at
  the last LR of the original run), ``LRW`` (the last ``steps`` steps of the original schedule)
  and ``LLR`` (10 % linear warm-up from 0 to the largest original LR, then linear to 0; the SMS
  default).

Training is not done here: :func:`imp` calls a user ``retrain(params, mask, phase)`` that
typically builds a ``sparsejax.masked`` optimizer and runs :func:`sparsejax.train.fit`
(:func:`make_retrain` is that recipe for classifiers).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.masks import apply_mask, magnitude_mask
from sparsejax.core.tree import Predicate, check_like, is_none
from sparsejax.core.validation import check_choice, check_int, check_number, check_callable, check_same_length

SCOPES = ("global", "layer")
RETRAIN_SCHEDULES = ("FT", "LRW", "LLR")


def per_phase_rate(target_sparsity: float, phases: int) -> float:
    """``q = 1 - (1 - s)^(1/P)``: the fraction of the remaining weights each of ``phases`` removes."""
    s = check_number("target_sparsity", target_sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    phases = check_int("phases", phases, minimum=1)
    return 1.0 - (1.0 - s) ** (1.0 / phases)


def phase_sparsity(target_sparsity: float, phases: int, phase: int) -> float:
    """Sparsity after ``phase`` (1-based) of ``phases`` at the per-phase rate: ``1 - (1 - q)^phase``."""
    q = per_phase_rate(target_sparsity, phases)
    phase = check_int("phase", phase, minimum=0, maximum=phases)
    return 1.0 - (1.0 - q) ** phase


def prune_magnitude(params, mask, sparsity: float, *, scope: str = "global", predicate: Predicate | None = None):
    """Magnitude mask at total ``sparsity`` that keeps only weights alive in ``mask``.

    ``mask`` is the current mask (``None`` = nothing pruned yet). Surviving weights are ranked by
    ``|w|`` (exact zeros among them are ranked above pruned entries), so the result is nested in
    ``mask`` whenever ``sparsity`` is at least the current one, and keeps exactly
    ``round((1 - sparsity) * N)`` weights globally (``scope="global"``) or per leaf (``"layer"``).
    """
    check_choice("scope", scope, SCOPES)
    check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    if mask is not None:
        check_like(params, mask)
        scores = jax.tree_util.tree_map(
            lambda m, w: jnp.abs(w) if m is None
            else jnp.where(m, jnp.maximum(jnp.abs(w), jnp.finfo(w.dtype).tiny), 0.0).astype(w.dtype),
            mask, params, is_leaf=is_none,
        )
    else:
        scores = params
    return magnitude_mask(scores, float(sparsity), scope, predicate=predicate)


def retrain_schedule(kind: str, steps: int, *, max_lr: float, min_lr: float | None = None,
                     original: Callable | None = None, original_steps: int | None = None) -> Callable:
    """Learning-rate schedule (an optax schedule) for one retrain phase of ``steps`` steps.

    ``"FT"``: constant ``min_lr`` (the last LR of the original training, Han et al.);
    ``"LRW"``: ``original(original_steps - steps + t)``, the tail of the original schedule
    (Renda et al.'s learning-rate rewinding); ``"LLR"``: linear warm-up from 0 to ``max_lr`` over
    the first ``int(0.1 * steps)`` steps, then linear decay to 0 (SMS ``define_retrain_schedule``).
    """
    check_choice("kind", kind, RETRAIN_SCHEDULES)
    steps = check_int("steps", steps, minimum=1)
    max_lr = check_number("max_lr", max_lr, minimum=0.0)
    if kind == "FT":
        if min_lr is None:
            raise ValueError("retrain schedule 'FT' needs min_lr (the last learning rate of the original run)")
        return optax.constant_schedule(check_number("min_lr", min_lr, minimum=0.0))
    if kind == "LRW":
        if original is None or original_steps is None:
            raise ValueError("retrain schedule 'LRW' needs original (the original schedule) and original_steps")
        original_steps = check_int("original_steps", original_steps, minimum=steps)
        offset = original_steps - steps
        return lambda t: original(offset + t)
    warmup = int(0.1 * steps)
    decay = optax.linear_schedule(max_lr, 0.0, steps - warmup)
    if warmup == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, max_lr, warmup), decay], [warmup])


class IMPResult(NamedTuple):
    """Per-phase outputs of :func:`imp`: ``params[p]`` and ``masks[p]`` after phase ``p + 1``
    (retrained, masked), the target ``sparsities[p]`` and the ``start_params[p]`` retraining began from."""

    params: list
    masks: list
    sparsities: list
    start_params: list


def imp(params, retrain: Callable[[Any, Any, int], Any], *, target_sparsity: float, phases: int,
        scope: str = "global", rewind_params=None, predicate: Predicate | None = None) -> IMPResult:
    """Iterative magnitude pruning: ``phases`` rounds of prune (rate :func:`per_phase_rate`) → retrain.

    ``params`` is the trained dense model. Each phase prunes the current model by magnitude to
    :func:`phase_sparsity`, then calls ``retrain(start, mask, phase) -> params`` with
    ``start = apply_mask(rewind_params or current, mask)``: weight rewinding when
    ``rewind_params`` (the weights of step ``k`` of dense training, or the initialisation for the
    original lottery ticket) is given, otherwise the pruned current weights (fine-tuning /
    learning-rate rewinding, chosen by the schedule ``retrain`` uses). Returned params are masked.
    """
    phases = check_int("phases", phases, minimum=1)
    check_number("target_sparsity", target_sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    if rewind_params is not None and jax.tree_util.tree_structure(rewind_params) != jax.tree_util.tree_structure(params):
        raise ValueError("rewind_params must have the structure of params")
    current, mask = params, None
    out = IMPResult([], [], [], [])
    for phase in range(1, phases + 1):
        s = phase_sparsity(target_sparsity, phases, phase)
        mask = prune_magnitude(current, mask, s, scope=scope, predicate=predicate)
        start = apply_mask(current if rewind_params is None else rewind_params, mask)
        current = apply_mask(retrain(start, mask, phase), mask)
        out.params.append(current)
        out.masks.append(mask)
        out.sparsities.append(s)
        out.start_params.append(start)
    return out


def make_retrain(apply_fn: Callable, x, y, *, steps: int, batch_size: int, key: jax.Array,
                 optimizer: Callable[[Callable], optax.GradientTransformation], schedule: Callable,
                 loss_fn: Callable | None = None, progress: Callable | None = None) -> Callable:
    """``retrain(params, mask, phase)`` for :func:`imp`: ``steps`` of ``fit`` with
    ``sparsejax.masked(optimizer(schedule), mask)`` and a fresh optimizer state each phase.

    The jitted step is built once; the mask lives in the optimizer state, so phases never
    recompile. The data order of phase ``p`` is ``fold_in(key, p)``.
    """
    check_callable("apply_fn", apply_fn)
    check_same_length(x=x, y=y)
    check_int("batch_size", batch_size, minimum=1, maximum=int(np.shape(x)[0]))
    from sparsejax.core.transforms import masked
    from sparsejax.train import TrainState, cross_entropy_loss, fit, make_train_step

    steps = check_int("steps", steps, minimum=0)
    cache: dict = {}

    def retrain(params, mask, phase):
        if "step" not in cache:
            cache["tx"] = masked(optimizer(schedule), mask)
            cache["step"] = make_train_step(apply_fn, cache["tx"], loss_fn or cross_entropy_loss)
        state = TrainState.create(params, cache["tx"])
        state = state._replace(opt_state=state.opt_state._replace(mask=mask))
        state, _ = fit(cache["step"], state, x, y, steps=steps, batch_size=batch_size,
                       key=jax.random.fold_in(key, phase), progress=progress)
        return state.params

    return retrain


def mask_iou(mask_a, mask_b) -> float:
    """Intersection over union of the kept entries of two masks (``None`` leaves ignored)."""
    def_a = jax.tree_util.tree_structure(mask_a, is_leaf=is_none)
    if def_a != jax.tree_util.tree_structure(mask_b, is_leaf=is_none):
        raise ValueError(f"mask_a and mask_b have different structures: {def_a} vs "
                         f"{jax.tree_util.tree_structure(mask_b, is_leaf=is_none)}")
    inter = union = 0
    for a, b in zip(jax.tree_util.tree_leaves(mask_a, is_leaf=is_none), jax.tree_util.tree_leaves(mask_b, is_leaf=is_none)):
        if a is None or b is None:
            continue
        a, b = np.asarray(a, bool), np.asarray(b, bool)
        if a.shape != b.shape:
            raise ValueError(f"mask leaves have different shapes {a.shape} and {b.shape}")
        inter += int(np.count_nonzero(a & b))
        union += int(np.count_nonzero(a | b))
    return inter / union if union else 1.0


__all__ = ["per_phase_rate", "phase_sparsity", "prune_magnitude", "retrain_schedule", "imp", "IMPResult",
           "make_retrain", "mask_iou"]
