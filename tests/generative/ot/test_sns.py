"""Sinkhorn-Newton-Sparse (P29) against ott-jax's Sinkhorn, sparsification, input checks."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ott.geometry import pointcloud
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

from generative.ot import SinkhornNewtonSparse, marginal_error, num_kept, sparse_hessian_matvec, sparsify


def _problem(n, m, eps, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=(n, 2)).astype(dtype), rng.uniform(size=(m, 2)).astype(dtype)
    a = rng.uniform(0.5, 1.5, size=n).astype(dtype)
    b = rng.uniform(0.5, 1.5, size=m).astype(dtype)
    a, b = a / a.sum(), b / b.sum()
    return linear_problem.LinearProblem(pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=eps),
                                        a=jnp.asarray(a), b=jnp.asarray(b))


def _centred(f, g):
    shift = jnp.mean(f)
    return f - shift, g + shift


def test_matches_ott_sinkhorn_float64_non_square():
    """Potentials (up to the constant shift) and plan equal ott-jax's at tight tolerance."""
    with jax.enable_x64(True):
        prob = _problem(70, 45, 0.02, dtype=np.float64)
        out = SinkhornNewtonSparse(threshold=1e-11, sparsity=0.2, max_newton_iterations=60)(prob)
        ref = jax.jit(sinkhorn.Sinkhorn(threshold=1e-13, max_iterations=20000))(prob)
        assert bool(out.converged) and bool(ref.converged)
        assert out.f.dtype == jnp.float64 and out.matrix.shape == (70, 45)
        f, g = _centred(out.f, out.g)
        fr, gr = _centred(ref.f, ref.g)
        np.testing.assert_allclose(f, fr, atol=1e-8)
        np.testing.assert_allclose(g, gr, atol=1e-8)
        np.testing.assert_allclose(out.matrix, ref.matrix, atol=1e-11)
        assert float(out.marginal_error) <= 1e-11
        assert int(out.n_iters) == int(out.n_sinkhorn_iters) + int(out.n_newton_iters)
        assert int(out.n_newton_iters) >= 1
        assert float(out.primal_cost) == pytest.approx(float(ref.primal_cost), rel=1e-8)


_OTT_REFERENCE = jax.jit(sinkhorn.Sinkhorn(threshold=1e-6, max_iterations=20000))


@settings(max_examples=8, deadline=None)
@given(log_eps=st.floats(-2.0, -0.5), seed=st.integers(0, 1000))
def test_random_problems_float32(log_eps, seed):
    """Random non-square problems (fixed shape: one compilation): marginals within the threshold,
    plan close to ott-jax's."""
    prob = _problem(24, 17, 10.0**log_eps, seed)
    out = SinkhornNewtonSparse(threshold=1e-4, sparsity=0.3, max_newton_iterations=100)(prob)
    assert bool(out.converged)
    plan = out.matrix
    err = jnp.abs(plan.sum(1) - prob.a).sum() + jnp.abs(plan.sum(0) - prob.b).sum()
    assert float(err) <= 1e-4
    ref = _OTT_REFERENCE(prob)
    np.testing.assert_allclose(plan, ref.matrix, atol=2e-5)
    hist = np.asarray(out.newton_errors)
    recorded = hist[hist >= 0]
    if len(recorded):
        assert recorded[-1] == pytest.approx(float(out.marginal_error), abs=1e-5)


def test_full_hessian_newton_converges_superlinearly():
    """With sparsity=1 the Newton stage is inexact Newton with forcing term sqrt(err): order >= 1.5."""
    with jax.enable_x64(True):
        prob = _problem(60, 60, 0.05, seed=3, dtype=np.float64)
        out = SinkhornNewtonSparse(threshold=1e-12, sparsity=1.0, mass_tol=None, switch_threshold=1e-2,
                                   max_sinkhorn_iterations=1000, cg_tol=1e-12)(prob)
        errs = np.asarray(out.newton_errors)
        newton = errs[errs >= 0]
        assert bool(out.converged) and 1 <= len(newton) <= 5
        big = newton[newton > 1e-10]
        assert len(big) >= 2 and np.all(big[1:] <= 50.0 * big[:-1] ** 1.5)


@settings(max_examples=6, deadline=None)
@given(shape=st.sampled_from([(3, 8), (16, 11)]), rho=st.floats(0.0, 1.0, exclude_min=True), seed=st.integers(0, 99))
def test_sparsify_keeps_requested_fraction_of_largest_entries(shape, rho, seed):
    n, m = shape
    plan = jnp.asarray(np.random.default_rng(seed).permutation(n * m).reshape(n, m) + 1.0, jnp.float32)
    k = num_kept((n, m), rho)
    assert k == min(n * m, max(math.ceil(rho * n * m), max(n, m)))
    sp, _ = sparsify(plan, k)
    assert sp.values.shape == (k,)
    np.testing.assert_array_equal(plan[sp.rows, sp.cols], sp.values)
    np.testing.assert_array_equal(np.sort(np.asarray(sp.values)), np.sort(np.asarray(plan).ravel())[-k:])


def test_sparse_hessian_matvec_equals_dense_hessian():
    rng = np.random.default_rng(0)
    plan = jnp.asarray(rng.uniform(size=(7, 5)), jnp.float32)
    sp, _ = sparsify(plan, 35)
    row, col, eps = plan.sum(1), plan.sum(0), 0.3
    dense = jnp.block([[jnp.diag(row), plan], [plan.T, jnp.diag(col)]]) / eps
    v = (jnp.asarray(rng.normal(size=7), jnp.float32), jnp.asarray(rng.normal(size=5), jnp.float32))
    out = sparse_hessian_matvec(sp, row, col, eps, v)
    np.testing.assert_allclose(jnp.concatenate(out), dense @ jnp.concatenate(v), rtol=1e-5)
    # a truncated Hessian drops exactly the off-diagonal entries that were not kept
    sp, _ = sparsify(plan, 10)
    kept = jnp.zeros_like(plan).at[sp.rows, sp.cols].set(sp.values)
    dense = jnp.block([[jnp.diag(row), kept], [kept.T, jnp.diag(col)]]) / eps
    out = sparse_hessian_matvec(sp, row, col, eps, v)
    np.testing.assert_allclose(jnp.concatenate(out), dense @ jnp.concatenate(v), rtol=1e-5)


def test_jit_of_solver_call_and_marginal_error_helper():
    prob = _problem(20, 30, 0.1)
    solver = SinkhornNewtonSparse(threshold=1e-5, sparsity=0.5)
    out = jax.jit(lambda p: solver(p))(prob)
    assert bool(out.converged)
    assert float(marginal_error(prob.geom, prob.a, prob.b, out.f, out.g)) <= 1e-5


def test_bad_input_raises():
    prob = _problem(10, 12, 0.1)
    bad = linear_problem.LinearProblem(prob.geom, a=prob.a, b=2.0 * prob.b)
    with pytest.raises(ValueError, match="same total mass"):
        SinkhornNewtonSparse()(bad)
    unbalanced = linear_problem.LinearProblem(prob.geom, a=prob.a, b=prob.b, tau_a=0.5)
    with pytest.raises(ValueError, match="balanced"):
        SinkhornNewtonSparse()(unbalanced)
    with pytest.raises(ValueError, match="sparsity"):
        SinkhornNewtonSparse(sparsity=0.0)
    with pytest.raises(ValueError, match="sparsity"):
        SinkhornNewtonSparse(sparsity=1.5)
    with pytest.raises(TypeError, match="LinearProblem"):
        SinkhornNewtonSparse()(prob.geom)


def test_sparsify_by_mass_keeps_fewest_entries_holding_the_mass_and_warm_start_agrees():
    rng = np.random.default_rng(1)
    plan = jnp.asarray(rng.exponential(size=(12, 9)) ** 4, jnp.float64 if jax.config.x64_enabled else jnp.float32)
    flat = np.sort(np.asarray(plan).ravel())[::-1]
    need = int(np.searchsorted(np.cumsum(flat), 0.9 * flat.sum()) + 1)  # fewest largest entries with 90% mass
    sp, level = sparsify(plan, 108, mass_tol=0.1)
    kept = int(np.sum(np.asarray(sp.values) > 0))
    assert kept == need
    assert np.asarray(sp.values).sum() >= 0.9 * float(plan.sum()) * (1 - 1e-6)
    sp2, level2 = sparsify(plan, 108, mass_tol=0.1, level_hint=level + 0.5, bisection_steps=40)
    assert int(np.sum(np.asarray(sp2.values) > 0)) == need
    assert need >= 4
    capped, _ = sparsify(plan, need - 2, mass_tol=0.1)  # the cap wins over the mass rule
    assert int(np.sum(np.asarray(capped.values) > 0)) == need - 2


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_sns_beats_sinkhorn_iterations_at_small_eps_and_matches_ott_costs():
    """The paper's core claim on a small problem: converged, and far fewer iterations than Sinkhorn."""
    from generative.ot import compare_with_sinkhorn

    with jax.enable_x64(True):
        prob = _problem(120, 120, 2e-3, seed=4, dtype=np.float64)
        sns = SinkhornNewtonSparse(threshold=1e-8)
        res = compare_with_sinkhorn(prob, sns, repeats=1)
        assert res["both_converged"] and res["sns_converged"]
        assert res["iteration_ratio"] > 10, res["iteration_ratio"]
        out = sns(prob)
        ref = jax.jit(sinkhorn.Sinkhorn(threshold=1e-10, max_iterations=50000))(prob)
        assert float(out.reg_ot_cost) == pytest.approx(float(ref.reg_ot_cost), rel=1e-6)
        assert float(out.ent_reg_cost) == pytest.approx(float(ref.ent_reg_cost), rel=1e-6)
        np.testing.assert_allclose(out.marginal(1), out.a, atol=1e-8)
        np.testing.assert_allclose(out.marginal(0), out.b, atol=1e-8)
        pots = out.to_dual_potentials()
        x = prob.geom.x[:3]
        np.testing.assert_allclose(pots.transport(x), ref.to_dual_potentials().transport(x), atol=1e-4)
        # warm start from the solution: no Sinkhorn progress needed, at most one Newton step
        again = sns(prob, init=(out.f, out.g))
        assert bool(again.converged) and int(again.n_newton_iters) <= 1
        # a ratio is never reported for a run that did not converge
        stalled = compare_with_sinkhorn(prob, SinkhornNewtonSparse(threshold=1e-8, max_newton_iterations=0), repeats=1)
        assert not stalled["sns_converged"] and stalled["iteration_ratio"] is None and stalled["time_ratio"] is None
