"""Gaussian mixtures with unequal covariances (data for the P8 iLA-SDP experiments and tests).

NumPy (``np.random.default_rng(seed)``), not JAX: the data feed cvxpy / scikit-learn.
"""
from __future__ import annotations

import numpy as np

from sparsejax.core.validation import check_array, check_int, check_number

__all__ = ["sample_gaussian_mixture", "two_cluster_heterogeneous"]


def sample_gaussian_mixture(sizes, means, covs, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``sizes[k]`` points from ``N(means[k], covs[k])`` per cluster; returns ``(X (n, p), labels (n,))``
    in a random order."""
    means = np.asarray(check_array("means", np.asarray(means, dtype=np.float64), ndim=2))
    covs = np.asarray(check_array("covs", np.asarray(covs, dtype=np.float64), ndim=3))
    k, p = means.shape
    if covs.shape != (k, p, p):
        raise ValueError(f"covs must have shape ({k}, {p}, {p}) to match means, got {covs.shape}")
    if len(sizes) != k:
        raise ValueError(f"sizes must have {k} entries (one per mean), got {len(sizes)}")
    sizes = [check_int(f"sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes)]
    for i, c in enumerate(covs):
        if not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() <= 0:
            raise ValueError(f"covs[{i}] must be symmetric positive definite")
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    x = np.concatenate([rng.multivariate_normal(means[i], covs[i], size=s) for i, s in enumerate(sizes)])
    y = np.concatenate([np.full(s, i) for i, s in enumerate(sizes)])
    order = rng.permutation(len(y))
    return x[order], y[order]


def two_cluster_heterogeneous(n: int, p: int, separation: float, seed: int = 0, *, narrow: float = 0.5,
                              wide: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-size clusters whose means differ by ``separation`` along ``e_1``: cluster 0 is isotropic
    with std ``narrow``; cluster 1 has std ``wide`` along ``e_2`` and ``narrow`` elsewhere, so that a
    K-means split along ``e_2`` competes with the true split along ``e_1``."""
    n = check_int("n", n, minimum=4)
    p = check_int("p", p, minimum=2)
    separation = check_number("separation", separation, minimum=0.0)
    narrow = check_number("narrow", narrow, minimum=0.0, min_inclusive=False)
    wide = check_number("wide", wide, minimum=0.0, min_inclusive=False)
    mean = np.zeros((2, p))
    mean[1, 0] = separation
    c0 = narrow ** 2 * np.eye(p)
    c1 = c0.copy()
    c1[1, 1] = wide ** 2
    return sample_gaussian_mixture([n // 2, n - n // 2], mean, np.stack([c0, c1]), seed)
