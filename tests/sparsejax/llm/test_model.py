"""The functional LM: DecoderLM conversion, swappable attention, causality, rotary/RMSNorm, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.llm import LMConfig, attention, forward, from_decoder_lm, init_lm
from sparsejax.nn import DecoderLM


def _tokens(vocab, shape=(3, 12), seed=1):
    return jax.random.randint(jax.random.PRNGKey(seed), shape, 0, vocab)


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 2e-5), (jnp.float64, 1e-10)])
def test_decoder_lm_params_convert_with_equal_logits(dtype, tol):
    with jax.enable_x64(dtype == jnp.float64):
        model = DecoderLM(29, d_model=32, n_layers=3, n_heads=4, max_len=16)
        tok = _tokens(29)
        flax_params = jax.tree_util.tree_map(lambda x: x.astype(dtype), model.init(jax.random.PRNGKey(0), tok))
        # non-trivial LayerNorm parameters so the conversion of scale/bias is exercised
        flax_params = jax.tree_util.tree_map_with_path(
            lambda p, x: x + 0.1 * jnp.cos(jnp.arange(x.size, dtype=dtype).reshape(x.shape)) if "ln" in str(p) else x,
            flax_params)
        params, config = from_decoder_lm(flax_params, n_heads=4)
        np.testing.assert_allclose(forward(params, tok, config), model.apply(flax_params, tok), atol=tol, rtol=0)
        assert len(params["blocks"]) == 3 and config.norm == "layernorm" and config.positions == "learned"


def test_attention_is_a_swappable_function(make_lm):
    params, config = make_lm(dtype=jnp.float32)
    tok = _tokens(config.vocab_size)
    calls = []

    def spy(q, k, v, mask):
        calls.append((q.shape, mask.shape))
        return attention(q, k, v, mask)

    np.testing.assert_array_equal(forward(params, tok, config, attention_fn=spy), forward(params, tok, config))
    assert calls == [((3, 12, 4, 8), (12, 12))] * 2
    uniform = lambda q, k, v, mask: jnp.broadcast_to(v.mean(axis=1, keepdims=True), v.shape)  # noqa: E731
    assert not np.allclose(forward(params, tok, config, attention_fn=uniform), forward(params, tok, config))


@pytest.mark.parametrize("norm,positions", [("layernorm", "learned"), ("rmsnorm", "rotary")])
def test_causal_future_tokens_do_not_change_past_logits(norm, positions):
    params, config = init_lm(jax.random.PRNGKey(3), 17, d_model=16, n_layers=2, n_heads=2, max_len=8,
                             norm=norm, positions=positions)
    tok = _tokens(17, (2, 8))
    changed = tok.at[:, 5:].set((tok[:, 5:] + 1) % 17)
    a, b = forward(params, tok, config), forward(params, changed, config)
    np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not np.allclose(a[:, 5:], b[:, 5:])
    assert ("pos_embed" in params) == (positions == "learned")
    assert set(params["blocks"][0]["ln1"]) == ({"scale", "bias"} if norm == "layernorm" else {"scale"})


def test_rotary_relative_positions():
    """Rotary attention logits depend on positions only through their difference."""
    from sparsejax.llm.model import rotary

    q = jax.random.normal(jax.random.PRNGKey(0), (1, 1, 1, 8))
    k = jax.random.normal(jax.random.PRNGKey(1), (1, 1, 1, 8))
    seq = lambda x, t: jnp.concatenate([jnp.zeros((1, t, 1, 8)), x], axis=1)  # noqa: E731
    dot = lambda tq, tk: float(jnp.sum(rotary(seq(q, tq), 1e4)[0, tq] * rotary(seq(k, tk), 1e4)[0, tk]))  # noqa: E731
    assert dot(5, 2) == pytest.approx(dot(7, 4), rel=1e-5)
    assert dot(5, 2) != pytest.approx(dot(5, 4), rel=1e-3)


def test_bad_input_is_loud(make_lm):
    params, config = make_lm(dtype=jnp.float32)
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
