"""A resumable minibatch training loop for classifiers."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from sparsejax.data.batching import batch_indices
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.steps import TrainState


_batch_indices = jax.jit(batch_indices, static_argnums=(2, 3))


def fit(
    train_step: Callable,
    state: TrainState,
    x,
    y,
    *,
    steps: int,
    batch_size: int,
    key: jax.Array,
    checkpointer: LoopCheckpointer | None = None,
    progress: Callable | None = None,
) -> tuple[TrainState, list[float]]:
    """Run ``steps`` minibatch steps of ``train_step(state, xb, yb) -> (state, loss)``.

    Batch ``t`` is ``batch_indices(key, t, len(x), batch_size)``, so a run restored from
    ``checkpointer`` continues exactly where an uninterrupted run would be. Returns the final
    state and the losses of the steps run in this call. ``progress`` wraps the step range
    (e.g. ``ctx.progress``).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x, y = jnp.asarray(x), jnp.asarray(y)
    n = x.shape[0]
    start = 0
    if checkpointer is not None:
        start, state = checkpointer.restore(state)
    losses = []
    steps_range = range(start, steps)
    for t in progress(steps_range, total=steps, initial=start) if progress else steps_range:
        idx = _batch_indices(key, t, n, batch_size)
        state, loss = train_step(state, x[idx], y[idx])
        losses.append(loss)
        if checkpointer is not None:
            checkpointer.maybe_save(t + 1, state)
    return state, [float(v) for v in jax.device_get(losses)]
