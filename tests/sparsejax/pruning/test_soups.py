"""Soups: identical ingredients give the model, shared masks are kept, mismatched masks raise,
vmapped ingredients match sequential training."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax as sj
from sparsejax.nn import MLP
from sparsejax.pruning import average, greedy_soup, sparse_model_soup, stack_trees, train_ingredients, unstack_tree
from sparsejax.train import TrainState, make_train_step


def _params(seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {"d": {"kernel": jax.random.normal(k1, (8, 6)), "bias": jax.random.normal(k2, (6,))}}


def test_soup_of_identical_models_is_the_model():
    p = _params(0)
    soup = average([p, p, p])
    np.testing.assert_allclose(soup.params["d"]["kernel"], p["d"]["kernel"], rtol=1e-6)
    np.testing.assert_allclose(soup.params["d"]["bias"], p["d"]["bias"], rtol=1e-6)


def test_soup_keeps_shared_mask_and_rejects_different_masks():
    mask = sj.random_mask(jax.random.PRNGKey(3), _params(0), 0.7)
    ingredients = [sj.apply_mask(_params(s), mask) for s in range(4)]
    soup = average(ingredients, mask)
    assert sj.sparsity(soup.params) == pytest.approx(sj.sparsity(mask))
    np.testing.assert_array_equal(np.asarray(soup.params["d"]["kernel"] != 0), np.asarray(mask["d"]["kernel"]))
    np.testing.assert_allclose(soup.params["d"]["kernel"], np.mean([i["d"]["kernel"] for i in ingredients], 0),
                               rtol=1e-5, atol=1e-7)
    other = sj.random_mask(jax.random.PRNGKey(4), _params(0), 0.7)
    with pytest.raises(ValueError, match="different masks"):
        average(ingredients[:2], [mask, other])
    union = average([sj.apply_mask(_params(0), mask), sj.apply_mask(_params(1), other)], [mask, other], union=True)
    assert sj.sparsity(union.mask) < sj.sparsity(mask)  # the documented loss of sparsity


def test_greedy_soup_keeps_only_helpful_ingredients():
    target = _params(0)
    good = [jax.tree_util.tree_map(lambda w, s=s: w + 0.1 * s, target) for s in (-1, 1)]
    bad = jax.tree_util.tree_map(lambda w: w + 10.0, target)
    score = lambda p: -float(jnp.sum((p["d"]["kernel"] - target["d"]["kernel"]) ** 2))  # noqa: E731
    soup, chosen = greedy_soup(good + [bad], score)
    assert sorted(chosen) == [0, 1]
    np.testing.assert_allclose(soup.params["d"]["kernel"], target["d"]["kernel"], atol=1e-5)


def test_vmapped_ingredients_equal_sequential_and_keep_mask():
    x = jax.random.normal(jax.random.PRNGKey(0), (40, 5))
    y = jnp.arange(40) % 3
    model = MLP(3, hidden=(8,))
    params = model.init(jax.random.PRNGKey(1), x[:1])
    mask = sj.magnitude_mask(params, 0.6)
    params = sj.apply_mask(params, mask)
    tx = sj.masked(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), mask)
    step = make_train_step(model.apply, tx)
    lrs = [0.1, 0.05]
    states = []
    for lr in lrs:
        st = TrainState.create(params, tx)
        st = st._replace(opt_state=st.opt_state._replace(
            inner_state=st.opt_state.inner_state._replace(hyperparams={"learning_rate": jnp.asarray(lr)})))
        states.append(st)
    stacked, _ = train_ingredients(step, stack_trees(states), x, y, steps=3, batch_size=10, key=jax.random.PRNGKey(2))
    outs = unstack_tree(stacked.params)
    perms = [jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(2), i), 40) for i in range(2)]
    from sparsejax.data import batch_indices
    for i, st in enumerate(states):
        for t in range(3):
            rows = perms[i][batch_indices(jax.random.PRNGKey(2), t, 40, 10)]
            st, _ = step(st, x[rows], y[rows])
        np.testing.assert_allclose(outs[i]["params"]["dense_0"]["kernel"], st.params["params"]["dense_0"]["kernel"],
                                   rtol=1e-5, atol=1e-6)
        assert sj.sparsity(sj.apply_mask(outs[i], mask)) == pytest.approx(sj.sparsity(outs[i]), abs=1e-9)
    assert not np.allclose(outs[0]["params"]["dense_0"]["kernel"], outs[1]["params"]["dense_0"]["kernel"])


def test_sparse_model_soup_reaches_target_and_keeps_mask():
    p = {"d": {"kernel": jax.random.normal(jax.random.PRNGKey(0), (20, 10))}}
    retrain = lambda q, m, phase: [jax.tree_util.tree_map(lambda w, s=s: w * (1 + 0.1 * s), q) for s in range(3)]  # noqa: E731
    res = sparse_model_soup(p, retrain, target_sparsity=0.9, phases=3)
    assert sj.sparsity(res.masks[-1]) == pytest.approx(0.9)
    assert sj.sparsity(res.soups[-1]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="needs score_fn"):
        sparse_model_soup(p, retrain, target_sparsity=0.9, phases=3, method="greedy")
