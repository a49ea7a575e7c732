"""Packed bit masks: exact round trips, footprint, jit, keep_mask(packed=...) and report."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsejax as sj
from sparsejax.core.packed import PackedMask


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=0, max_size=3), word=st.sampled_from(["uint8", "uint32"]),
       seed=st.integers(0, 10_000))
def test_pack_unpack_round_trip_is_exact(shape, word, seed):
    mask = np.random.default_rng(seed).random(shape) < 0.4
    packed = sj.pack_mask(mask, word)
    bits = 8 if word == "uint8" else 32
    assert packed.words.dtype == jnp.dtype(word) and packed.words.shape == (-(-mask.size // bits),)
    assert packed.nbytes == -(-mask.size // bits) * bits // 8
    np.testing.assert_array_equal(np.asarray(sj.unpack_mask(packed)), mask)


def test_bit_layout_is_little_endian_row_major():
    mask = np.zeros(10, bool)
    mask[[0, 3, 9]] = True
    np.testing.assert_array_equal(np.asarray(sj.pack_mask(mask).words), [0b1001, 0b10])


def test_packing_jits_and_trees_keep_none():
    tree = {"w": jnp.arange(40).reshape(5, 8) % 3 == 0, "b": None}
    packed = jax.jit(sj.pack_masks, static_argnums=1)(tree, "uint32")
    assert packed["b"] is None and isinstance(packed["w"], PackedMask)
    back = jax.jit(sj.unpack_masks)(packed)
    np.testing.assert_array_equal(back["w"], tree["w"])


def test_keep_mask_with_packed_state_trains_exactly_like_the_bool_mask():
    params = {"w": jax.random.normal(jax.random.key(0), (12, 7)), "b": jnp.zeros(7)}
    mask = sj.magnitude_mask(params, 0.6)
    params = sj.apply_mask(params, mask)
    x = jax.random.normal(jax.random.key(1), (16, 12))

    def run(tx):
        state = tx.init(params)
        p = params
        for _ in range(5):
            g = jax.grad(lambda q: jnp.sum(jnp.tanh(x @ q["w"] + q["b"]) ** 2))(p)
            u, state = tx.update(g, state, p)
            p = optax.apply_updates(p, u)
        return p, state

    ref, _ = run(sj.keep_mask(optax.adam(1e-2), mask))
    got, state = run(sj.keep_mask(optax.adam(1e-2), mask, packed="uint8"))
    assert isinstance(state.mask["w"], PackedMask) and state.mask["w"].nbytes == -(-84 // 8)
    np.testing.assert_array_equal(got["w"], ref["w"])
    assert int(jnp.count_nonzero(got["w"])) == int(mask["w"].sum())


def test_report_counts_the_bitmap_layout():
    w = np.zeros((8, 16), np.float32)
    w[:, :4] = 1.0
    row = sj.report({"w": w}, sparsity_type="unstructured").rows[0]
    assert row["bitmap_bytes"] == 32 * 4 + 128 // 8


def test_errors():
    with pytest.raises(ValueError, match="word must be one of"):
        sj.pack_mask(np.ones(3, bool), "uint16")
    with pytest.raises(TypeError, match="needs a PackedMask"):
        sj.unpack_mask(np.ones(3, bool))
    with pytest.raises(ValueError, match="packed must be one of"):
        sj.keep_mask(optax.sgd(0.1), None, packed="bits")


def test_create_static_sparse_with_packed_masks():
    params = {"w": jnp.ones((8, 8))}
    tx = sj.create({"algorithm": "static_sparse", "sparsity": 0.5, "dist_type": "uniform", "packed_masks": "uint32"},
                   optax.sgd(0.1))
    state = tx.init(params)
    assert isinstance(state.mask["w"], PackedMask) and state.mask["w"].nbytes == 8
    assert int(sj.unpack_mask(state.mask["w"]).sum()) == 32
