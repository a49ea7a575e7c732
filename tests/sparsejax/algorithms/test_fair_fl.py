"""Local/global disparity PID, AGLFOP and FedAvg (P35)."""
import numpy as np
import pytest
from scipy.optimize import linprog

from sparsejax.algorithms.fair_fl import (
    aglfop, disparities, fedavg_logistic, federated_synthetic, predict_logistic, szy_distribution,
)
from sparsejax.algorithms.pid import conditional_mutual_information, mutual_information


@pytest.fixture(scope="module")
def scenarios():
    rng = np.random.default_rng(0)
    return {split: federated_synthetic(rng, n_per_class=300, split=split) for split in ("iid", "heterogeneity",
                                                                                      "synergy")}


def _lp_error(p, global_zero, local_zero):
    """Independent LP (scipy HiGHS) for the eps = 0 corners: demographic parity as linear equalities."""
    n_s = p.shape[0]
    idx = np.arange(n_s * 8).reshape(n_s, 2, 2, 2)
    a_eq, b_eq = [], []
    for s in range(n_s):
        for z in range(2):
            for y in range(2):
                row = np.zeros(idx.size)
                row[idx[s, z, y]] = 1
                a_eq.append(row)
                b_eq.append(p[s, z, y])
    pz, pz_s = p.sum((0, 2)), p.sum(2) / p.sum((1, 2))[:, None]
    if global_zero:  # P(z, ŷ=1) = P(z) P(ŷ=1)
        for z in range(2):
            row = np.zeros(idx.size)
            row[idx[:, z, :, 1].ravel()] += 1
            row[idx[:, :, :, 1].ravel()] -= pz[z]
            a_eq.append(row)
            b_eq.append(0.0)
    if local_zero:  # P(s, z, ŷ=1) = P(z|s) P(s, ŷ=1)
        for s in range(n_s):
            for z in range(2):
                row = np.zeros(idx.size)
                row[idx[s, z, :, 1]] += 1
                row[idx[s, :, :, 1].ravel()] -= pz_s[s, z]
                a_eq.append(row)
                b_eq.append(0.0)
    c = np.zeros(idx.size)
    c[idx[:, :, 0, 1].ravel()] = c[idx[:, :, 1, 0].ravel()] = 1
    return linprog(c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=(0, None), method="highs").fun


def test_aglfop_corners_match_independent_lp(scenarios):
    for x, y, z, s in scenarios.values():
        p = szy_distribution(s, z, y)
        assert aglfop(p, None, None).error == pytest.approx(0.0, abs=1e-7)  # unconstrained Bayes error is 0
        for g, l in ((True, False), (False, True), (True, True)):
            res = aglfop(p, 0.0 if g else None, 0.0 if l else None)
            assert res.error == pytest.approx(_lp_error(p, g, l), abs=1e-6)


def test_aglfop_feasible_and_monotone_in_eps(scenarios):
    x, y, z, s = scenarios["heterogeneity"]
    p = szy_distribution(s, z, y)
    grid = [0.0, 0.01, 0.05, 0.2, 0.5]
    errs = np.zeros((len(grid), len(grid)))
    for i, eg in enumerate(grid):
        for j, el in enumerate(grid):
            res = aglfop(p, eg, el)
            errs[i, j] = res.error
            assert res.global_disparity <= eg + 1e-6 and res.local_disparity <= el + 1e-6
            np.testing.assert_allclose(res.q.sum(3), p, atol=1e-7)  # the data marginal is kept
            zys = np.transpose(res.q.sum(2), (1, 2, 0))
            assert res.global_disparity == pytest.approx(mutual_information(zys.sum(2)))
            assert res.local_disparity == pytest.approx(conditional_mutual_information(zys))
    assert (np.diff(errs, axis=0) <= 1e-6).all() and (np.diff(errs, axis=1) <= 1e-6).all()
    # small eps approaches the exact eps = 0 corner from below
    assert aglfop(p, 1e-6, None).error <= aglfop(p, 0.0, None).error + 1e-7
    assert aglfop(p, 1e-6, None).error >= aglfop(p, 0.0, None).error - 0.01


def test_local_fairness_vs_global_under_heterogeneity(scenarios):
    # heterogeneity: the best locally fair classifier is globally unfair, by at most I(Z;S) (Red <= I(Z;S))
    x, y, z, s = scenarios["heterogeneity"]
    p = szy_distribution(s, z, y)
    i_zs = mutual_information(p.sum(2).T)
    res = aglfop(p, None, 0.0)
    assert 0.1 < res.global_disparity <= i_zs + 1e-7
    d = disparities(joint=np.transpose(res.q.sum(2), (1, 2, 0)))
    assert d.redundant == pytest.approx(d.global_, abs=1e-5)  # locally fair => global = Red
    # synergy split: a globally fair optimum is locally unfair (masked disparity)
    x, y, z, s = scenarios["synergy"]
    res = aglfop(szy_distribution(s, z, y), 0.0, None)
    d = disparities(joint=np.transpose(res.q.sum(2), (1, 2, 0)))
    assert d.local > 0.02 and d.masked == pytest.approx(d.local, abs=1e-5)


def test_fedavg_audit_identities(scenarios):
    for split, (x, y, z, s) in scenarios.items():
        w = fedavg_logistic([(x[s == k], y[s == k]) for k in (0, 1)], rounds=20, local_steps=3)
        yhat = predict_logistic(w, x)
        assert (yhat == y).mean() > 0.8
        d = disparities(z, yhat, s)
        assert d.unique + d.redundant == pytest.approx(d.global_, abs=1e-12)
        assert d.unique + d.masked == pytest.approx(d.local, abs=1e-12)
        assert d.global_ - d.local <= d.i_z_s + 1e-7


def test_fedavg_with_one_local_step_is_pooled_gradient_descent():
    # one local step per round: FedAvg = full-batch GD on the pooled data (size-weighted gradient average)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 3)), (rng.random(60) < 0.5).astype(float)
    fed = np.asarray(fedavg_logistic([(x[:20], y[:20]), (x[20:], y[20:])], rounds=30, local_steps=1, lr=0.3))
    w = np.zeros(4)
    xb = np.hstack([x, np.ones((60, 1))])
    for _ in range(30):
        w -= 0.3 * xb.T @ (1 / (1 + np.exp(-xb @ w)) - y) / 60
    np.testing.assert_allclose(fed, w, atol=1e-5)


def test_bad_input():
    p = np.full((2, 2, 2), 1 / 8)
    with pytest.raises(ValueError, match="eps_global"):
        aglfop(p, -0.1, None)
    with pytest.raises(ValueError, match="probability"):
        aglfop(p * 2, None, None)
    with pytest.raises(ValueError, match="split"):
        federated_synthetic(np.random.default_rng(0), split="bad")
    with pytest.raises(ValueError, match="rounds"):
        fedavg_logistic([(np.ones((2, 2)), np.ones(2))], rounds=0)
    with pytest.raises(ValueError, match="needs"):
        disparities(np.array([0]), np.array([0]))
