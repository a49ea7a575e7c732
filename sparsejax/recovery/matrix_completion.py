"""Low-rank matrix completion by robust alternating minimisation (P26: Gu, Song, Yin, Zhang, "Low
Rank Matrix Completion via Robust Alternating Minimization in Nearly Linear Time", ICLR 2024).

Frame (Jain, Netrapalli & Sanghavi 2013, AltMinComplete): observe M (m × n) on Ω, rate ρ.

1. U⁰ = top-k left singular vectors of P_Ω(M)/ρ; rows with ‖U_i‖ > 2μ√(k/m) are zeroed
   (trimming), then U⁰ is re-orthonormalised by QR.
2. For t = 1..T: V_j = argmin_v ‖U_{Ω_j} v − M_{Ω_j, j}‖₂ for every column j; then
   U_i = argmin_u ‖V_{Ω_i} u − M_{i, Ω_i}‖₂ for every row i. The returned estimate is U Vᵀ.
3. Robust part (P26): each regression is solved only approximately, by the sketch-preconditioned
   CG of :func:`sparsejax.sketch.solvers.preconditioned_lstsq` (CountSketch of ``sketch_factor``·k
   rows, QR, CG on the preconditioned normal equations), costing Õ(#Ω_j k + k³) instead of
   the exact normal equations' #Ω_j k² + k³. Guarantee (paper): for incoherent M and
   #Ω = Õ(κ²μ²nk^{4.5} log(1/ε)), ‖M − UVᵀ‖_F ≤ ε in Õ(#Ω k) total time.

Tolerance schedule: the analysis lets iteration t solve to a relative accuracy that shrinks with
the (geometrically shrinking) error; we use δ_t = max(tol_final, tol0·decay^t) (our reading of the
schedule; the paper's constants are not reproduced). Deviations: no sample splitting (all of Ω is
reused every iteration, as is usual in practice); U and V are not re-orthonormalised between
half-steps (it changes neither the iterate U Vᵀ nor the exact solves, only conditioning); the
observed entries of each row/column are gathered into arrays padded to the largest count (padding
rows are zero and do not change any regression). Baselines: exact-solve ALS (batched Gram +
Cholesky) and SoftImpute (Mazumder, Hastie & Tibshirani 2010: Z ← SVT_λ(P_Ω(M) + P_Ω⊥(Z)), full SVD).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_choice, check_int, check_key, check_number
from sparsejax.sketch.solvers import _precond_lstsq

__all__ = ["observed_index", "init_factors", "als_half_step", "alternating_minimization", "soft_impute",
           "relative_error", "incoherent_low_rank"]


def incoherent_low_rank(key, m: int, n: int, k: int, rate: float, noise: float = 0.0):
    """A random rank-k matrix (Gaussian factors, incoherent w.h.p.), a Bernoulli(``rate``) mask and
    the observed matrix with optional Gaussian noise of std ``noise``·rms(M). Returns (M, mask, M_obs)."""
    check_key("key", key)
    m, n, k = check_int("m", m, minimum=1), check_int("n", n, minimum=1), check_int("k", k, minimum=1)
    rate = check_number("rate", rate, minimum=0, maximum=1, min_inclusive=False)
    noise = check_number("noise", noise, minimum=0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    M = jax.random.normal(k1, (m, k)) @ jax.random.normal(k2, (k, n)) / jnp.sqrt(k)
    mask = jax.random.uniform(k3, (m, n)) < rate
    obs = M + noise * jnp.sqrt(jnp.mean(M ** 2)) * jax.random.normal(k4, (m, n))
    return M, mask, jnp.where(mask, obs, 0.0)


def observed_index(mask, length: int | None = None):
    """For each column of ``mask`` (m × n bool): the row indices of its observed entries padded to
    ``length`` (default: the largest count), and their validity. Returns ``(idx (n, L), valid (n, L))``."""
    check_array("mask", mask, ndim=2)
    mask = np.asarray(mask, bool)
    counts = mask.sum(0)
    L = max(int(counts.max()), 1) if length is None else check_int("length", length, minimum=int(counts.max()))
    if L > mask.shape[0]:
        mask = np.vstack([mask, np.zeros((L - mask.shape[0], mask.shape[1]), bool)])
    order = np.argsort(~mask, axis=0, kind="stable")[:L].T
    valid = np.arange(L)[None] < counts[:, None]
    return jnp.asarray(np.where(valid, order, 0), jnp.int32), jnp.asarray(valid)


def init_factors(M_obs, mask, k: int, mu: float | None = None):
    """U⁰: top-k left singular vectors of P_Ω(M)/ρ, trimmed at 2μ√(k/m) and re-orthonormalised.

    ``mu`` (incoherence) defaults to the incoherence of the untrimmed U⁰ itself (no trimming)."""
    check_array("M_obs", M_obs, ndim=2)
    m = M_obs.shape[0]
    k = check_int("k", k, minimum=1, maximum=min(M_obs.shape))
    rate = float(jnp.mean(mask))
    u = jnp.linalg.svd(jnp.where(mask, M_obs, 0.0) / rate, full_matrices=False)[0][:, :k]
    if mu is not None:
        mu = check_number("mu", mu, minimum=0, min_inclusive=False)
        u = jnp.where(jnp.linalg.norm(u, axis=1, keepdims=True) > 2 * mu * np.sqrt(k / m), 0.0, u)
    return jnp.linalg.qr(u)[0]


@partial(jax.jit, static_argnames=("solver", "sketch_rows", "maxiter"))
def als_half_step(key, U, M_obs, idx, valid, tol, solver: str, sketch_rows: int, maxiter: int):
    """Solve V_j = argmin ‖U_{Ω_j} v − M_{Ω_j, j}‖ for every column j (``idx``/``valid`` from
    :func:`observed_index`). ``solver``: ``"exact"`` (Gram + Cholesky) or ``"sketch"`` (sketch-
    preconditioned CG to relative tolerance ``tol``). Returns V (n × k)."""
    n = M_obs.shape[1]
    A = jnp.where(valid[..., None], U[idx], 0.0)                        # (n, L, k)
    b = jnp.where(valid, M_obs[idx, jnp.arange(n)[:, None]], 0.0)       # (n, L)
    if solver == "exact":
        gram = jnp.einsum("jlk,jlh->jkh", A, A)
        rhs = jnp.einsum("jlk,jl->jk", A, b)
        return jax.vmap(lambda g, r: jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(g), r))(gram, rhs)
    keys = jax.random.split(key, n)
    return jax.vmap(lambda kk, a, bb: _precond_lstsq(kk, a, bb, tol, sketch_rows, "countsketch", maxiter))(
        keys, A, b)


def relative_error(M, U, V) -> float:
    """‖M − U Vᵀ‖_F / ‖M‖_F."""
    return float(jnp.linalg.norm(M - U @ V.T) / jnp.linalg.norm(M))


def alternating_minimization(key, M_obs, mask, k: int, iters: int = 20, solver: str = "sketch",
                             tol0: float = 1e-2, decay: float = 0.5, tol_final: float = 1e-8,
                             sketch_factor: int = 4, maxiter: int = 50, mu: float | None = None, M_true=None):
    """Robust (``solver="sketch"``) or exact (``solver="exact"``) alternating minimisation.

    Returns ``(U, V, history)`` with M ≈ U Vᵀ; ``history`` lists the relative error to ``M_true`` per
    iteration when it is given (else it is empty)."""
    check_key("key", key)
    check_array("M_obs", M_obs, ndim=2)
    check_array("mask", mask, shape=M_obs.shape)
    solver = check_choice("solver", solver, ("exact", "sketch"))
    iters = check_int("iters", iters, minimum=1)
    tol0 = check_number("tol0", tol0, minimum=0, min_inclusive=False)
    decay = check_number("decay", decay, minimum=0, maximum=1, min_inclusive=False)
    tol_final = check_number("tol_final", tol_final, minimum=0, min_inclusive=False)
    sketch_rows = check_int("sketch_factor", sketch_factor, minimum=1) * k
    maxiter = check_int("maxiter", maxiter, minimum=1)
    M_obs = jnp.where(mask, M_obs, 0.0)
    mask_np = np.asarray(mask, bool)
    length = int(max(mask_np.sum(0).max(), mask_np.sum(1).max(), 1))   # one padded length: fewer compiles
    col_idx, col_valid = observed_index(mask_np, length)
    row_idx, row_valid = observed_index(mask_np.T, length)
    U = init_factors(M_obs, mask, k, mu)
    history = []
    for t in range(iters):
        tol = jnp.asarray(max(tol_final, tol0 * decay ** t), U.dtype)
        k_v, k_u = jax.random.split(jax.random.fold_in(key, t))
        V = als_half_step(k_v, U, M_obs, col_idx, col_valid, tol, solver, sketch_rows, maxiter)
        U = als_half_step(k_u, V, M_obs.T, row_idx, row_valid, tol, solver, sketch_rows, maxiter)
        if not bool(jnp.all(jnp.isfinite(U))):
            raise FloatingPointError(f"alternating minimisation diverged at iteration {t}")
        if M_true is not None:
            history.append(relative_error(M_true, U, V))
    return U, V, history


def soft_impute(M_obs, mask, lam: float, iters: int = 100, M_true=None):
    """SoftImpute: Z ← SVT_λ(P_Ω(M) + P_Ω⊥(Z)) from Z = 0. Returns ``(Z, history)``."""
    check_array("M_obs", M_obs, ndim=2)
    check_array("mask", mask, shape=M_obs.shape)
    lam = check_number("lam", lam, minimum=0)
    iters = check_int("iters", iters, minimum=1)
    obs = jnp.where(mask, M_obs, 0.0)

    @jax.jit
    def step(z):
        u, s, vt = jnp.linalg.svd(jnp.where(mask, obs, z), full_matrices=False)
        return (u * jnp.maximum(s - lam, 0.0)) @ vt

    z, history = jnp.zeros_like(obs), []
    for _ in range(iters):
        z = step(z)
        if M_true is not None:
            history.append(float(jnp.linalg.norm(M_true - z) / jnp.linalg.norm(M_true)))
    return z, history
