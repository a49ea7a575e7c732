"""A shared, resumable training loop and timing helpers for the PΘNITA experiments.

Every model (PΘNITA, EGNN, e3nn baseline) is trained by :func:`fit` with the same optimiser
(Adam with linear warm-up and cosine decay, and gradients clipped to global norm 0.5, as the
official trainers do with ``gradient_clip_val=0.5``; the official code uses Adam with L2 decay
that skips biases and norms, here AdamW with a negligible decay on every parameter) and the same
batches: batch
``step`` is a pure function of ``(key, step)``, so a run resumed from its orbax checkpoint ends
exactly where an uninterrupted one would.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.validation import check_int, check_number, check_same_length
from sparsejax.data import batch_indices
from sparsejax.train import LoopCheckpointer, TrainState
from sparsejax.train.divergence import check_finite_loss
from sparsejax.train.tracking import log_scalars

LOG_EVERY = 50


def warmup_cosine_adam(lr: float, steps: int, warmup: int = 0, weight_decay: float = 0.0,
                       grad_clip: Optional[float] = 0.5) -> optax.GradientTransformation:
    """AdamW with linear warm-up over ``warmup`` steps then cosine decay to 0 at ``steps``,
    after clipping the gradient to global norm ``grad_clip`` (``None``: no clipping)."""
    lr = check_number("lr", lr, minimum=0.0, min_inclusive=False)
    steps = check_int("steps", steps, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, min(warmup, steps - 1)), steps)
    adam = optax.adamw(schedule, weight_decay=weight_decay)
    if grad_clip is None:
        return adam
    grad_clip = check_number("grad_clip", grad_clip, minimum=0.0, min_inclusive=False)
    return optax.chain(optax.clip_by_global_norm(grad_clip), adam)


def fit(
    loss_fn: Callable,
    params,
    data: dict,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    key: jax.Array,
    warmup: int = 0,
    weight_decay: float = 0.0,
    grad_clip: Optional[float] = 0.5,
    progress: Optional[Callable] = None,
    checkpoint_dir=None,
    checkpoint_every: int = 500,
    desc: str = "train",
):
    """Minimise ``loss_fn(params, batch, key) -> scalar`` over minibatches of the arrays in ``data``.

    ``data`` maps names to arrays with a shared leading axis; batch ``step`` takes the rows
    ``batch_indices(key, step, n, batch_size)`` and the step key ``fold_in(key, step)`` (e.g. for a
    random rotation). Returns ``(params, losses)`` (loss per step, ``np.ndarray``). The losses are
    fetched every ``LOG_EVERY`` steps, logged (:func:`sparsejax.train.tracking.log_scalars`, prefix
    ``desc``) and checked: a NaN/inf loss raises :class:`sparsejax.train.divergence.DivergenceError`.
    """
    if not data:
        raise ValueError("data must hold at least one array")
    n = check_same_length(**data)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    tx = warmup_cosine_adam(lr, steps, warmup, weight_decay, grad_clip)
    arrays = {k: jnp.asarray(v) for k, v in data.items()}
    batch_key, aug_key = jax.random.split(key)

    @jax.jit
    def train_step(carry):
        state, losses = carry
        idx = batch_indices(batch_key, state.step, n, batch_size)
        batch = {k: v[idx] for k, v in arrays.items()}
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, jax.random.fold_in(aug_key, state.step))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        state = TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1)
        return state, losses.at[state.step - 1].set(loss)

    carry = (TrainState.create(params, tx), jnp.zeros((steps,), jnp.float32))
    ckpt = LoopCheckpointer(checkpoint_dir, checkpoint_every, enabled=checkpoint_dir is not None)
    start, carry = ckpt.restore(carry)
    bar = range(start, steps) if progress is None else progress(range(start, steps), desc=desc, total=steps - start)
    checked, last_saved = start, start or None
    for step in bar:
        carry = train_step(carry)
        if ckpt.maybe_save(step + 1, carry):
            last_saved = step + 1
        if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
            chunk = np.asarray(carry[1][checked : step + 1])
            for i, value in enumerate(chunk):
                check_finite_loss(checked + i + 1, value, name=f"{desc} loss", last_checkpoint=last_saved)
            log_scalars(step + 1, {"loss": float(chunk.mean())}, prefix=desc)
            checked = step + 1
    ckpt.close()
    return carry[0].params, np.asarray(carry[1])


def random_rotations(key: jax.Array, count: int, dim: int = 3) -> jax.Array:
    """``count`` Haar-random rotation matrices ``(count, dim, dim)`` (for data augmentation)."""
    from geometry.ponita.grids import random_rotation

    return jax.vmap(lambda k: random_rotation(k, dim))(jax.random.split(key, count))
