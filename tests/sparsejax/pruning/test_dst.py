import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsejax
from sparsejax.pruning import drop_and_grow, drop_fraction_at, rigl, sparse_evolutionary_training


def _params(key):
    k1, k2 = jax.random.split(key)
    return {"a": {"kernel": jax.random.normal(k1, (12, 10)), "bias": jnp.zeros(10)},
            "b": {"kernel": jax.random.normal(k2, (10, 3)), "bias": jnp.zeros(3)}}


def _loss(p, x, y):
    h = jnp.tanh(x @ p["a"]["kernel"] + p["a"]["bias"])
    return jnp.mean((h @ p["b"]["kernel"] + p["b"]["bias"] - y) ** 2)


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_exact_sparsity_is_kept_and_mask_moves(method):
    params = _params(jax.random.key(0))
    mask = sparsejax.random_mask(jax.random.key(1), params, 0.8)
    params = sparsejax.apply_mask(params, mask)
    kw = dict(update_every=2, end_step=20, drop_fraction=0.5)
    tx = (sparse_evolutionary_training(optax.adam(1e-2), mask, key=jax.random.key(2), **kw) if method == "set"
          else rigl(optax.adam(1e-2), mask, **kw))
    state = tx.init(params)
    x = jax.random.normal(jax.random.key(3), (16, 12))
    y = jax.random.normal(jax.random.key(4), (16, 3))

    @jax.jit
    def step(params, state):
        g = jax.grad(_loss)(params, x, y)
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    nnz0 = {k: int(mask[k]["kernel"].sum()) for k in mask}
    for _ in range(12):
        params, state = step(params, state)
        for k in ("a", "b"):
            m = np.asarray(state.mask[k]["kernel"])
            assert m.sum() == nnz0[k]  # exact per-leaf count
            assert np.all(np.asarray(params[k]["kernel"])[~m] == 0)  # pruned weights exactly zero
    assert not np.array_equal(state.mask["a"]["kernel"], mask["a"]["kernel"])
    assert state.mask["a"]["bias"] is None
    assert step._cache_size() == 1


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), zeta=st.floats(0.05, 1.0))
def test_drop_and_grow_brute_force(seed, zeta):
    rng = np.random.default_rng(seed)
    mask = rng.random(30) < 0.4
    w = np.where(mask, rng.standard_normal(30), 0).astype(np.float32)
    g = rng.standard_normal(30).astype(np.float32)
    new = np.asarray(drop_and_grow(jnp.asarray(mask), jnp.asarray(w), jnp.abs(jnp.asarray(g)), zeta))
    k = int(np.floor(np.float32(zeta) * mask.sum()))
    assert new.sum() == mask.sum()
    order = np.argsort(np.where(mask, np.abs(w), np.inf), kind="stable")
    dropped = np.zeros(30, bool)
    dropped[order[:k]] = True
    kept = mask & ~dropped
    grow_order = np.argsort(np.where(kept, np.inf, -np.abs(g)), kind="stable")
    expected = kept.copy()
    expected[grow_order[:k]] = True
    np.testing.assert_array_equal(new, expected)


def test_rigl_grows_the_largest_gradients():
    mask = jnp.array([True, True, False, False, False, False])
    w = jnp.array([0.1, 5.0, 0, 0, 0, 0])
    g = jnp.array([0.0, 0.0, 0.1, 9.0, 0.2, 0.3])
    np.testing.assert_array_equal(drop_and_grow(mask, w, jnp.abs(g), 0.5), [False, True, False, True, False, False])


def test_drop_fraction_schedules():
    assert float(drop_fraction_at(0, 0.3, 100)) == pytest.approx(0.3)
    assert float(drop_fraction_at(50, 0.3, 100)) == pytest.approx(0.15)
    assert float(drop_fraction_at(100, 0.3, 100)) == 0.0
    assert float(drop_fraction_at(70, 0.3, 100, "constant")) == pytest.approx(0.3)


def test_errors():
    params = _params(jax.random.key(0))
    mask = sparsejax.random_mask(jax.random.key(1), params, 0.5)
    with pytest.raises(ValueError, match="key"):
        sparsejax.pruning.dynamic_sparse(optax.sgd(0.1), mask, grow="random", update_every=1, end_step=5)
    with pytest.raises(ValueError, match="drop_fraction"):
        rigl(optax.sgd(0.1), mask, update_every=1, end_step=5, drop_fraction=0.0)
    with pytest.raises(ValueError, match="grow"):
        sparsejax.pruning.dynamic_sparse(optax.sgd(0.1), mask, grow="x", update_every=1, end_step=5)
    bad = {"a": {"kernel": jnp.ones((3, 3), bool), "bias": None}, "b": {"kernel": None, "bias": None}}
    with pytest.raises(ValueError):
        rigl(optax.sgd(0.1), bad, update_every=1, end_step=5).init(params)
