"""ISS-P: alpha=1 is dense training, exactly the bottom-p fraction is scaled by exactly alpha,
alpha=0 gives IHT zeros, the frozen mask has ceil(p n) zeros per layer, skipped leaves are untouched."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.pruning import frozen_mask, iss_p


def _setup(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = {"conv": {"kernel": jax.random.normal(k1, (3, 3, 4, 5)), "bias": jax.random.normal(k2, (5,))},
              "tail": {"kernel": jax.random.normal(k3, (5, 7))}}
    loss = lambda p, x: jnp.sum(jnp.tanh(x @ p["conv"]["kernel"].reshape(36, 5) + p["conv"]["bias"]) @ p["tail"]["kernel"])  # noqa: E731
    return params, loss


def _run(tx, steps=5):
    params, loss = _setup()
    state = tx.init(params)

    @jax.jit
    def step(params, state, t):
        g = jax.grad(loss)(params, jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(10), t), (4, 36)))
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    for t in range(steps):
        params, state = step(params, state, t)
    return params, state


def test_alpha_one_equals_dense_training():
    dense, _ = _run(optax.adam(1e-2))
    iss, _ = _run(iss_p(optax.adam(1e-2), 0.9, alpha=1.0))
    for a, b in zip(jax.tree_util.tree_leaves(dense), jax.tree_util.tree_leaves(iss)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("alpha", [0.95, 0.5, 0.0])
def test_touches_exactly_bottom_p_by_alpha(alpha):
    p = 0.9
    pred = lambda path, leaf: leaf.ndim >= 2 and "tail" not in path  # noqa: E731
    tx = iss_p(optax.sgd(0.1), p, alpha=alpha, predicate=pred)
    params, loss = _setup()
    state = tx.init(params)
    g = jax.grad(loss)(params, jnp.ones((4, 36)))
    updates, state = tx.update(g, state, params)
    new = optax.apply_updates(params, updates)
    plain = jax.tree_util.tree_map(lambda w, gg: w - 0.1 * gg, params, g)
    w_plain, w_new = np.asarray(plain["conv"]["kernel"]).ravel(), np.asarray(new["conv"]["kernel"]).ravel()
    n = w_plain.size
    k = math.ceil(p * n)
    order = np.argsort(np.abs(w_plain), kind="stable")
    bottom, rest = order[:k], order[k:]
    np.testing.assert_allclose(w_new[bottom], alpha * w_plain[bottom], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w_new[rest], w_plain[rest], rtol=1e-6)
    if alpha == 0.0:
        assert np.all(w_new[bottom] == 0.0)  # exact IHT zeros
    np.testing.assert_allclose(new["tail"]["kernel"], plain["tail"]["kernel"], rtol=1e-6)  # skipped leaf
    np.testing.assert_allclose(new["conv"]["bias"], plain["conv"]["bias"], rtol=1e-6)
    assert state.shrunk["tail"]["kernel"] is None
    assert int(state.shrunk["conv"]["kernel"].sum()) == k


def test_ends_at_target():
    p = 0.95
    params, state = _run(iss_p(optax.adam(1e-2), p, alpha=0.0), steps=4)
    mask = frozen_mask(state)
    for leaf, w in ((mask["conv"]["kernel"], params["conv"]["kernel"]), (mask["tail"]["kernel"], params["tail"]["kernel"])):
        assert int((~leaf).sum()) == min(math.ceil(p * leaf.size), int(0.995 * leaf.size))
        assert np.all(np.asarray(w)[~np.asarray(leaf)] == 0.0)
    assert mask["conv"]["bias"] is None
    with pytest.raises(ValueError, match="alpha must be"):
        iss_p(optax.sgd(0.1), 0.9, alpha=1.5)


def test_schedule_sparsity():
    tx = iss_p(optax.sgd(0.1), lambda t: jnp.minimum(0.3 * (t + 1), 0.9), alpha=0.0)
    _, state = _run(tx, steps=2)
    assert int(state.shrunk["tail"]["kernel"].sum()) == math.ceil(0.6 * 35)
