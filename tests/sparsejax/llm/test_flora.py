"""FLoRA: Tucker reconstruction vs tensorly, N = 2 closed form, flax conv layout, zero core, counts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorly as tl

from sparsejax.llm import CONV_RANKS, CONV_SCALE, flora, flora_num_params, num_trainable, tucker_delta


@pytest.mark.parametrize("dims,ranks", [((5, 4, 3), (2, 3, 2)), ((6, 7, 3, 3), (4, 2, 2, 3))])
def test_delta_equals_tensorly_tucker_to_tensor(dims, ranks):
    rng = np.random.default_rng(0)
    core = rng.standard_normal(ranks)
    factors = [rng.standard_normal((d, r)) for d, r in zip(dims, ranks)]
    expected = tl.tucker_to_tensor((core, factors))
    got = tucker_delta(jnp.asarray(core, jnp.float32), [jnp.asarray(f, jnp.float32) for f in factors], scale=2.5)
    np.testing.assert_allclose(got, 2.5 * expected, rtol=2e-5, atol=1e-5)


def test_two_modes_give_a1_g_a2_transposed():
    rng = np.random.default_rng(1)
    g, a1, a2 = rng.standard_normal((3, 2)), rng.standard_normal((6, 3)), rng.standard_normal((5, 2))
    got = tucker_delta(jnp.asarray(g), [jnp.asarray(a1), jnp.asarray(a2)])
    np.testing.assert_allclose(got, a1 @ g @ a2.T, rtol=1e-5, atol=1e-6)


def test_flax_conv_kernel_layout_and_official_defaults():
    params = {"conv": {"kernel": jnp.zeros((3, 3, 20, 24)), "bias": jnp.zeros(24)}}
    ad = flora(params, CONV_RANKS, "conv/kernel", jax.random.PRNGKey(0))
    p = ad.params["conv/kernel"]
    # modes in the code's order [in, out, k_h, k_w]
    assert [f.shape for f in p["factors"]] == [(20, 16), (24, 16), (3, 2), (3, 2)] and p["G"].shape == (16, 16, 2, 2)
    assert float(jnp.abs(p["G"]).max()) == 0.0 and CONV_SCALE == 4.0
    assert num_trainable(ad) == flora_num_params((20, 24, 3, 3), CONV_RANKS) == 16 * 16 * 4 + 20 * 16 + 24 * 16 + 12
    np.testing.assert_allclose(np.std(np.asarray(p["factors"][0])), 1 / np.sqrt(32), rtol=0.15)  # N(0, 1/(2 r))
    g = jax.random.normal(jax.random.PRNGKey(1), p["G"].shape)
    dw = ad.deltas(params, {"conv/kernel": {"G": g, "factors": p["factors"]}})["conv/kernel"]
    a_in, a_out, a_h, a_w = p["factors"]
    expected = 4.0 * jnp.einsum("abcd,ia,ob,hc,wd->hwio", g, a_in, a_out, a_h, a_w)
    assert dw.shape == (3, 3, 20, 24)
    np.testing.assert_allclose(dw, expected, rtol=1e-4, atol=1e-4)


def test_zero_core_leaves_the_weights_unchanged_and_dense_embedding_ranks():
    rng = np.random.default_rng(0)
    shapes = {"conv_0": (3, 3, 1, 4), "conv_1": (3, 3, 4, 8), "dense": (32, 16)}  # sparsejax.nn.CNN(channels=(4, 8))
    params = {"params": {k: {"kernel": jnp.asarray(rng.standard_normal(s), jnp.float32)} for k, s in shapes.items()}}
    ad = flora(params, {4: (2, 3, 2, 2), 2: (3, 3)}, ["params/conv_*/kernel", "params/dense/kernel"],
               jax.random.PRNGKey(2), scale=1.0)
    for a, b in zip(jax.tree_util.tree_leaves(ad.merge(params)), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    assert num_trainable(ad) == (flora_num_params((1, 4, 3, 3), (2, 3, 2, 2)) + flora_num_params((4, 8, 3, 3), (2, 3, 2, 2))
                                 + flora_num_params((32, 16), (3, 3)))
    emb = {"tok_embed": jnp.zeros((11, 6))}
    e = flora(emb, (2, 2), "tok_embed", jax.random.PRNGKey(3))
    assert [f.shape for f in e.params["tok_embed"]["factors"]] == [(11, 2), (6, 2)]
    with pytest.raises(ValueError, match="ranks"):
        flora(params, (2, 2), "params/conv_0/kernel", jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="factors were given"):
        tucker_delta(jnp.zeros((2, 2)), [jnp.zeros((3, 2))])
