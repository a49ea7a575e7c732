"""IMP: per-phase rate, nested exact-count masks, rewinding to the exact earlier weights, schedules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.pruning import imp, mask_iou, per_phase_rate, phase_sparsity, prune_magnitude, retrain_schedule


def _params(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return {"a": {"kernel": jax.random.normal(k1, (12, 10)), "bias": jnp.zeros(10)},
            "b": {"kernel": jax.random.normal(k2, (10, 7)), "bias": jax.random.normal(k3, (7,))}}


def _kept(mask):
    return sum(int(np.count_nonzero(m)) for m in jax.tree_util.tree_leaves(mask))


@pytest.mark.parametrize("target,phases", [(0.9, 3), (0.95, 3), (0.5, 1), (0.8, 5)])
def test_phases_at_rate_q_reach_target(target, phases):
    q = per_phase_rate(target, phases)
    assert (1 - q) ** phases == pytest.approx(1 - target, rel=1e-12)
    assert phase_sparsity(target, phases, phases) == pytest.approx(target, rel=1e-12)
    seen = []
    result = imp(_params(), lambda p, m, phase: jax.tree_util.tree_map(lambda w: w * 1.5, p),
                 target_sparsity=target, phases=phases)
    total = 12 * 10 + 10 * 7
    for p, (m, s) in enumerate(zip(result.masks, result.sparsities), 1):
        assert _kept(m) == round((1 - phase_sparsity(target, phases, p)) * total)
        assert sj.sparsity(result.params[p - 1]) == pytest.approx(1 - _kept(m) / total)
        seen.append(m)
    assert sj.sparsity(result.masks[-1]) == pytest.approx(target, abs=1 / total)
    for prev, nxt in zip(seen, seen[1:]):  # pruned weights never come back
        for a, b in zip(jax.tree_util.tree_leaves(prev), jax.tree_util.tree_leaves(nxt)):
            assert not np.any(np.asarray(b) & ~np.asarray(a))


def test_weight_rewinding_restores_exact_earlier_weights():
    trained, early = _params(0), _params(1)
    result = imp(trained, lambda p, m, phase: jax.tree_util.tree_map(lambda w: w + 0.01 * phase, p),
                 target_sparsity=0.8, phases=2, rewind_params=early)
    for start, mask in zip(result.start_params, result.masks):
        expected = sj.apply_mask(early, mask)
        for a, b in zip(jax.tree_util.tree_leaves(start), jax.tree_util.tree_leaves(expected)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # without rewinding, phase 2 starts from the retrained phase-1 weights
    plain = imp(trained, lambda p, m, phase: jax.tree_util.tree_map(lambda w: w + 0.01 * phase, p),
                target_sparsity=0.8, phases=2)
    np.testing.assert_array_equal(np.asarray(plain.start_params[1]["a"]["kernel"]),
                                  np.asarray(sj.apply_mask(plain.params[0], plain.masks[1])["a"]["kernel"]))


def test_prune_magnitude_layer_scope_and_zero_survivors():
    params = _params()
    mask = prune_magnitude(params, None, 0.5, scope="layer")
    assert int(mask["a"]["kernel"].sum()) == 60 and int(mask["b"]["kernel"].sum()) == 35
    # a surviving weight that is exactly zero still outranks pruned entries (nestedness)
    zeroed = jax.tree_util.tree_map(lambda w: w, params)
    zeroed["a"]["kernel"] = jnp.where(mask["a"]["kernel"], zeroed["a"]["kernel"], 0.0).at[0, 0].set(0.0)
    nxt = prune_magnitude(zeroed, mask, 0.5, scope="layer")
    np.testing.assert_array_equal(np.asarray(nxt["a"]["kernel"]), np.asarray(mask["a"]["kernel"]))
    with pytest.raises(ValueError, match="scope must be one of"):
        prune_magnitude(params, None, 0.5, scope="block")


def test_retrain_schedules():
    llr = retrain_schedule("LLR", 100, max_lr=0.1)
    assert float(llr(0)) == 0.0 and float(llr(10)) == pytest.approx(0.1) and float(llr(100)) == pytest.approx(0.0)
    assert float(llr(55)) == pytest.approx(0.05)
    ft = retrain_schedule("FT", 50, max_lr=0.1, min_lr=0.001)
    assert float(ft(7)) == pytest.approx(0.001)
    orig = lambda t: 0.1 * (1 - t / 1000)  # noqa: E731
    lrw = retrain_schedule("LRW", 100, max_lr=0.1, original=orig, original_steps=1000)
    assert float(lrw(0)) == pytest.approx(orig(900)) and float(lrw(100)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="needs min_lr"):
        retrain_schedule("FT", 50, max_lr=0.1)
    with pytest.raises(ValueError, match="kind must be one of"):
        retrain_schedule("SLR", 50, max_lr=0.1)


def test_mask_iou():
    a = {"w": jnp.array([True, True, False, False])}
    b = {"w": jnp.array([True, False, True, False])}
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, a) == 1.0
    with pytest.raises(ValueError, match="different structures"):
        mask_iou(a, {"v": a["w"]})
