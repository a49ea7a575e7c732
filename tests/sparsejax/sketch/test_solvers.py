"""Sketch-and-solve, sketch-preconditioned least squares and IRLS ℓp regression."""
import jax
import numpy as np
import pytest
import scipy.optimize

from sparsejax.sketch import SKETCHES, lp_regression, preconditioned_lstsq, sketch_and_solve

RNG = np.random.default_rng(4)
A = RNG.normal(size=(256, 6))
B = A @ RNG.normal(size=6) + RNG.standard_t(3, size=256)
XSTAR = np.linalg.lstsq(A, B, rcond=None)[0]
OPT = np.linalg.norm(A @ XSTAR - B)


@pytest.mark.parametrize("kind", SKETCHES)
def test_sketch_and_solve_is_within_one_plus_eps_of_optimum(kind):
    for s in range(3):
        x = np.asarray(sketch_and_solve(jax.random.PRNGKey(s), A.astype(np.float32), B.astype(np.float32), 120, kind))
        assert np.linalg.norm(A @ x - B) <= 1.25 * OPT, (kind, s)


@pytest.mark.parametrize("kind", ["countsketch", "srht"])
def test_preconditioned_lstsq_matches_lstsq(kind):
    x = preconditioned_lstsq(jax.random.PRNGKey(1), A.astype(np.float32), B.astype(np.float32), 24, kind, tol=1e-6)
    np.testing.assert_allclose(x, XSTAR, rtol=1e-3, atol=1e-4)


def test_preconditioned_lstsq_ignores_zero_padding_rows():
    Ap, bp = A.copy(), B.copy()
    Ap[200:], bp[200:] = 0.0, 0.0            # padding rows, as in the gathered P26 regressions
    x = preconditioned_lstsq(jax.random.PRNGKey(2), Ap.astype(np.float32), bp.astype(np.float32), 24, tol=1e-6)
    np.testing.assert_allclose(x, np.linalg.lstsq(A[:200], B[:200], rcond=None)[0], rtol=1e-3, atol=1e-4)


def test_solver_bad_input():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="m must be >= d"):
        sketch_and_solve(key, A, B, 3)
    with pytest.raises(ValueError, match="m must be"):
        preconditioned_lstsq(key, A, B, 2)
    with pytest.raises(ValueError, match="length"):
        sketch_and_solve(key, A, B[:-1], 20)
    with pytest.raises(ValueError, match="p must be"):
        lp_regression(A, B, 0.5)


def _lp_objective(x, p):
    return np.sum(np.abs(A @ x - B) ** p)


def _lp_reference(p):
    return scipy.optimize.minimize(_lp_objective, XSTAR, args=(p,), method="BFGS", options={"gtol": 1e-8}).x


def test_lp_regression_matches_scipy_minimize():
    p = 4.0
    x = np.asarray(lp_regression(A.astype(np.float32), B.astype(np.float32), p, iters=60), np.float64)
    assert _lp_objective(x, p) <= _lp_objective(_lp_reference(p), p) * (1 + 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("p", [1.5, 3.0])
def test_sketched_lp_regression_matches_scipy_minimize(p):
    ref = _lp_objective(_lp_reference(p), p)
    for key in (None, jax.random.PRNGKey(0)):
        x = np.asarray(lp_regression(A.astype(np.float32), B.astype(np.float32), p, iters=60, key=key), np.float64)
        assert _lp_objective(x, p) <= ref * (1 + 1e-3), key


def test_l1_regression_matches_linprog():
    n, d = A.shape
    c = np.concatenate([np.zeros(d), np.ones(n)])
    a_ub = np.block([[A, -np.eye(n)], [-A, -np.eye(n)]])
    res = scipy.optimize.linprog(c, A_ub=a_ub, b_ub=np.concatenate([B, -B]),
                                 bounds=[(None, None)] * d + [(0, None)] * n, method="highs")
    x = np.asarray(lp_regression(A.astype(np.float32), B.astype(np.float32), 1.0, iters=100), np.float64)
    assert _lp_objective(x, 1.0) <= res.fun * (1 + 1e-3)
