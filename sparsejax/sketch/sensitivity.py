"""ℓp sensitivities and sensitivity sampling (P11: Woodruff & Yasuda, "Sharper Bounds for ℓp
Sensitivity Sampling", ICML 2023).

Definitions: the ℓp sensitivity of row i of A (n × d) is
s_i = sup_x abs(a_iᵀx)ᵖ / ‖Ax‖ₚᵖ = 1 / min{‖Ax‖ₚᵖ : a_iᵀx = 1}, the total sensitivity S = Σ s_i.
For p = 2 they are the leverage scores (S = d); S ≤ d for p ≤ 2 and S ≤ d^{p/2} for p > 2.

Sampling (:func:`sensitivity_sample`): keep row i independently with probability
π_i = min(1, m·s_i/Σs) and weight π_i^{−1/p}, so E‖SAx‖ₚᵖ = ‖Ax‖ₚᵖ for every x.

Sample size (:func:`sample_size_bound`, log factors dropped): for p > 2 the paper's
m = ε⁻² S^{2−2/p} (improving the generic ε⁻² S·d). Correction to the abstract: arXiv v2 notes
that its p < 2 results are subsumed by Chen & Derezinski 2021, m = ε⁻² d^{1−p/2} S, which is what
this function returns for p < 2 (and ε⁻² d at p = 2).

Computation (:func:`lp_sensitivities`): p = 1 by one linear program per row
(``scipy.optimize.linprog``, HiGHS), in its dual form max{λ : Qᵀu = λ q_i, ‖u‖∞ ≤ 1}; other p by (damped)
IRLS (:mod:`sparsejax.sketch.solvers`) on the reparametrisation x = a_i/‖a_i‖² + N z with N a
basis of a_i^⊥, vmapped over rows in JAX (float32 unless x64 is on; an approximate minimum, so
IRLS slightly under-estimates s_i). Both run on an orthonormal basis Q of range(A), which leaves
sensitivities unchanged (they are invariant under A → AR). Approximate sensitivities
(:func:`lewis_sensitivity_bound`): the upper bounds s_i ≤ w_i (p ≤ 2) and s_i ≤ d^{p/2−1} w_i
(p > 2) from the ℓp Lewis weights w. :func:`estimate_distortion` estimates
sup_x abs(‖SAx‖ₚᵖ/‖Ax‖ₚᵖ − 1) by multi-start Adam ascent on ± the log ratio (a lower bound on the
true supremum, which is non-convex; our choice of estimator).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize
import scipy.sparse

from sparsejax.core.validation import check_array, check_choice, check_int, check_key, check_number
from sparsejax.sketch.solvers import _irls
from sparsejax.sketch.transforms import lewis_weights

__all__ = ["lp_sensitivities", "lewis_sensitivity_bound", "sensitivity_sample", "sampled_lp_norm",
           "sample_size_bound", "estimate_distortion"]


def _basis(A):
    check_array("A", A, ndim=2)
    A = np.asarray(A, np.float64)
    if np.linalg.matrix_rank(A) < A.shape[1]:
        raise ValueError(f"A must have full column rank, got shape {A.shape}")
    return np.linalg.qr(A)[0]


def _l1_sensitivities(q):
    """1/s_i = min{‖Qx‖₁ : q_iᵀx = 1} = max{λ : Qᵀu = λ q_i, ‖u‖∞ ≤ 1} (LP duality; the dual has only
    d equality rows, so HiGHS solves it much faster than the primal)."""
    n, d = q.shape
    c = np.zeros(n + 1)
    c[-1] = -1.0
    bounds = [(-1.0, 1.0)] * n + [(None, None)]
    out = np.empty(n)
    for i in range(n):
        res = scipy.optimize.linprog(c, A_eq=np.column_stack([q.T, -q[i]]), b_eq=np.zeros(d), bounds=bounds,
                                     method="highs")
        if res.status != 0:
            raise RuntimeError(f"linprog failed on row {i}: {res.message}")
        out[i] = -1.0 / res.fun
    return out


@partial(jax.jit, static_argnames=("iters",))
def _irls_sensitivities(q, p, iters: int):
    n, d = q.shape
    keys = jax.random.split(jax.random.PRNGKey(0), iters + 1)

    def one(a):
        x0 = a / jnp.sum(a * a)
        # orthonormal basis of a^⊥: the last d-1 columns of a full QR of [a, I]
        null = jnp.linalg.qr(jnp.column_stack([a, jnp.eye(d, dtype=q.dtype)]), mode="complete")[0][:, 1:d]
        z = _irls(q @ null, -(q @ x0), p, jnp.asarray(1e-8, q.dtype), keys, d, "countsketch", False)
        return 1.0 / jnp.sum(jnp.abs(q @ (x0 + null @ z)) ** p)

    return jax.lax.map(one, q)


def lp_sensitivities(A, p: float, method: str = "auto", iters: int = 100):
    """ℓp sensitivities of the rows of ``A`` (n × d, full column rank).

    ``method``: ``"lp"`` (p = 1 only; exact up to HiGHS tolerance), ``"irls"`` (any p ≥ 1),
    ``"leverage"`` (p = 2 only; closed form) or ``"auto"`` (lp for p = 1, leverage for p = 2,
    irls otherwise). Returns a float64 NumPy array."""
    p = check_number("p", p, minimum=1)
    method = check_choice("method", method, ("auto", "lp", "irls", "leverage"))
    iters = check_int("iters", iters, minimum=1)
    q = _basis(A)
    if method == "auto":
        method = "lp" if p == 1 else "leverage" if p == 2 else "irls"
    if method == "lp":
        if p != 1:
            raise ValueError(f"method 'lp' needs p == 1, got p={p}")
        return _l1_sensitivities(q)
    if method == "leverage":
        if p != 2:
            raise ValueError(f"method 'leverage' needs p == 2, got p={p}")
        return np.sum(q * q, axis=1)
    qj = jnp.asarray(q, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    return np.asarray(_irls_sensitivities(qj, jnp.asarray(p, qj.dtype), iters), np.float64)


def lewis_sensitivity_bound(A, p: float, iters: int = 100):
    """Upper bounds on the ℓp sensitivities from Lewis weights: w_i for p ≤ 2, d^{p/2−1}·w_i for p > 2."""
    p = check_number("p", p, minimum=0, min_inclusive=False)
    w = np.asarray(lewis_weights(jnp.asarray(_basis(A), jnp.float32), p, iters), np.float64)
    return w * max(1.0, A.shape[1] ** (p / 2 - 1))


def sensitivity_sample(key, scores, m: float, p: float, n_draws: int | None = None):
    """Independent sampling by ``scores``: keep row i w.p. π_i = min(1, m·s_i/Σs) with weight π_i^{−1/p}.

    Returns ``(keep, weights)`` (bool (n,), float (n,) with 0 for dropped rows; with ``n_draws``,
    that many independent draws of shape (n_draws, n)); the expected number of kept rows is
    Σπ_i ≤ m. ``scores`` must be positive and finite (uniform sampling: all ones)."""
    check_key("key", key)
    check_array("scores", scores, ndim=1)
    scores = jnp.asarray(scores, jnp.float32)
    if not bool(jnp.all(jnp.isfinite(scores)) & jnp.all(scores > 0)):
        raise ValueError("scores must be positive and finite")
    m = check_number("m", m, minimum=0, min_inclusive=False)
    p = check_number("p", p, minimum=0, min_inclusive=False)
    prob = jnp.minimum(1.0, m * scores / jnp.sum(scores))
    shape = scores.shape if n_draws is None else (check_int("n_draws", n_draws, minimum=1),) + scores.shape
    keep = jax.random.uniform(key, shape) < prob
    return keep, jnp.where(keep, prob ** (-1.0 / p), 0.0)


def sampled_lp_norm(A, x, weights, p: float):
    """‖SAx‖ₚᵖ = Σ_i weights_i^p abs(a_iᵀx)^p for S = diag(weights); ``weights`` (n,) or (B, n) gives (B,)."""
    return jnp.sum((jnp.asarray(weights) * jnp.abs(jnp.asarray(A) @ jnp.asarray(x))) ** p, axis=-1)


def sample_size_bound(total_sensitivity: float, d: int, p: float, eps: float) -> float:
    """Leading-order sample size (no log factors): ε⁻² S^{2−2/p} for p > 2 (P11), ε⁻² d^{1−p/2} S for
    p ≤ 2 (Chen & Derezinski 2021, which the paper's v2 defers to)."""
    S = check_number("total_sensitivity", total_sensitivity, minimum=0, min_inclusive=False)
    d = check_int("d", d, minimum=1)
    p = check_number("p", p, minimum=1)
    eps = check_number("eps", eps, minimum=0, min_inclusive=False)
    return (S ** (2 - 2 / p) if p > 2 else d ** (1 - p / 2) * S) / eps ** 2


@partial(jax.jit, static_argnames=("n_starts", "steps"))
def _distortion(key, A, weights, p, n_starts: int, steps: int):
    d = A.shape[1]
    starts = jax.random.normal(key, (n_starts, d), A.dtype)
    opt = optax.adam(0.05)

    def log_ratio(x):
        return jnp.log(jnp.sum((weights * jnp.abs(A @ x)) ** p) + 1e-30) - jnp.log(jnp.sum(jnp.abs(A @ x) ** p))

    def ascend(x, sign):
        def body(carry, _):
            x, state = carry
            g = jax.grad(lambda y: -sign * log_ratio(y))(x)
            upd, state = opt.update(g, state)
            x = optax.apply_updates(x, upd)
            return (x / jnp.linalg.norm(x), state), None

        (x, _), _ = jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
        return log_ratio(x)

    hi = jnp.max(jax.vmap(ascend, in_axes=(0, None))(starts, 1.0))
    lo = jnp.min(jax.vmap(ascend, in_axes=(0, None))(starts, -1.0))
    return jnp.maximum(jnp.expm1(hi), -jnp.expm1(lo))


def estimate_distortion(key, A, weights, p: float, n_starts: int = 16, steps: int = 100):
    """A lower estimate of sup_x abs(‖SAx‖ₚᵖ/‖Ax‖ₚᵖ − 1) (S = diag(weights)) by multi-start Adam ascent
    on ± the log ratio, on an orthonormal basis of range(A). ``weights``: (n,) for one sample (returns a
    float) or (B, n) for B samples at once (returns a NumPy array of B distortions)."""
    check_key("key", key)
    p = check_number("p", p, minimum=1)
    check_array("weights", weights, ndim=(1, 2))
    if weights.shape[-1] != A.shape[0]:
        raise ValueError(f"weights must have {A.shape[0]} entries per sample (rows of A), got shape {weights.shape}")
    q = jnp.asarray(_basis(A), jnp.float32)
    n_starts, steps = check_int("n_starts", n_starts, minimum=1), check_int("steps", steps, minimum=1)
    w = jnp.asarray(weights, jnp.float32)
    fn = jax.vmap(_distortion, in_axes=(0, None, 0, None, None, None))
    out = fn(jax.random.split(key, w.reshape(-1, w.shape[-1]).shape[0]), q, w.reshape(-1, w.shape[-1]),
             jnp.asarray(p, jnp.float32), n_starts, steps)
    return float(out[0]) if w.ndim == 1 else np.asarray(out)
