"""Random sketches, leverage scores and ℓp Lewis weights (shared by P9, P11 and P26).

Every sketch maps a tall ``A`` (n × d, or a vector of length n) to ``S @ A`` with ``m`` rows,
matrix-free and jit-compiled (``m`` and the kind are static):

* ``"gaussian"``: S_ij ~ N(0, 1/m) (materialises the m × n matrix; O(mnd) time).
* ``"srht"``: S = sqrt(N/m)·P·H·D with D random signs, H the orthonormal Walsh–Hadamard matrix
  applied by :func:`fwht` (O(Nd log N)), N = n padded with zero rows to a power of two, and P
  sampling m of the N rows uniformly **without** replacement (our choice; the paper's analysis
  is stated for the dense sketch distribution, not for this detail).
* ``"countsketch"``: one ±1 per column of S in a uniformly hashed row (O(nnz(A))).
* ``"osnap"``: the block construction of OSNAP: the m rows are split into ``s`` blocks of m/s and
  each column of S has one ±1/sqrt(s) entry per block (so s distinct nonzeros); ``m`` must be a
  multiple of ``s``.

Leverage scores: exact (row norms of Q from a thin QR) and approximate (R from a QR of a sketch
SA, rows of A R⁻¹, optionally compressed by a Gaussian JL matrix; Drineas et al. 2012).
Lewis weights: the fixed point w_i = (a_iᵀ (Aᵀ W^{1−2/p} A)⁻¹ a_i)^{p/2} (Cohen & Peng 2015).
The plain iteration contracts only for p < 4; we iterate it in the log domain with damping
α = min(1, 2/p) (a geometric mean of the old and new weights), which has the same fixed point and
is a contraction for every p > 0 (our reconstruction; the Jacobian of the log map has eigenvalues
in [−(p/2−1), 0] for p > 2, so the damped map has them in [0, 1 − 2/p]).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_array, check_choice, check_int, check_key, check_number

SKETCHES = ("gaussian", "srht", "countsketch", "osnap")

__all__ = ["SKETCHES", "fwht", "sketch", "leverage_scores", "approximate_leverage_scores", "lewis_weights"]


def fwht(x):
    """Orthonormal fast Walsh–Hadamard transform along axis 0 (length a power of two).

    Equals ``scipy.linalg.hadamard(n) @ x / sqrt(n)``; O(n log n) per column by reshape butterflies.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    if n < 1 or n & (n - 1):
        raise ValueError(f"x must have a power-of-two leading length, got shape {x.shape}")
    return _fwht(x)


@jax.jit
def _fwht(x):
    n, tail = x.shape[0], x.shape[1:]
    h = 1
    while h < n:
        y = x.reshape((n // (2 * h), 2, h) + tail)
        x = jnp.stack([y[:, 0] + y[:, 1], y[:, 0] - y[:, 1]], axis=1).reshape((n,) + tail)
        h *= 2
    return x / jnp.sqrt(jnp.asarray(n, x.dtype))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@partial(jax.jit, static_argnames=("m", "kind", "s"))
def _sketch(key, A, m: int, kind: str, s: int):
    n = A.shape[0]
    k_a, k_b = jax.random.split(key)
    if kind == "gaussian":
        return jax.random.normal(k_a, (m, n), A.dtype) @ A / jnp.sqrt(jnp.asarray(m, A.dtype))
    if kind == "srht":
        N = _next_pow2(n)
        signs = jax.random.rademacher(k_a, (n,), A.dtype)
        padded = jnp.zeros((N,) + A.shape[1:], A.dtype).at[:n].set(signs.reshape((n,) + (1,) * (A.ndim - 1)) * A)
        rows = jax.random.choice(k_b, N, (m,), replace=False)
        return _fwht(padded)[rows] * jnp.sqrt(jnp.asarray(N / m, A.dtype))
    block = m // s
    k_h, k_s = jax.random.split(key)
    buckets = jax.random.randint(k_h, (s, n), 0, block) + block * jnp.arange(s)[:, None]
    signs = jax.random.rademacher(k_s, (s, n), A.dtype) / jnp.sqrt(jnp.asarray(s, A.dtype))
    expand = (slice(None), slice(None)) + (None,) * (A.ndim - 1)
    contrib = (signs[expand] * A[None]).reshape((s * n,) + A.shape[1:])
    return jax.ops.segment_sum(contrib, buckets.reshape(-1), num_segments=m)


def check_sketch_args(n: int, m: int, kind: str, s: int) -> tuple[int, str, int]:
    """Validate (m, kind, s) for a sketch of n rows; returns them with s = 1 unless kind is "osnap"."""
    kind = check_choice("kind", kind, SKETCHES)
    m = check_int("m", m, minimum=1)
    if kind == "srht" and m > _next_pow2(n):
        raise ValueError(f"m must be <= the padded length {_next_pow2(n)} for an SRHT, got {m}")
    if kind != "osnap":
        return m, kind, 1
    s = check_int("s", s, minimum=1)
    if m % s:
        raise ValueError(f"m must be a multiple of s for an OSNAP sketch, got m={m}, s={s}")
    return m, kind, s


def sketch(key, A, m: int, kind: str = "srht", s: int = 4):
    """``S @ A`` for a random sketch ``S`` (m × n) of the given ``kind`` (see the module docstring).

    ``A``: (n,) or (n, d) float array. ``s``: nonzeros per column for ``"osnap"`` (ignored otherwise).
    """
    check_key("key", key)
    check_array("A", A, ndim=(1, 2))
    m, kind, s = check_sketch_args(A.shape[0], m, kind, s)
    A = jnp.asarray(A)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        A = A.astype(jnp.float32)
    return _sketch(key, A, m, kind, s)


def leverage_scores(A):
    """Exact leverage scores τ_i = ‖Q_i‖² from a thin QR of ``A`` (n × d, full column rank); they sum to d."""
    check_array("A", A, ndim=2)
    q, _ = jnp.linalg.qr(jnp.asarray(A))
    return jnp.sum(q * q, axis=1)


def approximate_leverage_scores(key, A, m: int, kind: str = "srht", jl_dim: int | None = None):
    """Leverage scores of ``A`` from the R factor of a sketch ``SA`` (m rows): ‖(A R⁻¹)_i‖², or with
    ``jl_dim`` the squared row norms of A R⁻¹ G for a Gaussian G (d × jl_dim, entries N(0, 1/jl_dim))."""
    check_array("A", A, ndim=2)
    k_s, k_g = jax.random.split(check_key("key", key))
    _, r = jnp.linalg.qr(sketch(k_s, A, m, kind))
    ar = jax.scipy.linalg.solve_triangular(r, jnp.asarray(A).T, trans="T", lower=False).T
    if jl_dim is not None:
        jl_dim = check_int("jl_dim", jl_dim, minimum=1)
        ar = ar @ (jax.random.normal(k_g, (A.shape[1], jl_dim), ar.dtype) / jnp.sqrt(jnp.asarray(jl_dim, ar.dtype)))
    return jnp.sum(ar * ar, axis=1)


@partial(jax.jit, static_argnames=("iters",))
def _lewis(A, p, iters: int):
    n, d = A.shape
    alpha = jnp.minimum(1.0, 2.0 / p)

    def step(logw, _):
        w = jnp.exp(logw)
        gram = A.T @ (A * (w ** (1 - 2 / p))[:, None])
        q = jnp.sum(A * jnp.linalg.solve(gram, A.T).T, axis=1)
        return (1 - alpha) * logw + alpha * (p / 2) * jnp.log(q), None

    logw, _ = jax.lax.scan(step, jnp.full((n,), jnp.log(d / n), A.dtype), None, length=iters)
    return jnp.exp(logw)


def lewis_weights(A, p: float, iters: int = 100):
    """ℓp Lewis weights of ``A`` (n × d, full column rank) by the damped fixed-point iteration
    (module docstring); they sum to d and equal the leverage scores at p = 2."""
    check_array("A", A, ndim=2)
    p = check_number("p", p, minimum=0, min_inclusive=False)
    iters = check_int("iters", iters, minimum=1)
    A = jnp.asarray(A)
    return _lewis(A, jnp.asarray(p, A.dtype), iters)
