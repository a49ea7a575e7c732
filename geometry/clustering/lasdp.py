"""Likelihood-adjusted SDP clustering, iLA-SDP (P8), and the Peng–Wei K-means SDP it starts from.

P8: Zhuang, Chen, Yang, "Likelihood Adjusted Semidefinite Programs for Clustering Heterogeneous Data",
ICML 2023 (arXiv 2209.15097). No official code exists and the paper body was not readable here; the
formulation below is **reconstructed** from the abstract (labels as parameters, one membership matrix per
group, no centroids, exact observed likelihood) and checked by the identity it must satisfy.

* Classification likelihood of ``x_i ~ N(μ_k, Σ_k)``, ``i ∈ G_k``, with ``μ_k`` profiled out: for
  ``Z_k = 1_{G_k}1_{G_k}ᵀ / n_k``, ``-2 log L = Σ_k ⟨A_k, Z_k⟩ + n p log 2π`` with
  ``A_k = ½ D^(k) + (log det Σ_k - 2 log π_k) J``, ``D^(k)_ij = (x_i - x_j)ᵀ Σ_k⁻¹ (x_i - x_j)``, ``J = 11ᵀ``
  (:func:`la_cost_matrices`, :func:`neg2_profile_loglik`; the identity is exact and tested).
* **LA-SDP** (reconstruction): ``min Σ_k ⟨A_k, Z_k⟩`` over ``Z_k ⪰ 0``, ``Z_k >= 0`` entrywise,
  ``tr Z_k = 1``, ``Σ_k Z_k 1 = 1`` (every true partition's ``Z_k`` are feasible).
* **Rounding** (guess): ``ŷ_i = argmax_k (Z_k 1)_i`` (the row sums are soft memberships summing to 1).
* **iLA-SDP** (guess for the loop): start from labels (default: Peng–Wei SDP + spectral rounding); repeat
  {``Σ̂_k`` = group covariance + ``reg_covar·I``, ``π̂_k = n_k/n``; solve LA-SDP; round} until the labels
  stop changing or ``max_iter``; a rounding that empties a cluster keeps the previous labels; the labels
  with the smallest exact ``-2 log L`` seen are returned.
* **Peng–Wei SDP** (Peng & Wei 2007): ``max ⟨XXᵀ, Z⟩`` over ``Z ⪰ 0``, ``Z >= 0``, ``Z1 = 1``, ``tr Z = K``;
  rounded by k-means on the top-K eigenvectors of ``Z`` (scikit-learn ``KMeans``).

Defaults: ``reg_covar = 1e-3``, ``max_iter = 10``, SCS at ``eps = 1e-5`` (Clarabel on request; it is ~30x slower at n = 60) through :mod:`geometry.sdp`.
Sizes: ``K`` PSD cones of ``n x n`` and ``K n²`` sign constraints, so keep ``n <= ~200``. NumPy / cvxpy, not
JAX (the solvers work outside jit).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from sklearn.cluster import KMeans

from geometry.sdp import psd, solve
from sparsejax.core.validation import check_array, check_finite_array, check_int, check_number

__all__ = ["ILASDPResult", "la_cost_matrices", "neg2_profile_loglik", "membership_matrices", "la_sdp",
           "round_memberships", "peng_wei_sdp", "estimate_parameters", "ila_sdp"]


def _data(x) -> np.ndarray:
    x = np.asarray(check_finite_array("x", check_array("x", np.asarray(x, dtype=np.float64), ndim=2)))
    if x.shape[0] < 2:
        raise ValueError(f"x needs >= 2 rows, got shape {x.shape}")
    return x


def _labels(labels, n: int, k: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {y.shape} dtype {y.dtype}")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in [0, {k}), got range [{y.min()}, {y.max()}]")
    return y


def _params(covs, weights, p: int) -> tuple[np.ndarray, np.ndarray]:
    covs = np.asarray(covs, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    k = weights.shape[0] if weights.ndim == 1 else -1
    if covs.ndim != 3 or covs.shape[1:] != (p, p) or covs.shape[0] != k:
        raise ValueError(f"covs must have shape ({k}, {p}, {p}) matching weights, got {covs.shape}")
    if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be positive and sum to 1, got {weights}")
    for i, c in enumerate(covs):
        if np.linalg.eigvalsh((c + c.T) / 2).min() <= 0:
            raise ValueError(f"covs[{i}] must be positive definite")
    return covs, weights


def la_cost_matrices(x, covs, weights) -> np.ndarray:
    """The ``K`` cost matrices ``A_k = ½ D^(k) + (log det Σ_k - 2 log π_k) J`` (shape ``(K, n, n)``)."""
    x = _data(x)
    covs, weights = _params(covs, weights, x.shape[1])
    out = []
    for c, w in zip(covs, weights):
        prec = np.linalg.inv(c)
        q = np.einsum("ip,pq,iq->i", x, prec, x)
        d = q[:, None] + q[None, :] - 2 * x @ prec @ x.T
        out.append(0.5 * d + (np.linalg.slogdet(c)[1] - 2 * np.log(w)))
    return np.stack(out)


def membership_matrices(labels, k: int) -> np.ndarray:
    """``Z_k = 1_{G_k}1_{G_k}ᵀ / n_k`` for each (non-empty) group of ``labels``."""
    k = check_int("k", k, minimum=1)
    y = _labels(labels, np.asarray(labels).shape[0], k)
    z = np.zeros((k, y.size, y.size))
    for j in range(k):
        ind = (y == j).astype(np.float64)
        if ind.sum() == 0:
            raise ValueError(f"group {j} of labels is empty")
        z[j] = np.outer(ind, ind) / ind.sum()
    return z


def neg2_profile_loglik(x, labels, covs, weights) -> float:
    """``-2 log`` of the classification likelihood with group means profiled out (``μ_k`` = group mean)."""
    x = _data(x)
    covs, weights = _params(covs, weights, x.shape[1])
    y = _labels(labels, x.shape[0], weights.size)
    total = x.shape[0] * x.shape[1] * np.log(2 * np.pi)
    for j, (c, w) in enumerate(zip(covs, weights)):
        g = x[y == j]
        if len(g) == 0:
            continue
        r = g - g.mean(0)
        total += np.einsum("ip,pq,iq->", r, np.linalg.inv(c), r) + len(g) * (np.linalg.slogdet(c)[1] - 2 * np.log(w))
    return float(total)


def la_sdp(cost, *, solver: str = "SCS", eps: float = 1e-5) -> np.ndarray:
    """Solve the LA-SDP for cost matrices ``cost`` (``(K, n, n)``); returns the ``Z_k`` (``(K, n, n)``)."""
    cost = np.asarray(check_finite_array("cost", check_array("cost", np.asarray(cost, dtype=np.float64), ndim=3)))
    k, n, _ = cost.shape
    if cost.shape[2] != n:
        raise ValueError(f"cost must have shape (K, n, n), got {cost.shape}")
    zs = [cp.Variable((n, n), symmetric=True) for _ in range(k)]
    cons = [sum(z @ np.ones(n) for z in zs) == 1]
    for z in zs:
        cons += [psd(z), z >= 0, cp.trace(z) == 1]
    obj = sum(cp.sum(cp.multiply(c, z)) for c, z in zip(cost, zs))
    solve(cp.Problem(cp.Minimize(obj), cons), solver=solver, eps=eps, name="LA-SDP")
    return np.stack([z.value for z in zs])


def round_memberships(z) -> np.ndarray:
    """Labels ``argmax_k (Z_k 1)_i``."""
    z = np.asarray(check_array("z", np.asarray(z, dtype=np.float64), ndim=3))
    return np.argmax(z.sum(axis=2), axis=0)


def peng_wei_sdp(x, k: int, *, solver: str = "SCS", eps: float = 1e-5, seed: int = 0) -> np.ndarray:
    """Peng–Wei K-means SDP, rounded by k-means on the top-``k`` eigenvectors of ``Z``; returns labels."""
    x = _data(x)
    k = check_int("k", k, minimum=2, maximum=x.shape[0])
    n = x.shape[0]
    z = cp.Variable((n, n), symmetric=True)
    cons = [psd(z), z >= 0, z @ np.ones(n) == 1, cp.trace(z) == k]
    solve(cp.Problem(cp.Maximize(cp.sum(cp.multiply(x @ x.T, z))), cons), solver=solver, eps=eps,
          name="Peng-Wei SDP")
    _, vecs = np.linalg.eigh((z.value + z.value.T) / 2)
    return KMeans(k, n_init=10, random_state=seed).fit_predict(vecs[:, -k:])


def estimate_parameters(x, labels, k: int, reg_covar: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Group covariances (MLE, ``1/n_k``) plus ``reg_covar·I`` and proportions ``n_k/n``."""
    x = _data(x)
    y = _labels(labels, x.shape[0], k)
    reg_covar = check_number("reg_covar", reg_covar, minimum=0.0)
    covs, weights = [], []
    for j in range(k):
        g = x[y == j]
        if len(g) == 0:
            raise ValueError(f"group {j} is empty")
        r = g - g.mean(0)
        covs.append(r.T @ r / len(g) + reg_covar * np.eye(x.shape[1]))
        weights.append(len(g) / len(y))
    return np.stack(covs), np.asarray(weights)


@dataclass
class ILASDPResult:
    """Labels of iLA-SDP, their exact ``-2 log L``, and the history over iterations."""
    labels: np.ndarray
    neg2_loglik: float
    n_iter: int
    history: list = field(default_factory=list)


def ila_sdp(x, k: int, init_labels=None, *, max_iter: int = 10, reg_covar: float = 1e-3,
            solver: str = "SCS", eps: float = 1e-5, seed: int = 0) -> ILASDPResult:
    """Iterative likelihood-adjusted SDP clustering (see the module docstring for the loop)."""
    x = _data(x)
    k = check_int("k", k, minimum=2, maximum=x.shape[0])
    max_iter = check_int("max_iter", max_iter, minimum=1)
    y = (peng_wei_sdp(x, k, solver=solver, eps=eps, seed=seed) if init_labels is None
         else _labels(np.asarray(init_labels), x.shape[0], k))
    if len(np.unique(y)) < k:
        raise ValueError(f"init_labels must use all {k} clusters")
    covs, weights = estimate_parameters(x, y, k, reg_covar)
    best = (neg2_profile_loglik(x, y, covs, weights), y)
    history = [best[0]]
    it = 0
    for it in range(1, max_iter + 1):
        new = round_memberships(la_sdp(la_cost_matrices(x, covs, weights), solver=solver, eps=eps))
        if len(np.unique(new)) < k or np.array_equal(new, y):
            break
        y = new
        covs, weights = estimate_parameters(x, y, k, reg_covar)
        value = neg2_profile_loglik(x, y, covs, weights)
        history.append(value)
        if value < best[0]:
            best = (value, y)
    return ILASDPResult(labels=best[1], neg2_loglik=best[0], n_iter=it, history=history)
