"""masked() and gradual_pruning(): zeros stay zero under Adam, schedules hit their target,
masks change without recompiling."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax as sj
from sparsejax.nn import MLP

MODEL = MLP(num_classes=3, hidden=(16,))
X = jax.random.normal(jax.random.PRNGKey(1), (32, 8))
Y = jax.random.randint(jax.random.PRNGKey(2), (32,), 0, 3)


def init_params():
    return MODEL.init(jax.random.PRNGKey(0), X)


def make_step(tx):
    def step(params, opt_state):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(MODEL.apply(p, X), Y).mean()

        grads = jax.grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return jax.jit(step)


def kernels(tree):
    return [tree["params"][n]["kernel"] for n in ("dense_0", "head")]


@pytest.mark.parametrize("inner", [optax.adam(1e-2), optax.adamw(1e-2, weight_decay=0.1), optax.sgd(0.1, 0.9)])
def test_masked_keeps_zeros_for_200_steps(inner):
    params = init_params()  # deliberately not pre-masked: the first update must zero pruned weights
    mask = sj.random_mask(jax.random.PRNGKey(3), params, sj.erk_densities(params, 0.8))
    tx = sj.masked(inner, mask)
    state = tx.init(params)
    step = make_step(tx)
    for _ in range(200):
        params, state = step(params, state)
    for w, m in zip(kernels(params), kernels(mask)):
        assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
        assert np.all(np.asarray(w)[np.asarray(m)] != 0.0)
    if isinstance(state.inner_state[0], optax.ScaleByAdamState):
        mu = state.inner_state[0].mu
        for moment, m in zip(kernels(mu), kernels(mask)):
            assert np.all(np.asarray(moment)[~np.asarray(m)] == 0.0)
    assert step._cache_size() == 1


def test_changing_the_mask_does_not_recompile():
    params = init_params()
    tx = sj.masked(optax.adam(1e-2), sj.magnitude_mask(params, 0.5))
    state = tx.init(params)
    step = make_step(tx)
    for seed in range(4):
        state = state._replace(mask=sj.random_mask(jax.random.PRNGKey(seed), params, 0.3 + 0.1 * seed))
        params, state = step(params, state)
    assert step._cache_size() == 1
    for w, m in zip(kernels(params), kernels(state.mask)):
        assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)


def test_masked_rejects_mismatched_mask():
    params = init_params()
    bad = sj.magnitude_mask({"w": jnp.ones((4, 4))}, 0.5)
    with pytest.raises(ValueError, match="structure"):
        sj.masked(optax.adam(1e-3), bad).init(params)
    tx = sj.masked(optax.adam(1e-3), sj.magnitude_mask(params, 0.5))
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


def test_polynomial_schedule_endpoints():
    f = lambda t: float(sj.polynomial_sparsity(t, 0.9, 10, 110))
    assert f(0) == 0.0 and f(10) == 0.0 and f(110) == pytest.approx(0.9) and f(500) == pytest.approx(0.9)
    assert f(60) == pytest.approx(0.9 * (1 - 0.5**3))
    values = [f(t) for t in range(10, 111)]
    assert all(b >= a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "target, method, distribution, frequency",
    [(0.5, "magnitude", "uniform", 1), (0.8, "magnitude", "erk", 7), (0.95, "random", "uniform", 4),
     (0.8, "random", "erk", 3)],
)
def test_gradual_pruning_reaches_target_without_recompiling(target, method, distribution, frequency):
    params = init_params()
    begin, end = 2, 20
    tx = sj.gradual_pruning(optax.adam(1e-2), target, begin, end, frequency, method, distribution)
    state = tx.init(params)
    step = make_step(tx)
    previous = state.mask
    for t in range(end + 3):
        params, state = step(params, state)
        for old, new in zip(kernels(previous), kernels(state.mask)):
            assert not np.any(np.asarray(new) & ~np.asarray(old))  # pruned weights never return
        previous = state.mask
        if t < begin:
            assert sj.sparsity(state.mask) == 0.0
    dens = {"uniform": sj.uniform_densities, "erk": sj.erk_densities}[distribution](params, target)
    for d, m in zip(kernels(dens), kernels(state.mask)):  # exact per-leaf count at the target
        assert int(m.sum()) == int(np.round(np.float32(d) * m.size))
    assert sj.sparsity(state.mask) == pytest.approx(target, abs=0.01)
    for w, m in zip(kernels(params), kernels(state.mask)):
        assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
    assert step._cache_size() == 1


def test_gradual_pruning_erk_distribution_is_erk():
    params = init_params()
    tx = sj.gradual_pruning(optax.sgd(0.0), 0.9, 0, 0, 1, "magnitude", "erk")
    state = tx.init(params)
    params, state = make_step(tx)(params, state)
    dens = sj.erk_densities(params, 0.9)
    for n in ("dense_0", "head"):
        kept = int(state.mask["params"][n]["kernel"].sum())
        assert kept == int(np.round(np.float32(dens["params"][n]["kernel"]) * params["params"][n]["kernel"].size))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target_sparsity=1.0), r"\[0, 1\)"),
        (dict(method="l2"), "method"),
        (dict(distribution="er2"), "distribution"),
        (dict(begin_step=5, end_step=2), "begin_step"),
        (dict(frequency=0), "frequency"),
    ],
)
def test_gradual_pruning_errors(kwargs, match):
    args = dict(target_sparsity=0.5, begin_step=0, end_step=10, frequency=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sj.gradual_pruning(optax.adam(1e-3), **args)
