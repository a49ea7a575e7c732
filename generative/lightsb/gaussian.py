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
a continuous entropic OT benchmark"), used in the LightSB paper (Table 2)::

    cBW2-UVP = 100% / (1/2 Var(p1)) * E_{x~p0} BW2^2(pi_hat(.|x), pi*(.|x)).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _sqrtm_psd(m: jax.Array) -> jax.Array:
    """Symmetric PSD square root via ``eigh`` (works on batches)."""
    lam, vecs = jnp.linalg.eigh(m)
    return (vecs * jnp.sqrt(jnp.clip(lam, 0.0))[..., None, :]) @ jnp.swapaxes(vecs, -1, -2)


def gaussian_eot_conditional(mean_a, cov_a, mean_b, cov_b, epsilon: float):
    """Closed-form EOT plan between Gaussians: ``(slope (d,d), offset (d,), cond_cov (d,d))``.

    ``y | x ~ N(slope @ x + offset, cond_cov)`` for the LightSB convention (see module docstring).
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    mean_a, cov_a, mean_b, cov_b = map(jnp.asarray, (mean_a, cov_a, mean_b, cov_b))
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


def bures_wasserstein_sq(mean1, cov1, mean2, cov2) -> jax.Array:
    """Squared Bures-Wasserstein distance between ``N(mean1, cov1)`` and ``N(mean2, cov2)`` (batched)."""
    root1 = _sqrtm_psd(cov1)
    cross = _sqrtm_psd(root1 @ cov2 @ root1)
    trace = jnp.trace(cov1, axis1=-2, axis2=-1) + jnp.trace(cov2, axis1=-2, axis2=-1)
    return jnp.sum((mean1 - mean2) ** 2, -1) + trace - 2.0 * jnp.trace(cross, axis1=-2, axis2=-1)


def cbw2_uvp(mean_hat, cov_hat, mean_true, cov_true, var_p1) -> jax.Array:
    """cBW2-UVP in percent from conditional moments at test points (means ``(n,d)``, covs ``(n,d,d)``)."""
    bw = bures_wasserstein_sq(mean_hat, cov_hat, mean_true, cov_true)
    return 100.0 * jnp.mean(bw) / (0.5 * var_p1)
