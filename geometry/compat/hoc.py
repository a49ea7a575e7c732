"""The d-Simplex-HOC compatibility loss of P42 (official code miccunifi/iamcl2r, ``methods/hoc.py``,
``train.py``; paper eqs. 3-4).

With L2-normalised features of the new model ``f_i`` and of the frozen old model ``g_i`` on the same
batch (labels ``y``):

``L_HOC = mean_i [ -mu <g_i, f_i> + logsumexp_j( mu <g_i, f_j> * 1[y_i != y_j] ) ]``

an InfoNCE between old and new features of the same image, whose negatives are the other classes.
As in the official code, same-class pairs (the positive included) enter the log-sum-exp as 0, they are
not removed. The training loss is ``L = lambda * CE + (1 - lambda) * L_HOC`` with ``lambda = 0.1`` and
``mu = 10`` (``hoc.py`` ``__configs``). Features are normalised here (the official code normalises
before calling the loss); passing normalised features changes nothing.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_array, check_finite_array, check_number

MU = 10.0
LAMBDA = 0.1


def _unit(f: jax.Array) -> jax.Array:
    return f / jnp.maximum(jnp.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def hoc_loss(feat_new: jax.Array, feat_old: jax.Array, labels: jax.Array, mu: float = MU) -> jax.Array:
    """The HOC loss (eq. 4) between new and old features ``(B, d)`` of the same batch."""
    check_array("feat_new", feat_new, ndim=2, dtype_kind="f")
    check_array("feat_old", feat_old, ndim=2, dtype_kind="f")
    check_array("labels", labels, ndim=1, dtype_kind="iu")
    if feat_new.shape != feat_old.shape or labels.shape[0] != feat_new.shape[0]:
        raise ValueError(f"feat_new {tuple(feat_new.shape)}, feat_old {tuple(feat_old.shape)} and labels "
                         f"{tuple(labels.shape)} must describe the same batch")
    check_number("mu", mu, minimum=0.0, min_inclusive=False)
    check_finite_array("feat_new", feat_new)
    check_finite_array("feat_old", feat_old)
    sim = mu * _unit(feat_old) @ _unit(feat_new).T
    positive = -jnp.diagonal(sim)
    other_class = labels[:, None] != labels[None, :]
    negative = jax.nn.logsumexp(jnp.where(other_class, sim, 0.0), axis=1)
    return jnp.mean(positive + negative)


def hoc_objective(ce: jax.Array, feat_new: jax.Array, feat_old: jax.Array, labels: jax.Array,
                  lam: float = LAMBDA, mu: float = MU) -> jax.Array:
    """Eq. 3: ``lam * ce + (1 - lam) * hoc_loss(feat_new, feat_old, labels, mu)`` (``ce`` the batch CE)."""
    check_number("lam", lam, minimum=0.0, maximum=1.0)
    return lam * ce + (1.0 - lam) * hoc_loss(feat_new, feat_old, labels, mu)
