"""Tester-learner for halfspaces (P1): gradient formula, error formulas, completeness, soundness."""
import jax
import numpy as np
import pytest

from sparsejax.algorithms.testable_halfspaces import (
    adversarial_eta, calibrate_thresholds, expected_error, gaussian_error, massart_eta, sample_labels,
    surrogate_gradients, surrogate_loss,
)
from sparsejax.algorithms.testable_halfspaces import tester_learner as run_tester_learner  # not a pytest test
from sparsejax.algorithms.testable_halfspaces import tester_statistics as statistics_of

D, N = 5, 12000  # tester_learner splits N into 6000 train / 6000 test


@pytest.fixture(scope="module")
def thresholds():
    return calibrate_thresholds(np.random.default_rng(123), N // 2, D, sigma=0.1, delta=0.05, draws=300)


def _w_star():
    w = np.random.default_rng(99).standard_normal(D)
    return w / np.linalg.norm(w)


def test_surrogate_gradient_formula_equals_jax_grad():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, D)), np.where(rng.random(50) < 0.5, -1.0, 1.0)
    w = rng.standard_normal(D)
    w /= np.linalg.norm(w)
    auto = np.asarray(jax.grad(surrogate_loss)(w, x, y, 0.2))
    np.testing.assert_allclose(surrogate_gradients(w, x, y, 0.2).mean(0), auto, rtol=1e-5, atol=1e-7)


def test_error_formulas():
    w_star = _w_star()
    rng = np.random.default_rng(1)
    w = w_star + 0.5 * rng.standard_normal(D)
    theta = np.arccos(w @ w_star / np.linalg.norm(w))
    err = gaussian_error(w, w_star, lambda t: massart_eta(t, 0.2))
    assert err == pytest.approx(0.2 + 0.6 * theta / np.pi, abs=2e-3)  # closed form for constant eta
    assert gaussian_error(w_star, w_star, lambda t: adversarial_eta(t, 0.05)) == pytest.approx(0.05, abs=2e-3)
    x = rng.standard_normal((4000, D))
    eta = massart_eta(x @ w_star, 0.3, "boundary")
    assert expected_error(w_star, x, w_star, eta) == pytest.approx(eta.mean())  # opt = E[eta] for Massart
    y = sample_labels(rng, x, w_star, eta)
    assert np.mean(y != np.where(x @ w_star >= 0, 1, -1)) == pytest.approx(eta.mean(), abs=0.02)


def test_label_free_tests_accept_gaussian_with_probability_one_minus_delta(thresholds):
    # fresh Gaussian samples, random directions w independent of them
    rng = np.random.default_rng(2)
    accept = []
    for _ in range(100):
        w = rng.standard_normal(D)
        s = statistics_of(rng.standard_normal((N // 2, D)), None, w, 0.1)
        accept.append(all(s[k] <= thresholds[k] for k in s))
    assert np.mean(accept) >= 1 - 0.05 - 3 * np.sqrt(0.05 * 0.95 / 100)


def test_accepts_gaussian_massart_and_is_near_optimal(thresholds):
    w_star = _w_star()
    rng = np.random.default_rng(3)
    for seed, (eta_max, kind) in enumerate([(0.0, "constant"), (0.2, "constant"), (0.3, "boundary")]):
        x = rng.standard_normal((N, D))
        y = sample_labels(rng, x, w_star, massart_eta(x @ w_star, eta_max, kind))
        res = run_tester_learner(jax.random.PRNGKey(seed), x, y, thresholds, steps=600, restarts=2)
        assert res.accepted, res.failed
        fn = lambda t: massart_eta(t, eta_max, kind)
        assert gaussian_error(res.w, w_star, fn, n_mc=200_000) <= gaussian_error(w_star, w_star, fn, n_mc=200_000) + 0.05
        if eta_max == 0.0:
            assert np.arccos(np.clip(res.w @ w_star, -1, 1)) < 0.05  # noiseless: angle to w*


def test_adversarial_flips_accepted_and_within_opt_plus_eps(thresholds):
    w_star = _w_star()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, D))
    fn = lambda t: adversarial_eta(t, 0.05)
    res = run_tester_learner(jax.random.PRNGKey(7), x, sample_labels(rng, x, w_star, fn(x @ w_star)), thresholds,
                             steps=600, restarts=2)
    assert res.accepted, res.failed
    assert gaussian_error(res.w, w_star, fn, n_mc=200_000) <= 0.05 + 0.05  # opt = err(w*) = 0.05


def test_rejects_non_gaussian_marginals(thresholds):
    w_star = _w_star()
    rng = np.random.default_rng(4)
    g = rng.standard_normal((N, D))
    v = np.eye(D)[0]
    cases = {"anisotropic": g + np.outer(g @ v, v),  # variance 4 along e1
             "squeezed": g - 0.95 * np.outer((rng.random(N) < 0.3) * (g @ w_star), w_star)}  # mass on the boundary
    for name, x in cases.items():
        eta = massart_eta(x @ w_star, 0.1)
        res = run_tester_learner(jax.random.PRNGKey(0), x, sample_labels(rng, x, w_star, eta), thresholds,
                                 steps=600, restarts=2)
        assert not res.accepted, name
        assert "cov" in res.failed, (name, res.failed)


def test_bad_input(thresholds):
    with pytest.raises(ValueError, match="eta_max"):
        massart_eta(np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="w"):
        statistics_of(np.zeros((10, D)), None, np.zeros(D))
    with pytest.raises(ValueError, match="calibrated"):
        run_tester_learner(jax.random.PRNGKey(0), np.zeros((10, D)), np.ones(10), thresholds)
    with pytest.raises(ValueError, match="labels"):
        run_tester_learner(jax.random.PRNGKey(0), np.zeros((10, D)), np.zeros(10), thresholds)
    with pytest.raises(ValueError, match="opt"):
        adversarial_eta(np.zeros(3), 0.9)
