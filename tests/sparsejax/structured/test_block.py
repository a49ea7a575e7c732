"""Block sparsity masks: exact kept counts, whole blocks, ranking by block norm, ties, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsejax.structured.block import block_mask, block_norms, is_block_sparse


def _np_block_norms(x, bk, bn):
    *lead, k, n = x.shape
    t = x.reshape(*lead, k // bk, bk, n // bn, bn)
    return np.sqrt((t.astype(np.float64) ** 2).sum(axis=(-3, -1)))


@settings(max_examples=12, deadline=None)
@given(kb=st.integers(1, 4), nb=st.integers(1, 4), bk=st.sampled_from([1, 2, 4]), bn=st.sampled_from([1, 3]),
       lead=st.sampled_from([(), (2,), (3, 1)]), sparsity=st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.9, 1.0]),
       seed=st.integers(0, 10_000))
def test_exact_count_whole_blocks_and_ranking(kb, nb, bk, bn, lead, sparsity, seed):
    w = np.random.default_rng(seed).standard_normal((*lead, kb * bk, nb * bn)).astype(np.float32)
    mask = np.asarray(block_mask(w, (bk, bn), sparsity))
    assert mask.shape == w.shape and mask.dtype == bool
    assert bool(is_block_sparse(mask, (bk, bn)))
    keep = mask.reshape(*lead, kb, bk, nb, bn).all(axis=(-3, -1))
    n_blocks = keep.size
    assert keep.sum() == round((1 - sparsity) * n_blocks)
    norms = _np_block_norms(w, bk, bn)
    if 0 < keep.sum() < n_blocks:  # every kept block beats every pruned one
        assert norms[keep].min() >= norms[~keep].max() - 1e-6


def test_score_overrides_magnitude_and_norm_is_l2():
    w = np.ones((4, 4), np.float32)
    score = np.zeros((4, 4), np.float32)
    score[2:, :2] = [[3.0, 4.0], [0.0, 0.0]]  # L2 norm 5 beats the others (0)
    mask = np.asarray(block_mask(w, (2, 2), 0.75, score=score))
    expect = np.zeros((4, 4), bool)
    expect[2:, :2] = True
    np.testing.assert_array_equal(mask, expect)
    np.testing.assert_allclose(np.asarray(block_norms(score, (2, 2))), [[0, 0], [5, 0]])


def test_ties_broken_towards_earlier_blocks_deterministically():
    w = np.ones((4, 6), np.float32)  # all 6 blocks of (2, 2) tie
    mask = np.asarray(block_mask(w, (2, 2), 0.5))
    keep = mask.reshape(2, 2, 3, 2).all(axis=(1, 3))
    np.testing.assert_array_equal(keep, [[True, True, True], [False, False, False]])
    np.testing.assert_array_equal(mask, np.asarray(block_mask(w, (2, 2), 0.5)))


def test_conv_kernel_uses_trailing_view_and_ranks_globally():
    w = np.zeros((3, 3, 4, 8), np.float32)
    w[1, 2, :2, 4:6] = 10.0  # one strong (2, 2) block in one window slice
    mask = np.asarray(block_mask(w, (2, 2), 1 - 1 / (9 * 2 * 4)))  # keep exactly one block
    assert mask.sum() == 4 and mask[1, 2, :2, 4:6].all()


def test_traced_sparsity_under_jit_matches_concrete():
    w = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    f = jax.jit(lambda s: block_mask(w, (4, 2), s))
    for s in (0.0, 0.5, 0.875):
        np.testing.assert_array_equal(np.asarray(f(s)), np.asarray(block_mask(w, (4, 2), s)))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(w=np.ones((6, 4)), block_shape=(4, 2), sparsity=0.5), ValueError, r"must divide the trailing \(K, N\)"),
    (dict(w=np.ones((4, 6)), block_shape=(2, 4), sparsity=0.5), ValueError, r"must divide the trailing"),
    (dict(w=np.ones(8), block_shape=(2, 2), sparsity=0.5), ValueError, r"ndim >= 2"),
    (dict(w=np.ones((4, 4)), block_shape=(2,), sparsity=0.5), ValueError, r"block_shape must be a pair"),
    (dict(w=np.ones((4, 4)), block_shape=(0, 2), sparsity=0.5), ValueError, r"block_shape\[0\] must be >= 1"),
    (dict(w=np.ones((4, 4)), block_shape=(2.0, 2), sparsity=0.5), TypeError, r"block_shape\[0\] must be an int"),
    (dict(w=np.ones((4, 4)), block_shape=(2, 2), sparsity=1.5), ValueError, r"sparsity must be >= 0.0 and <= 1.0"),
    (dict(w=np.ones((4, 4)), block_shape=(2, 2), sparsity=float("nan")), ValueError, r"sparsity must be finite"),
    (dict(w=np.full((4, 4), np.nan), block_shape=(2, 2), sparsity=0.5), ValueError, r"w must be finite"),
    (dict(w=np.ones((4, 4)), block_shape=(2, 2), sparsity=0.5, score=np.ones((4, 2))), ValueError,
     r"score must have shape \(4, 4\)"),
    (dict(w=[[1.0, 2.0]], block_shape=(1, 1), sparsity=0.5), TypeError, r"w must be an array"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        block_mask(**kwargs)
