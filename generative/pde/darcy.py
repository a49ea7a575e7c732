"""2-D Darcy flow ``-div(a grad u) = f`` on the unit square with ``u = 0`` on the boundary.

The benchmark of Li et al. (FNO), used by LSM (Table 2, "Darcy"): ``a`` is piecewise constant,
``a = high`` where a Gaussian random field (``alpha=2, tau=3``) is >= 0 and ``low`` elsewhere,
``f = 1``, and the task is the map ``a -> u``.

Discretisation: cell-vertex grid of ``n x n`` nodes including the boundary (``h = 1/(n-1)``),
the 5-point finite-volume stencil with the harmonic mean of ``a`` on each face (flux-continuous
across the jumps of a piecewise-constant coefficient). The resulting matrix is symmetric positive
definite; it is applied matrix-free and solved by Jacobi-preconditioned conjugate gradients
(``jax.scipy.sparse.linalg.cg``), so the whole generator is jittable and vmappable.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from generative.pde.grf import gaussian_random_field
from sparsejax.core.validation import check_finite_array, check_int, check_number, is_traced


def _check_grid(a: jax.Array) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise ValueError(f"a must be a square (n, n) grid with n >= 3, got shape {a.shape}")
    check_finite_array("a", a)


def face_coefficients(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Harmonic means of ``a`` on the x-faces ``(n-1, n)`` and y-faces ``(n, n-1)`` between nodes."""
    _check_grid(a)
    kx = 2.0 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])
    ky = 2.0 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    return kx, ky


def darcy_operator(a: jax.Array, u_interior: jax.Array) -> jax.Array:
    """Apply the finite-volume ``-div(a grad .)`` to interior values ``(n-2, n-2)`` (zero boundary)."""
    _check_grid(a)
    n = a.shape[0]
    if u_interior.shape != (n - 2, n - 2):
        raise ValueError(f"u_interior must have shape {(n - 2, n - 2)}, got {u_interior.shape}")
    h2 = (1.0 / (n - 1)) ** 2
    kx, ky = face_coefficients(a)
    u = jnp.pad(u_interior, 1)
    flux_x = kx * (u[1:, :] - u[:-1, :])  # flux through x-face i+1/2, shape (n-1, n)
    flux_y = ky * (u[:, 1:] - u[:, :-1])
    div = (flux_x[1:, 1:-1] - flux_x[:-1, 1:-1]) + (flux_y[1:-1, 1:] - flux_y[1:-1, :-1])
    return -div / h2


def solve_darcy(a: jax.Array, f: jax.Array | float = 1.0, tol: float = 1e-6, maxiter: int | None = None
                ) -> jax.Array:
    """Solve ``-div(a grad u) = f``, ``u|boundary = 0``; return ``u`` on the full ``(n, n)`` grid.

    ``f`` is a scalar or an ``(n, n)`` nodal array (only interior nodes are used). Jacobi-
    preconditioned CG to relative residual ``tol`` in ``(0, 1)`` (default ``maxiter``: ``10 (n-2)^2``,
    at least 1). ``a`` must be finite and positive and ``f`` finite: CG would otherwise return a
    meaningless (e.g. all-zero) field. Value checks are skipped for traced inputs (inside ``vmap``/
    ``lax.map``), where they are the caller's precondition.
    """
    a = jnp.asarray(a)
    _check_grid(a)
    check_finite_array("a", a)
    if not is_traced(a) and float(jnp.min(a)) <= 0:
        raise ValueError(f"a (permeability) must be positive, got min {float(jnp.min(a))}")
    check_finite_array("f", jnp.asarray(f) if not is_traced(f) else f)
    if np.ndim(f) not in (0, 2) or (np.ndim(f) == 2 and tuple(np.shape(f)) != tuple(a.shape)):
        raise ValueError(f"f must be a scalar or an array of the grid shape {tuple(a.shape)}, got shape {np.shape(f)}")
    tol = check_number("tol", tol, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False,
                       allow_traced=True)
    if maxiter is not None:
        maxiter = check_int("maxiter", maxiter, minimum=1)
    return _solve_darcy(a, f, tol, maxiter)


@partial(jax.jit, static_argnames=("maxiter",))
def _solve_darcy(a, f, tol, maxiter):
    _check_grid(a)
    n = a.shape[0]
    rhs = jnp.broadcast_to(jnp.asarray(f, a.dtype), (n, n))[1:-1, 1:-1]
    kx, ky = face_coefficients(a)
    diag = (kx[1:, 1:-1] + kx[:-1, 1:-1] + ky[1:-1, 1:] + ky[1:-1, :-1]) * (n - 1) ** 2
    u, _ = jax.scipy.sparse.linalg.cg(
        lambda v: darcy_operator(a, v), rhs, tol=tol, maxiter=maxiter, M=lambda r: r / diag)
    return jnp.pad(u, 1)


def darcy_coefficient(key: jax.Array, resolution: int, alpha: float = 2.0, tau: float = 3.0,
                      high: float = 12.0, low: float = 3.0) -> jax.Array:
    """Piecewise-constant permeability: ``high`` where a GRF(alpha, tau) is >= 0, else ``low``."""
    check_number("high", high, minimum=0.0, min_inclusive=False)
    check_number("low", low, minimum=0.0, min_inclusive=False)
    check_int("resolution", resolution, minimum=3)
    field = gaussian_random_field(key, (resolution, resolution), alpha, tau)
    return jnp.where(field >= 0, high, low).astype(jnp.float32)


def darcy_dataset(key: jax.Array, num_samples: int, resolution: int, alpha: float = 2.0, tau: float = 3.0,
                  high: float = 12.0, low: float = 3.0, chunk: int = 64) -> dict[str, jax.Array]:
    """``{"a": (N, n, n), "u": (N, n, n)}``; sample ``i`` depends only on ``fold_in(key, i)``."""
    check_int("num_samples", num_samples, minimum=1)
    check_int("resolution", resolution, minimum=3)
    check_int("chunk", chunk, minimum=1)
    check_number("high", high, minimum=0.0, min_inclusive=False)
    check_number("low", low, minimum=0.0, min_inclusive=False)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_samples))
    a = jax.vmap(lambda k: darcy_coefficient(k, resolution, alpha, tau, high, low))(keys)
    u = jax.lax.map(lambda c: _solve_darcy(c, 1.0, 1e-6, None), a, batch_size=min(chunk, num_samples))
    return {"a": a, "u": u}
