"""Periodic Gaussian random fields, the random inputs of the FNO/LSM PDE benchmarks.

A field on the periodic grid ``[0, 1)^d`` with covariance operator
``sigma^2 (-Laplacian + tau^2 I)^(-alpha)`` (mean zero), sampled exactly in Fourier space: the
mode ``k`` gets standard-normal real and imaginary parts scaled by
``sigma ((2 pi |k|)^2 + tau^2)^(-alpha / 2)`` and the real part of the inverse FFT is returned.
This is the prior used by Li et al. (FNO) for Darcy (``alpha=2, tau=3``), Navier-Stokes
(``alpha=2.5, tau=7``) and Burgers (``alpha=2, tau=5, sigma=25``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int, check_number


def fno_sigma(alpha: float, tau: float, dim: int) -> float:
    """The FNO default amplitude ``tau^(alpha - dim / 2)`` (makes the field O(1) for any tau)."""
    check_number("alpha", alpha)
    check_number("tau", tau, minimum=0.0, min_inclusive=False)
    check_int("dim", dim, minimum=1)
    return float(tau ** (0.5 * (2.0 * alpha - dim)))


def gaussian_random_field(key: jax.Array, shape: tuple[int, ...], alpha: float, tau: float,
                          sigma: float | None = None) -> jax.Array:
    """Sample a mean-zero periodic Gaussian random field on a grid of ``shape`` (1-D or 2-D).

    Covariance ``sigma^2 ((2 pi |k|)^2 + tau^2)^(-alpha)`` per Fourier mode ``k``; ``sigma``
    defaults to :func:`fno_sigma`. Returns a float32 array of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (1, 2) or min(shape) < 2:
        raise ValueError(f"shape must be 1-D or 2-D with sizes >= 2, got {shape}")
    if alpha <= 0 or tau <= 0:
        raise ValueError(f"alpha and tau must be positive, got alpha={alpha}, tau={tau}")
    if sigma is None:
        sigma = fno_sigma(alpha, tau, len(shape))
    freqs = jnp.meshgrid(*[jnp.fft.fftfreq(s, 1.0 / s) for s in shape], indexing="ij")
    k2 = sum(f ** 2 for f in freqs)
    sqrt_eig = sigma * ((2.0 * jnp.pi) ** 2 * k2 + tau ** 2) ** (-alpha / 2.0)
    sqrt_eig = jnp.where(k2 == 0, 0.0, sqrt_eig)
    re_key, im_key = jax.random.split(key)
    noise = jax.random.normal(re_key, shape) + 1j * jax.random.normal(im_key, shape)
    size = 1
    for s in shape:
        size *= s
    return jnp.real(jnp.fft.ifftn(sqrt_eig * noise) * size).astype(jnp.float32)
