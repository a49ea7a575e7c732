"""Closed-form drift of the LightSB bridge and Euler-Maruyama simulation (P25, Proposition 3.3).

The Schrödinger bridge with Wiener prior of volatility ``eps`` is ``dX_t = g(X_t, t) dt + sqrt(eps) dW_t``
with ``g(x, t) = eps grad_x log int N(x' | x, (1 - t) eps I) phi(x') dx'`` and
``phi(x') = exp(||x'||^2 / (2 eps)) v(x')``. For the mixture ``v_theta`` the integral is Gaussian; with
``S_k = U_k diag(lambda_k) U_k^T``, ``A_k(t) = t / (eps (1 - t)) I + S_k^{-1} / eps`` and
``h_k(x, t) = x / (eps (1 - t)) + S_k^{-1} r_k / eps`` (eq. 13)::

    log phi_t(x) = -||x||^2 / (2 eps (1 - t))
                   + logsumexp_k [ log alpha_k - 1/2 log|S_k| - 1/2 log|A_k(t)|
                                   - r_k^T S_k^{-1} r_k / (2 eps) + 1/2 h_k^T A_k(t)^{-1} h_k ] + const(t),

and ``g = eps grad_x log phi_t`` is evaluated with ``jax.grad``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from generative.lightsb.potential import LightSBParams, check_points, covariance_factors, log_alpha
from sparsejax.core.validation import check_int, check_number


def _eigen(params: LightSBParams):
    """Eigenvalues ``(K, d)`` and eigenvectors ``(K, d, d)`` (None when diagonal) of ``S_k``."""
    if params.lower is None:
        return jnp.exp(params.log_s), None
    lam, vecs = jnp.linalg.eigh(covariance_factors(params))
    return lam, vecs


def _log_phi_t(params: LightSBParams, lam, vecs, x: jax.Array, t) -> jax.Array:
    """``log phi_t(x)`` up to a constant in ``x`` for one point ``x`` of shape ``(d,)``."""
    eps = params.epsilon
    if vecs is None:
        ux, ur = jnp.broadcast_to(x, params.r.shape), params.r
    else:
        ux = jnp.einsum("kij,i->kj", vecs, x)
        ur = jnp.einsum("kij,ki->kj", vecs, params.r)
    a = t / (eps * (1.0 - t)) + 1.0 / (eps * lam)
    h = ux / (eps * (1.0 - t)) + ur / (eps * lam)
    terms = (
        log_alpha(params)
        - 0.5 * jnp.sum(jnp.log(lam), -1)
        - 0.5 * jnp.sum(jnp.log(a), -1)
        - 0.5 * jnp.sum(ur**2 / lam, -1) / eps
        + 0.5 * jnp.sum(h**2 / a, -1)
    )
    return jax.nn.logsumexp(terms) - jnp.sum(x**2) / (2.0 * eps * (1.0 - t))


def _drift(params: LightSBParams, lam, vecs, x: jax.Array, t) -> jax.Array:
    grad = jax.vmap(jax.grad(_log_phi_t, argnums=3), in_axes=(None, None, None, 0, None))
    return params.epsilon * grad(params, lam, vecs, x, t)


def drift(params: LightSBParams, x, t) -> jax.Array:
    """Bridge drift ``g_theta(x, t)`` (eq. 13) for points ``x`` of shape ``(n, d)`` and ``0 <= t < 1``."""
    x = check_points(x, params.dim)
    t = check_number("t", t, minimum=0.0, maximum=1.0, max_inclusive=False)
    lam, vecs = _eigen(params)
    return _drift(params, lam, vecs, x.astype(params.r.dtype), jnp.asarray(t, params.r.dtype))


def _sample_sde(key, params: LightSBParams, x: jax.Array, n_steps: int):
    lam, vecs = _eigen(params)
    dt = 1.0 / n_steps
    noise = jax.random.normal(key, (n_steps,) + x.shape, x.dtype) * jnp.sqrt(params.epsilon * dt)

    def step(xt, inputs):
        i, xi = inputs
        xt = xt + _drift(params, lam, vecs, xt, i * dt) * dt + xi
        return xt, xt

    _, path = jax.lax.scan(step, x, (jnp.arange(n_steps, dtype=x.dtype), noise))
    return jnp.concatenate([x[:, None], jnp.swapaxes(path, 0, 1)], axis=1)


_sample_sde_jit = jax.jit(_sample_sde, static_argnums=3)


def sample_sde(key, params: LightSBParams, x, n_steps: int) -> jax.Array:
    """Euler-Maruyama trajectories of the bridge SDE from ``x``: shape ``(len(x), n_steps + 1, d)``.

    Times are ``t_i = i / n_steps``; the last state approximates a sample of ``pi_theta(y | x)``.
    """
    x = check_points(x, params.dim)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    return _sample_sde_jit(key, params, x.astype(params.r.dtype), n_steps)
