"""Tensor attention: brute force, reduction to softmax attention with K2 = V2 = 1, the Khatri-Rao
identity, the monomial count, and convergence of the polynomial method to the exact result."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.llm.tensor_attention import (
    fast_tensor_attention,
    khatri_rao,
    multi_indices,
    softmax_attention,
    tensor_attention,
)


def _inputs(seed, n, d, bound, batch=()):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.uniform(-bound, bound, (*batch, n, d)), jnp.float32) for _ in range(5)]


def test_exact_matches_brute_force_triple_loop():
    q, k1, k2, v1, v2 = (np.asarray(x, np.float64) for x in _inputs(0, 5, 3, 1.0))
    n, d = q.shape
    out = np.zeros((n, d))
    for i in range(n):
        w = np.array([[np.exp(np.sum(q[i] * k1[j] * k2[k]) / d) for k in range(n)] for j in range(n)])
        out[i] = sum(w[j, k] * v1[j] * v2[k] for j, k in itertools.product(range(n), range(n))) / w.sum()
    np.testing.assert_allclose(np.asarray(tensor_attention(*map(jnp.asarray, (q, k1, k2, v1, v2)))), out, atol=1e-5)


@pytest.mark.parametrize("scale", [None, 0.7])
def test_k2_v2_ones_is_exactly_softmax_attention(scale):
    q, k1, _, v1, _ = _inputs(1, 7, 4, 2.0, batch=(2,))
    ones = jnp.ones_like(q)
    np.testing.assert_allclose(np.asarray(tensor_attention(q, k1, ones, v1, ones, scale=scale)),
                               np.asarray(softmax_attention(q, k1, v1, scale=scale)), atol=1e-6)


def test_khatri_rao_identity():
    rng = np.random.default_rng(2)
    a, c = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    b, e = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    lhs = np.asarray(khatri_rao(jnp.asarray(a), jnp.asarray(b))).T @ np.asarray(khatri_rao(jnp.asarray(c), jnp.asarray(e)))
    np.testing.assert_allclose(lhs, (a.T @ c) * (b.T @ e), rtol=1e-4, atol=1e-4)
    assert khatri_rao(jnp.asarray(a), jnp.asarray(b)).shape == (30, 4)


def test_multi_indices_count_and_degree():
    al = multi_indices(3, 4)
    assert al.shape == (math.comb(7, 4), 3) and len({tuple(a) for a in al}) == len(al)
    assert al.sum(1).max() == 4 and (al >= 0).all()


def test_fast_converges_to_exact_for_bounded_entries():
    fast = jax.jit(fast_tensor_attention, static_argnames="degree")
    x = _inputs(3, 12, 3, 1.0)
    exact = np.asarray(tensor_attention(*x))
    errs = [float(np.abs(np.asarray(fast(*x, degree=g)) - exact).max()) for g in (0, 2, 4, 8)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs  # until the float32 floor
    assert errs[-1] < 1e-6
    # larger entries need a higher degree for the same error
    big = _inputs(3, 12, 3, 2.0)
    err_big = float(np.abs(np.asarray(fast(*big, degree=8)) - np.asarray(tensor_attention(*big))).max())
    assert err_big > 10 * errs[-1]
    with pytest.raises(ValueError, match="degree must be even"):
        fast_tensor_attention(*x, degree=3)
