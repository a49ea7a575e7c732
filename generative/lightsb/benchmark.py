"""Gaussian-mixture EOT benchmark pairs with a known conditional plan (Gushchin et al. 2023, used by P25).

Construction (as in the official ``eot_benchmark/gaussian_mixture_benchmark.py``, ``ConditionalPlan``):
choose a source ``p0`` and a Schrödinger potential ``phi(y) = sum_k p_k N(y | mu_k, Sigma_k)``; the
plan ``pi(y | x) ∝ N(y | x, eps I) phi(y)`` has the form ``exp(f(x) + g(y) - ||x - y||^2 / (2 eps))``,
so it is the entropic OT plan (cost 1/2||x-y||^2, weight eps; LightSB's convention) between ``p0``
and its own second marginal ``p1``, which is taken as the target. The plan is a Gaussian mixture::

    pi(y | x) = sum_k w_k(x) N(y | C_k (Sigma_k^-1 mu_k + x / eps), C_k),
    C_k = (Sigma_k^-1 + I / eps)^-1,     w_k(x) ∝ p_k N(x | mu_k, Sigma_k + eps I),

whose exact mean and covariance give the ground truth of the cBW2-UVP metric
(:func:`generative.lightsb.cbw2_uvp`, official ``calculate_cond_bw``).

Deviation: the official benchmark loads its source mixture and potential parameters from files
(downloaded); nothing downloads here, so :func:`gaussian_mixture_benchmark` draws them from a
seed: ``p0 = N(0, I)`` (the issue's "Gaussian source"), ``n_modes`` potential components with means
``mu_k ~ N(0, mode_scale^2 I)``, random rotations and eigenvalues in ``[0.1, 1]``. The numbers are
therefore comparable in kind, not cell by cell, with the paper's Table 2.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from generative.lightsb.potential import check_epsilon, check_points
from sparsejax.core.validation import check_int, check_number, check_type


class MixtureBenchmark(NamedTuple):
    """A benchmark pair: potential weights ``log_p (K,)``, means ``mu (K, d)``, covariances
    ``sigma (K, d, d)`` and ``epsilon``; the source is ``N(0, I_d)``."""

    log_p: jax.Array
    mu: jax.Array
    sigma: jax.Array
    epsilon: float

    @property
    def dim(self) -> int:
        return int(self.mu.shape[1])


def gaussian_mixture_benchmark(seed: int, dim: int, epsilon: float, *, n_modes: int = 5,
                               mode_scale: float = 2.0) -> MixtureBenchmark:
    """Draw a benchmark pair for ``dim`` and ``epsilon`` from ``seed`` (see the module docstring)."""
    seed = check_int("seed", seed, minimum=0)
    dim = check_int("dim", dim, minimum=1)
    eps = check_epsilon(epsilon)
    n_modes = check_int("n_modes", n_modes, minimum=1)
    mode_scale = check_number("mode_scale", mode_scale, minimum=0.0)
    rng = np.random.default_rng([seed, dim])
    mu = rng.normal(size=(n_modes, dim)) * mode_scale
    sig = []
    for _ in range(n_modes):
        q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        sig.append((q * rng.uniform(0.1, 1.0, size=dim)) @ q.T)
    log_p = np.log(np.full(n_modes, 1.0 / n_modes))
    return MixtureBenchmark(jnp.asarray(log_p, jnp.float32), jnp.asarray(mu, jnp.float32),
                            jnp.asarray(np.stack(sig), jnp.float32), eps)


def _plan_parts(bench: MixtureBenchmark):
    d = bench.dim
    eye = jnp.eye(d, dtype=bench.sigma.dtype)
    prec = jnp.linalg.inv(bench.sigma)
    cond_cov = jnp.linalg.inv(prec + eye / bench.epsilon)  # C_k
    bias = jnp.einsum("kij,kjl,kl->ki", cond_cov, prec, bench.mu)  # C_k Sigma_k^-1 mu_k
    marg = bench.sigma + bench.epsilon * eye  # Sigma_k + eps I
    chol_marg = jnp.linalg.cholesky(marg)
    return cond_cov, bias, chol_marg


def _log_weights(bench: MixtureBenchmark, chol_marg, x):
    diff = x[:, None, :] - bench.mu[None]  # (n, K, d)
    z = jax.scipy.linalg.solve_triangular(jnp.broadcast_to(chol_marg, (x.shape[0],) + chol_marg.shape),
                                          diff[..., None], lower=True)[..., 0]
    log_det = jnp.sum(jnp.log(jnp.diagonal(chol_marg, axis1=-2, axis2=-1)), -1)
    logits = bench.log_p[None] - 0.5 * jnp.sum(z**2, -1) - log_det[None]
    return logits - jax.nn.logsumexp(logits, axis=1, keepdims=True)


def plan_moments(bench: MixtureBenchmark, x) -> tuple[jax.Array, jax.Array]:
    """Exact mean ``(n, d)`` and covariance ``(n, d, d)`` of the true ``pi(y | x)`` at the rows of ``x``."""
    x = check_points(x, bench.dim)
    cond_cov, bias, chol_marg = _plan_parts(bench)
    w = jnp.exp(_log_weights(bench, chol_marg, x))
    means = bias[None] + jnp.einsum("kij,nj->nki", cond_cov, x) / bench.epsilon  # (n, K, d)
    mean = jnp.einsum("nk,nkd->nd", w, means)
    centred = means - mean[:, None]
    cov = jnp.einsum("nk,kij->nij", w, cond_cov) + jnp.einsum("nk,nki,nkj->nij", w, centred, centred)
    return mean, cov


def source_sampler(bench: MixtureBenchmark):
    """Jax-traceable ``f(key, n) -> (n, d)`` samples of ``p0 = N(0, I)``."""
    check_type("bench", bench, MixtureBenchmark)
    return lambda key, n: jax.random.normal(key, (n, bench.dim))


def sample_true_plan(key, bench: MixtureBenchmark, x) -> jax.Array:
    """One sample ``y ~ pi(y | x)`` per row of ``x`` (jax-traceable)."""
    x = check_points(x, bench.dim)
    cond_cov, bias, chol_marg = _plan_parts(bench)
    key_k, key_z = jax.random.split(key)
    comp = jax.random.categorical(key_k, _log_weights(bench, chol_marg, x), axis=-1)
    mean = bias[comp] + jnp.einsum("nij,nj->ni", cond_cov[comp], x) / bench.epsilon
    chol = jnp.linalg.cholesky(cond_cov)[comp]
    return mean + jnp.einsum("nij,nj->ni", chol, jax.random.normal(key_z, x.shape, x.dtype))


def target_sampler(bench: MixtureBenchmark):
    """Jax-traceable ``f(key, n) -> (n, d)`` samples of the target ``p1`` (x ~ p0, then y ~ pi(.|x))."""
    check_type("bench", bench, MixtureBenchmark)
    def sample(key, n):
        kx, ky = jax.random.split(key)
        return sample_true_plan(ky, bench, jax.random.normal(kx, (n, bench.dim)))

    return sample


def target_variance(bench: MixtureBenchmark, key, num_samples: int = 100_000) -> float:
    """``Var(p1) = tr Cov(p1)`` by the law of total variance over ``num_samples`` source points:
    ``E_x tr Cov(y|x) + tr Cov_x(E[y|x])`` (both terms exact given x)."""
    num_samples = check_int("num_samples", num_samples, minimum=2)
    x = jax.random.normal(key, (num_samples, bench.dim))
    total_in, total_between = 0.0, []
    for i in range(0, num_samples, 10_000):
        mean, cov = plan_moments(bench, x[i:i + 10_000])
        total_in += float(jnp.trace(cov, axis1=1, axis2=2).sum())
        total_between.append(np.asarray(mean, np.float64))
    means = np.concatenate(total_between)
    return total_in / num_samples + float(np.trace(np.cov(means.T).reshape(bench.dim, bench.dim)))
