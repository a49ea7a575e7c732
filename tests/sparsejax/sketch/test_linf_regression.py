"""ℓ∞-guarantee sketched regression (P9)."""
import math

import jax
import numpy as np
import pytest

from sparsejax.sketch import (
    gaussian_instance, linf_error_ratio, linf_regression, linf_sketch_size, sketch_and_solve, spiky_instance,
)

D = 8
A, B, _ = spiky_instance(jax.random.PRNGKey(0), 1024, D, D)   # n = 1024, q = d spikes


def test_sketch_size_formula_and_argument_checks():
    assert linf_sketch_size(1000, 4, 0.5, 0.1) == math.ceil(4 * math.log(1e4) ** 3 / 0.25)
    with pytest.raises(ValueError, match="not below n"):
        linf_regression(jax.random.PRNGKey(0), A, B, eps=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        linf_regression(jax.random.PRNGKey(0), A, B)
    with pytest.raises(ValueError, match="eps"):
        linf_sketch_size(100, 4, 1.5)


@pytest.mark.parametrize("maker", ["gaussian", "spiky"])
def test_instances_have_the_planted_least_squares_solution(maker):
    key = jax.random.PRNGKey(1)
    A, b, xstar = gaussian_instance(key, 200, 5) if maker == "gaussian" else spiky_instance(key, 200, 5, 5)
    np.testing.assert_allclose(np.linalg.lstsq(A, b, rcond=None)[0], xstar, atol=1e-10)
    assert linf_error_ratio(A, b, xstar) < 1e-8
    assert linf_error_ratio(A, b, xstar + 0.1) > 0


def test_dense_sketches_meet_the_linf_bound_where_countsketch_fails():
    # spiky instance, m = 8d rows, 12 seeded sketches per kind
    eta = {kind: [linf_error_ratio(A, B, sketch_and_solve(jax.random.PRNGKey(s), A, B, 8 * D, kind))
                  for s in range(12)] for kind in ("gaussian", "srht", "countsketch")}
    assert max(eta["gaussian"]) < 1 and max(eta["srht"]) < 1
    assert np.mean(np.array(eta["countsketch"]) > 0.9) > 0.5


def test_linf_regression_uses_the_given_m():
    x = linf_regression(jax.random.PRNGKey(3), A, B, m=8 * D)
    np.testing.assert_allclose(x, sketch_and_solve(jax.random.PRNGKey(3), A, B, 8 * D, "srht"))
