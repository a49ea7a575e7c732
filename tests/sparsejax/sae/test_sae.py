"""Defining properties of the SAE allocations (P37) and the unit-norm decoder step."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.sae import (
    aux_reconstruction_loss, calibrate_threshold, encode_inference, feature_choice_mask, init_sae, init_state, make_sae_step, mean_max_cosine,
    mutual_choice_mask, random_directions, sample_superposition, topk_mask, uniform_capacities,
    zipf_capacities, zipf_underuse_weights,
)


@pytest.fixture
def pre():
    return jax.random.normal(jax.random.PRNGKey(0), (24, 40))


def test_topk_rows_have_exactly_k(pre):
    mask = np.asarray(topk_mask(pre, 5))
    assert (mask.sum(1) == 5).all()
    ref = np.argsort(-np.asarray(pre), axis=1)[:, :5]
    assert all(set(np.flatnonzero(mask[i])) == set(ref[i]) for i in range(pre.shape[0]))


def test_topk_exact_with_ties():
    mask = topk_mask(jnp.zeros((3, 7)), 2)
    assert (np.asarray(mask).sum(1) == 2).all()


@pytest.mark.parametrize("exponent", [0.0, 1.0])
def test_feature_choice_columns_at_most_capacity(pre, exponent):
    caps = zipf_capacities(pre.shape[0], pre.shape[1], 4, exponent)
    assert caps.sum() == 4 * pre.shape[0] and caps.max() <= pre.shape[0]
    mask = np.asarray(feature_choice_mask(pre, caps))
    assert (mask.sum(0) <= caps).all() and (mask.sum(0) == caps).all()
    for j in range(pre.shape[1]):
        chosen = np.asarray(pre)[mask[:, j], j]
        others = np.asarray(pre)[~mask[:, j], j]
        assert chosen.size == 0 or others.size == 0 or chosen.min() >= others.max()


def test_uniform_capacity_is_kn_over_f():
    caps = uniform_capacities(64, 32, 4)
    assert (caps == 8).all()
    assert zipf_capacities(10, 4, 4, 3.0).tolist() == [10, 10, 10, 10]  # capped at N, excess handed on


def test_mutual_choice_global_topkn(pre):
    k = 3
    mask = np.asarray(mutual_choice_mask(pre, k))
    assert mask.sum() == k * pre.shape[0]
    p = np.asarray(pre)
    assert p[mask].min() >= p[~mask].max()


def test_mutual_choice_with_one_token_is_topk(pre):
    row = pre[:1]
    np.testing.assert_array_equal(np.asarray(mutual_choice_mask(row, 6)), np.asarray(topk_mask(row, 6)))


def test_bad_inputs_are_loud(pre):
    with pytest.raises(ValueError, match="k must be"):
        topk_mask(pre, 0)
    with pytest.raises(ValueError, match="capacities must lie"):
        feature_choice_mask(pre, np.full(pre.shape[1], pre.shape[0] + 1))
    with pytest.raises(ValueError, match="method must be one of"):
        make_sae_step(optax.adam(1e-3), "batch", 4)


def test_zipf_weights_and_aux_with_no_eligible_latent():
    freq = jnp.array([0.0, 0.5, 2.0, 0.1])
    w = np.asarray(zipf_underuse_weights(freq, k=2, exponent=1.0))
    assert w[0] == 1.0 and w[2] == 0.0 and ((0 <= w) & (w <= 1)).all()
    params = init_sae(jax.random.PRNGKey(0), 3, 4)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    loss = jax.jit(aux_reconstruction_loss, static_argnums=4)
    assert float(loss(params, x @ params["W_enc"], x, jnp.zeros(4), 2)) == 0.0
    assert float(loss(params, x @ params["W_enc"], x, jnp.ones(4), 2)) > 0.0


def test_step_keeps_unit_decoder_columns_and_learns():
    dirs = random_directions(jax.random.PRNGKey(0), 24, 8)
    x, codes = sample_superposition(jax.random.PRNGKey(1), dirs, 64, 3.0)
    assert ((np.asarray(codes) > 0).sum(1) >= 1).all()
    opt = optax.adam(1e-2)
    state = init_state(init_sae(jax.random.PRNGKey(2), 8, 32, b_dec=x.mean(0)), opt)
    step = make_sae_step(opt, "feature_choice", 3, aux="aux_zipf", dead_steps=2)
    first = None
    for _ in range(15):
        state, m = step(state, x)
        first = float(m["nmse"]) if first is None else first
        np.testing.assert_allclose(np.linalg.norm(np.asarray(state.params["W_dec"]), axis=0), 1.0, atol=1e-5)
    assert float(m["nmse"]) < first and float(m["l0"]) <= 3.0 + 1e-6
    assert 0.0 < float(mean_max_cosine(dirs, state.params["W_dec"])) <= 1.0


def test_calibrated_threshold_gives_requested_mean_l0():
    params = init_sae(jax.random.PRNGKey(0), 8, 32)
    x = jax.random.normal(jax.random.PRNGKey(1), (100, 8))
    z = encode_inference(params, x, calibrate_threshold(params, x, 3.0))
    assert int((np.asarray(z) > 0).sum()) == 300
