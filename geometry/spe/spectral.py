"""Normalized graph Laplacians and their eigendecompositions for padded batches of graphs.

Graphs of different sizes share one dense layout: an adjacency ``(N, N)`` padded with zeros to a
common ``N`` plus a boolean ``node_mask`` of shape ``(N,)``. Every function here works on ONE
graph; batch with ``jax.vmap`` (see :func:`batch_spectra`). The eigenpairs are the inputs of all
positional encodings in :mod:`geometry.spe.encoders` (Huang et al., "On the Stability of
Expressive Positional Encodings for Graph Neural Networks", Sec. 2: ``L = V diag(lambda) V^T``).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_finite_array, check_int, is_traced, check_key

# Eigenvalues of the symmetric normalized Laplacian lie in [0, 2]; padded nodes get this value on
# the diagonal so that their (spurious) eigenpairs sort after every real one.
_PAD_EIGENVALUE = 3.0


class GraphSpectrum(NamedTuple):
    """One graph (or a batch, with a leading axis on every field) with its Laplacian eigenpairs.

    adj: (N, N) symmetric 0/1 adjacency, zero on padded rows/columns.
    node_mask: (N,) bool, True for real nodes.
    eigvals: (k,) ascending eigenvalues of the normalized Laplacian, 0 where ``eig_mask`` is False.
    eigvecs: (N, k) orthonormal eigenvectors (columns), 0 on padded nodes and invalid columns.
    eig_mask: (k,) bool, True for the ``min(k, n)`` eigenpairs that exist (n = real nodes).
    """

    adj: jax.Array
    node_mask: jax.Array
    eigvals: jax.Array
    eigvecs: jax.Array
    eig_mask: jax.Array


def _check_single(adj: jax.Array, node_mask: jax.Array, name: str = "adj") -> None:
    """Shapes always; finite, symmetric values only for concrete arrays (a precondition under jit)."""
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"{name} must be a square (N, N) matrix, got shape {adj.shape}")
    if node_mask.shape != adj.shape[:1]:
        raise ValueError(f"node_mask must have shape ({adj.shape[0]},), got {node_mask.shape}")
    check_array(name, adj, dtype_kind="fiub")
    check_finite_array(name, adj)
    if not is_traced(adj):
        a = np.asarray(adj, np.float64)
        asym = float(np.abs(a - a.T).max()) if a.size else 0.0
        if asym > 1e-5 * max(1.0, float(np.abs(a).max())):
            raise ValueError(f"{name} must be symmetric, got max |{name} - {name}^T| = {asym:.3g}")


def normalized_laplacian(adj: jax.Array, node_mask: jax.Array) -> jax.Array:
    """Symmetric normalized Laplacian ``L = I - D^{-1/2} A D^{-1/2}`` on the real nodes.

    Isolated nodes use ``D^{-1/2} = 0`` (so ``L_ii = 1``); padded rows and columns are all zero.
    ``adj`` must be symmetric, finite and non-negative (checked for concrete inputs).
    """
    adj = jnp.asarray(adj)
    node_mask = jnp.asarray(node_mask, bool)
    _check_single(adj, node_mask)
    if not is_traced(adj) and adj.size and float(jnp.min(adj)) < 0:
        raise ValueError(f"adj must be non-negative (edge weights), got minimum {float(jnp.min(adj))}")
    m = node_mask.astype(adj.dtype)
    adj = adj * m[:, None] * m[None, :]
    deg = adj.sum(axis=1)
    inv_sqrt = jnp.where(deg > 0, 1.0 / jnp.sqrt(jnp.where(deg > 0, deg, 1.0)), 0.0)
    return jnp.diag(m) - inv_sqrt[:, None] * adj * inv_sqrt[None, :]


def eigh_padded(laplacian: jax.Array, node_mask: jax.Array, k: int | None = None):
    """The ``k`` smallest eigenpairs of the real-node block of a (padded) symmetric ``laplacian``.

    Returns ``(eigvals (k,), eigvecs (N, k), eig_mask (k,))``; ``k=None`` means all ``N``. Columns
    beyond the number of real nodes are zero and masked out; ``k > N`` pads with such columns.
    Requires the real-node spectrum to lie below 3 (true for normalized Laplacians).
    """
    laplacian = jnp.asarray(laplacian)
    node_mask = jnp.asarray(node_mask, bool)
    _check_single(laplacian, node_mask, "laplacian")
    n_pad = laplacian.shape[0]
    k = n_pad if k is None else check_int("k", k, minimum=1)
    m = node_mask.astype(laplacian.dtype)
    lap = laplacian * m[:, None] * m[None, :] + jnp.diag((1.0 - m) * _PAD_EIGENVALUE)
    vals, vecs = jnp.linalg.eigh(lap)
    n_real = node_mask.sum()
    idx = jnp.arange(n_pad)
    valid = idx < n_real
    vals = jnp.where(valid, vals, 0.0)
    vecs = vecs * m[:, None] * valid[None, :]
    if k <= n_pad:
        return vals[:k], vecs[:, :k], valid[:k]
    extra = k - n_pad
    return (
        jnp.concatenate([vals, jnp.zeros(extra, vals.dtype)]),
        jnp.concatenate([vecs, jnp.zeros((n_pad, extra), vecs.dtype)], axis=1),
        jnp.concatenate([valid, jnp.zeros(extra, bool)]),
    )


def graph_spectrum(adj: jax.Array, node_mask: jax.Array, k: int | None = None) -> GraphSpectrum:
    """Normalized Laplacian eigenpairs of one padded graph as a :class:`GraphSpectrum`."""
    adj = jnp.asarray(adj, jnp.float32)
    node_mask = jnp.asarray(node_mask, bool)
    vals, vecs, valid = eigh_padded(normalized_laplacian(adj, node_mask), node_mask, k)
    return GraphSpectrum(adj, node_mask, vals, vecs, valid)


def batch_spectra(adj: jax.Array, node_mask: jax.Array, k: int | None = None) -> GraphSpectrum:
    """:func:`graph_spectrum` vmapped over a batch: ``adj (B, N, N)``, ``node_mask (B, N)``.

    The values of a concrete ``adj`` are checked (finite) before the jitted batch; inside it only
    shapes are (the per-graph value checks see tracers)."""
    adj, node_mask = jnp.asarray(adj), jnp.asarray(node_mask)
    if adj.ndim != 3 or node_mask.shape != adj.shape[:2]:
        raise ValueError(f"expected adj (B, N, N) and node_mask (B, N), got {adj.shape}, {node_mask.shape}")
    check_finite_array("adj", adj)
    return _batch_spectra(adj, node_mask, k)


@partial(jax.jit, static_argnames="k")
def _batch_spectra(adj: jax.Array, node_mask: jax.Array, k: int | None = None) -> GraphSpectrum:
    return jax.vmap(lambda a, m: graph_spectrum(a, m, k))(adj, node_mask)


def random_sign_flip(key: jax.Array, eigvecs: jax.Array) -> jax.Array:
    """Multiply each eigenvector (column, last axis) by an independent random sign +-1; ``eigvecs``
    is ``(n, k)`` or a padded batch ``(B, n, k)`` (one sign per column, shared across the batch).

    The standard augmentation for raw Laplacian eigenvector PEs (LapPE), which are not sign
    invariant (Sec. 2 of the paper).
    """
    check_key("key", key)
    check_array("eigvecs", eigvecs, ndim=(2, 3), dtype_kind="f")
    signs = jax.random.rademacher(key, eigvecs.shape[-1:], dtype=eigvecs.dtype)
    return eigvecs * signs
