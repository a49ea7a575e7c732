"""P31 KroSBL: Kronecker posterior == dense posterior, AM monotone in the SBL cost, exact M-steps, exact
recovery on easy noiseless instances, the IRS-MIMO generator's closed form, the baselines."""
import numpy as np
import pytest

from sparsejax.recovery import (
    am_update, classic_sbl, irs_mimo_problem, kro_sbl, kron_all, kron_matvec, kron_omp, kron_posterior,
    kron_sparse_problem, nmse, oracle_ls, sbl_cost, support_recovery_rate, svd_update,
)


def _complex_problem(rng, m, n):
    As = [rng.standard_normal((mi, ni)) + 1j * rng.standard_normal((mi, ni)) for mi, ni in zip(m, n)]
    gammas = [rng.uniform(0.05, 3.0, ni) for ni in n]
    y = rng.standard_normal(int(np.prod(m))) + 1j * rng.standard_normal(int(np.prod(m)))
    return As, gammas, y


@pytest.mark.parametrize("m,n", [((3, 4, 2), (5, 4, 3)), ((4, 3), (6, 5))])
def test_kron_posterior_equals_dense(m, n):
    rng = np.random.default_rng(1)
    As, gammas, y = _complex_problem(rng, m, n)
    s2 = 0.37
    mu, var = kron_posterior(y, As, gammas, s2)
    h, g = kron_all(As), np.diag(kron_all(gammas))
    sy = s2 * np.eye(h.shape[0]) + h @ g @ h.conj().T
    sigma = g - g @ h.conj().T @ np.linalg.solve(sy, h @ g)
    np.testing.assert_allclose(mu, sigma @ h.conj().T @ y / s2, atol=1e-10, rtol=0)
    np.testing.assert_allclose(var, np.real(np.diag(sigma)), atol=1e-10, rtol=0)
    dense_cost = np.linalg.slogdet(sy)[1] + np.real(y.conj() @ np.linalg.solve(sy, y))
    assert sbl_cost(y, As, gammas, s2) == pytest.approx(dense_cost, abs=1e-9)
    v = rng.standard_normal(int(np.prod(n)))
    np.testing.assert_allclose(kron_matvec(As, v), h @ v, atol=1e-10)


def test_am_cost_is_monotone_without_pruning():
    p = kron_sparse_problem(3, n=7, m=(4, 5, 5), k=2, snr_db=15.0)
    costs = []
    kro_sbl(p["y"], p["A"], p["noise_var"], method="am", prune=0.0, max_iter=40,
            callback=lambda it, gs: costs.append(sbl_cost(p["y"], p["A"], gs, p["noise_var"])))
    costs = np.asarray(costs)
    assert len(costs) >= 5
    assert np.all(np.diff(costs) <= 1e-9 * np.abs(costs[:-1]))
    assert costs[-1] < costs[0]


def test_m_steps_are_exact_on_rank_one_lambda():
    rng = np.random.default_rng(2)
    factors = [rng.uniform(0.1, 2.0, n) for n in (4, 3, 5)]
    lam = kron_all(factors)
    np.testing.assert_allclose(kron_all(svd_update(lam, (4, 3, 5))), lam, rtol=1e-12)
    am = am_update(lam, [np.ones(4) / 2, np.ones(3) / np.sqrt(3), np.full(5, 2 * np.sqrt(3))], tol=1e-14)
    np.testing.assert_allclose(kron_all(am), lam, rtol=1e-9)
    assert np.linalg.norm(am[0]) == pytest.approx(1.0) and np.linalg.norm(am[1]) == pytest.approx(1.0)


def test_am_update_minimises_the_em_surrogate_in_every_factor():
    """At the AM output every factor minimises Q(gamma) = sum log gamma + Lambda / gamma given the others."""
    rng = np.random.default_rng(4)
    lam = rng.uniform(0.1, 1.0, 3 * 4 * 2)
    out = am_update(lam, [np.ones(3) / np.sqrt(3), np.ones(4) / 2, np.full(2, np.sqrt(12))], tol=1e-13)

    def q(gs):
        g = kron_all(gs)
        return np.sum(np.log(g) + lam / g)

    base = q(out)
    for _ in range(30):
        i = rng.integers(3)
        trial = list(out)
        trial[i] = out[i] * rng.uniform(0.8, 1.25, out[i].size)
        assert q(trial) >= base - 1e-10


@pytest.mark.parametrize("method", ["am", "svd"])
def test_noiseless_easy_instance_exact_support(method):
    p = kron_sparse_problem(5, n=8, m=(7, 7, 7), k=2, snr_db=80.0)
    out = kro_sbl(p["y"], p["A"], p["noise_var"], method=method)
    assert support_recovery_rate(out["x"], p["x"]) == 1.0
    assert nmse(out["x"], p["x"]) < 1e-5


def test_baselines_exact_on_noiseless_instance():
    p = kron_sparse_problem(3, n=8, m=(12, 12, 12), k=2, snr_db=100.0)
    h = kron_all(p["A"])
    assert nmse(kron_omp(p["y"], p["A"], [3, 3, 3], epsilon=1e-9)["x"], p["x"]) < 1e-8
    assert nmse(oracle_ls(p["y"], h, p["support"]), p["x"]) < 1e-10
    p = kron_sparse_problem(1, n=6, m=(7, 7, 7), k=2, snr_db=80.0)
    out = classic_sbl(p["y"], kron_all(p["A"]), p["noise_var"])
    assert support_recovery_rate(out["x"], p["x"]) == 1.0


def test_irs_generator_closed_form_matches_physical_channel():
    q = irs_mimo_problem(7, irs_elements=64, resolution=12, snr_db=20.0)
    h1, h2, pilot, phi = q["phys"]
    direct = np.concatenate([(h2 @ np.diag(phi[:, i]) @ h1 @ pilot).reshape(-1, order="F") for i in range(phi.shape[1])])
    np.testing.assert_allclose(q["y_physical"], direct, atol=1e-12)
    np.testing.assert_allclose(kron_matvec(q["A"], q["x"]), q["y_physical"], atol=1e-9 * np.abs(direct).max())
    assert q["support"].size == 3 * 1 * 3  # angle spread 3 at the IRS and at the BS, one MS angle
    assert q["y"].shape == (6 * 3 * 16,)


def test_bad_inputs_raise():
    p = kron_sparse_problem(0, n=5, m=(3, 3, 3), k=1)
    with pytest.raises(ValueError, match="y"):
        kro_sbl(p["y"][:-1], p["A"], p["noise_var"])
    with pytest.raises(ValueError, match="method"):
        kro_sbl(p["y"], p["A"], p["noise_var"], method="em")
    with pytest.raises(ValueError, match="noise_var"):
        kro_sbl(p["y"], p["A"], 0.0)
    with pytest.raises(ValueError, match="prune"):
        kro_sbl(p["y"], p["A"], 1.0, prune=(0.1, 0.1))
    with pytest.raises(ValueError, match="A"):
        kro_sbl(p["y"], p["A"][0], 1.0)
