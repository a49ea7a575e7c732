"""Feed-forward networks with GroupSort, MaxMin, Householder or ReLU activations, as used by P47.

A network is ``f(x) = W_L σ(W_{L-1} ⋯ σ(W_1 x + b_1) ⋯ + b_{L-1}) + b_L`` given as lists ``weights``
(``W_k`` of shape ``(n_k, n_{k-1})``) and ``biases``. Activations act on contiguous groups of each hidden
layer (the index grouping the quadratic constraints of :mod:`geometry.lipschitz.lipsdp` assume):

* ``groupsort`` (group size ``m``): sorts each group in *descending* order; ``maxmin`` is ``m = 2``,
  i.e. ``(z1, z2) -> (max, min)``.
* ``householder``: on each pair, ``σ(z) = z`` if ``vᵀz > 0`` else ``(I - 2vvᵀ)z`` for a unit ``v`` per pair
  (``vs[k]`` of shape ``(n_k // 2, 2)``); MaxMin is the case ``v = (1, -1)/√2`` for every pair.
* ``relu``.

Everything is plain ``jax.numpy`` (pure functions; jit/vmap-able).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_choice, check_int

__all__ = ["ACTIVATIONS", "groupsort", "maxmin", "householder", "apply_network", "init_network",
           "check_network", "maxmin_householder_vectors"]

ACTIVATIONS = ("groupsort", "maxmin", "householder", "relu")


def groupsort(z, group_size: int = 2):
    """Sort each contiguous group of ``group_size`` entries of the last axis in descending order."""
    m = check_int("group_size", group_size, minimum=2)
    if z.shape[-1] % m:
        raise ValueError(f"the last axis ({z.shape[-1]}) must be a multiple of group_size={m}")
    g = z.reshape(*z.shape[:-1], -1, m)
    return -jnp.sort(-g, axis=-1).reshape(z.shape)


def maxmin(z):
    """MaxMin: ``(z1, z2) -> (max, min)`` on contiguous pairs (GroupSort with group size 2)."""
    return groupsort(z, 2)


def householder(z, v):
    """Householder activation on contiguous pairs: ``z`` where ``vᵀz > 0``, else the reflection ``z - 2v(vᵀz)``.

    ``v`` has shape ``(n // 2, 2)`` with unit rows (one vector per pair).
    """
    if z.shape[-1] % 2 or v.shape != (z.shape[-1] // 2, 2):
        raise ValueError(f"householder needs v of shape ({z.shape[-1] // 2}, 2) for width {z.shape[-1]}, "
                         f"got {tuple(v.shape)}")
    p = z.reshape(*z.shape[:-1], -1, 2)
    s = jnp.sum(p * v, axis=-1, keepdims=True)
    return jnp.where(s > 0, p, p - 2 * v * s).reshape(z.shape)


def maxmin_householder_vectors(width: int) -> np.ndarray:
    """The Householder vectors ``v = (1, -1)/√2`` that turn :func:`householder` into MaxMin."""
    return np.tile(np.array([[1.0, -1.0]]) / np.sqrt(2.0), (check_int("width", width, minimum=2) // 2, 1))


def _act(z, activation, group_size, v):
    if activation == "relu":
        return jax.nn.relu(z)
    if activation == "householder":
        return householder(z, v)
    return groupsort(z, 2 if activation == "maxmin" else group_size)


def check_network(weights, activation: str, group_size: int = 2, vs=None) -> list[np.ndarray]:
    """Check shapes (consecutive layers chain, hidden widths divisible by the group size) and return
    the weights as float64 NumPy arrays."""
    activation = check_choice("activation", activation, ACTIVATIONS)
    if not isinstance(weights, (list, tuple)) or len(weights) < 2:
        raise ValueError(f"weights must be a list of >= 2 matrices, got {type(weights).__name__}")
    ws = [np.asarray(check_array(f"weights[{i}]", np.asarray(w, dtype=np.float64), ndim=2))
          for i, w in enumerate(weights)]
    for i in range(1, len(ws)):
        if ws[i].shape[1] != ws[i - 1].shape[0]:
            raise ValueError(f"weights[{i}] has {ws[i].shape[1]} columns but weights[{i - 1}] has "
                             f"{ws[i - 1].shape[0]} rows")
    m = {"relu": 1, "maxmin": 2, "householder": 2, "groupsort": check_int("group_size", group_size, minimum=2)}
    for i, w in enumerate(ws[:-1]):
        if w.shape[0] % m[activation]:
            raise ValueError(f"hidden width {w.shape[0]} (weights[{i}]) is not a multiple of the group size "
                             f"{m[activation]} of {activation}")
        if activation == "householder":
            if vs is None or len(vs) != len(ws) - 1:
                raise ValueError("householder networks need vs: one (width // 2, 2) array per hidden layer")
            v = np.asarray(vs[i], dtype=np.float64)
            if v.shape != (w.shape[0] // 2, 2) or not np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6):
                raise ValueError(f"vs[{i}] must have shape ({w.shape[0] // 2}, 2) with unit rows, got {v.shape}")
    return ws


def apply_network(weights, biases, x, activation: str, group_size: int = 2, vs=None):
    """Evaluate the network on ``x`` (shape ``(..., n_0)``)."""
    h = x
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = h @ jnp.asarray(w).T + jnp.asarray(b)
        if k < len(weights) - 1:
            h = _act(h, activation, group_size, None if vs is None else jnp.asarray(vs[k]))
    return h


def init_network(key, sizes, scale: float = 1.0):
    """Gaussian weights ``N(0, scale²/fan_in)`` and zero biases for layer sizes ``sizes``."""
    if len(sizes) < 3:
        raise ValueError(f"sizes needs input, >= 1 hidden and output sizes, got {sizes!r}")
    keys = jax.random.split(key, len(sizes) - 1)
    ws = [scale * jax.random.normal(k, (o, i)) / jnp.sqrt(i) for k, i, o in zip(keys, sizes[:-1], sizes[1:])]
    return ws, [jnp.zeros(o) for o in sizes[1:]]
