"""Sketch-based least-squares and ℓp-regression solvers (shared by P9, P11, P26).

* :func:`sketch_and_solve`: x′ = argmin ‖S(Ax − b)‖₂ by a QR of SA (Sarlós 2006); with an
  ε-subspace embedding S, ‖Ax′ − b‖ ≤ (1 + O(ε))·min_x ‖Ax − b‖.
* :func:`preconditioned_lstsq`: Blendenpik/LSRN-style: R from a QR of SA, then conjugate gradients
  (``jax.scipy.sparse.linalg.cg``) on the normal equations of the well-conditioned A R⁻¹, i.e. CGLS,
  stopped at relative normal-equation residual ``tol`` or after ``maxiter`` steps. Each step costs
  O(nd + d²). It is a pure function of arrays, so it can be ``vmap``-ed over many small
  regressions (P26 does). Zero rows of A (padding) are allowed.
* :func:`lp_regression`: min_x ‖Ax − b‖_p by iteratively reweighted least squares. For p ≥ 2 the
  step is the damped Newton step x + (x_IRLS − x)/(p − 1) (the IRLS step of the p-th power is a
  Newton step with this factor; no line search, so convergence is not guaranteed: tests compare
  with scipy.optimize); for p < 2 the weights are abs(r)^{p−2} with abs(r) floored at ``eps``
  (a smoothing; plain IRLS is non-smooth at p = 1). The weighted least-squares solves use QR
  unless ``key`` is given, in which case they use :func:`preconditioned_lstsq` (sketched IRLS).
  Computations run in the input dtype; pass float64 (with jax x64 enabled) when the accuracy matters.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax.core.validation import (
    check_array, check_int, check_key, check_number, check_same_length,
)
from sparsejax.sketch.transforms import _sketch, check_sketch_args

__all__ = ["sketch_and_solve", "preconditioned_lstsq", "lp_regression"]


def _check_problem(A, b):
    check_array("A", A, ndim=2)
    check_array("b", b, ndim=1)
    check_same_length(A=A, b=b)


def sketch_and_solve(key, A, b, m: int, kind: str = "srht", s: int = 4):
    """argmin_x ‖S A x − S b‖₂ for one sketch S of ``kind`` with ``m`` rows (A: n × d, b: (n,))."""
    _check_problem(A, b)
    if check_int("m", m, minimum=1) < A.shape[1]:
        raise ValueError(f"m must be >= d = {A.shape[1]} for sketch-and-solve, got {m}")
    check_key("key", key)
    m, kind, s = check_sketch_args(A.shape[0], m, kind, s)
    return _sketch_and_solve(key, jnp.asarray(A), jnp.asarray(b), m, kind, s)


@partial(jax.jit, static_argnames=("m", "kind", "s"))
def _sketch_and_solve(key, A, b, m: int, kind: str, s: int):
    sab = _sketch(key, jnp.column_stack([A, b]), m, kind, s)
    q, r = jnp.linalg.qr(sab[:, :-1])
    return jax.scipy.linalg.solve_triangular(r, q.T @ sab[:, -1], lower=False)


@partial(jax.jit, static_argnames=("m", "kind", "maxiter"))
def _precond_lstsq(key, A, b, tol, m: int, kind: str, maxiter: int):
    _, r = jnp.linalg.qr(_sketch(key, A, m, kind, 4 if kind == "osnap" and m % 4 == 0 else 1))
    solve_r = partial(jax.scipy.linalg.solve_triangular, r, lower=False)
    solve_rt = partial(jax.scipy.linalg.solve_triangular, r, trans="T", lower=False)

    def normal(z):
        return solve_rt(A.T @ (A @ solve_r(z)))

    z, _ = jax.scipy.sparse.linalg.cg(normal, solve_rt(A.T @ b), tol=tol, maxiter=maxiter)
    return solve_r(z)


def preconditioned_lstsq(key, A, b, m: int, kind: str = "countsketch", tol: float = 1e-6, maxiter: int = 100):
    """Least squares by CG on A R⁻¹ with R from a QR of a sketch SA (``m`` ≥ d rows; module docstring).

    ``tol`` is the relative residual of the preconditioned normal equations at which CG stops.
    Precondition: SA has full column rank (else R is singular and the result is not finite). An
    OSNAP sketch uses s = 4 nonzeros per column when 4 divides m, else 1.
    """
    check_key("key", key)
    _check_problem(A, b)
    m = check_int("m", m, minimum=A.shape[1])
    check_sketch_args(A.shape[0], m, kind, 4 if m % 4 == 0 else 1)
    tol = check_number("tol", tol, minimum=0, min_inclusive=False)
    maxiter = check_int("maxiter", maxiter, minimum=1)
    A, b = jnp.asarray(A), jnp.asarray(b)
    return _precond_lstsq(key, A, b, jnp.asarray(tol, A.dtype), m, kind, maxiter)


@partial(jax.jit, static_argnames=("m", "kind", "sketched"))
def _irls(A, b, p, eps, keys, m: int, kind: str, sketched: bool):
    """Jitted (and vmappable) IRLS core: one weighted least-squares solve per key."""
    def wls(w, key):
        sw = jnp.sqrt(w)
        if sketched:
            return _precond_lstsq(key, A * sw[:, None], b * sw, jnp.asarray(1e-10, A.dtype), m, kind, 200)
        q, r = jnp.linalg.qr(A * sw[:, None])
        return jax.scipy.linalg.solve_triangular(r, q.T @ (b * sw), lower=False)

    step = jnp.where(p > 2, 1.0 / (p - 1), 1.0)

    def body(x, key):
        w = jnp.maximum(jnp.abs(A @ x - b), eps) ** (p - 2)
        return x + step * (wls(w / jnp.max(w), key) - x), None

    x, _ = jax.lax.scan(body, wls(jnp.ones_like(b), keys[0]), keys[1:])
    return x


def lp_regression(A, b, p: float, iters: int = 50, eps: float = 1e-8, key=None, m: int | None = None,
                  kind: str = "countsketch"):
    """min_x ‖Ax − b‖_p (p ≥ 1) by (damped) IRLS from the least-squares start (module docstring).

    With ``key`` (and ``m`` sketch rows, default 4d) each weighted solve is sketch-preconditioned.
    """
    _check_problem(A, b)
    p = check_number("p", p, minimum=1)
    iters = check_int("iters", iters, minimum=1)
    eps = check_number("eps", eps, minimum=0, min_inclusive=False)
    A, b = jnp.asarray(A), jnp.asarray(b)
    sketched = key is not None
    if sketched:
        check_key("key", key)
        m = check_int("m", 4 * A.shape[1] if m is None else m, minimum=A.shape[1])
        check_sketch_args(A.shape[0], m, kind, 4 if m % 4 == 0 else 1)
    else:
        key, m = jax.random.PRNGKey(0), A.shape[1]
    return _irls(A, b, jnp.asarray(p, A.dtype), jnp.asarray(eps, A.dtype), jax.random.split(key, iters + 1),
                 m, kind, sketched)
