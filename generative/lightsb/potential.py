"""Gaussian-mixture adjusted Schrödinger potential and the closed-form conditional plan of LightSB.

Convention (Korotin, Gushchin & Burnaev, "Light Schrödinger Bridge", ICLR 2024, P25): the bridge
has the Wiener prior ``W^eps`` of volatility ``eps`` (``dX_t = sqrt(eps) dW_t``), so the prior's
transition over ``[0, 1]`` is ``N(y | x, eps I)`` and the static SB problem is entropic OT with cost
``1/2 ||x - y||^2`` and entropy weight ``eps``::

    min_{pi in Pi(p0, p1)}  E_pi[ 1/2 ||x - y||^2 ] - eps H(pi).

Its solution is ``pi*(y | x) = exp(<x, y> / eps) v*(y) / c*(x)`` with the *adjusted* Schrödinger
potential ``v*(y) = phi*(y) exp(-||y||^2 / (2 eps))`` and ``c*(x) = int exp(<x, y>/eps) v*(y) dy``
(paper eqs. 5-6). LightSB parameterizes (eq. 10)::

    v_theta(y) = sum_k alpha_k N(y | r_k, eps S_k),

so that ``c_theta(x) = sum_k alpha_k exp((x^T S_k x + 2 r_k^T x) / (2 eps))`` (eq. 11) and the
conditional plan is the Gaussian mixture (Proposition 3.2)::

    pi_theta(y | x) = sum_k w_k(x) N(y | r_k + S_k x, eps S_k),
    w_k(x) ∝ alpha_k exp((x^T S_k x + 2 r_k^T x) / (2 eps)).

Parameters live in :class:`LightSBParams` (a pytree). ``S_k`` is diagonal,
``S_k = diag(exp(log_s_k))``, or full, ``S_k = L_k L_k^T`` with ``L_k`` lower triangular with
diagonal ``exp(log_s_k / 2)`` (so ``log det S_k = sum(log_s_k)`` in both cases). As in the authors'
code, ``log alpha = log_alpha_raw / eps`` (a preconditioning of the weights for small ``eps``).
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct

from sparsejax.core.validation import check_finite_array, check_int, check_number, check_type


@struct.dataclass
class LightSBParams:
    """LightSB parameters: mixture weights (raw), means ``r``, covariance factors; ``epsilon`` is static."""

    log_alpha_raw: jax.Array  # (K,)
    r: jax.Array  # (K, d)
    log_s: jax.Array  # (K, d): log of the diagonal of S_k (diagonal) or of L_k^2 (full)
    lower: Optional[jax.Array]  # (K, d, d) strictly-lower part of L_k, or None for diagonal S_k
    epsilon: float = struct.field(pytree_node=False)

    @property
    def n_components(self) -> int:
        return self.r.shape[0]

    @property
    def dim(self) -> int:
        return self.r.shape[1]

    @property
    def diagonal(self) -> bool:
        return self.lower is None


def check_epsilon(epsilon) -> float:
    """Return ``float(epsilon)``; raise ``ValueError``/``TypeError`` unless it is a finite positive number."""
    return check_number("epsilon", epsilon, minimum=0.0, min_inclusive=False)


def check_points(x, dim: int, name: str = "x") -> jax.Array:
    """Return ``x`` as an array of shape ``(n, dim)`` with finite entries; raise ``ValueError`` otherwise."""
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {tuple(x.shape)}")
    return check_finite_array(name, x)


def init(key, x1_init, *, epsilon: float, n_components: int, diagonal: bool = True, s_init: float = 0.1):
    """Initial parameters: ``r_k`` = rows of ``x1_init`` (samples of p1), ``S_k = s_init I``, uniform weights."""
    eps = check_epsilon(epsilon)
    n_components = check_int("n_components", n_components, minimum=1)
    s_init = check_number("s_init", s_init, minimum=0.0, min_inclusive=False)
    x1_init = jnp.asarray(x1_init)
    if x1_init.ndim != 2 or x1_init.shape[0] < 1:
        raise ValueError(f"x1_init must have shape (n, d) with n >= 1, got {tuple(x1_init.shape)}")
    check_finite_array("x1_init", x1_init)
    k, d = int(n_components), x1_init.shape[1]
    idx = jax.random.choice(key, x1_init.shape[0], (k,), replace=x1_init.shape[0] < k)
    dtype = x1_init.dtype if jnp.issubdtype(x1_init.dtype, jnp.floating) else jnp.float32
    return LightSBParams(
        log_alpha_raw=jnp.full((k,), eps * jnp.log(1.0 / k), dtype),
        r=x1_init[idx].astype(dtype),
        log_s=jnp.full((k, d), jnp.log(s_init), dtype),
        lower=None if diagonal else jnp.zeros((k, d, d), dtype),
        epsilon=eps,
    )


def log_alpha(params: LightSBParams) -> jax.Array:
    """Log mixture weights ``log alpha_k`` (unnormalized)."""
    return params.log_alpha_raw / params.epsilon


def cholesky_factor(params: LightSBParams) -> jax.Array:
    """``L_k`` with ``S_k = L_k L_k^T``, shape ``(K, d, d)`` (also for diagonal ``S_k``)."""
    diag = jnp.exp(0.5 * params.log_s)
    eye = jnp.eye(params.dim, dtype=diag.dtype)
    lower = 0.0 if params.lower is None else jnp.tril(params.lower, -1)
    return lower + diag[:, :, None] * eye


def covariance_factors(params: LightSBParams) -> jax.Array:
    """The matrices ``S_k``, shape ``(K, d, d)``."""
    check_type("params", params, LightSBParams)
    if params.lower is None:
        return jnp.exp(params.log_s)[:, :, None] * jnp.eye(params.dim, dtype=params.log_s.dtype)
    chol = cholesky_factor(params)
    return chol @ jnp.swapaxes(chol, -1, -2)


def _s_times(params: LightSBParams, x: jax.Array) -> jax.Array:
    """``S_k x`` for every point and component, shape ``(n, K, d)``."""
    if params.lower is None:
        return jnp.exp(params.log_s)[None] * x[:, None, :]
    return jnp.einsum("kij,nj->nki", covariance_factors(params), x)


def component_logits(params: LightSBParams, x: jax.Array) -> jax.Array:
    """``log alpha_k + (x^T S_k x + 2 r_k^T x) / (2 eps)``, shape ``(n, K)`` (eq. 11 terms)."""
    sx = _s_times(params, x)
    quad = jnp.einsum("nd,nkd->nk", x, sx)
    lin = x @ params.r.T
    return log_alpha(params)[None] + (quad + 2.0 * lin) / (2.0 * params.epsilon)


def log_c(params: LightSBParams, x: jax.Array) -> jax.Array:
    """``log c_theta(x)`` (eq. 11), shape ``(n,)``."""
    x = check_points(x, params.dim)
    return jax.nn.logsumexp(component_logits(params, x), axis=-1)


def log_potential(params: LightSBParams, y: jax.Array) -> jax.Array:
    """``log v_theta(y) = log sum_k alpha_k N(y | r_k, eps S_k)`` (eq. 10), shape ``(n,)``."""
    eps, d = params.epsilon, params.dim
    y = check_points(y, d, "y")
    diff = y[:, None, :] - params.r[None]  # (n, K, d)
    if params.lower is None:
        maha = jnp.sum(diff**2 * jnp.exp(-params.log_s)[None], axis=-1)
    else:
        chol = jnp.broadcast_to(cholesky_factor(params), (y.shape[0],) + (params.n_components, d, d))
        z = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
        maha = jnp.sum(z**2, axis=-1)
    log_norm = -0.5 * jnp.sum(params.log_s, axis=-1) - 0.5 * d * jnp.log(2.0 * jnp.pi * eps)
    return jax.nn.logsumexp(log_alpha(params)[None] + log_norm[None] - 0.5 * maha / eps, axis=-1)


def conditional_components(params: LightSBParams, x: jax.Array):
    """Mixture ``pi_theta(y|x)`` (Prop. 3.2): ``(log_weights (n,K), means (n,K,d), covs (K,d,d))``."""
    x = check_points(x, params.dim)
    logits = component_logits(params, x)
    log_w = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    means = params.r[None] + _s_times(params, x)
    return log_w, means, params.epsilon * covariance_factors(params)


def conditional_moments(params: LightSBParams, x) -> tuple[jax.Array, jax.Array]:
    """Exact mean ``(n, d)`` and covariance ``(n, d, d)`` of the mixture ``pi_theta(y | x)``."""
    x = check_points(x, params.dim)
    log_w, means, covs = conditional_components(params, x)
    w = jnp.exp(log_w)
    mean = jnp.einsum("nk,nkd->nd", w, means)
    centred = means - mean[:, None, :]
    cov = jnp.einsum("nk,kij->nij", w, covs) + jnp.einsum("nk,nki,nkj->nij", w, centred, centred)
    return mean, cov


def _component_noise(params: LightSBParams, comp: jax.Array, z: jax.Array) -> jax.Array:
    """``L_k z`` for the drawn components ``comp`` (any shape) and normals ``z`` (``comp.shape + (d,)``).

    Diagonal ``S_k``: an elementwise scale (no ``d x d`` factor is formed, as with the official
    ``Independent(Normal)`` mixture). Full ``S_k``: the gathered Cholesky factors, ``comp.size * d^2``.
    """
    if params.lower is None:
        return jnp.exp(0.5 * params.log_s)[comp] * z
    return jnp.einsum("...ij,...j->...i", cholesky_factor(params)[comp], z)


def _sample_rows(key, params: LightSBParams, x: jax.Array, num_samples: int):
    log_w, means, _ = conditional_components(params, x)
    n, d = x.shape
    key_k, key_z = jax.random.split(key)
    comp = jax.random.categorical(key_k, log_w[:, None, :], axis=-1, shape=(n, num_samples))
    mu = jnp.take_along_axis(means, comp[..., None], axis=1)  # (n, m, d)
    z = jax.random.normal(key_z, (n, num_samples, d), dtype=means.dtype)
    return mu + jnp.sqrt(params.epsilon) * _component_noise(params, comp, z)


def plan_chunk_rows(params: LightSBParams, num_samples: int, n: int, budget: int = 1 << 23) -> int:
    """Rows of ``x`` (of ``n``) sampled together by :func:`sample_plan`, so that the per-chunk
    temporaries (``rows * max(num_samples * d * (d if full S else 1), K * d)`` elements) stay below
    ``budget``. A divisor of ``n`` is preferred (no padded rows, hence no copy of the output)."""
    num_samples = check_int("num_samples", num_samples, minimum=1)
    n = check_int("n", n, minimum=1)
    budget = check_int("budget", budget, minimum=1)
    d, k = params.dim, params.n_components
    per_row = max(num_samples * d * (1 if params.lower is None else d), k * d, 1)
    cmax = max(1, budget // per_row)
    if n <= cmax:
        return max(n, 1)
    for c in range(cmax, max(cmax // 4, 1) - 1, -1):
        if n % c == 0:
            return c
    return cmax


def _sample_plan(key, params: LightSBParams, x: jax.Array, num_samples: int, chunk: int):
    n = x.shape[0]
    if n <= chunk:
        return _sample_rows(key, params, x, num_samples)
    n_chunks = -(-n // chunk)
    xp = jnp.pad(x, ((0, n_chunks * chunk - n), (0, 0))).reshape(n_chunks, chunk, -1)
    keys = jax.random.split(key, n_chunks)
    out = jax.lax.map(lambda a: _sample_rows(a[0], params, a[1], num_samples), (keys, xp))
    return out.reshape(n_chunks * chunk, num_samples, -1)[:n]


_sample_plan_jit = jax.jit(_sample_plan, static_argnums=(3, 4))


def sample_plan(key, params: LightSBParams, x, num_samples: int) -> jax.Array:
    """Samples of ``y ~ pi_theta(y | x)`` for each row of ``x``: shape ``(len(x), num_samples, d)``.

    Rows are processed in chunks of :func:`plan_chunk_rows` (``lax.map``), so the temporary memory
    stays bounded (about 2^23 elements per chunk) however many inputs are requested; diagonal
    ``S_k`` never forms a ``d x d`` factor. The output itself is ``len(x) * num_samples * d``.
    """
    x = check_points(x, params.dim)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    return _sample_plan_jit(key, params, x.astype(params.r.dtype), num_samples,
                            plan_chunk_rows(params, num_samples, x.shape[0]))


def sample_at_time(key, params: LightSBParams, x, t, num_samples: int = 1) -> jax.Array:
    """Samples of the bridge's time marginal ``X_t | X_0 = x``: shape ``(len(x), num_samples, d)``.

    The Schrödinger bridge is the mixture of Brownian bridges of volatility ``eps`` over its static
    plan (P25 Sec. 2; official ``sample_at_time_moment``), so with ``y ~ pi_theta(.|x)``:
    ``X_t = (1 - t) x + t y + sqrt(eps t (1 - t)) z``. ``t = 0`` returns ``x`` and ``t = 1`` returns
    exactly ``sample_plan(jax.random.split(key)[0], ...)``.
    """
    x = check_points(x, params.dim)
    t = check_number("t", t, minimum=0.0, maximum=1.0)
    key_y, key_z = jax.random.split(key)
    y = sample_plan(key_y, params, x, num_samples)
    z = jax.random.normal(key_z, y.shape, y.dtype)
    xr = x.astype(y.dtype)[:, None, :]
    return (1.0 - t) * xr + t * y + jnp.sqrt(params.epsilon * t * (1.0 - t)) * z
