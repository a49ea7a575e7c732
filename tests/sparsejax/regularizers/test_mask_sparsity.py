"""MaskSparsity: only masked BN scales get the L1 subgradient (empty mask = plain training, all-ones =
network slimming); channel selection rules keep exact counts."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.nn import BNCNN
from sparsejax.regularizers import (
    bn_gammas, bn_scale_mask, l1_filter_keep, masked_l1, slimming_keep, threshold_keep, uniform_keep,
)
from sparsejax.structured.coupled import bn_cnn_groups


@pytest.fixture(scope="module")
def setup():
    model = BNCNN(3, channels=(4, 6))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))["params"]
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), params)
    return params, bn_cnn_groups(params)


def test_masked_l1_only_touches_masked_gammas(setup):
    params, specs = setup
    grads = jax.tree_util.tree_map(jnp.zeros_like, params)
    reg = {"conv_0": np.array([1, 0, 0, 1], bool), "conv_1": np.zeros(6, bool)}
    tx = masked_l1(bn_scale_mask(params, specs, reg), 0.5)
    out, _ = tx.update(grads, tx.init(params), params)
    expected = 0.5 * np.sign(np.asarray(params["bn_0"]["scale"])) * reg["conv_0"]
    np.testing.assert_allclose(out["bn_0"]["scale"], expected)
    for path in [("bn_1", "scale"), ("bn_0", "bias"), ("conv_0", "kernel"), ("head", "kernel")]:
        assert not np.any(np.asarray(out[path[0]][path[1]]))
    # empty mask: the base optimizer's update unchanged; all ones: slimming on every gamma
    g = jax.tree_util.tree_map(jnp.ones_like, params)
    empty = optax.chain(masked_l1(bn_scale_mask(params, specs, {s.name: np.zeros(s.size, bool) for s in specs}), 0.5),
                        optax.sgd(0.1))
    u, _ = empty.update(g, empty.init(params), params)
    jax.tree_util.tree_map(lambda a: np.testing.assert_allclose(a, -0.1), u)
    full = masked_l1(bn_scale_mask(params, specs, {s.name: np.ones(s.size, bool) for s in specs}), 0.5)
    u, _ = full.update(grads, full.init(params), params)
    np.testing.assert_allclose(u["bn_1"]["scale"], 0.5 * np.sign(np.asarray(params["bn_1"]["scale"])))


def test_channel_selection_counts(setup):
    params, specs = setup
    g = bn_gammas(params, specs)
    keep = slimming_keep(params, specs, 0.5)
    assert sum(int((~k).sum()) for k in keep.values()) == 5
    pruned = np.concatenate([g[n][~keep[n]] for n in keep])
    kept = np.concatenate([g[n][keep[n]] for n in keep])
    assert pruned.max() <= kept.min()
    assert [int((~k).sum()) for k in uniform_keep(params, specs, 0.5).values()] == [2, 3]
    l1 = l1_filter_keep(params, specs, 0.5)
    norms = np.abs(np.asarray(params["conv_1"]["kernel"])).sum(axis=(0, 1, 2))
    assert norms[~l1["conv_1"]].max() <= norms[l1["conv_1"]].min()
    th = threshold_keep(params, specs, 0.5)
    np.testing.assert_array_equal(th["conv_0"], g["conv_0"] >= 0.5)
    with pytest.raises(ValueError, match="prune_ratio"):
        uniform_keep(params, specs, 1.0)
