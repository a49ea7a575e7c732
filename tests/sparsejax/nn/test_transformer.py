import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.nn import DecoderLM, ViT


@pytest.fixture(scope="module")
def lm():
    model = DecoderLM(vocab_size=11, d_model=16, n_layers=2, n_heads=4, max_len=8)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 8)), jnp.int32)
    return model, model.init(jax.random.key(0), tokens), tokens


def test_decoder_lm_shape_and_causality(lm):
    model, params, tokens = lm
    logits = model.apply(params, tokens)
    assert logits.shape == (2, 8, 11)
    changed = tokens.at[:, 5].set((tokens[:, 5] + 1) % 11)
    logits2 = model.apply(params, changed)
    np.testing.assert_allclose(logits[:, :5], logits2[:, :5], atol=1e-5)  # the past never sees the future
    assert not np.allclose(logits[:, 5:], logits2[:, 5:])


def test_decoder_lm_kernels_are_2d_and_embeddings_named(lm):
    _, params, _ = lm
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    names = {jax.tree_util.keystr(p): x.shape for p, x in flat}
    assert any("tok_embed" in k and "embedding" in k for k in names)
    assert all(len(s) == 2 for k, s in names.items() if "kernel" in k)


def test_decoder_lm_errors(lm):
    model, params, _ = lm
    with pytest.raises(ValueError, match="max_len"):
        model.apply(params, jnp.zeros((1, 9), jnp.int32))
    with pytest.raises(ValueError, match="n_heads"):
        DecoderLM(11, d_model=10, n_layers=1, n_heads=4, max_len=8).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))


def test_vit_shape_pooling_invariance_and_errors():
    model = ViT(num_classes=10, patch_size=2, d_model=16, n_layers=1, n_heads=2)
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1))
    params = model.init(jax.random.key(0), x)
    out = model.apply(params, x)
    assert out.shape == (3, 10)
    # mean-pooled tokens: the logits are a function of the image, not of the batch composition
    np.testing.assert_allclose(model.apply(params, x[1:2]), out[1:2], atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        model.apply(params, jnp.zeros((1, 7, 7, 1)))
    with pytest.raises(ValueError, match="NHWC"):
        model.apply(params, jnp.zeros((1, 64)))
