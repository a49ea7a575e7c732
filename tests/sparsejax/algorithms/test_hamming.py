"""P6: every exact Hamming method equals brute force; the approximations keep their bounds."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sparsejax.algorithms import (
    EXACT_METHODS, hamming_abrahamson, hamming_approx_kp, hamming_approx_sampled, hamming_brute,
    hamming_distances, hamming_fft, hamming_k_bounded, hamming_packed, packed_threshold,
)


def reference(text, pattern):
    m = len(pattern)
    return np.array([int(np.sum(text[i:i + m] != pattern)) for i in range(len(text) - m + 1)])


@st.composite
def strings(draw):
    n = draw(st.integers(1, 48))
    m = draw(st.integers(1, n))
    sigma = draw(st.sampled_from([1, 2, 3, 5, 40, 1000]))
    offset = draw(st.sampled_from([0, -7, 2 ** 40]))  # negative and > int32 characters
    text = np.array(draw(st.lists(st.integers(0, sigma - 1), min_size=n, max_size=n))) + offset
    pattern = np.array(draw(st.lists(st.integers(0, sigma - 1), min_size=m, max_size=m))) + offset
    return text, pattern


@settings(max_examples=40, deadline=None)
@given(strings(), st.sampled_from([None, 0.0, 1.0, 3.0]))
def test_exact_methods_equal_brute_force(tp, tau):
    text, pattern = tp
    ref = reference(text, pattern)
    np.testing.assert_array_equal(hamming_brute(text, pattern), ref)
    np.testing.assert_array_equal(hamming_fft(text, pattern), ref)
    np.testing.assert_array_equal(hamming_abrahamson(text, pattern, tau=tau, chunk_pairs=7), ref)


@settings(max_examples=40, deadline=None)
@given(strings(), st.sampled_from([None, 0.0, 1.0, 3.0]), st.sampled_from([None, 1, 2, 3]), st.integers(0, 3))
def test_packed_equals_brute_force(tp, tau, pack, seed):
    text, pattern = tp
    out = hamming_packed(text, pattern, key=jax.random.PRNGKey(seed), tau=tau, pack=pack, chunk_pairs=5)
    np.testing.assert_array_equal(out, reference(text, pattern))


def test_packed_las_vegas_retry_stays_exact():
    # pack=4 at m=1500 overflows float64 (m B^6 ~ 2^77): the rounding check must reject it and retry smaller
    rng = np.random.default_rng(4)
    text, pattern = rng.integers(0, 3, 4000), rng.integers(0, 3, 1500)
    np.testing.assert_array_equal(hamming_packed(text, pattern, key=jax.random.PRNGKey(0), pack=4),
                                  hamming_brute(text, pattern))
    assert packed_threshold(1500) == pytest.approx(1500 ** 0.5)


@pytest.mark.parametrize("case", ["m=1", "m=n", "sigma=1", "sigma>=m", "constant text"])
def test_edge_cases(case):
    rng = np.random.default_rng(3)
    text, pattern = {
        "m=1": (rng.integers(0, 4, 300), rng.integers(0, 4, 1)),
        "m=n": (rng.integers(0, 4, 300), rng.integers(0, 4, 300)),
        "sigma=1": (np.zeros(300, int), np.zeros(37, int)),
        "sigma>=m": (rng.integers(0, 500, 300), rng.integers(0, 500, 40)),
        "constant text": (np.full(300, 2), rng.integers(0, 3, 50)),
    }[case]
    ref = reference(text, pattern)
    for method in EXACT_METHODS:
        np.testing.assert_array_equal(hamming_distances(text, pattern, method), ref)


def test_long_pattern_fft_is_exact_in_float64():
    rng = np.random.default_rng(0)
    text, pattern = rng.integers(0, 2, 3000), rng.integers(0, 2, 1500)
    np.testing.assert_array_equal(hamming_fft(text, pattern), hamming_brute(text, pattern))


@settings(max_examples=20, deadline=None)
@given(strings(), st.integers(0, 10), st.integers(1, 9))
def test_k_bounded_is_min_of_hd_and_k_plus_1(tp, k, chunk):
    text, pattern = tp
    np.testing.assert_array_equal(hamming_k_bounded(text, pattern, k, chunk=chunk),
                                  np.minimum(reference(text, pattern), k + 1))


def test_kp_approximation_is_one_sided_and_within_eps():
    rng = np.random.default_rng(1)
    text, pattern = rng.integers(0, 30, 2000), rng.integers(0, 30, 200)
    ref = reference(text, pattern)
    for eps in (0.5, 0.2):
        for seed in range(1):
            est = hamming_approx_kp(text, pattern, eps, jax.random.PRNGKey(seed))
            assert np.all(est <= ref)                       # hashing only merges characters
            assert np.all(est >= (1 - eps) * ref)           # fails w.p. <= 2^-reps per shift
    single = hamming_approx_kp(text, pattern, 0.5, jax.random.PRNGKey(0), reps=1)
    assert np.all(single <= ref) and np.mean(single < 0.5 * ref) <= 0.5


@pytest.mark.parametrize("reps", [1, 2])
def test_kp_failure_rate_over_seeds_is_below_stated_bound(reps):
    # per shift P[HD_h < (1 - eps) HD] <= 2^-reps (Markov on E[HD - HD_h] = HD / q, q = ceil(2 / eps))
    rng = np.random.default_rng(5)
    text, pattern = rng.integers(0, 12, 1500), rng.integers(0, 12, 150)
    ref = reference(text, pattern)
    eps = 0.3
    fails = []
    for seed in range(8):
        est = hamming_approx_kp(text, pattern, eps, jax.random.PRNGKey(100 + seed), reps=reps)
        assert np.all(est <= ref)
        fails.append(np.mean(est < (1 - eps) * ref))
    assert np.mean(fails) <= 2.0 ** -reps


def test_sampled_approximation_within_eps_with_stated_probability():
    rng = np.random.default_rng(2)
    text, pattern = rng.integers(0, 3, 3000), rng.integers(0, 3, 1024)
    text[:1100] = np.tile(pattern, 2)[:1100]                 # a few shifts with tiny distances
    ref = reference(text, pattern)
    eps, delta = 0.25, 0.05
    est = hamming_approx_sampled(text, pattern, eps, jax.random.PRNGKey(0), delta=delta)
    bad = np.abs(est - ref) > eps * ref
    assert bad.mean() <= delta
    assert est[0] == ref[0] == 0                             # exact where the count never reaches the target


def test_bad_input_names_the_argument():
    t, p = np.arange(10), np.arange(3)
    with pytest.raises(ValueError, match="pattern length"):
        hamming_brute(p, t)
    with pytest.raises(TypeError, match="text"):
        hamming_fft(t.astype(float), p)
    with pytest.raises(ValueError, match="pattern must be 1-D"):
        hamming_abrahamson(t, p[None])
    with pytest.raises(ValueError, match="text must be non-empty"):
        hamming_brute(t[:0], p[:0])
    with pytest.raises(ValueError, match="eps"):
        hamming_approx_kp(t, p, 0.0, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="k must be >= 0"):
        hamming_k_bounded(t, p, -1)
    with pytest.raises(ValueError, match="method"):
        hamming_distances(t, p, "bitpacked")
    with pytest.raises(ValueError, match="tau"):
        hamming_abrahamson(t, p, tau=-1.0)
    with pytest.raises(ValueError, match="pack"):
        hamming_packed(t, p, pack=0)
