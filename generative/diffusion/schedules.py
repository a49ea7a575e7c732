"""Discrete-time DDPM noise schedules.

A schedule is the sequence ``beta_1..beta_T`` of the forward process
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)`` (Ho et al. 2020, eq. 2) together
with ``alpha_bar_t = prod_{s<=t} (1 - beta_s)`` so that
``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`` (Ho et al. eq. 4).
Timesteps are 0-based here: index ``t`` in ``[0, T)`` holds ``beta_{t+1}``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from sparsejax.core.validation import check_int, check_number


class NoiseSchedule(NamedTuple):
    """``betas``, ``alphas = 1 - betas`` and ``alpha_bars = cumprod(alphas)``, each of shape ``(T,)``."""

    betas: jnp.ndarray
    alphas: jnp.ndarray
    alpha_bars: jnp.ndarray

    @property
    def num_timesteps(self) -> int:
        """Number of diffusion steps ``T``."""
        return int(self.betas.shape[0])


def _from_betas(betas: jnp.ndarray) -> NoiseSchedule:
    betas = jnp.asarray(betas, jnp.float32)
    alphas = 1.0 - betas
    return NoiseSchedule(betas, alphas, jnp.cumprod(alphas))


def linear_schedule(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2) -> NoiseSchedule:
    """Linear betas from ``beta_start`` to ``beta_end`` (Ho et al. 2020, Sec. 4; defaults for T=1000).

    For ``num_timesteps != 1000`` the endpoints are rescaled by ``1000 / T`` (as in improved DDPM)
    so that ``alpha_bar_T`` stays close to 0.
    """
    num_timesteps = check_int("num_timesteps", num_timesteps, minimum=2)
    beta_start = check_number("beta_start", beta_start)
    beta_end = check_number("beta_end", beta_end)
    if not 0.0 < beta_start < beta_end < 1.0:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
    scale = 1000.0 / num_timesteps
    start, end = beta_start * scale, min(beta_end * scale, 0.999)
    return _from_betas(jnp.linspace(start, end, num_timesteps))


def cosine_schedule(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Cosine schedule ``alpha_bar(t) = f(t)/f(0)``, ``f(t) = cos^2(((t/T + s)/(1 + s)) pi/2)``
    (Nichol & Dhariwal 2021, eq. 17), with betas clipped at ``max_beta``."""
    num_timesteps = check_int("num_timesteps", num_timesteps, minimum=2)
    s = check_number("s", s, minimum=0.0)
    max_beta = check_number("max_beta", max_beta)
    if s < 0 or not 0.0 < max_beta < 1.0:
        raise ValueError(f"need s >= 0 and 0 < max_beta < 1, got s={s}, max_beta={max_beta}")

    def f(t):
        return jnp.cos((t / num_timesteps + s) / (1.0 + s) * math.pi / 2) ** 2

    steps = jnp.arange(num_timesteps + 1, dtype=jnp.float32)
    alpha_bar = f(steps) / f(0.0)
    betas = jnp.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, max_beta)
    return _from_betas(betas)


def make_schedule(kind: str, num_timesteps: int) -> NoiseSchedule:
    """``linear_schedule`` or ``cosine_schedule`` by name."""
    if kind == "linear":
        return linear_schedule(num_timesteps)
    if kind == "cosine":
        return cosine_schedule(num_timesteps)
    raise ValueError(f"unknown schedule kind {kind!r}; valid: 'linear', 'cosine'")
