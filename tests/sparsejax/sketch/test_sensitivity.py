"""ℓp sensitivities and sensitivity sampling (P11)."""
import jax
import numpy as np
import pytest

from sparsejax.sketch import (
    estimate_distortion, leverage_scores, lewis_sensitivity_bound, lp_sensitivities, sample_size_bound,
    sampled_lp_norm, sensitivity_sample,
)

RNG = np.random.default_rng(7)
A = RNG.normal(size=(40, 3))
A[:3] *= 5.0  # a few heavy rows, so sensitivities are far from uniform


def test_p2_sensitivities_equal_leverage_scores_and_sum_to_d():
    lev = np.asarray(leverage_scores(A.astype(np.float32)))
    s_irls = lp_sensitivities(A, 2.0, method="irls", iters=3)   # the generic constrained-minimum path
    np.testing.assert_allclose(s_irls, lev, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lp_sensitivities(A, 2.0), lev, rtol=1e-4, atol=1e-6)
    assert abs(s_irls.sum() - 3) < 1e-4


def test_p1_lp_sensitivities_are_the_supremum():
    s = lp_sensitivities(A, 1.0)
    # s_i >= |a_i x| / ||Ax||_1 for every x (definition as a sup) ...
    X = RNG.normal(size=(3, 2000))
    ratios = np.abs(A @ X) / np.abs(A @ X).sum(0)
    assert np.all(ratios.max(1) <= s * (1 + 1e-6))
    # ... and IRLS (smoothed) reaches the same optimum as the LP
    np.testing.assert_allclose(lp_sensitivities(A, 1.0, method="irls", iters=100), s, rtol=1e-2)
    assert 1 <= s.sum() <= 3 + 1e-6


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_sensitivities_invariant_under_right_multiplication_and_bounded(p):
    R = RNG.normal(size=(3, 3))
    s = lp_sensitivities(A, p)
    np.testing.assert_allclose(lp_sensitivities(A @ R, p), s, rtol=2e-3)
    assert s.sum() <= (3 if p <= 2 else 3 ** (p / 2)) + 1e-6
    assert np.all(s <= lewis_sensitivity_bound(A, p) * (1 + 1e-3))


def test_sensitivity_sampling_is_unbiased():
    p, x = 3.0, RNG.normal(size=3)
    scores = lp_sensitivities(A, p)
    _, w = sensitivity_sample(jax.random.PRNGKey(0), scores, 8.0, p, n_draws=20000)
    est = np.asarray(sampled_lp_norm(A, x, w, p))        # one estimate per draw
    truth = np.sum(np.abs(A @ x) ** p)
    assert abs(est.mean() - truth) < 4 * est.std() / np.sqrt(est.size)
    assert np.std(est) > 0


def test_sensitivity_sample_probabilities_and_weights():
    scores = np.array([10.0, 1.0, 1.0, 1.0])
    keep, w = sensitivity_sample(jax.random.PRNGKey(1), scores, 2.0, 2.0, n_draws=4000)
    keep, w = np.asarray(keep), np.asarray(w)
    assert keep[:, 0].all() and np.allclose(w[:, 0], 1.0)                  # pi = min(1, 2*10/13) = 1
    assert abs(keep[:, 1:].mean() - 2 / 13) < 0.01
    np.testing.assert_allclose(w[:, 1:][keep[:, 1:]], (2 / 13) ** -0.5, rtol=1e-5)
    assert np.all(w[~keep] == 0)
    with pytest.raises(ValueError, match="scores"):
        sensitivity_sample(jax.random.PRNGKey(1), np.array([1.0, -1.0]), 1.0, 2.0)


def test_estimate_distortion_is_exact_for_uniform_scaling_and_a_lower_bound():
    p = 3.0
    c = 1.3
    assert abs(estimate_distortion(jax.random.PRNGKey(0), A, np.full(40, c), p, 8, 50) - (c ** p - 1)) < 1e-3
    _, w = sensitivity_sample(jax.random.PRNGKey(2), lp_sensitivities(A, p), 10.0, p)
    est = estimate_distortion(jax.random.PRNGKey(0), A, w, p, 8, 50)
    X = RNG.normal(size=(3, 500))
    ratio = np.sum((np.asarray(w)[:, None] * np.abs(A @ X)) ** p, 0) / np.sum(np.abs(A @ X) ** p, 0)
    assert est >= np.max(np.abs(ratio - 1)) - 1e-3


def test_sample_size_bound_and_bad_input():
    assert sample_size_bound(8.0, 4, 4.0, 0.5) == pytest.approx(8.0 ** 1.5 / 0.25)
    assert sample_size_bound(3.0, 4, 1.0, 0.5) == pytest.approx(4 ** 0.5 * 3.0 / 0.25)
    with pytest.raises(ValueError, match="needs p == 1"):
        lp_sensitivities(A, 3.0, method="lp")
    with pytest.raises(ValueError, match="method"):
        lp_sensitivities(A, 3.0, method="newton")
    with pytest.raises(ValueError, match="full column rank"):
        lp_sensitivities(np.ones((10, 2)), 1.0)
