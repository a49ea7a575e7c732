"""Least squares with an ℓ∞ guarantee on the solution by dense sketch-and-solve (P9: Song, Ye, Yin,
Zhang, "A Nearly-Optimal Bound for Fast Regression with ℓ∞ Guarantee", ICML 2023).

Problem: x* = argmin_x ‖Ax − b‖₂ (A: n × d). Guarantee (the paper's main theorem; the abstract in
``abstracts.md`` loses the square root): for a dense sketch S with

    m = ε⁻² · d · log³(n/δ)  rows,

x′ = argmin_x ‖SAx − Sb‖₂ satisfies, with probability ≥ 1 − δ,

    ‖x′ − x*‖∞ ≤ (ε/√d) · ‖Ax* − b‖₂ · ‖A†‖,

and SA is computed in O(nd log n) time (an SRHT). Sparse sketches (CountSketch, OSNAP) cannot
achieve this at that m (the paper's lower bound). :func:`linf_error_ratio` returns the normalised
error η = ‖x′ − x*‖∞·√d/(‖r‖₂‖A†‖), so the guarantee reads η ≤ ε.

Defaults and deviations:

* the theorem has no explicit constant; :func:`linf_sketch_size` uses constant 1 and natural logs.
  At small n this m exceeds n, so the experiment sweeps m and checks the 1/√m shape instead;
* the dense sketch is the SRHT of :mod:`sparsejax.sketch.transforms` by default (rows sampled
  without replacement); a Gaussian sketch also satisfies the paper's OCE property;
* x* and ‖A†‖ = 1/σ_min(A) are computed in float64 with NumPy (:func:`linf_error_ratio`), the
  sketched solve in the input dtype;
* :func:`spiky_instance` (a hard instance for sparse sketches) is ours, not the paper's.
"""
from __future__ import annotations

import math

import jax
import numpy as np

from sparsejax.core.validation import check_array, check_int, check_key, check_number, check_same_length
from sparsejax.sketch.solvers import sketch_and_solve

__all__ = ["linf_sketch_size", "linf_regression", "linf_error_ratio", "gaussian_instance", "spiky_instance"]


def linf_sketch_size(n: int, d: int, eps: float, delta: float = 0.01) -> int:
    """The paper's sketch size m = ⌈ε⁻² d log³(n/δ)⌉ (constant 1, natural logarithm)."""
    n, d = check_int("n", n, minimum=1), check_int("d", d, minimum=1)
    eps = check_number("eps", eps, minimum=0, maximum=1, min_inclusive=False)
    delta = check_number("delta", delta, minimum=0, maximum=1, min_inclusive=False, max_inclusive=False)
    return math.ceil(d * math.log(n / delta) ** 3 / eps ** 2)


def linf_regression(key, A, b, eps: float | None = None, delta: float = 0.01, m: int | None = None,
                    kind: str = "srht"):
    """x′ = argmin ‖S(Ax − b)‖₂ with m = :func:`linf_sketch_size` (or the given ``m``) rows of ``kind``.

    Raises ``ValueError`` when that m is not smaller than the (padded) number of rows: then the
    sketch buys nothing; pass a smaller ``m`` explicitly (the guarantee then holds with the ε that
    solves m = ε⁻² d log³(n/δ)).
    """
    check_array("A", A, ndim=2)
    n, d = A.shape
    if (eps is None) == (m is None):
        raise ValueError(f"give exactly one of eps and m, got eps={eps!r}, m={m!r}")
    if m is None:
        m = linf_sketch_size(n, d, eps, delta)
        if m >= n:
            raise ValueError(f"the paper's sketch size m={m} for eps={eps}, n={n}, d={d} is not below n; "
                             "pass m explicitly")
    return sketch_and_solve(check_key("key", key), A, b, m, kind)


def linf_error_ratio(A, b, x) -> float:
    """η = ‖x − x*‖∞·√d / (‖Ax* − b‖₂·‖A†‖₂), with x* and σ_min(A) in float64 (NumPy)."""
    check_array("A", A, ndim=2)
    check_same_length(A=A, b=b)
    A64, b64, x64 = (np.asarray(v, np.float64) for v in (A, b, x))
    xstar = np.linalg.lstsq(A64, b64, rcond=None)[0]
    resid = np.linalg.norm(A64 @ xstar - b64)
    if resid == 0:
        raise ValueError("b lies in the range of A (zero residual): the ℓ∞ ratio is undefined")
    sigma_min = np.linalg.svd(A64, compute_uv=False)[-1]
    return float(np.max(np.abs(x64 - xstar)) * math.sqrt(A.shape[1]) * sigma_min / resid)


def _with_orthogonal_residual(A, xstar, r, norm: float | None = None):
    """b = A x* + (I − P_A) r (rescaled to ``norm``), so that x* is exactly the least-squares solution."""
    q, _ = np.linalg.qr(A)
    r = r - q @ (q.T @ r)
    if norm is not None:
        r *= norm / np.linalg.norm(r)
    return A @ xstar + r


def gaussian_instance(key, n: int, d: int, residual_norm: float = 1.0):
    """Instance I1: Gaussian A (n × d), x* Gaussian, residual ⟂ range(A) of norm ``residual_norm``.

    Returns float64 NumPy ``(A, b, x_star)``."""
    check_key("key", key)
    n, d = check_int("n", n, minimum=2), check_int("d", d, minimum=1)
    if d >= n:
        raise ValueError(f"need d < n, got d={d}, n={n}")
    k1, k2, k3 = jax.random.split(key, 3)
    A = np.asarray(jax.random.normal(k1, (n, d)), np.float64)
    xstar = np.asarray(jax.random.normal(k2, (d,)), np.float64)
    r = np.asarray(jax.random.normal(k3, (n,)), np.float64)
    return A, _with_orthogonal_residual(A, xstar, r, residual_norm), xstar


def spiky_instance(key, n: int, d: int, q: int, noise: float = 1e-3):
    """Instance I2 (ours): A = [I_d; 0] + ``noise``·Gaussian, residual of unit norm on ``q`` spikes of
    height 1/√q in rows ≥ d (projected ⟂ range(A)). A sparse sketch that hashes a spike onto an
    identity row moves that coordinate by ≈ 1/√q, i.e. η ≈ √(d/q); a dense sketch spreads the spikes.

    Returns float64 NumPy ``(A, b, x_star)``."""
    check_key("key", key)
    n, d, q = check_int("n", n, minimum=2), check_int("d", d, minimum=1), check_int("q", q, minimum=1)
    if d + q > n:
        raise ValueError(f"need d + q <= n, got d={d}, q={q}, n={n}")
    k1, k2, k3, k4 = jax.random.split(key, 4)
    A = np.zeros((n, d))
    A[:d] = np.eye(d)
    A += noise * np.asarray(jax.random.normal(k1, (n, d)), np.float64)
    rows = d + np.asarray(jax.random.choice(k2, n - d, (q,), replace=False))
    r = np.zeros(n)
    r[rows] = np.asarray(jax.random.rademacher(k3, (q,)), np.float64) / math.sqrt(q)
    xstar = np.asarray(jax.random.normal(k4, (d,)), np.float64)
    b = _with_orthogonal_residual(A, xstar, r)
    return A, b, xstar
