"""P18 Random Search over node masks: exact node counts, the weight mask, vmapped candidate training."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.nas import (
    candidate_accuracy, masked_params, node_weight_mask, nodes_kept, random_node_masks, search_scores, select_best,
    steps_to_fraction, train_candidates,
)
from sparsejax.nn import MLP


def _parent(hidden=(12, 10), d_in=5, n_cls=3):
    model = MLP(n_cls, hidden=hidden)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, d_in)))["params"]
    return model, params


def test_random_node_masks_keep_exact_counts_and_differ():
    masks = random_node_masks(jax.random.PRNGKey(3), (12, 10), 0.75, 8)
    assert [m.shape for m in masks] == [(8, 12), (8, 10)]
    assert (np.asarray(masks[0]).sum(1) == 3).all() and (np.asarray(masks[1]).sum(1) == nodes_kept(10, 0.75)).all()
    assert len({tuple(r) for r in np.asarray(masks[0])}) > 1
    assert nodes_kept(10, 0.99) == 1


def test_node_weight_mask_zeroes_rows_cols_and_matches_param_count():
    model, params = _parent()
    m1, m2 = np.zeros(12, bool), np.zeros(10, bool)
    m1[[0, 4, 7]] = True
    m2[[1, 2]] = True
    mask = node_weight_mask(params, [jnp.asarray(m1), jnp.asarray(m2)])
    assert int(mask["dense_0"]["kernel"].sum()) == 5 * 3 and int(mask["dense_0"]["bias"].sum()) == 3
    assert int(mask["dense_1"]["kernel"].sum()) == 3 * 2 and int(mask["head"]["kernel"].sum()) == 2 * 3
    assert bool(mask["head"]["bias"].all())
    # the masked parent equals the compact network built from the kept nodes only
    p = masked_params(params, mask)
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 5))
    k0, k1, k2 = (params[n]["kernel"] for n in ("dense_0", "dense_1", "head"))
    h = jax.nn.relu(x @ k0[:, m1] + params["dense_0"]["bias"][m1])
    h = jax.nn.relu(h @ k1[m1][:, m2] + params["dense_1"]["bias"][m2])
    np.testing.assert_allclose(model.apply({"params": p}, x), h @ k2[m2] + params["head"]["bias"], atol=1e-5)


def test_node_weight_mask_rejects_wrong_layer_count():
    _, params = _parent()
    with pytest.raises(ValueError, match="node_masks has 1 layers"):
        node_weight_mask(params, [jnp.ones(12, bool)])


def test_train_candidates_vmapped_equals_single_run_and_keeps_masks():
    model, params = _parent()
    apply_fn = lambda p, x: model.apply({"params": p}, x)  # noqa: E731
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 3, 40).astype(np.int32)
    masks = random_node_masks(jax.random.PRNGKey(5), (12, 10), 0.5, 4)
    kw = dict(steps=6, batch_size=8, key=jax.random.PRNGKey(2), tx=optax.adam(1e-2), eval_every=3)
    run = train_candidates(apply_fn, params, masks, x, y, x, y, **kw)
    assert run.eval_steps.tolist() == [0, 3, 6] and run.val_accuracy.shape == (4, 3)
    # N = 1 with the first mask is candidate 0 of the vmapped run (the random baseline, same key)
    single = train_candidates(apply_fn, params, [m[:1] for m in masks], x, y, x, y, **kw)
    np.testing.assert_allclose(single.val_loss[0], run.val_loss[0], rtol=1e-5)
    # removed nodes stay exactly zero after training
    mask0 = node_weight_mask(params, [m[1] for m in masks])
    k = np.asarray(run.params["dense_0"]["kernel"][1])
    assert (k[~np.asarray(mask0["dense_0"]["kernel"])] == 0).all()
    acc = candidate_accuracy(apply_fn, run.params, x, y)
    np.testing.assert_allclose(acc, run.val_accuracy[:, -1], atol=1e-6)
    best = select_best(search_scores(run, 3))
    assert best == int(np.argmax(run.val_accuracy[:, 1]))
    np.testing.assert_allclose(search_scores(run, 0), -run.val_loss[:, 0])
    with pytest.raises(ValueError, match="short_steps=4 is not an evaluation step"):
        search_scores(run, 4)


def test_steps_to_fraction():
    assert steps_to_fraction([0, 10, 20, 30], [0.1, 0.5, 0.95, 1.0]) == 20
    assert steps_to_fraction([0, 10], [1.0, 1.0]) == 0
