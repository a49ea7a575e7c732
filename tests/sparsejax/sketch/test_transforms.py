"""Sketches, FWHT, leverage scores and Lewis weights (shared by P9, P11, P26)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from sparsejax.sketch import (
    approximate_leverage_scores, fwht, leverage_scores, lewis_weights, sketch,
)

RNG = np.random.default_rng(0)
A = RNG.normal(size=(512, 5)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 128])
def test_fwht_equals_hadamard_product(n):
    x = RNG.normal(size=(n, 3))
    np.testing.assert_allclose(fwht(jnp.asarray(x, jnp.float32)), scipy.linalg.hadamard(n) @ x / np.sqrt(n),
                               rtol=1e-5, atol=1e-5)


def test_fwht_is_orthonormal_and_rejects_non_power_of_two():
    H = fwht(jnp.eye(32))
    np.testing.assert_allclose(H @ H.T, np.eye(32), atol=1e-5)
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(jnp.ones((12, 2)))


@pytest.mark.parametrize("kind,m", [("gaussian", 48), ("srht", 64), ("countsketch", 256), ("osnap", 128)])
def test_every_sketch_is_a_subspace_embedding_at_its_size(kind, m):
    # eps = 0.5 embedding of a random 6-dim subspace of R^1024, in all of 20 seeded draws
    U = np.linalg.qr(np.random.default_rng(1).normal(size=(1024, 6)))[0].astype(np.float32)
    for s in range(20):
        sv = np.linalg.svd(np.asarray(sketch(jax.random.PRNGKey(s), U, m, kind)), compute_uv=False)
        assert 0.5 <= sv.min() and sv.max() <= 1.5, (kind, s, sv)


@pytest.mark.parametrize("kind", ["srht", "osnap"])   # the kinds with padding / block code paths
def test_sketch_is_one_linear_map_for_vectors_and_matrices(kind):
    key = jax.random.PRNGKey(3)
    np.testing.assert_allclose(sketch(key, A @ np.ones(5, np.float32), 64, kind), sketch(key, A, 64, kind).sum(1),
                               rtol=1e-4, atol=1e-3)


def test_sketch_bad_input():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="kind"):
        sketch(key, A, 8, "fjlt")
    with pytest.raises(ValueError, match="multiple of s"):
        sketch(key, A, 10, "osnap", s=4)
    with pytest.raises(ValueError, match="padded length"):
        sketch(key, A, 1024, "srht")
    with pytest.raises(ValueError, match="m must be"):
        sketch(key, A, 0, "gaussian")
    with pytest.raises(ValueError, match="A"):
        sketch(key, np.ones((2, 2, 2)), 4, "gaussian")


def test_leverage_scores_equal_hat_matrix_diagonal_and_sum_to_d():
    A64 = A.astype(np.float64)
    hat = np.diag(A64 @ np.linalg.solve(A64.T @ A64, A64.T))
    lev = leverage_scores(A)
    np.testing.assert_allclose(lev, hat, rtol=1e-3, atol=1e-6)
    assert abs(float(lev.sum()) - 5) < 1e-4


def test_approximate_leverage_scores_within_constant_factor():
    lev = np.asarray(leverage_scores(A))
    for jl in (None, 64):
        approx = np.asarray(approximate_leverage_scores(jax.random.PRNGKey(2), A, 64, "srht", jl_dim=jl))
        assert np.all(approx / lev > 0.4) and np.all(approx / lev < 2.5), jl


@pytest.mark.parametrize("p", [1.0, 1.5, 3.0, 5.0])
def test_lewis_weights_fixed_point_and_sum(p):
    w = np.asarray(lewis_weights(A, p), np.float64)
    A64 = A.astype(np.float64)
    gram = A64.T @ (A64 * (w ** (1 - 2 / p))[:, None])
    target = np.einsum("ij,ji->i", A64, np.linalg.solve(gram, A64.T)) ** (p / 2)
    np.testing.assert_allclose(w, target, rtol=1e-3)
    assert abs(w.sum() - 5) < 1e-3


def test_lewis_weights_at_p2_are_leverage_scores():
    np.testing.assert_allclose(lewis_weights(A, 2.0), leverage_scores(A), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="p"):
        lewis_weights(A, 0.0)
