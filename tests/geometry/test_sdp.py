import cvxpy as cp
import numpy as np
import pytest

from geometry.sdp import SDPError, psd, solve


@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
def test_largest_eigenvalue_as_sdp(solver):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 5))
    a = a + a.T
    t = cp.Variable()
    value = solve(cp.Problem(cp.Minimize(t), [psd(t * np.eye(5) - a)]), solver=solver, eps=1e-7)
    assert value == pytest.approx(np.linalg.eigvalsh(a).max(), abs=1e-4)


def test_infeasible_and_unbounded_raise_with_the_name():
    x = cp.Variable((2, 2), symmetric=True)
    with pytest.raises(SDPError, match="toy: infeasible"):
        solve(cp.Problem(cp.Minimize(cp.trace(x)), [psd(x), cp.trace(x) == -1]), name="toy")
    with pytest.raises(SDPError, match="unbounded"):
        solve(cp.Problem(cp.Minimize(x[0, 1]), [psd(x)]))


def test_inaccurate_status_is_an_error_unless_allowed():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 20))
    x = cp.Variable((20, 20), symmetric=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(a + a.T, x))), [psd(x), cp.trace(x) == 1])
    with pytest.raises(SDPError, match="not solved to tolerance"):
        solve(prob, solver="SCS", eps=1e-9, options={"max_iters": 50})
    assert prob.status == cp.OPTIMAL_INACCURATE
    rough = solve(prob, solver="SCS", eps=1e-9, options={"max_iters": 50}, allow_inaccurate=True)
    exact = solve(prob, solver="CLARABEL")
    assert exact == pytest.approx(np.linalg.eigvalsh(a + a.T).min(), abs=1e-5)
    assert np.isfinite(rough)


def test_bad_arguments():
    x = cp.Variable((2, 3))
    with pytest.raises(ValueError, match="square"):
        psd(x)
    with pytest.raises(ValueError, match="solver"):
        solve(cp.Problem(cp.Minimize(0)), solver="MOSEK")
    with pytest.raises(TypeError, match="problem"):
        solve("not a problem")
