import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsejax
from sparsejax.structured import is_nm_sparse, nm_mask

NM = [(1, 2), (2, 4), (1, 4), (3, 4), (1, 8), (3, 8), (1, 16)]


@settings(max_examples=10, deadline=None)
@given(nm=st.sampled_from(NM), groups=st.integers(1, 3), rows=st.integers(1, 4), axis=st.sampled_from([0, 1, -1]),
       seed=st.integers(0, 2**16))
def test_every_group_keeps_exactly_the_n_largest(nm, groups, rows, axis, seed):
    n, m = nm
    shape = [rows, rows + 1]
    shape[axis] = groups * m
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    mask = np.asarray(nm_mask(jnp.asarray(x), n, m, axis=axis))
    assert mask.shape == x.shape and mask.dtype == bool
    g = np.moveaxis(mask, axis, -1).reshape(-1, m)
    a = np.abs(np.moveaxis(x, axis, -1)).reshape(-1, m)
    np.testing.assert_array_equal(g.sum(-1), n)  # exact N per block
    # brute force: every kept entry is at least as large as every pruned entry of its block
    for keep, mag in zip(g, a):
        assert mag[keep].min() >= mag[~keep].max()
    assert is_nm_sparse(np.where(mask, x, 0), n, m, axis)


def test_ties_keep_exactly_n():
    mask = nm_mask(jnp.ones((8, 2)), 2, 4)  # default axis -2: groups of 4 down each column
    np.testing.assert_array_equal(np.asarray(mask).T.reshape(-1, 4).sum(-1), 2)


def test_3d_middle_axis():
    x = jax.random.normal(jax.random.key(0), (2, 8, 3))
    mask = np.asarray(nm_mask(x, 1, 4, axis=1))
    np.testing.assert_array_equal(mask.reshape(2, 2, 4, 3).sum(2), 1)


@pytest.mark.parametrize("n,m,exc,match", [(4, 4, ValueError, "1 <= n < m"), (0, 4, ValueError, "1 <= n < m"),
                                           (5, 4, ValueError, "1 <= n < m"), (1.0, 4, TypeError, "n must be an int"),
                                           (1, 4.0, TypeError, "m must be a Python int")])
def test_bad_nm(n, m, exc, match):
    with pytest.raises(exc, match=match):
        nm_mask(jnp.ones((4, 8)), n, m)


def test_axis_not_divisible_and_out_of_range():
    with pytest.raises(ValueError, match="not divisible by m=4"):
        nm_mask(jnp.ones((6, 4)), 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        nm_mask(jnp.ones((4, 8)), 2, 4, axis=2)


def test_pytree_mask_composes_with_core():
    params = {"dense": {"kernel": jax.random.normal(jax.random.key(1), (8, 4)), "bias": jnp.ones(4)},
              "out": {"kernel": jax.random.normal(jax.random.key(2), (4, 4))}}
    mask = nm_mask(params, 2, 4, axis=0)
    assert mask["dense"]["bias"] is None
    assert mask["dense"]["kernel"].shape == (8, 4)
    pruned = sparsejax.apply_mask(params, mask)
    assert is_nm_sparse(pruned["dense"]["kernel"], 2, 4, axis=0)
    assert sparsejax.sparsity(mask) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="dense/kernel"):
        nm_mask({"dense": {"kernel": jnp.ones((6, 4))}}, 2, 4, axis=0)


def test_traced_n_does_not_recompile():
    x = jax.random.normal(jax.random.key(3), (8, 16))
    f = jax.jit(lambda x, n: nm_mask(x, n, 8))
    counts = [int(f(x, jnp.int32(k)).sum()) for k in (1, 4, 8)]
    assert counts == [16, 64, 128]
    assert f._cache_size() == 1
