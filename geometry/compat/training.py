"""Class-incremental training with compatible representations (P42; official code miccunifi/iamcl2r
``main.py``, ``train.py``, ``dataset/dataset_utils.py``).

* :class:`CompatNet`: an MLP feature extractor (``sparsejax.nn.MLP``, its head giving the features) and
  either the frozen d-simplex classifier over ``num_classes`` preallocated classes (feature size
  ``num_classes - 1``) or a learnable bias-free linear classifier (the "ER" baseline).
* :func:`make_compat_step`: one optimiser step on ``CE`` (logits of classes not yet seen are masked out,
  which for the learnable classifier equals the official ``expand_classifier`` growth) or on
  ``lambda * CE + (1 - lambda) * L_HOC`` against the features of a frozen old model.
* :func:`train_task`: epochs of balanced batches as the official ``BalancedBatchSampler``: once a
  rehearsal memory exists every batch holds ``batch_size // 2`` memory samples and ``batch_size // 2``
  samples of the new classes (each drawn with replacement when that pool is smaller than the half
  batch), ``len(new + memory) // batch_size`` batches per epoch; without memory, shuffled batches
  (drop last).
* :func:`rehearsal_memory`: ``per_class`` random samples of each class (official ``RehearsalMemory``
  with ``herding_method="random"``).

Deviations: an MLP on flattened 8x8 digits instead of ResNet-18 on CIFAR-100; the optimiser is the
caller's (the experiment uses Adam instead of the official SGD + cosine schedule, for the small budget).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from geometry.compat.hoc import LAMBDA, MU, hoc_objective
from geometry.compat.simplex import dsimplex, simplex_logits
from sparsejax.core.validation import check_int, check_number
from sparsejax.nn import MLP
from sparsejax.train.steps import cross_entropy_loss


class CompatNet(nn.Module):
    """Features ``f = MLP(x)`` and logits: fixed d-simplex (``fixed=True``, ``feat_dim = num_classes - 1``)
    or a learnable linear classifier ``classifier`` without bias. Returns ``(features, logits)``."""

    num_classes: int
    feat_dim: int
    hidden: Sequence[int] = (128, 128)
    width: float = 1.0
    fixed: bool = True

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=2)
        check_int("feat_dim", self.feat_dim, minimum=1)
        if self.fixed and self.feat_dim != self.num_classes - 1:
            raise ValueError(f"a d-simplex classifier over {self.num_classes} classes needs feat_dim = "
                             f"{self.num_classes - 1}, got {self.feat_dim}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f = MLP(num_classes=self.feat_dim, hidden=tuple(self.hidden), width=self.width, name="backbone")(x)
        if self.fixed:
            return f, simplex_logits(f, dsimplex(self.num_classes))
        return f, nn.Dense(self.num_classes, use_bias=False, name="classifier")(f)


def make_compat_step(model: nn.Module, tx: optax.GradientTransformation, *, hoc: bool,
                     lam: float = LAMBDA, mu: float = MU) -> Callable:
    """Jitted ``(params, opt_state, x, y, old_feats, class_mask) -> (params, opt_state, loss)``.

    ``y`` are the classifier's targets (vertex labels for the simplex); ``class_mask`` (num_classes,) bool
    marks the classes seen so far; ``old_feats`` are the frozen old model's features of ``x`` (ignored,
    may be zeros, when ``hoc`` is False).
    """
    check_number("lam", lam, minimum=0.0, maximum=1.0)
    check_number("mu", mu, minimum=0.0, min_inclusive=False)

    def loss_fn(params, x, y, old_feats, class_mask):
        feats, logits = model.apply(params, x)
        ce = cross_entropy_loss(jnp.where(class_mask, logits, -1e9), y)
        return hoc_objective(ce, feats, old_feats, y, lam, mu) if hoc else ce

    @jax.jit
    def step(params, opt_state, x, y, old_feats, class_mask):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, old_feats, class_mask)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def rehearsal_memory(x: np.ndarray, y: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random samples of every class in ``y`` (all of a class when it has fewer)."""
    check_int("per_class", per_class, minimum=1)
    check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])
    return x[idx], y[idx]


def train_task(step: Callable, params, opt_state, x_new: np.ndarray, y_new: np.ndarray, *, epochs: int,
               batch_size: int, class_mask, seed: int, memory: Optional[tuple] = None,
               old_features: Optional[Callable] = None):
    """Run ``epochs`` epochs of (balanced) batches through ``step``; returns ``(params, opt_state, losses)``.

    ``y_new`` / the memory labels are the classifier targets. ``old_features(x)`` gives the frozen old
    model's features for the HOC term (``None``: zeros are passed, for CE-only steps).
    """
    check_int("epochs", epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=2)
    rng = np.random.default_rng(seed)
    class_mask = jnp.asarray(class_mask)
    has_mem = memory is not None and len(memory[1]) > 0
    total = len(y_new) + (len(memory[1]) if has_mem else 0)
    n_batches = max(1, total // batch_size)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(y_new))
        for b in range(n_batches):
            if has_mem:
                half = batch_size // 2
                i_new = rng.choice(len(y_new), half, replace=len(y_new) <= half)
                i_mem = rng.choice(len(memory[1]), half, replace=len(memory[1]) <= half)
                xb = np.concatenate([memory[0][i_mem], x_new[i_new]])
                yb = np.concatenate([memory[1][i_mem], y_new[i_new]])
            else:
                sel = order[b * batch_size:(b + 1) * batch_size] if len(y_new) >= batch_size else order
                xb, yb = x_new[sel], y_new[sel]
            old = old_features(xb) if old_features is not None else None
            feats_shape = old if old is not None else jnp.zeros((len(yb), 1), jnp.float32)
            params, opt_state, loss = step(params, opt_state, jnp.asarray(xb), jnp.asarray(yb),
                                           feats_shape, class_mask)
            losses.append(float(loss))
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"train_task: non-finite loss (first at batch {int(np.argmin(np.isfinite(losses)))})")
    return params, opt_state, losses
