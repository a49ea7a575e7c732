"""ℓ∞-guarantee sketched regression (P9)."""
import math

import jax
import numpy as np
import pytest

from sparsejax.sketch import (
    gaussian_instance, linf_error_ratio, linf_regression, linf_sketch_size, sketch_and_solve, spiky_instance,
)


def test_sketch_size_formula_and_argument_checks():
    assert linf_sketch_size(1000, 4, 0.5, 0.1) == math.ceil(4 * math.log(1e4) ** 3 / 0.25)
    A, b, _ = gaussian_instance(jax.random.PRNGKey(0), 256, 4)
    with pytest.raises(ValueError, match="not below n"):
        linf_regression(jax.random.PRNGKey(0), A, b, eps=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        linf_regression(jax.random.PRNGKey(0), A, b)
    with pytest.raises(ValueError, match="eps"):
        linf_sketch_size(100, 4, 1.5)


@pytest.mark.parametrize("maker", ["gaussian", "spiky"])
def test_instances_have_the_planted_least_squares_solution(maker):
    key = jax.random.PRNGKey(1)
    A, b, xstar = gaussian_instance(key, 300, 5) if maker == "gaussian" else spiky_instance(key, 300, 5, 5)
    np.testing.assert_allclose(np.linalg.lstsq(A, b, rcond=None)[0], xstar, atol=1e-10)
    assert linf_error_ratio(A, b, xstar) < 1e-8
    assert linf_error_ratio(A, b, xstar + 0.1) > 0


def test_dense_sketches_meet_the_linf_bound_where_countsketch_fails():
    # spiky instance: n = 1024, d = 8, q = d spikes, m = 8d rows, 12 seeded sketches per kind
    d = 8
    A, b, _ = spiky_instance(jax.random.PRNGKey(0), 1024, d, d)
    eta = {kind: [linf_error_ratio(A, b, sketch_and_solve(jax.random.PRNGKey(s), A, b, 8 * d, kind))
                  for s in range(12)] for kind in ("gaussian", "srht", "countsketch")}
    assert max(eta["gaussian"]) < 1 and max(eta["srht"]) < 1
    assert np.mean(np.array(eta["countsketch"]) > 0.9) > 0.5


def test_linf_regression_uses_the_given_m():
    A, b, _ = gaussian_instance(jax.random.PRNGKey(2), 512, 4)
    x = linf_regression(jax.random.PRNGKey(3), A, b, m=64)
    np.testing.assert_allclose(x, sketch_and_solve(jax.random.PRNGKey(3), A, b, 64, "srht"))
