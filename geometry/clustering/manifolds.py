"""Synthetic unions of subspaces and of curved manifolds with known cluster labels (for P20 MLC).

``union_of_subspaces``: ``n_clusters`` random ``subspace_dim``-dimensional linear subspaces of
``R^ambient_dim`` (orthonormal bases from QR of Gaussian matrices), Gaussian coefficients, isotropic
noise; the linear case that subspace clustering (SSC) solves.

``union_of_manifolds`` (a reconstruction: the MLC paper's synthetic manifolds were not readable here):
the same union of subspaces drawn in a small latent space ``R^latent_dim`` is pushed through one fixed
random smooth map ``g(u) = W2 tanh(curvature * W1 u)`` into ``R^ambient_dim`` (``W1``: hidden x latent,
``W2``: ambient x hidden, Gaussian entries scaled by 1/sqrt(fan-in), hidden = 64). Each cluster is the
image of a subspace under ``g``, a curved manifold that is not a linear subspace once ``curvature`` is
large enough for ``tanh`` to bend; a feature map that inverts ``g`` linearises all clusters at once. The
points are centred and scaled to unit mean squared norm before the noise (std ``noise`` per coordinate
times 1/sqrt(ambient_dim)) is added. Latent coefficients are drawn on the unit sphere of each subspace
times a radius in [0.5, 1.5], so that clusters meet only near the origin of the latent space.
"""
from __future__ import annotations

import numpy as np

from sparsejax.core.validation import check_int, check_number

_HIDDEN = 64


def _check_common(n_per_cluster, n_clusters, ambient_dim, noise, seed) -> None:
    check_int("n_per_cluster", n_per_cluster, minimum=2)
    check_int("n_clusters", n_clusters, minimum=2)
    check_int("ambient_dim", ambient_dim, minimum=2)
    check_number("noise", noise, minimum=0.0)
    check_int("seed", seed, minimum=0)


def _subspace_points(rng, n_per_cluster, n_clusters, dim, sub_dim, radial: bool):
    """Points of ``n_clusters`` random ``sub_dim``-subspaces of ``R^dim`` and their labels."""
    xs = []
    for _ in range(n_clusters):
        basis, _ = np.linalg.qr(rng.standard_normal((dim, sub_dim)))
        coef = rng.standard_normal((n_per_cluster, sub_dim))
        if radial:
            coef /= np.linalg.norm(coef, axis=1, keepdims=True)
            coef *= rng.uniform(0.5, 1.5, (n_per_cluster, 1))
        xs.append(coef @ basis.T)
    labels = np.repeat(np.arange(n_clusters, dtype=np.int32), n_per_cluster)
    return np.concatenate(xs), labels


def union_of_subspaces(n_per_cluster: int, n_clusters: int = 4, ambient_dim: int = 32, subspace_dim: int = 3,
                       noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, labels)``: ``n_clusters * n_per_cluster`` points near a union of random linear subspaces.

    ``x`` is float32 ``(N, ambient_dim)``, ``labels`` int32 in ``[0, n_clusters)`` (grouped by cluster).
    """
    _check_common(n_per_cluster, n_clusters, ambient_dim, noise, seed)
    check_int("subspace_dim", subspace_dim, minimum=1, maximum=ambient_dim)
    rng = np.random.default_rng(seed)
    x, labels = _subspace_points(rng, n_per_cluster, n_clusters, ambient_dim, subspace_dim, radial=False)
    x = x + noise / np.sqrt(ambient_dim) * rng.standard_normal(x.shape)
    return x.astype(np.float32), labels


def union_of_manifolds(n_per_cluster: int, n_clusters: int = 4, ambient_dim: int = 32, latent_dim: int = 6,
                       manifold_dim: int = 2, curvature: float = 2.0, noise: float = 0.05,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, labels)``: points near ``n_clusters`` curved ``manifold_dim``-manifolds in ``R^ambient_dim``.

    Each manifold is the image of a random latent subspace under one shared random ``tanh`` map (see
    the module docstring); ``curvature = 0`` is not allowed (the map would be constant).
    """
    _check_common(n_per_cluster, n_clusters, ambient_dim, noise, seed)
    check_int("latent_dim", latent_dim, minimum=2)
    check_int("manifold_dim", manifold_dim, minimum=1, maximum=latent_dim - 1)
    check_number("curvature", curvature, minimum=0.0, min_inclusive=False)
    rng = np.random.default_rng(seed)
    u, labels = _subspace_points(rng, n_per_cluster, n_clusters, latent_dim, manifold_dim, radial=True)
    w1 = rng.standard_normal((_HIDDEN, latent_dim)) / np.sqrt(latent_dim)
    w2 = rng.standard_normal((ambient_dim, _HIDDEN)) / np.sqrt(_HIDDEN)
    x = np.tanh(curvature * u @ w1.T) @ w2.T
    x -= x.mean(0)
    x /= np.sqrt((x ** 2).sum(1).mean())
    x = x + noise / np.sqrt(ambient_dim) * rng.standard_normal(x.shape)
    return x.astype(np.float32), labels
