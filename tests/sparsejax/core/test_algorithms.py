"""Gradual pruning at every pruning step, the scoring methods (global magnitude, saliency, SNIP,
GraSP, Wanda), STE magnitude pruning as a transform, per-layer overrides, the registry."""
import flax.linen as nn
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


def loss_fn(p, x=X, y=Y):
    return optax.softmax_cross_entropy_with_integer_labels(MODEL.apply(p, x), y).mean()


def init_params():
    return MODEL.init(jax.random.PRNGKey(0), X)


def run(tx, params, steps):
    @jax.jit
    def step(params, state):
        g = jax.grad(loss_fn)(params)
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    state = tx.init(params)
    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append((params, state))
    return out, step


def kernels(tree):
    return [tree["params"][n]["kernel"] for n in ("dense_0", "head")]


def test_gradual_pruning_hits_the_schedule_at_every_pruning_step():
    params = init_params()
    begin, end, freq, target, power, s_i = 2, 14, 3, 0.8, 2, 0.1
    tx = sj.gradual_pruning(optax.adam(1e-2), target, begin, end, freq, power=power, initial_sparsity=s_i)
    history, step = run(tx, params, end + 2)
    pruning_steps = [t for t in range(begin, end + 1) if (t - begin) % freq == 0 or t == end]
    for t, (_, state) in enumerate(history):
        s_t = target + (s_i - target) * (1 - min(max(t - begin, 0) / (end - begin), 1)) ** power
        if t < begin:
            assert sj.sparsity(state.mask) == 0.0
            continue
        last = max(p for p in pruning_steps if p <= t)
        s_last = target + (s_i - target) * (1 - (last - begin) / (end - begin)) ** power
        for m in kernels(state.mask):  # the nearest count to the scheduled sparsity of the last pruning step
            assert abs(int(m.sum()) - (1 - s_last) * m.size) <= 0.5 + 1e-4
        if t in pruning_steps:
            assert abs(float(sj.polynomial_sparsity(t, target, begin, end, power, s_i)) - s_t) < 1e-6
    assert step._cache_size() == 1


def test_global_magnitude_and_saliency_rank_across_layers():
    params = init_params()
    tx = sj.gradual_pruning(optax.sgd(0.0), 0.7, 0, 0, 1, "global_magnitude")
    (_, state), = run(tx, params, 1)[0][:1]
    kept = np.concatenate([np.abs(np.asarray(w))[np.asarray(m)] for w, m in zip(kernels(params), kernels(state.mask))])
    cut = np.concatenate([np.abs(np.asarray(w))[~np.asarray(m)] for w, m in zip(kernels(params), kernels(state.mask))])
    assert kept.min() >= cut.max() and kept.size == round(0.3 * (8 * 16 + 16 * 3))
    tx = sj.gradual_pruning(optax.sgd(0.0), 0.5, 0, 0, 1, "saliency")
    (_, state), = run(tx, params, 1)[0][:1]
    g = jax.grad(loss_fn)(params)
    sal = np.abs(np.asarray(kernels(params)[0]) * np.asarray(kernels(g)[0]))
    m = np.asarray(kernels(state.mask)[0])
    assert sal[m].min() >= sal[~m].max()


def test_snip_grasp_wanda_scores():
    params = init_params()
    g = jax.grad(loss_fn)(params)
    snip = sj.snip_scores(loss_fn, params)
    np.testing.assert_allclose(kernels(snip)[0], np.abs(kernels(params)[0] * kernels(g)[0]), rtol=1e-6)
    grasp = sj.grasp_scores(loss_fn, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    v["params"]["head"]["kernel"] = v["params"]["head"]["kernel"].at[0, 0].set(1.0)
    # (H g)_ij by finite differences of the gradient along g
    eps = 1e-3
    gp = jax.grad(lambda p: loss_fn(jax.tree_util.tree_map(lambda w, d: w + eps * d, p, g)))(params)
    gm = jax.grad(lambda p: loss_fn(jax.tree_util.tree_map(lambda w, d: w - eps * d, p, g)))(params)
    hg = (kernels(gp)[1] - kernels(gm)[1]) / (2 * eps)
    np.testing.assert_allclose(kernels(grasp)[1], kernels(params)[1] * hg, rtol=2e-2, atol=1e-6)
    norms = sj.activation_norms(MODEL, params, X)
    assert set(norms) == {"dense_0", "head"}
    np.testing.assert_allclose(norms["dense_0"], np.linalg.norm(np.asarray(X), axis=0), rtol=1e-5)
    scores = sj.wanda_scores(params, norms)
    mask = sj.wanda_mask(params, scores, 0.5)
    m = np.asarray(mask["params"]["dense_0"]["kernel"])
    assert (m.sum(axis=0) == 4).all()  # every output keeps half of its 8 inputs
    s = np.asarray(scores["params"]["dense_0"]["kernel"])
    for col in range(s.shape[1]):
        assert s[m[:, col], col].min() >= s[~m[:, col], col].max()
    ratios = sj.ratios_from_scores(params, snip, 0.8)
    sizes = [w.size for w in kernels(params)]
    assert abs(sum(r * n for r, n in zip(kernels(ratios), sizes)) - 0.2 * sum(sizes)) <= 1
    rand = sj.random_mask(jax.random.PRNGKey(0), params, ratios)
    assert [int(m.sum()) for m in kernels(rand)] == [round(r * n) for r, n in zip(kernels(ratios), sizes)]


def test_ste_magnitude_pruning_is_a_transform():
    params = init_params()
    tx = sj.ste_magnitude_pruning(optax.adam(1e-2), 0.75, sparsity_type="nm_1,4")
    history, step = run(tx, params, 6)
    losses = []
    for p, state in history:
        for w in kernels(p):
            assert sj.NByM(1, 4).holds(np.asarray(w) != 0)
        dense = kernels(state.dense)[0]
        assert np.count_nonzero(np.asarray(dense)) > np.count_nonzero(np.asarray(kernels(p)[0]))  # latent stays dense
        losses.append(float(loss_fn(p)))
    assert losses[-1] < losses[0]
    assert step._cache_size() == 1


def test_overrides_and_power_scale():
    params = init_params()
    dens = sj.erk_densities(params, 0.8, overrides={"params/head/*": None})
    assert dens["params"]["head"]["kernel"] is None and dens["params"]["dense_0"]["kernel"] == pytest.approx(0.2)
    dens = sj.uniform_densities(params, 0.8, overrides={"params/head/kernel": 0.5})
    assert dens["params"]["head"]["kernel"] == 0.5 and dens["params"]["dense_0"]["kernel"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="match no sparsifiable leaf"):
        sj.uniform_densities(params, 0.8, overrides={"params/nothing": 0.5})
    flat = sj.erk_densities(params, 0.8, erk_power_scale=0.0)
    assert flat["params"]["dense_0"]["kernel"] == pytest.approx(flat["params"]["head"]["kernel"])
    tx = sj.gradual_pruning(optax.sgd(0.0), 0.8, 0, 0, 1, overrides={"params/head/*": None})
    (_, state), = run(tx, params, 1)[0][:1]
    assert state.mask["params"]["head"]["kernel"] is None


class Plain(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16, name="z_first")(x))
        x = nn.relu(nn.Dense(64, name="m_mid")(x))
        return nn.Dense(4, name="a_last")(x)


def test_uniform_plus_follows_the_official_rule():
    model = Plain()
    x = jnp.ones((1, 2))
    params = model.init(jax.random.PRNGKey(0), x)
    order = sj.layer_order(model, x)
    dens = sj.uniform_plus_densities(params, 0.85, layer_order=order)["params"]
    assert dens["z_first"]["kernel"] == 1.0 and dens["a_last"]["kernel"] == 0.2
    total = 2 * 16 * 1.0 + 16 * 64 * dens["m_mid"]["kernel"] + 64 * 4 * 0.2
    assert total == pytest.approx(0.15 * (2 * 16 + 16 * 64 + 64 * 4))
    above = sj.uniform_plus_densities(params, 0.5, layer_order=order)["params"]
    assert above["a_last"]["kernel"] == 0.5 and above["z_first"]["kernel"] == 1.0
    with pytest.raises(ValueError, match="cannot be reached by uniform"):
        sj.uniform_plus_densities(params, 0.95, layer_order=order)


@pytest.mark.parametrize("config", [
    {"algorithm": "magnitude", "sparsity": 0.5, "update_start_step": 0, "update_end_step": 4, "update_freq": 2,
     "sparsity_type": "nm_2,4"},
    {"algorithm": "rigl", "sparsity": 0.5, "dist_type": "erk", "update_freq": 2, "update_end_step": 10},
    {"algorithm": "set", "sparsity": 0.5, "update_freq": 2, "update_end_step": 10, "sparsity_type": "channel_-1"},
    {"algorithm": "static_sparse", "sparsity": 0.5},
])
def test_create_builds_every_algorithm(config):
    params = init_params()
    tx = sj.create(config, optax.adam(1e-2))
    history, _ = run(tx, params, 5)
    p, state = history[-1]
    stype = sj.parse_sparsity_type(config.get("sparsity_type"))
    for w, m in zip(kernels(p), kernels(state.mask)):
        assert np.all(np.asarray(w)[~np.asarray(m)] == 0)
        assert stype.holds(np.asarray(m))
    assert sj.sparsity(state.mask) == pytest.approx(0.5, abs=0.05)  # channel granularity: 2 of 3 head outputs


def test_create_rejects_bad_configs():
    with pytest.raises(ValueError, match="unknown config keys \\['sparsty'\\]"):
        sj.create({"algorithm": "magnitude", "sparsty": 0.5}, optax.sgd(0.1))
    with pytest.raises(ValueError, match="algorithm must be one of"):
        sj.create({"algorithm": "lottery", "sparsity": 0.5}, optax.sgd(0.1))
    with pytest.raises(ValueError, match="needs 'sparsity'"):
        sj.create({"algorithm": "rigl"}, optax.sgd(0.1))
    with pytest.raises(TypeError, match="GradientTransformation"):
        sj.create({"algorithm": "no_prune"}, "adam")
    assert {"magnitude", "rigl", "set", "magnitude_ste", "global_magnitude"} <= set(sj.all_algorithm_names())


def test_report_macs_and_bytes_per_sparsity_type():
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (16, 8)), "b": jnp.ones(8)}
    pred = lambda p, x: x.ndim == 2  # noqa: E731
    cases = {
        "unstructured": (64, 64 * 4 + (64 * 3 + 7) // 8 + 17 * 4),
        "nm_2,4": (64, 64 * 4 + (64 * 2 + 7) // 8),
        "block_4,4": (64, 4 * 16 * 4 + 4 * 4 + 5 * 4),
        "channel": (64, 4 * 16 * 4 + 4 * 4),
        "group_4": (64, 16 * 4 * 4 + (16 * 2 + 7) // 8),
    }
    for name, (macs, nbytes) in cases.items():
        mask = sj.magnitude_mask(params, 0.5, sparsity_type=name, predicate=pred)
        rep = sj.report(params, mask, sparsity_type=name)
        row = {r["path"]: r for r in rep.as_dicts()}["w"]
        assert row["dense_macs"] == 128 and row["sparse_macs"] == macs, name
        assert row["compressed_bytes"] == nbytes, name
        assert rep.total["compressed_bytes"] == nbytes + 32  # the bias stays dense
    with pytest.raises(ValueError, match="does not have the structure"):
        sj.report(params, sj.magnitude_mask(params, 0.5, predicate=pred), sparsity_type="block_4,4")
