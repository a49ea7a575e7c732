"""Closed-form entropic OT between Gaussians (ground truth for LightSB) and the cBW2-UVP metric.

For ``p0 = N(mu_a, A)``, ``p1 = N(mu_b, B)`` and the LightSB convention (cost ``1/2||x-y||^2``,
entropy weight ``eps``), multiplying the objective by 2 gives Janati et al. (2020, "Entropic optimal
transport between unbalanced Gaussian measures has a closed form", Thm. 1) / Mallasto et al. (2021,
"Entropy-regularized 2-Wasserstein distance between Gaussian measures") with ``sigma^2 = eps``: the
optimal plan is jointly Gaussian with cross-covariance::

    C = 1/2 A^{1/2} D A^{-1/2} - eps/2 I,     D = (4 A^{1/2} B A^{1/2} + eps^2 I)^{1/2},

hence ``y | x ~ N(mu_b + C^T A^{-1} (x - mu_a), B - C^T A^{-1} C)``. (Consistency check used in the
tests: the regression slope ``C^T A^{-1}`` equals ``Cov(y|x) / eps``, as LightSB's form of
``pi(y|x) ∝ exp(<x,y>/eps) v(y)`` requires.)

The conditional Bures-Wasserstein UVP of Gushchin et al. (2023, "Building the bridge of Schrödinger:
a continuous entropic OT benchmark"), used in the LightSB paper (Table 2), as the benchmark's
official ``eot_benchmark/metrics.py`` computes it (``compute_BW_with_gt_stats`` and
``calculate_cond_bw``)::

    BW_half(N1, N2) = 1/2 ||m1 - m2||^2 + 1/2 tr S1 + 1/2 tr S2 - tr (S1^{1/2} S2 S1^{1/2})^{1/2}
                    = 1/2 BW2^2(N1, N2),
    cBW2-UVP = 100% * E_{x~p0} BW_half(pi_hat(.|x), pi*(.|x)) / (1/2 Var(p1)),

with ``Var(p1) = tr Cov(p1)``. :func:`bures_wasserstein_sq` is the usual squared distance
``BW2^2`` (no 1/2 factors); :func:`cbw2_uvp` applies the benchmark's 1/2 to it, so the two halves
cancel and ``cBW2-UVP = 100% * E BW2^2 / Var(p1)``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_finite_array, check_number, is_traced


def _sqrtm_psd(m: jax.Array) -> jax.Array:
    """Symmetric PSD square root via ``eigh`` (works on batches)."""
    lam, vecs = jnp.linalg.eigh(m)
    return (vecs * jnp.sqrt(jnp.clip(lam, 0.0))[..., None, :]) @ jnp.swapaxes(vecs, -1, -2)


def gaussian_eot_conditional(mean_a, cov_a, mean_b, cov_b, epsilon: float):
    """Closed-form EOT plan between Gaussians: ``(slope (d,d), offset (d,), cond_cov (d,d))``.

    ``y | x ~ N(slope @ x + offset, cond_cov)`` for the LightSB convention (see module docstring).
    """
    epsilon = check_number("epsilon", epsilon, minimum=0.0, min_inclusive=False)
    mean_a, cov_a, mean_b, cov_b = map(jnp.asarray, (mean_a, cov_a, mean_b, cov_b))
    for name, v in (("mean_a", mean_a), ("cov_a", cov_a), ("mean_b", mean_b), ("cov_b", cov_b)):
        check_finite_array(name, v)
    d = mean_a.shape[0]
    for name, m in (("cov_a", cov_a), ("cov_b", cov_b)):
        if m.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {m.shape}")
    if mean_b.shape != (d,):
        raise ValueError(f"mean_b must have shape ({d},), got {mean_b.shape}")
    eye = jnp.eye(d, dtype=cov_a.dtype)
    a_half = _sqrtm_psd(cov_a)
    a_half_inv = jnp.linalg.inv(a_half)
    dmat = _sqrtm_psd(4.0 * a_half @ cov_b @ a_half + epsilon**2 * eye)
    cross = 0.5 * a_half @ dmat @ a_half_inv - 0.5 * epsilon * eye
    slope = jnp.linalg.solve(cov_a, cross).T  # C^T A^{-1} (A symmetric)
    cond_cov = cov_b - slope @ cross
    cond_cov = 0.5 * (cond_cov + cond_cov.T)
    return slope, mean_b - slope @ mean_a, cond_cov


def _check_psd(name: str, cov) -> None:
    """A concrete covariance must be symmetric positive semi-definite (up to rounding)."""
    if is_traced(cov) or not np.size(cov):
        return
    c = np.asarray(cov, np.float64)
    scale = max(1.0, float(np.abs(c).max()))
    if np.abs(c - np.swapaxes(c, -1, -2)).max() > 1e-4 * scale:
        raise ValueError(f"{name} must be symmetric")
    low = float(np.linalg.eigvalsh(0.5 * (c + np.swapaxes(c, -1, -2))).min())
    if low < -1e-5 * scale:
        raise ValueError(f"{name} must be positive semi-definite, got smallest eigenvalue {low:.3g}")


def bures_wasserstein_sq(mean1, cov1, mean2, cov2) -> jax.Array:
    """Squared Bures-Wasserstein distance ``||m1 - m2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2``
    between ``N(mean1, cov1)`` and ``N(mean2, cov2)``; batched over leading axes. This is twice the
    EOT benchmark's ``BW`` (see the module docstring)."""
    mean1, cov1, mean2, cov2 = (jnp.asarray(v) for v in (mean1, cov1, mean2, cov2))
    d = mean1.shape[-1] if mean1.ndim else 0
    if mean1.ndim < 1 or mean2.shape != mean1.shape:
        raise ValueError(f"mean1 and mean2 must have the same shape (..., d), got {mean1.shape} and {mean2.shape}")
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        if c.shape != mean1.shape + (d,):
            raise ValueError(f"{name} must have shape {mean1.shape + (d,)}, got {c.shape}")
    for name, v in (("mean1", mean1), ("cov1", cov1), ("mean2", mean2), ("cov2", cov2)):
        check_finite_array(name, v)
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        _check_psd(name, c)
    root1 = _sqrtm_psd(cov1)
    cross = _sqrtm_psd(root1 @ cov2 @ root1)
    trace = jnp.trace(cov1, axis1=-2, axis2=-1) + jnp.trace(cov2, axis1=-2, axis2=-1)
    return jnp.sum((mean1 - mean2) ** 2, -1) + trace - 2.0 * jnp.trace(cross, axis1=-2, axis2=-1)


def cbw2_uvp(mean_hat, cov_hat, mean_true, cov_true, var_p1) -> jax.Array:
    """cBW2-UVP in percent (official EOT-benchmark definition, module docstring) from conditional
    moments at test points: means ``(n, d)``, covariances ``(n, d, d)``; ``var_p1 = tr Cov(p1)``."""
    var_p1 = check_number("var_p1", var_p1, minimum=0.0, min_inclusive=False)
    for name, v in (("mean_hat", mean_hat), ("cov_hat", cov_hat), ("mean_true", mean_true), ("cov_true", cov_true)):
        check_finite_array(name, jnp.asarray(v))
    bw_half = 0.5 * bures_wasserstein_sq(mean_hat, cov_hat, mean_true, cov_true)
    return 100.0 * jnp.mean(bw_half) / (0.5 * var_p1)
