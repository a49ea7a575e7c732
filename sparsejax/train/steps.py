"""Pure, jitted train and eval steps for classifiers, with optional data parallelism.

Data parallelism uses ``jax.sharding``: :func:`data_mesh` builds a 1-D mesh over all local
devices, :func:`shard_batch` splits the batch axis over it and :func:`replicate_on_mesh`
replicates params/optimizer state; the same jitted step then runs SPMD and XLA inserts the
gradient all-reduce.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sparsejax.core.validation import (
    check_array, check_index_range, check_int, check_same_length, is_traced, check_callable, check_type,
)


class TrainState(NamedTuple):
    """Parameters, optimizer state and the number of completed steps."""

    params: Any
    opt_state: Any
    step: jax.Array

    @classmethod
    def create(cls, params, tx: optax.GradientTransformation) -> "TrainState":
        """Fresh state: ``tx.init(params)`` and step 0."""
        return cls(params, tx.init(params), jnp.zeros((), jnp.int32))


def _check_logits_labels(logits, labels) -> None:
    """Static checks (valid under jit): integer labels of shape ``logits.shape[:-1]``; concrete
    labels are also range-checked against the number of classes ``logits.shape[-1]``."""
    check_array("logits", logits, dtype_kind="f")
    check_array("labels", labels, dtype_kind="iu")
    if logits.ndim < 1 or tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"labels must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}, "
                         f"got labels {tuple(labels.shape)} for logits {tuple(logits.shape)}")
    if not is_traced(labels):
        check_index_range("labels", labels, logits.shape[-1])


def cross_entropy_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels.

    Shapes and dtypes are checked at trace time; the label range only for concrete labels (under
    jit an out-of-range label gives a NaN loss, which :func:`~sparsejax.train.fit` reports).
    """
    _check_logits_labels(logits, labels)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of argmax predictions equal to ``labels`` (same checks as :func:`cross_entropy_loss`)."""
    _check_logits_labels(logits, labels)
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def make_train_step(
    apply_fn: Callable, tx: optax.GradientTransformation, loss_fn: Callable = cross_entropy_loss
) -> Callable:
    """Return jitted ``step(state, x, y) -> (state, loss)`` with ``loss = loss_fn(apply_fn(params, x), y)``.

    Precondition (not checked inside the jitted step, which would need a host sync per step): labels
    lie in ``[0, num_classes)``. An out-of-range label gives a NaN loss, which :func:`~sparsejax.train.fit`
    reports as a ``DivergenceError`` naming the step; ``fit(..., num_classes=C)`` checks the labels up
    front. Shapes and dtypes are checked at trace time."""
    check_callable("apply_fn", apply_fn)
    check_type("tx", tx, optax.GradientTransformation, "optax GradientTransformation")
    check_callable("loss_fn", loss_fn)

    def step(state: TrainState, x, y):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(apply_fn(p, x), y))(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), loss

    return jax.jit(step)


class BNTrainState(NamedTuple):
    """:class:`TrainState` plus the BatchNorm running statistics (flax ``batch_stats`` collection)."""

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array

    @classmethod
    def create(cls, variables, tx: optax.GradientTransformation) -> "BNTrainState":
        """Fresh state from ``model.init(...)`` variables (``params`` and ``batch_stats``) and step 0."""
        if "params" not in variables or "batch_stats" not in variables:
            raise ValueError(f"variables need 'params' and 'batch_stats' collections, got {sorted(variables)}")
        params = variables["params"]
        return cls(params, variables["batch_stats"], tx.init(params), jnp.zeros((), jnp.int32))

    @property
    def variables(self) -> dict:
        """``{"params", "batch_stats"}`` for ``model.apply`` (and :func:`evaluate` with a BN eval step)."""
        return {"params": self.params, "batch_stats": self.batch_stats}


def make_bn_train_step(model, tx: optax.GradientTransformation, loss_fn: Callable = cross_entropy_loss) -> Callable:
    """Return jitted ``step(state: BNTrainState, x, y) -> (state, loss)`` for a flax model with BatchNorm,
    called as ``model.apply(variables, x, train=True, mutable=["batch_stats"])``: the loss uses batch
    statistics and the running statistics are updated. ``tx.update`` receives the params, so gradient
    transforms that read them (L1 subgradients, proximal steps) compose as in :func:`make_train_step`."""

    def step(state: BNTrainState, x, y):
        def loss_of(params):
            logits, updated = model.apply({"params": params, "batch_stats": state.batch_stats}, x, train=True,
                                          mutable=["batch_stats"])
            return loss_fn(logits, y), updated["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return BNTrainState(params, stats, opt_state, state.step + 1), loss

    return jax.jit(step)


def make_bn_eval_step(model, loss_fn: Callable = cross_entropy_loss) -> Callable:
    """:func:`make_eval_step` for a BatchNorm model in inference mode: ``eval(variables, x, y)`` with
    ``variables = state.variables`` (running statistics, ``train=False``)."""
    return make_eval_step(lambda variables, x: model.apply(variables, x, train=False), loss_fn)


def make_eval_step(apply_fn: Callable, loss_fn: Callable = cross_entropy_loss) -> Callable:
    """Return jitted ``eval(params, x, y) -> (summed loss, number correct)`` for one batch."""
    check_callable("apply_fn", apply_fn)
    check_callable("loss_fn", loss_fn)

    def step(params, x, y):
        logits = apply_fn(params, x)
        return loss_fn(logits, y) * x.shape[0], jnp.sum(jnp.argmax(logits, -1) == y)

    return jax.jit(step)


def evaluate(eval_step: Callable, params, x: np.ndarray, y: np.ndarray, batch_size: int = 512, *,
             num_classes: int | None = None) -> dict:
    """Mean loss and accuracy of ``params`` over all of ``(x, y)``.

    ``x`` and ``y`` need a common, non-zero length; ``batch_size`` >= 1; with ``num_classes`` the
    labels are range-checked.
    """
    check_array("x", x)
    check_array("y", y)
    n = check_same_length(x=x, y=y)
    if n == 0:
        raise ValueError("the evaluation set is empty (x has 0 examples)")
    check_int("batch_size", batch_size, minimum=1)
    if num_classes is not None:
        check_index_range("y (labels)", y, check_int("num_classes", num_classes, minimum=1))
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        l_sum, c = eval_step(params, x[i : i + batch_size], y[i : i + batch_size])
        loss += float(l_sum)
        correct += int(c)
    return {"loss": loss / len(x), "accuracy": correct / len(x)}


def data_mesh(axis: str = "data") -> Mesh:
    """A 1-D mesh over all local devices."""
    check_type("axis", axis, str)
    if not axis:
        raise ValueError("axis must be a non-empty mesh axis name, got ''")
    return Mesh(np.array(jax.local_devices()), (axis,))


def shard_batch(tree, mesh: Mesh, axis: str = "data"):
    """Place arrays with their leading (batch) axis split over ``mesh``'s ``axis``."""
    check_type("mesh", mesh, Mesh, "jax.sharding.Mesh")
    n = mesh.shape[axis]
    for leaf in jax.tree_util.tree_leaves(tree):
        check_array("batch leaf", leaf)
        if leaf.ndim == 0:
            raise ValueError(f"shard_batch needs arrays with a leading batch axis, got a scalar of dtype {leaf.dtype}")
        if leaf.shape[0] % n:
            raise ValueError(f"batch size {leaf.shape[0]} is not divisible by the {n} devices")
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(axis)))


def replicate_on_mesh(tree, mesh: Mesh):
    """Replicate every array of ``tree`` on all devices of ``mesh``."""
    check_type("mesh", mesh, Mesh, "jax.sharding.Mesh")
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
