"""A resumable minibatch training loop for classifiers (and any ``step(state, xb, yb)``)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_finite_array, check_index_range, check_int, check_same_length
from sparsejax.data.batching import batch_indices
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.divergence import DivergenceError, check_finite_loss, nonfinite_allowed
from sparsejax.train.steps import TrainState
from sparsejax.train.tracking import log_scalars

_batch_indices = jax.jit(batch_indices, static_argnums=(2, 3))


def _state_is_finite(state) -> bool:
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(state)
              if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return all(bool(v) for v in jax.device_get([jnp.isfinite(leaf).all() for leaf in leaves]))


def check_training_data(x, y, batch_size: int, *, num_classes: int | None = None) -> int:
    """Check a training set for :func:`fit`; return its size.

    ``x`` and ``y`` need a common leading length of at least 1, finite ``x``, and ``batch_size``
    in ``[1, len(x)]``; with ``num_classes``, integer labels in ``[0, num_classes)``.
    """
    check_array("x", x)
    check_array("y", y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"x and y need a leading (example) axis, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    n = check_same_length(x=x, y=y)
    if n == 0:
        raise ValueError("the training set is empty (x has 0 examples)")
    check_int("batch_size", batch_size, minimum=1, maximum=n)
    check_finite_array("x", x)
    if num_classes is not None:
        check_int("num_classes", num_classes, minimum=1)
        check_index_range("y (labels)", y, num_classes)
    return n


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
    num_classes: int | None = None,
    log_every: int = 50,
    log_prefix: str | None = None,
    scalars_fn: Callable[[Any], Mapping[str, Any]] | None = None,
) -> tuple[TrainState, list[float]]:
    """Run ``steps`` minibatch steps of ``train_step(state, xb, yb) -> (state, loss)``.

    Batch ``t`` is ``batch_indices(key, t, len(x), batch_size)``, so a run restored from
    ``checkpointer`` continues exactly where an uninterrupted run would be. Returns the final
    state and the losses of the steps run in this call. ``progress`` wraps the step range
    (e.g. ``ctx.progress``).

    Losses are fetched from the device every ``log_every`` steps and before each checkpoint
    (no sync per step), logged with :func:`~sparsejax.train.tracking.log_scalars` as
    ``<log_prefix>/loss`` (default prefix: the checkpoint directory's name), together with
    ``scalars_fn(state)`` (e.g. learning rate, sparsity) when given, and checked with
    :func:`~sparsejax.train.divergence.check_finite_loss`: a NaN/inf loss raises
    :class:`~sparsejax.train.divergence.DivergenceError` naming the step and the last checkpoint,
    and a non-finite state is never checkpointed. ``num_classes`` turns on the label range check.
    """
    steps = check_int("steps", steps, minimum=0)
    log_every = check_int("log_every", log_every, minimum=1)
    x, y = jnp.asarray(x), jnp.asarray(y)
    n = check_training_data(x, y, batch_size, num_classes=num_classes)
    batch_size = int(batch_size)
    prefix = log_prefix if log_prefix is not None else (checkpointer.tag if checkpointer is not None else "")
    name = f"{prefix}/loss" if prefix else "loss"
    start = 0
    if checkpointer is not None:
        start, state = checkpointer.restore(state)
    last_ckpt = start if start > 0 else None
    pending: list[tuple[int, Any]] = []
    losses: list[float] = []

    def drain():
        if not pending:
            return
        values = jax.device_get([loss for _, loss in pending])
        for (t, _), value in zip(pending, values):
            value = float(np.asarray(value))
            log_scalars(t, {"loss": value}, prefix=prefix)
            if t == 0 and not np.isfinite(value) and not nonfinite_allowed():
                raise DivergenceError(f"{name} is {value} at step 0, before any update: check the inputs "
                                      f"(labels outside [0, num_classes), NaN features) and the loss")
            check_finite_loss(t, value, name=name, last_checkpoint=None if last_ckpt is None else f"step {last_ckpt}")
            losses.append(value)
        if scalars_fn is not None:
            log_scalars(pending[-1][0], scalars_fn(state), prefix=prefix)
        pending.clear()

    steps_range = range(start, steps)
    for t in progress(steps_range, total=steps, initial=start) if progress else steps_range:
        idx = _batch_indices(key, t, n, batch_size)
        state, loss = train_step(state, x[idx], y[idx])
        pending.append((t, loss))
        if checkpointer is not None and checkpointer.due(t + 1):
            drain()
            if not nonfinite_allowed() and not _state_is_finite(state):
                raise DivergenceError(f"training state of {prefix or 'fit'} holds NaN/inf after step {t} "
                                      f"(last finite checkpoint: {'none' if last_ckpt is None else f'step {last_ckpt}'})")
            if checkpointer.maybe_save(t + 1, state):
                last_ckpt = t + 1
        elif len(pending) >= log_every:
            drain()
    drain()
    return state, losses
