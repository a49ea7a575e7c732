"""A shared, resumable training loop and timing helpers for the PΘNITA experiments.

Every model (PΘNITA, EGNN, e3nn baseline) is trained by :func:`fit` with the same optimiser
(Adam with linear warm-up and cosine decay, as in the official code) and the same batches: batch
``step`` is a pure function of ``(key, step)``, so a run resumed from its orbax checkpoint ends
exactly where an uninterrupted one would.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.data import batch_indices
from sparsejax.train import LoopCheckpointer, TrainState


def warmup_cosine_adam(lr: float, steps: int, warmup: int = 0, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """AdamW with linear warm-up over ``warmup`` steps then cosine decay to 0 at ``steps``."""
    if lr <= 0 or steps < 1 or warmup < 0:
        raise ValueError(f"need lr > 0, steps >= 1, warmup >= 0; got {lr}, {steps}, {warmup}")
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, min(warmup, steps - 1)), steps)
    return optax.adamw(schedule, weight_decay=weight_decay)


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
    progress: Optional[Callable] = None,
    checkpoint_dir=None,
    checkpoint_every: int = 500,
    desc: str = "train",
):
    """Minimise ``loss_fn(params, batch, key) -> scalar`` over minibatches of the arrays in ``data``.

    ``data`` maps names to arrays with a shared leading axis; batch ``step`` takes the rows
    ``batch_indices(key, step, n, batch_size)`` and the step key ``fold_in(key, step)`` (e.g. for a
    random rotation). Returns ``(params, losses)`` (loss per step, ``np.ndarray``).
    """
    n = len(next(iter(data.values())))
    if any(len(v) != n for v in data.values()):
        raise ValueError(f"all data arrays need the same length, got {[len(v) for v in data.values()]}")
    tx = warmup_cosine_adam(lr, steps, warmup, weight_decay)
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
    for step in bar:
        carry = train_step(carry)
        ckpt.maybe_save(step + 1, carry)
    ckpt.close()
    return carry[0].params, np.asarray(carry[1])


def random_rotations(key: jax.Array, count: int, dim: int = 3) -> jax.Array:
    """``count`` Haar-random rotation matrices ``(count, dim, dim)`` (for data augmentation)."""
    from geometry.ponita.grids import random_rotation

    return jax.vmap(lambda k: random_rotation(k, dim))(jax.random.split(key, count))
