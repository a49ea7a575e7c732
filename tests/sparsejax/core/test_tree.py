"""Pytree helpers: the one parameter count shared by every package."""
import jax
import jax.numpy as jnp
import flax.linen as nn
import pytest

from sparsejax.core import param_count


def test_param_count_matches_layer_shapes_and_eval_shape():
    params = nn.Dense(7).init(jax.random.PRNGKey(0), jnp.ones((1, 5)))
    assert param_count(params) == 5 * 7 + 7
    assert param_count(jax.eval_shape(lambda: params)) == 5 * 7 + 7
    assert param_count({"a": jnp.ones((2, 3, 4)), "b": None, "c": [jnp.ones(())]}) == 25


def test_param_count_names_the_bad_leaf():
    with pytest.raises(TypeError, match="'w/x'"):
        param_count({"w": {"x": "abc"}})
