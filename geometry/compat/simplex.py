"""The d-simplex fixed classifier of P42 (Biondi, Pernici, Ricci, Del Bimbo, CVPR 2024, "Stationary
Representations"; official code miccunifi/iamcl2r, ``models/__init__.py`` ``dsimplex`` and
``dataset/__init__.py`` ``target_transform``).

``dsimplex(K)`` returns the K vertices of a regular simplex centred at the origin in ``R^(K-1)``: the
rows ``e_1 .. e_(K-1)`` and ``((1 - sqrt(K)) / (K - 1)) * 1``, centred by their mean and scaled to unit
norm. Every pair of vertices has inner product ``-1/(K-1)`` and the rows sum to zero. The classifier is
``logits = f @ W^T`` with ``W = dsimplex(K)`` frozen (no bias; a constant, so it receives no update), and
``K`` is ``preallocated_classes``: classes not yet seen already own a vertex, so the feature space never
has to change when classes arrive. Labels are written from the end, class ``y`` on vertex ``K - 1 - y``
(the official code's ``target_transform``); every model must use the same map.

Deviation: the official code adds 1e-8 to the row norms; here the norm is exact (it is never zero).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_int, check_index_range


def dsimplex(num_classes: int) -> np.ndarray:
    """The (K, K-1) float32 matrix of K unit vertices of a regular simplex centred at the origin."""
    k = check_int("num_classes", num_classes, minimum=2)
    n = k - 1
    t = np.zeros((k, n))
    t[:n] = np.eye(n)
    t[n] = (1.0 - np.sqrt(1.0 + n)) / n
    t -= t.mean(0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return t.astype(np.float32)


def vertex_labels(labels, num_classes: int):
    """The official label map ``y -> K - 1 - y`` (class 0 on the last vertex); raises for labels outside [0, K)."""
    k = check_int("num_classes", num_classes, minimum=2)
    check_index_range("labels", labels, k)
    return k - 1 - labels


def simplex_logits(features: jax.Array, vertices) -> jax.Array:
    """Fixed-classifier logits ``features @ vertices^T`` (``vertices`` from :func:`dsimplex`, held constant)."""
    check_array("features", features, ndim=2, dtype_kind="f")
    check_array("vertices", vertices, ndim=2, dtype_kind="f")
    if features.shape[1] != vertices.shape[1]:
        raise ValueError(f"features have dimension {features.shape[1]} but the simplex lives in "
                         f"R^{vertices.shape[1]} (features must have num_classes - 1 columns)")
    return features @ jax.lax.stop_gradient(jnp.asarray(vertices)).T
