import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsejax
from sparsejax.pruning import drop_and_grow, drop_fraction_at, rigl, sign_drop_and_grow, sparse_evolutionary_training


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
    with pytest.raises(ValueError, match="a/kernel' has shape"):
        rigl(optax.sgd(0.1), bad, update_every=1, end_step=5).init(params)


def _setup(seed=0, sparsity=0.7):
    params = _params(jax.random.key(seed))
    mask = sparsejax.random_mask(jax.random.key(seed + 1), params, sparsity)
    return sparsejax.apply_mask(params, mask), mask


X = jax.random.normal(jax.random.key(3), (16, 12))
Y = jax.random.normal(jax.random.key(4), (16, 3))


def _run(tx, params, steps):
    state = tx.init(params)
    history = []

    @jax.jit
    def step(params, state):
        g = jax.grad(_loss)(params, X, Y)
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    for _ in range(steps):
        old_params, old_state = params, state
        params, state = step(params, state)
        history.append((old_params, old_state, params, state))
    return history


def test_update_timing_begin_and_end_step():
    params, mask = _setup()
    tx = rigl(optax.sgd(0.05), mask, update_every=3, end_step=13, begin_step=5, drop_fraction=0.5, schedule="constant")
    changed = []
    for t, (_, old, _, new) in enumerate(_run(tx, params, 20)):
        assert int(old.count) == t
        if not np.array_equal(np.asarray(old.mask["a"]["kernel"]), np.asarray(new.mask["a"]["kernel"])):
            changed.append(t)
    assert changed == [6, 9, 12]  # multiples of 3 in [begin_step, end_step)


def test_regrown_connections_restart_adam_state_and_skip_the_step():
    params, mask = _setup()
    tx = rigl(optax.adam(1e-2), mask, update_every=4, end_step=100, drop_fraction=0.5)
    history = _run(tx, params, 8)
    old_p, old_s, new_p, new_s = history[4]  # t = 4: a connectivity update
    adam_old, adam_new = old_s.inner_state[0], new_s.inner_state[0]
    grown = np.asarray(new_s.mask["a"]["kernel"]) & ~np.asarray(old_s.mask["a"]["kernel"])
    assert grown.any()
    assert np.all(np.asarray(adam_new.mu["a"]["kernel"])[grown] == 0)
    assert np.all(np.asarray(adam_new.nu["a"]["kernel"])[grown] == 0)
    assert int(adam_new.count) == int(adam_old.count)  # inner step skipped
    stayed = np.asarray(new_s.mask["a"]["kernel"]) & np.asarray(old_s.mask["a"]["kernel"])
    np.testing.assert_array_equal(np.asarray(new_p["a"]["kernel"])[stayed], np.asarray(old_p["a"]["kernel"])[stayed])
    assert np.all(np.asarray(new_p["a"]["kernel"])[grown] == 0)  # grown weights start at zero
    # the old behaviour, on request: the step runs and the stale moments stay
    tx2 = rigl(optax.adam(1e-2), mask, update_every=4, end_step=100, drop_fraction=0.5, skip_step=False,
               reset_state=False)
    _, o2, _, n2 = _run(tx2, params, 5)[4]
    assert int(n2.inner_state[0].count) == int(o2.inner_state[0].count) + 1


def test_set_drops_each_sign_separately():
    w = jnp.array([0.1, 0.2, 0.3, 0.4, -5.0, -6.0, 0.0, 0.0, 0.0, 0.0])
    mask = jnp.array([True] * 6 + [False] * 4)
    grow = jnp.array([0, 0, 0, 0, 0, 0, 4.0, 3.0, 2.0, 1.0])
    new = np.asarray(sign_drop_and_grow(mask, w, grow, 0.5))
    # 2 of 4 positives (0.1, 0.2) and 1 of 2 negatives (-5, the one closest to zero) go, even though
    # -5 is larger in magnitude than every positive weight; 3 grown by score
    np.testing.assert_array_equal(new, [False, False, True, True, False, True, True, True, True, False])
    # a magnitude rule would have kept -5
    assert bool(drop_and_grow(mask, w, grow, 0.5)[4])


def test_dst_refuses_unmasked_params_and_bad_knobs():
    params = _params(jax.random.key(0))
    mask = sparsejax.random_mask(jax.random.key(1), params, 0.5)
    with pytest.raises(ValueError, match="non-zero entries where the mask is False"):
        rigl(optax.sgd(0.1), mask, update_every=1, end_step=5).init(params)
    with pytest.raises(ValueError, match="end_step must be >= 6"):
        rigl(optax.sgd(0.1), mask, update_every=1, end_step=5, begin_step=5)
    with pytest.raises(ValueError, match="drop_rule='sign'"):
        sparse_evolutionary_training(optax.sgd(0.1), mask, key=jax.random.key(0), update_every=1, end_step=5,
                                     sparsity_type="nm_2,4")
