"""P39 HESSO: exact zeroing at every period end, the linear shrink, target 0 = base optimizer, exact counts,
the five criteria, CRIC's selection."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.nn import MLP
from sparsejax.pruning.hesso import (
    cric_scores, group_magnitude, hesso, importance_scores, lowest_groups, period_counts, raw_criteria, split_groups,
    with_redundant,
)
from sparsejax.structured.coupled import mlp_groups

MODEL = MLP(3, hidden=(8, 6))
X = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
Y = jnp.arange(16) % 3


def _params():
    p = MODEL.init(jax.random.PRNGKey(0), X[:1])["params"]
    # nonzero biases so the shift members matter
    return jax.tree_util.tree_map(lambda v: v + 0.1 if v.ndim == 1 else v, p)


def _loss(p, batch=(X, Y)):
    return optax.softmax_cross_entropy_with_integer_labels(MODEL.apply({"params": p}, batch[0]), batch[1]).mean()


def _run(tx, p, steps):
    st = tx.init(p)
    upd = jax.jit(tx.update)
    history = []
    for _ in range(steps):
        u, st = upd(jax.grad(_loss)(p), st, p)
        p = optax.apply_updates(p, u)
        history.append((p, st))
    return history


def _norms(p, specs):
    return np.asarray(group_magnitude(p, specs))


def test_lr_zero_shrinks_linearly_and_zeroes_exactly_at_each_period_end():
    p0 = _params()
    specs = mlp_groups(p0)
    T, P, start = 4, 2, 1
    tx = hesso(optax.sgd(0.0), specs, target_group_sparsity=0.5, start_step=start, pruning_steps=T * P, pruning_periods=P)
    hist = _run(tx, p0, start + T * P + 2)
    n0 = _norms(p0, specs)
    counts = period_counts(14, 0.5, P)
    for k in range(P):
        first = start + k * T
        active = np.asarray(hist[first][1].active)
        assert active.sum() == counts[k]
        for t in range(T):
            n = _norms(hist[first + t][0], specs)
            np.testing.assert_allclose(n[active], n0[active] * (T - t - 1) / T, rtol=1e-5, atol=0)
        end = hist[first + T - 1]
        assert (_norms(end[0], specs)[active] == 0).all()  # exactly zero at t = T - 1
        assert np.asarray(end[1].pruned)[active].all()
    final_p, final_st = hist[-1]
    pruned = np.asarray(final_st.pruned)
    assert pruned.sum() == int(14 * 0.5)
    assert (_norms(final_p, specs)[pruned] == 0).all() and (_norms(final_p, specs)[~pruned] > 0).all()


def test_pruned_groups_stay_zero_under_adam_and_counts_are_exact():
    p0 = _params()
    specs = mlp_groups(p0)
    tx = hesso(optax.adam(1e-2), specs, target_group_sparsity=0.7, start_step=2, pruning_steps=6, pruning_periods=3)
    hist = _run(tx, p0, 12)
    for p, st in hist[8:]:
        pruned = np.asarray(st.pruned)
        # K = 9, less one per layer whose last group the group_divisible rule keeps
        assert int(14 * 0.7) - len(specs) <= pruned.sum() <= int(14 * 0.7) and (_norms(p, specs)[pruned] == 0).all()
        assert all(v.any() for v in split_groups(~pruned, specs).values())  # no layer loses every group


def test_target_zero_is_the_base_optimizer():
    p0 = _params()
    specs = mlp_groups(p0)
    a = _run(hesso(optax.adam(1e-2), specs, target_group_sparsity=0.0, start_step=0, pruning_steps=4), p0, 5)[-1][0]
    b = _run(optax.adam(1e-2), p0, 5)[-1][0]
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6), a, b)


def test_criteria_match_direct_formulas():
    p = _params()
    specs = mlp_groups(p)
    d = jax.tree_util.tree_map(lambda v: jnp.sin(3.0 * v) + 0.05, p)
    raw = raw_criteria(p, d, specs)
    w, b = np.asarray(p["dense_0"]["kernel"]), np.asarray(p["dense_0"]["bias"])
    dw, db = np.asarray(d["dense_0"]["kernel"]), np.asarray(d["dense_0"]["bias"])
    j = 3
    th, dd = np.concatenate([w[:, j], [b[j]]]), np.concatenate([dw[:, j], [db[j]]])
    np.testing.assert_allclose(raw["magnitude"][j], np.linalg.norm(th), rtol=1e-5)
    np.testing.assert_allclose(raw["avg_magnitude"][j], np.linalg.norm(th) / 6, rtol=1e-5)
    cos = th @ dd / np.linalg.norm(th) / np.linalg.norm(dd)
    np.testing.assert_allclose(raw["cosine_similarity"][j], cos + 1, rtol=1e-5)
    np.testing.assert_allclose(raw["taylor_first_order"][j], abs(th @ dd), rtol=1e-5)
    np.testing.assert_allclose(raw["taylor_second_order"][j], 0.5 * (th @ dd) ** 2, rtol=1e-4)
    s = importance_scores(p, d, specs)
    ref = sum(0.2 * np.asarray(v) / (np.sqrt((np.asarray(v) ** 2).sum() + 1e-8) + 1e-8) for v in raw.values())
    np.testing.assert_allclose(s, ref, rtol=1e-5)
    # scale of the direction does not change the score (lr-free)
    np.testing.assert_allclose(importance_scores(p, jax.tree_util.tree_map(lambda v: 7 * v, d), specs), s, rtol=1e-4)


def test_lowest_groups_keeps_one_per_layer_and_rejects_bad_shape():
    specs = mlp_groups(_params())
    scores = np.arange(14, dtype=np.float32)  # layer 0 (8 groups) lowest
    drop = lowest_groups(scores, specs, 0.9)
    assert drop.sum() == 11 and drop[:8].sum() == 7 and not drop[7]
    with pytest.raises(ValueError, match=r"scores must have shape \(14,\)"):
        lowest_groups(scores[:3], specs, 0.5)


def test_hesso_rejects_bad_arguments():
    specs = mlp_groups(_params())
    tx = hesso(optax.sgd(0.1), specs, preset=True)
    with pytest.raises(ValueError, match=r"redundant must be a bool array of shape \(14,\)"):
        with_redundant(tx.init(_params()), jnp.zeros(3, bool), 2)
    with pytest.raises(ValueError, match="target_group_sparsity"):
        hesso(optax.sgd(0.1), specs, target_group_sparsity=1.0, start_step=0, pruning_steps=4)


def test_preset_shrinks_given_groups_over_given_steps():
    p0 = _params()
    specs = mlp_groups(p0)
    tx = hesso(optax.sgd(0.0), specs, preset=True)
    drop = np.zeros(14, bool)
    drop[[1, 9]] = True
    st = with_redundant(tx.init(p0), jnp.asarray(drop), 3)
    n0, p = _norms(p0, specs), p0
    for t in range(4):
        u, st = tx.update(jax.grad(_loss)(p), st, p)
        p = optax.apply_updates(p, u)
        np.testing.assert_allclose(_norms(p, specs)[drop], n0[drop] * max(3 - t - 1, 0) / 3, atol=1e-7)
    assert (np.asarray(st.pruned) == drop).all() and np.allclose(_norms(p, specs)[~drop], n0[~drop])


def test_cric_returns_exact_count_and_loss_ratios():
    p = _params()
    specs = mlp_groups(p)
    tx = hesso(optax.adam(1e-2), specs, preset=True, track_scores=True)

    def train(params, state, steps):
        upd = jax.jit(tx.update)
        for _ in range(steps):
            u, state = upd(jax.grad(_loss)(params), state, params)
            params = optax.apply_updates(params, u)
        return params, state

    out = cric_scores(p, specs, _loss, train, tx, (X, Y), target_group_sparsity=0.5, sampling_steps=3, max_cycles=2)
    assert out["redundant"].sum() == 7 and 1 <= out["cycles"] <= 2
    assert set(out["loss_ratio"]) == {s.name for s in specs} and all(v > 0 for v in out["loss_ratio"].values())
