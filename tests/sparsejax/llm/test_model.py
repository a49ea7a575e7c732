"""The functional LM: DecoderLM conversion, swappable attention, causality, rotary/RMSNorm, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.llm import LMConfig, attention, forward, from_decoder_lm, init_lm
from sparsejax.nn import DecoderLM


def _tokens(vocab, shape=(3, 12), seed=1):
    return jax.random.randint(jax.random.PRNGKey(seed), shape, 0, vocab)


def test_decoder_lm_params_convert_with_equal_logits():
    dtype, tol = jnp.float64, 1e-10
    with jax.enable_x64(True):
        model = DecoderLM(29, d_model=32, n_layers=2, n_heads=4, max_len=16)
        tok = _tokens(29)
        flax_params = jax.tree_util.tree_map(lambda x: x.astype(dtype), jax.jit(model.init)(jax.random.PRNGKey(0), tok))
        # non-trivial LayerNorm parameters so the conversion of scale/bias is exercised
        flax_params = jax.tree_util.tree_map_with_path(
            lambda p, x: x + 0.1 * jnp.cos(jnp.arange(x.size, dtype=dtype).reshape(x.shape)) if "ln" in str(p) else x,
            flax_params)
        params, config = from_decoder_lm(flax_params, n_heads=4)
        ours = jax.jit(forward, static_argnames="config")(params, tok, config=config)
        np.testing.assert_allclose(ours, jax.jit(model.apply)(flax_params, tok), atol=tol, rtol=0)
        assert len(params["blocks"]) == 2 and config.norm == "layernorm" and config.positions == "learned"


def test_attention_is_a_swappable_function(fwd):
    params, config = init_lm(jax.random.PRNGKey(0), 23, d_model=32, n_layers=2, n_heads=4, max_len=16)
    tok = _tokens(config.vocab_size)
    calls = []

    def spy(q, k, v, mask):
        calls.append((q.shape, mask.shape))
        return attention(q, k, v, mask)

    ref = fwd(params, tok, config=config)
    np.testing.assert_array_equal(fwd(params, tok, config=config, attention_fn=spy), ref)
    assert calls == [((3, 12, 4, 8), (12, 12))] * 2  # traced once, one call per block
    uniform = lambda q, k, v, mask: jnp.broadcast_to(v.mean(axis=1, keepdims=True), v.shape)  # noqa: E731
    assert not np.allclose(fwd(params, tok, config=config, attention_fn=uniform), ref)


@pytest.mark.parametrize("norm,positions", [("layernorm", "learned"), ("rmsnorm", "rotary")])
def test_causal_future_tokens_do_not_change_past_logits(norm, positions, fwd):
    params, config = init_lm(jax.random.PRNGKey(3), 17, d_model=16, n_layers=2, n_heads=2, max_len=8,
                             norm=norm, positions=positions)
    tok = _tokens(17, (2, 8))
    changed = tok.at[:, 5:].set((tok[:, 5:] + 1) % 17)
    a, b = fwd(params, tok, config=config), fwd(params, changed, config=config)
    np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not np.allclose(a[:, 5:], b[:, 5:])
    assert ("pos_embed" in params) == (positions == "learned")
    assert set(params["blocks"][0]["ln1"]) == ({"scale", "bias"} if norm == "layernorm" else {"scale"})


def test_rotary_relative_positions():
    """Rotary attention logits depend on positions only through their difference."""
    from sparsejax.llm.model import rotary

    rng = np.random.default_rng(0)
    x = jnp.asarray(np.broadcast_to(rng.standard_normal((1, 1, 2, 8)), (1, 8, 2, 8)), jnp.float32)
    r = np.asarray(jax.jit(rotary, static_argnums=1)(x, 1e4))  # head 0 plays q, head 1 plays k at every position
    dot = lambda tq, tk: float(np.sum(r[0, tq, 0] * r[0, tk, 1]))  # noqa: E731
    assert dot(5, 2) == pytest.approx(dot(7, 4), rel=1e-5)
    assert dot(5, 2) != pytest.approx(dot(5, 4), rel=1e-3)


def test_bad_input_is_loud():
    params, config = init_lm(jax.random.PRNGKey(0), 23, d_model=32, n_layers=2, n_heads=4, max_len=16)
    with pytest.raises(ValueError, match=r"tokens must have shape \(batch, time\)"):
        forward(params, jnp.zeros((4,), jnp.int32), config)
    with pytest.raises(TypeError, match="tokens must be integers"):
        forward(params, jnp.zeros((1, 4)), config)
    with pytest.raises(ValueError, match="exceeds max_len=16"):
        forward(params, jnp.zeros((1, 17), jnp.int32), config)
    with pytest.raises(ValueError, match="norm"):
        LMConfig(10, 2, norm="batchnorm").checked()
    with pytest.raises(ValueError, match="not DecoderLM params"):
        from_decoder_lm({"params": {"x": 1}}, 2)
