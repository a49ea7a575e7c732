"""The residual-stream splice of P37's LM setting: exact split of the forward pass and the loss-recovered metric."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.llm.model import forward, init_lm, lm_loss
from sparsejax.sae.lm import continue_forward, loss_recovered, next_token_loss, residual_stream


@pytest.fixture(scope="module")
def lm():
    params, config = init_lm(jax.random.PRNGKey(0), 11, d_model=16, n_layers=2, n_heads=2, max_len=12)
    windows = np.asarray(jax.random.randint(jax.random.PRNGKey(1), (6, 9), 0, 11))
    return params, config, windows


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_split_forward_equals_forward(lm, layer):
    params, config, windows = lm
    tokens = jnp.asarray(windows[:, :-1])
    x = residual_stream(params, tokens, config, layer)
    assert x.shape == (6, 8, 16)
    np.testing.assert_allclose(continue_forward(params, x, config, layer), forward(params, tokens, config),
                               rtol=1e-5, atol=1e-5)


def test_spliced_loss_identity_is_the_clean_loss_and_ablation_costs(lm):
    params, config, windows = lm
    clean = next_token_loss(params, windows, config, 1, batch_size=4)
    want = float(lm_loss(params, jnp.asarray(windows[:, :-1]), jnp.asarray(windows[:, 1:]), config))
    assert clean == pytest.approx(want, rel=1e-5)
    assert next_token_loss(params, windows, config, 1, replace=lambda x: x) == pytest.approx(clean, rel=1e-6)
    noisy = next_token_loss(params, windows, config, 1, replace=lambda x: x + 3.0 * jnp.sin(7 * x))
    assert noisy != pytest.approx(clean, rel=1e-3)
    assert loss_recovered(clean, clean, clean + 1.0) == 1.0
    assert loss_recovered(clean, clean + 1.0, clean + 1.0) == 0.0
    assert loss_recovered(1.0, 1.5, 3.0) == pytest.approx(0.75)


def test_bad_input(lm):
    params, config, windows = lm
    with pytest.raises(ValueError, match="layer"):
        residual_stream(params, jnp.asarray(windows[:, :-1]), config, 3)
    with pytest.raises(TypeError, match="windows"):
        next_token_loss(params, windows.astype(np.float32), config, 1)
    with pytest.raises(ValueError, match="ablated loss"):
        loss_recovered(2.0, 1.0, 1.5)
