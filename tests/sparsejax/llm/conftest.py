"""Small random LMs shared by the tests of sparsejax.llm."""
import jax
import jax.numpy as jnp
import pytest

from sparsejax.llm import init_lm


def random_lm(key=0, vocab=23, d_model=32, n_layers=2, n_heads=4, max_len=16, dtype=jnp.float64, perturb_norms=True,
              **kw):
    """An LM with random weights (and, optionally, random LayerNorm scales/biases), cast to ``dtype``."""
    params, config = init_lm(jax.random.PRNGKey(key), vocab, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                             max_len=max_len, **kw)
    params = jax.tree_util.tree_map(lambda x: x.astype(dtype), params)
    k = jax.random.PRNGKey(100 + key)
    if perturb_norms and config.norm == "layernorm":
        for i, b in enumerate(params["blocks"] + [params]):
            for j, name in enumerate(("ln1", "ln2") if "qkv" in b else ("ln_f",)):
                kk = jax.random.fold_in(k, 10 * i + j)
                b[name] = {"scale": (1 + 0.3 * jax.random.normal(kk, (d_model,))).astype(dtype),
                           "bias": (0.2 * jax.random.normal(jax.random.fold_in(kk, 1), (d_model,))).astype(dtype)}
        params["lm_head"]["bias"] = (0.1 * jax.random.normal(jax.random.fold_in(k, 99), (vocab,))).astype(dtype)
    return params, config


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture
def make_lm():
    """The :func:`random_lm` factory (conftest helpers cannot be imported under importlib mode)."""
    return random_lm
