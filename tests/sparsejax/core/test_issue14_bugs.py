"""Regression tests for the six bugs of issue #14 (each fails on the code before the fix)."""
from fractions import Fraction

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax as sj
from sparsejax.structured import group_mask, nm_compress, nm_mask, nm_recipe, sr_ste


class Deep(nn.Module):
    """12 Dense layers: pytree order is Dense_0, Dense_1, Dense_10, Dense_11, Dense_2, ..., Dense_9."""

    @nn.compact
    def __call__(self, x):
        for _ in range(12):
            x = nn.relu(nn.Dense(8)(x))
        return x


def test_dense_first_last_follows_call_order_not_alphabetical():
    model = Deep()
    x = jnp.ones((1, 8))
    params = model.init(jax.random.PRNGKey(0), x)
    order = sj.layer_order(model, x)
    assert order[0].startswith("params/Dense_0/") and order[-1].startswith("params/Dense_11/")
    assert [p.split("/")[1] for p in order[::2]] == [f"Dense_{i}" for i in range(12)]
    dens = sj.uniform_densities(params, 0.5, dense_first_last=True, layer_order=order)
    p = dens["params"]
    assert p["Dense_0"]["kernel"] == 1.0 and p["Dense_11"]["kernel"] == 1.0
    assert p["Dense_9"]["kernel"] < 1.0 and p["Dense_1"]["kernel"] < 1.0
    with pytest.raises(ValueError, match="needs the layer order"):
        sj.uniform_densities(params, 0.5, dense_first_last=True)


def test_nm_axis_default_is_input_axis_for_dense_and_conv():
    key = jax.random.PRNGKey(0)
    dense = jax.random.normal(key, (8, 6))
    conv = jax.random.normal(key, (3, 3, 8, 4))
    for w in (dense, conv):
        mask = np.asarray(nm_mask(w, 2, 4))
        per_group = np.moveaxis(mask, -2, -1).reshape(-1, 4).sum(-1)  # groups of 4 along the input axis
        np.testing.assert_array_equal(per_group, 2)
        c = nm_compress(w, 2, 4)
        assert c.axis == w.ndim - 2
        from sparsejax.structured import nm_decompress

        np.testing.assert_array_equal(np.asarray(nm_decompress(c)), np.where(mask, np.asarray(w), 0))
        assert sj.NByM(2, 4).holds(mask)
    recipe = nm_recipe("srste", 2, 4, total_steps=10)  # used to raise on convs: "axis 0 has length 3"
    tree = {"conv": {"kernel": conv}}
    assert sj.NByM(2, 4).holds(recipe.final_mask(tree)["conv"]["kernel"])
    tx = sr_ste(2, 4)
    g, _ = tx.update({"conv": {"kernel": jnp.zeros_like(conv)}}, tx.init(tree), tree)
    pruned = ~np.asarray(nm_mask(conv, 2, 4))
    assert np.all(np.asarray(g["conv"]["kernel"])[~pruned] == 0) and np.any(np.asarray(g["conv"]["kernel"])[pruned])


def test_keep_count_is_exact_above_2_to_24():
    assert int(sj.keep_count(0.3, 4096 * 11008)) == 13526630  # float32 gave 13526631
    assert int(sj.keep_count(0.2, 50257 * 768)) == 7719475  # float32 gave 7719476
    rng = np.random.default_rng(0)
    traced = jax.jit(sj.keep_count, static_argnums=1)
    for _ in range(50):
        d, size = np.float32(rng.random()), int(rng.integers(2**24, 2**31 - 1))
        assert int(traced(jnp.float32(d), size)) == round(Fraction(float(d)) * size)


def test_group_mask_never_clamps():
    with pytest.raises(ValueError, match="= 0 of 4 groups"):
        group_mask(jnp.ones((16, 1)), 4, 0.9, axis=0)
    mask = group_mask(jax.random.normal(jax.random.PRNGKey(0), (32, 2)), 4, 0.5, axis=0)
    assert int(mask.sum()) == 32  # exactly 8 of 16 groups of 4
    traced = jax.jit(lambda s: group_mask(jnp.arange(64.0).reshape(32, 2), 4, s, axis=0))(0.75)
    assert int(traced.sum()) == 16


def test_traced_n_is_clamped_and_concrete_n_is_checked():
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 4))
    f = jax.jit(lambda n: nm_mask(x, n, 4))
    assert int(f(jnp.int32(2)).sum()) == 16
    assert int(f(jnp.int32(7)).sum()) == 32 and int(f(jnp.int32(-3)).sum()) == 0  # documented clamp to [0, m]
    with pytest.raises(ValueError, match=r"scheduled n must be in \[0, m=4\], got 7"):
        nm_mask(x, jnp.int32(7), 4)


def _train(tx, params, steps=5):
    state = tx.init(params)
    for i in range(steps):
        grads = jax.tree_util.tree_map(lambda w: jnp.ones_like(w) * (i + 1), params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("order", ["mask_first", "decay_first"])
def test_keep_mask_in_any_chain_position(order):
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (8, 8))}
    mask = sj.magnitude_mask(params, 0.5, predicate=lambda p, x: True)
    params = sj.apply_mask(params, mask)
    decay = optax.add_decayed_weights(0.1)
    parts = [sj.keep_mask(optax.sgd(0.1), mask), decay]
    tx = optax.chain(*(parts if order == "mask_first" else parts[::-1]))
    out = _train(tx, params)
    assert np.all(np.asarray(out["w"])[~np.asarray(mask["w"])] == 0.0)
    assert np.all(np.asarray(out["w"])[np.asarray(mask["w"])] != 0.0)


def test_keep_mask_refuses_unmasked_params_at_init():
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (8, 8))}
    mask = sj.magnitude_mask(params, 0.5, predicate=lambda p, x: True)
    tx = optax.chain(sj.keep_mask(optax.sgd(0.1), mask), optax.add_decayed_weights(0.1))
    with pytest.raises(ValueError, match="'w' has 32 non-zero entries where the mask is False"):
        tx.init(params)
    # the deprecated alias keeps the old contract: as the last transform it zeros them on the first update
    out = _train(sj.masked(optax.sgd(0.1), mask), params, steps=1)
    assert np.all(np.asarray(out["w"])[~np.asarray(mask["w"])] == 0.0)
