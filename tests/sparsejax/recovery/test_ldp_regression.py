"""P10 LDP sparse regression: noise scales equal the Gaussian-mechanism formula at the exact sensitivities,
aggregate-noise simulation has the per-user law, unbiased statistics, eps = inf gives the exact support."""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from sparsejax.recovery import (
    closed_form_estimate, covariance_sensitivity, cross_sensitivity, gaussian_sigma, hard_threshold, ldp_iht,
    nldp_estimate, noise_scales, privatize, soft_threshold, sparse_regression_data, user_sums,
)


def test_gaussian_sigma_formula_and_split_budget():
    assert gaussian_sigma(3.0, 0.5, 1e-5) == pytest.approx(3.0 * math.sqrt(2 * math.log(1.25e5)) / 0.5)
    assert gaussian_sigma(3.0, math.inf, 1e-5) == 0.0
    s_xx, s_xy = noise_scales(6, 2.0, 1e-6, 1.5, 2.0)
    assert s_xx == pytest.approx(math.sqrt(2) * 6 * 1.5**2 * math.sqrt(2 * math.log(1.25 / 5e-7)) / 1.0)
    assert s_xy == pytest.approx(2 * math.sqrt(6) * 1.5 * 2.0 * math.sqrt(2 * math.log(1.25 / 5e-7)) / 1.0)
    assert noise_scales(6, 2.0, 1e-6, 1.5, 2.0, public=True) == (0.0, pytest.approx(
        2 * math.sqrt(6) * 3.0 * math.sqrt(2 * math.log(1.25e6)) / 2.0))


def test_sensitivities_are_the_worst_case():
    d, tau = 4, 1.5
    corners = [tau * np.array(s) for s in itertools.product([-1.0, 1.0], repeat=d)]
    worst = max(np.linalg.norm(np.outer(a, a) - np.outer(b, b)) for a in corners for b in corners)
    assert worst == pytest.approx(covariance_sensitivity(d, tau))  # attained (even d, orthogonal signs)
    rng = np.random.default_rng(0)
    for _ in range(500):  # interior points never exceed it
        a, b = rng.uniform(-tau, tau, (2, d))
        assert np.linalg.norm(np.outer(a, a) - np.outer(b, b)) <= covariance_sensitivity(d, tau) + 1e-12
        ya, yb = rng.uniform(-2, 2, 2)
        assert np.linalg.norm(a * ya - b * yb) <= cross_sensitivity(d, tau, 2.0) + 1e-12
    a = np.full(d, tau)
    assert np.linalg.norm(a * 2.0 - (-a) * 2.0) == pytest.approx(cross_sensitivity(d, tau, 2.0))


def test_released_noise_has_the_formula_scale_and_is_unbiased():
    rng = np.random.default_rng(1)
    d, n, eps, delta = 3, 50, 1.0, 1e-5
    x, y, _ = sparse_regression_data(rng, n, d, 1)
    sxx, sxy, _ = user_sums(x, y, 1.0, 3.0)
    draws = [privatize(sxx, sxy, n, d, eps, delta, 1.0, 3.0, rng) for _ in range(4000)]
    sig = np.stack([s for s, _ in draws])
    c = np.stack([c for _, c in draws])
    s_xx, s_xy = noise_scales(d, eps, delta, 1.0, 3.0)
    assert np.allclose(sig, np.swapaxes(sig, 1, 2))
    assert sig[:, 0, 1].std() == pytest.approx(s_xx / math.sqrt(n), rel=0.05)
    assert sig[:, 1, 1].std() == pytest.approx(s_xx / math.sqrt(n), rel=0.05)
    assert c[:, 2].std() == pytest.approx(s_xy / math.sqrt(n), rel=0.05)
    se = s_xx / math.sqrt(n) / math.sqrt(len(draws))
    assert np.all(np.abs(sig.mean(0) - sxx / n) < 4.5 * se)  # E[Sigma^] = mean x~ x~^T


def test_aggregate_noise_matches_per_user_noise():
    rng = np.random.default_rng(2)
    d, n = 2, 20
    zeros = np.zeros((d, d)), np.zeros(d)
    agg = [privatize(*zeros, n, d, 1.0, 1e-3, 1.0, 1.0, rng) for _ in range(400)]
    per = [privatize(*zeros, n, d, 1.0, 1e-3, 1.0, 1.0, rng, per_user=True) for _ in range(400)]
    for get in (lambda t: t[0][0, 1], lambda t: t[0][1, 1], lambda t: t[1][0]):
        assert ks_2samp([get(t) for t in agg], [get(t) for t in per]).pvalue > 1e-3


@pytest.mark.parametrize("mode", ["topk", "soft", "public", "iht"])
def test_infinite_eps_recovers_the_support(mode):
    rng = np.random.default_rng(3)
    x, y, theta = sparse_regression_data(rng, 4000, 12, 3, noise_std=0.05)
    if mode == "iht":
        est = ldp_iht(x, y, math.inf, 1e-6, 3, 1.0, 4.0, rng, steps=8)
    else:
        est = nldp_estimate(x, y, math.inf, 1e-6, 1.0, 4.0, rng, k=3 if mode != "soft" else None,
                            lam=0.1 if mode == "soft" else None, public_x=x[:2000] if mode == "public" else None)
    assert set(np.flatnonzero(est)) == set(np.flatnonzero(theta))


def test_thresholds():
    v = np.array([3.0, -0.5, 1.2, -2.0, 0.1])
    np.testing.assert_allclose(soft_threshold(v, 1.0), np.sign(v) * np.maximum(np.abs(v) - 1.0, 0), rtol=1e-6)
    np.testing.assert_array_equal(hard_threshold(v, 2), [3.0, 0, 0, -2.0, 0])
    sig = np.diag([1.0, -1.0])  # indefinite: the floored eigenvalue replaces -1
    np.testing.assert_allclose(closed_form_estimate(sig, np.array([2.0, 1.0]), k=2, eig_floor=0.5), [2.0, 2.0])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="eps"):
        gaussian_sigma(1.0, 0.0, 1e-5)
    with pytest.raises(ValueError, match="delta"):
        gaussian_sigma(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="k"):
        closed_form_estimate(np.eye(2), np.ones(2), k=1, lam=0.1)
    with pytest.raises(ValueError, match="y"):
        user_sums(np.ones((3, 2)), np.ones(4), 1.0, 1.0)
