"""Whole-network channel rearrangement (P28): same function, more energy kept by group pruning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.nn import CNN, MLP
from sparsejax.structured import group_mask, kept_energy, permute_channels, rearrange_channels


def _random_perms(params, chain, seed):
    rng = np.random.default_rng(seed)
    return [rng.permutation(params[name]["kernel"].shape[-1]) for name in chain[:-1]]


@pytest.mark.parametrize("axis", [-2, -1])
def test_rearranged_mlp_computes_the_same_function(axis):
    model = MLP(10, hidden=(16, 8))
    x = jax.random.normal(jax.random.key(0), (5, 12))
    params = jax.jit(model.init)(jax.random.key(1), x)["params"]
    apply = jax.jit(lambda p: model.apply({"params": p}, x))
    chain = ["dense_0", "dense_1", "head"]
    out = apply(params)
    for seed in range(3):  # any permutation preserves the function
        moved = permute_channels(params, chain, _random_perms(params, chain, seed))
        assert not np.array_equal(moved["dense_0"]["kernel"], params["dense_0"]["kernel"])
        np.testing.assert_allclose(apply(moved), out, rtol=1e-5, atol=1e-5)
    new, info = rearrange_channels(params, ["dense_0", "dense_1"], 4, 0.5, axis=axis, swaps=200)
    np.testing.assert_allclose(apply(new), out, rtol=1e-5, atol=1e-5)
    assert all(a >= b for a, b in zip(info.kept_after, info.kept_before))


def test_rearranged_cnn_computes_the_same_function_across_the_flatten():
    model = CNN(10, channels=(4, 8), hidden=16)
    x = jax.random.normal(jax.random.key(2), (3, 8, 8, 1))
    params = jax.jit(model.init)(jax.random.key(3), x)["params"]
    apply = jax.jit(lambda p: model.apply({"params": p}, x))
    chain = ["conv_0", "conv_1", "dense", "head"]  # conv_1 -> dense crosses the NHWC flatten (4 positions)
    moved = permute_channels(params, chain, _random_perms(params, chain, 0))
    np.testing.assert_allclose(apply(moved), apply(params), rtol=1e-5, atol=1e-5)
    new, info = rearrange_channels(params, chain, 4, 0.5, swaps=100)
    np.testing.assert_allclose(apply(new), apply(params), rtol=1e-5, atol=1e-5)
    assert len(info.perms) == 3


def test_kept_energy_matches_group_mask():
    w = np.asarray(jax.random.normal(jax.random.key(4), (16, 6)))
    for axis, balanced in [(-2, False), (-2, True), (-1, False)]:
        g = 4 if axis == -2 else 3
        mask = np.asarray(group_mask(w, g, 0.5, axis, balanced=balanced))
        assert kept_energy(w, g, 0.5, axis, balanced) == pytest.approx((w[mask] ** 2).sum() / (w ** 2).sum())


@pytest.mark.parametrize("axis", [-2, -1])
def test_rearrangement_recovers_a_scrambled_group_structure(axis):
    # hidden channels 0..7 of a planted network: for input groups, the next kernel's rows come in
    # blocks of 4 that are large in the same output columns; for output groups, the current kernel's
    # columns do. Scrambling the channels breaks the groups; the rearrangement restores them.
    rng = np.random.default_rng(0)
    big = np.kron(np.eye(2), np.ones((4, 3))) * 5 + 0.01 * rng.standard_normal((8, 6))
    planted = {"a": {"kernel": big.T.copy() if axis == -1 else rng.standard_normal((6, 8)) * 0.01,
                     "bias": np.zeros(8)},
               "b": {"kernel": big if axis == -2 else rng.standard_normal((8, 6)) * 0.01}}
    scramble = rng.permutation(8)
    scrambled = permute_channels(planted, ["a", "b"], [scramble])
    target = scrambled["b"]["kernel"] if axis == -2 else scrambled["a"]["kernel"]
    assert kept_energy(target, 4, 0.5, axis) < 0.9
    _, info = rearrange_channels(scrambled, ["a", "b"], 4, 0.5, axis=axis, swaps=0)
    assert info.kept_before[0] < 0.9 and info.kept_after[0] > 0.99


def test_errors():
    params = {"a": {"kernel": jnp.ones((3, 4))}, "b": {"kernel": jnp.ones((4, 2))}}
    with pytest.raises(ValueError, match="not a permutation"):
        permute_channels(params, ["a", "b"], [np.array([0, 0, 1, 2])])
    with pytest.raises(ValueError, match="need len"):
        permute_channels(params, ["a", "b"], [])
    with pytest.raises(ValueError, match="no module 'c'"):
        rearrange_channels(params, ["a", "c"], 2, 0.5)
    with pytest.raises(ValueError, match="not divisible by g=3"):
        rearrange_channels(params, ["a", "b"], 3, 0.5)
    with pytest.raises(ValueError, match="axis must be one of"):
        rearrange_channels(params, ["a", "b"], 2, 0.5, axis=0)
