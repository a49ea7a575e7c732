"""Sinkhorn-Newton-Sparse (Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao & Ying,
"Accelerating Sinkhorn algorithm with sparse Newton iterations", ICLR 2024; P29).

Entropic OT ``min_P <C, P> - eps H(P)`` s.t. ``P 1 = a``, ``P^T 1 = b`` is solved on its dual, the
concave Lyapunov potential (paper eq. 3, written with ``eta = 1/eps`` and ott-jax's potentials
``f = x - eps``, ``g = y``)::

    L(f, g) = <a, f> + <b, g> - eps sum_ij exp((f_i + g_j - C_ij) / eps),
    grad L  = (a - P 1, b - P^T 1),       P_ij = exp((f_i + g_j - C_ij) / eps),
    -hess L = (1/eps) [[diag(P 1), P], [P^T, diag(P^T 1)]].

Algorithm 1 of the paper, in log domain:

1. *Sinkhorn stage* (matrix scaling) with early stopping: ott-jax's
   :class:`~ott.solvers.linear.sinkhorn.Sinkhorn` runs until the marginal error is below
   ``switch_threshold`` or ``max_sinkhorn_iterations`` iterations.
2. *Newton stage*: ``M = Sparsify(-hess L, rho)`` keeps the diagonal blocks and the
   ``ceil(rho n m)`` largest entries of ``P`` in the off-diagonal blocks (Alg. 1 / Sec. 4; the
   approximate sparsity of the Hessian is the paper's Theorem 1), the Newton direction solves
   ``M dz = grad L`` by (Jacobi-preconditioned) conjugate gradient on the sparse matrix (O(nnz) per
   CG step), and a backtracking Armijo line search on ``L`` picks the step. The stage stops when the
   marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` is at most ``threshold`` (converged), after
   ``max_newton_iterations`` steps, or when the line search cannot increase ``L`` (stalled).

The line search evaluates the *increment* ``L(z + t dz) - L(z) = t <(a, b), dz> - eps sum_ij P_ij
expm1(t (df_i + dg_j) / eps)``, which stays accurate in float32 near the optimum.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn


class SparsePlan(NamedTuple):
    """The kept entries of a transport plan: ``P[rows[k], cols[k]] = values[k]``."""

    rows: jax.Array
    cols: jax.Array
    values: jax.Array


def num_kept(shape: Tuple[int, int], sparsity: float) -> int:
    """Number of off-diagonal Hessian entries kept: ``ceil(sparsity * n * m)`` (at least ``max(n, m)``)."""
    n, m = shape
    return int(min(n * m, max(math.ceil(sparsity * n * m), max(n, m))))


def sparsify(plan: jax.Array, k: int, *, bisection_steps: int = 48) -> SparsePlan:
    """Keep the (at most) ``k`` largest entries of ``plan``: the paper's ``Sparsify`` by truncation.

    The truncation level ``tau`` is found by bisection on ``log P`` so that ``#{P_ij >= tau} <= k``
    (O(nm) per step; a full sort / ``top_k`` of the n*m entries is far slower on CPU). With distinct
    values exactly ``k`` entries are kept; unused slots are padded with zero values.
    """
    m = plan.shape[1]
    logp = jnp.log(plan)
    finite = jnp.isfinite(logp)
    hi = jnp.max(jnp.where(finite, logp, -jnp.inf))
    lo = jnp.min(jnp.where(finite, logp, jnp.inf))

    def step(_, bounds):
        lo, hi = bounds  # invariant: count(logp >= hi) <= k
        mid = 0.5 * (lo + hi)
        few = jnp.sum(logp >= mid) <= k
        return jnp.where(few, lo, mid), jnp.where(few, mid, hi)

    lo = lo - 1.0
    count_lo_ok = jnp.sum(logp >= lo) <= k
    _, hi = jax.lax.fori_loop(0, bisection_steps, step, (lo, hi))
    level = jnp.where(count_lo_ok, lo, hi)
    (flat,) = jnp.nonzero((logp >= level).reshape(-1), size=k, fill_value=0)
    valid = jnp.arange(k) < jnp.sum(logp >= level)
    values = jnp.where(valid, plan.reshape(-1)[flat], 0.0)
    return SparsePlan(flat // m, flat % m, values)


def sparse_hessian_matvec(sp: SparsePlan, row_sums, col_sums, epsilon, v):
    """``M v`` for ``M = (1/eps) [[diag(row_sums), P_s], [P_s^T, diag(col_sums)]]``, ``v = (v_f, v_g)``."""
    vf, vg = v
    pf = jax.ops.segment_sum(sp.values * vg[sp.cols], sp.rows, num_segments=vf.shape[0])
    pg = jax.ops.segment_sum(sp.values * vf[sp.rows], sp.cols, num_segments=vg.shape[0])
    return (row_sums * vf + pf) / epsilon, (col_sums * vg + pg) / epsilon


def lyapunov(geom: geometry.Geometry, a, b, f, g) -> jax.Array:
    """The concave Lyapunov (dual) potential ``L(f, g)`` (paper eq. 3 in ott-jax's potentials)."""
    eps = geom.epsilon
    log_mass = jax.nn.logsumexp(geom._center(f, g) / eps)
    return jnp.dot(a, f) + jnp.dot(b, g) - eps * jnp.exp(log_mass)


def marginal_error(geom: geometry.Geometry, a, b, f, g) -> jax.Array:
    """``||P 1 - a||_1 + ||P^T 1 - b||_1`` for ``P = exp((f + g - C)/eps)``."""
    plan = geom.transport_from_potentials(f, g)
    return jnp.sum(jnp.abs(plan.sum(1) - a)) + jnp.sum(jnp.abs(plan.sum(0) - b))


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass
class SNSOutput:
    """Result of :class:`SinkhornNewtonSparse` (fields in ott-jax's naming).

    ``errors[i]`` is the marginal error after total iteration ``error_iterations[i]`` (Sinkhorn
    stage: ott-jax's error, recorded every ``inner_iterations``; Newton stage: both marginals, every
    step); entries equal to ``-1`` were not run.
    """

    f: jax.Array
    g: jax.Array
    ot_prob: linear_problem.LinearProblem
    errors: jax.Array
    error_iterations: jax.Array
    converged: jax.Array
    n_sinkhorn_iters: jax.Array
    n_newton_iters: jax.Array

    def tree_flatten(self):
        fields = dataclasses.fields(self)
        return tuple(getattr(self, f.name) for f in fields), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    @property
    def geom(self) -> geometry.Geometry:
        return self.ot_prob.geom

    @property
    def n_iters(self) -> jax.Array:
        """Total iterations: Sinkhorn stage plus Newton stage."""
        return self.n_sinkhorn_iters + self.n_newton_iters

    @property
    def matrix(self) -> jax.Array:
        """The transport plan ``P = exp((f + g - C) / eps)``."""
        return self.geom.transport_from_potentials(self.f, self.g)

    @property
    def marginal_error(self) -> jax.Array:
        """Final ``||P 1 - a||_1 + ||P^T 1 - b||_1``."""
        return marginal_error(self.geom, self.ot_prob.a, self.ot_prob.b, self.f, self.g)

    @property
    def primal_cost(self) -> jax.Array:
        """Transport cost ``<C, P>``."""
        return jnp.sum(self.matrix * self.geom.cost_matrix)

    @property
    def dual_cost(self) -> jax.Array:
        """``L(f, g) + eps``: the entropic OT value when the marginals are exact (ott-jax convention)."""
        return lyapunov(self.geom, self.ot_prob.a, self.ot_prob.b, self.f, self.g) + self.geom.epsilon


def check_balanced(prob: linear_problem.LinearProblem, rtol: float = 1e-5) -> None:
    """Raise ``ValueError`` unless ``prob`` is balanced and ``a``, ``b`` have equal total mass."""
    if not prob.is_balanced:
        raise ValueError(f"SinkhornNewtonSparse solves balanced problems; got tau_a={prob.tau_a}, tau_b={prob.tau_b}")
    try:
        sa, sb = float(jnp.sum(prob.a)), float(jnp.sum(prob.b))
    except jax.errors.ConcretizationTypeError:
        return  # traced weights: the check runs on the caller's side
    if abs(sa - sb) > rtol * max(abs(sa), abs(sb), 1e-30):
        raise ValueError(f"a and b must have the same total mass, got sum(a)={sa:.6g} and sum(b)={sb:.6g}")
    if float(jnp.min(prob.a)) < 0 or float(jnp.min(prob.b)) < 0:
        raise ValueError("a and b must be non-negative")


@dataclasses.dataclass(frozen=True)
class SinkhornNewtonSparse:
    """Sinkhorn-Newton-Sparse solver (Algorithm 1 of P29), called like ott-jax's ``Sinkhorn``.

    Args:
      threshold: stop when ``||P 1 - a||_1 + ||P^T 1 - b||_1 <= threshold``.
      sparsity: ``rho``, the fraction of entries of ``P`` kept in the sparsified Hessian.
      switch_threshold: early stopping of the Sinkhorn stage (ott-jax's marginal error).
      max_sinkhorn_iterations: cap of the Sinkhorn stage (``N_1``).
      max_newton_iterations: cap of the Newton stage (``N_2``).
      inner_iterations: how often the Sinkhorn stage records its error (ott-jax's meaning).
      cg_tol, cg_maxiter: relative tolerance and cap of each conjugate-gradient solve.
      armijo, backtrack, max_line_search: Armijo constant, step shrink factor, max halvings.
    """

    threshold: float = 1e-6
    sparsity: float = 0.05
    switch_threshold: float = 5e-2
    max_sinkhorn_iterations: int = 1000
    max_newton_iterations: int = 100
    inner_iterations: int = 10
    cg_tol: float = 1e-6
    cg_maxiter: int = 200
    armijo: float = 1e-4
    backtrack: float = 0.5
    max_line_search: int = 30

    def __post_init__(self):
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"sparsity must lie in (0, 1], got {self.sparsity}")
        if not self.threshold > 0 or not self.switch_threshold > 0:
            raise ValueError("threshold and switch_threshold must be > 0")
        if self.max_sinkhorn_iterations < 1 or self.max_newton_iterations < 0:
            raise ValueError("max_sinkhorn_iterations must be >= 1 and max_newton_iterations >= 0")
        if not 0.0 < self.backtrack < 1.0:
            raise ValueError(f"backtrack must lie in (0, 1), got {self.backtrack}")

    def __call__(self, prob: linear_problem.LinearProblem, init: Optional[Tuple[jax.Array, jax.Array]] = None) -> SNSOutput:
        """Solve the balanced entropic problem ``prob``; ``init`` = optional ``(f, g)`` to warm-start."""
        if not isinstance(prob, linear_problem.LinearProblem):
            raise TypeError(f"expected an ott LinearProblem, got {type(prob).__name__}")
        check_balanced(prob)
        return _solve(self, prob, init)

    # -- stages ---------------------------------------------------------------------------------
    def sinkhorn_stage(self, prob, init):
        """Stage 1: ott-jax Sinkhorn with early stopping at ``switch_threshold``."""
        solver = sinkhorn.Sinkhorn(
            threshold=self.switch_threshold, max_iterations=self.max_sinkhorn_iterations,
            inner_iterations=self.inner_iterations, implicit_diff=None,
        )
        return solver(prob, init=init)

    def newton_step(self, prob, f, g, k: int):
        """One sparse Newton step: direction by CG on the sparsified Hessian, then Armijo line search.

        Returns ``(f_new, g_new, accepted)``.
        """
        geom, a, b = prob.geom, prob.a, prob.b
        eps = geom.epsilon
        plan = geom.transport_from_potentials(f, g)
        row, col = plan.sum(1), plan.sum(0)
        grad = (a - row, b - col)
        sp = sparsify(plan, k)
        matvec = lambda v: sparse_hessian_matvec(sp, row, col, eps, v)  # noqa: E731
        tiny = jnp.finfo(plan.dtype).tiny
        precond = lambda v: (v[0] * eps / (row + tiny), v[1] * eps / (col + tiny))  # noqa: E731
        direction, _ = cg(matvec, grad, tol=self.cg_tol, maxiter=self.cg_maxiter, M=precond)
        df, dg = direction
        slope = jnp.dot(grad[0], df) + jnp.dot(grad[1], dg)
        lin = jnp.dot(a, df) + jnp.dot(b, dg)
        dsum = df[:, None] + dg[None, :]

        def increment(t):
            return t * lin - eps * jnp.sum(plan * jnp.expm1(t * dsum / eps))

        def ls_cond(state):
            t, i, ok = state
            return jnp.logical_and(jnp.logical_not(ok), i < self.max_line_search)

        def ls_body(state):
            t, i, _ = state
            gain = increment(t)
            ok = jnp.logical_and(jnp.isfinite(gain), gain >= self.armijo * t * slope)
            return jnp.where(ok, t, t * self.backtrack), i + 1, ok

        one = jnp.ones((), plan.dtype)
        t, _, ok = jax.lax.while_loop(ls_cond, ls_body, (one, jnp.zeros((), jnp.int32), jnp.zeros((), bool)))
        ok = jnp.logical_and(ok, slope > 0)
        t = jnp.where(ok, t, 0.0)
        return f + t * df, g + t * dg, ok


def _solve_impl(solver: SinkhornNewtonSparse, prob: linear_problem.LinearProblem, init):
    geom, a, b = prob.geom, prob.a, prob.b
    out = solver.sinkhorn_stage(prob, init)
    records = out.errors.reshape(-1)
    n_sink = out.n_iters.astype(jnp.int32)
    newton_pad = jnp.full((solver.max_newton_iterations,), -1, jnp.int32)
    hist = jnp.concatenate([records, newton_pad.astype(records.dtype)])
    sink_its = (jnp.arange(records.shape[0], dtype=jnp.int32) + 1) * solver.inner_iterations
    its = jnp.concatenate([jnp.where(records >= 0, sink_its, -1), newton_pad])
    k = num_kept(geom.shape, solver.sparsity)
    n_done_records = jnp.sum(records >= 0).astype(jnp.int32)
    err0 = marginal_error(geom, a, b, out.f, out.g)

    def cond(state):
        f, g, err, i, ok, _, _ = state
        return (err > solver.threshold) & (i < solver.max_newton_iterations) & ok

    def body(state):
        f, g, err, i, _, hist, its = state
        f, g, ok = solver.newton_step(prob, f, g, k)
        err = marginal_error(geom, a, b, f, g)
        hist = hist.at[n_done_records + i].set(err)
        its = its.at[n_done_records + i].set(n_sink + i + 1)
        return f, g, err, i + 1, ok, hist, its

    init_state = (out.f, out.g, err0, jnp.zeros((), jnp.int32), jnp.ones((), bool), hist, its)
    f, g, err, n_newton, _, hist, its = jax.lax.while_loop(cond, body, init_state)
    return SNSOutput(
        f=f, g=g, ot_prob=prob, errors=hist, error_iterations=its, converged=err <= solver.threshold,
        n_sinkhorn_iters=n_sink, n_newton_iters=n_newton,
    )


_solve = jax.jit(_solve_impl, static_argnums=0)
