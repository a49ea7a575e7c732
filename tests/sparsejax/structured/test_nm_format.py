"""N:M compressed format: exact structure, round trip, magnitude selection, footprint, errors."""
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsejax.structured.nm_format import nm_compress, nm_decompress, nm_nbytes


@settings(max_examples=10, deadline=None)
@given(nm=st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 8)]), groups=st.sampled_from([1, 3]), other=st.just(2),
       axis=st.sampled_from([0, 1]), seed=st.integers(0, 1000))
def test_compress_keeps_top_n_per_group_and_round_trips(nm, groups, other, axis, seed):
    n, m = nm
    shape = (groups * m, other) if axis == 0 else (other, groups * m)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    c = nm_compress(x, n, m, axis=axis)
    dense = np.asarray(nm_decompress(c))
    assert c.values.shape[axis] == groups * n and c.indices.dtype == jnp.int8
    # every group of m keeps exactly its n largest |x| (brute force) and nothing else
    xg = np.moveaxis(x, axis, -1).reshape(-1, m)
    dg = np.moveaxis(dense, axis, -1).reshape(-1, m)
    for xr, dr in zip(xg, dg):
        keep = np.argsort(-np.abs(xr), kind="stable")[:n]
        expect = np.zeros(m, np.float32)
        expect[keep] = xr[keep]
        np.testing.assert_array_equal(dr, expect)
    # an N:M-sparse array round-trips exactly
    again = nm_decompress(nm_compress(dense, n, m, axis=axis))
    np.testing.assert_array_equal(again, dense)


def test_indices_sorted_within_group_and_nbytes():
    x = np.arange(1, 17, dtype=np.float32).reshape(16, 1)[::-1].copy()
    c = nm_compress(x, 2, 4, axis=0)
    idx = np.asarray(c.indices).reshape(-1, 2)
    assert np.all(idx[:, 0] < idx[:, 1]) and idx.max() < 4
    assert nm_nbytes(c) == 8 * 4 + 8 * 1            # stored: f32 values + int8 positions
    assert nm_nbytes(c, index_bits=2) == 8 * 4 + 2  # packed 2-bit metadata: 16 bits -> 2 bytes


def test_errors():
    with pytest.raises(ValueError, match="not divisible by m=4"):
        nm_compress(jnp.ones((6, 2)), 2, 4, axis=0)
    with pytest.raises(ValueError, match="0 < n < m"):
        nm_compress(jnp.ones((8, 2)), 4, 4)
    with pytest.raises(ValueError, match="out of range"):
        nm_compress(jnp.ones((8, 2)), 2, 4, axis=2)
    with pytest.raises(TypeError, match="n and m must be ints"):
        nm_compress(jnp.ones((8, 2)), 2.0, 4)
