"""Essential sparsity: nested exact-count global masks, s=0 is the dense model, the knee finder
finds the break of a piecewise-linear curve, the 1 % rule, the near-zero fraction."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.pruning import essential_sparsity, knee, near_zero_fraction, one_shot_sweep


def test_sweep_masks_nested_exact_and_dense_at_zero():
    params = {"a": {"kernel": jax.random.normal(jax.random.PRNGKey(0), (10, 9))},
              "b": {"kernel": 3 * jax.random.normal(jax.random.PRNGKey(1), (9, 4)), "bias": jnp.ones(4)}}
    total = 90 + 36
    ev = lambda p: float(jnp.sum(p["a"]["kernel"]) + jnp.sum(p["b"]["kernel"]))  # noqa: E731
    out = one_shot_sweep(params, [0.0, 0.3, 0.6, 0.9], ev, finetune=lambda p, m: p)
    assert out["pruned"][0] == pytest.approx(ev(params))
    assert out["finetuned"] == out["pruned"]
    kept = [sum(int(np.sum(m)) for m in jax.tree_util.tree_leaves(mask)) for mask in out["masks"]]
    assert kept == [round((1 - s) * total) for s in out["sparsity"]]
    for m1, m2 in zip(out["masks"], out["masks"][1:]):
        for a, b in zip(jax.tree_util.tree_leaves(m1), jax.tree_util.tree_leaves(m2)):
            assert not np.any(np.asarray(b) & ~np.asarray(a))
    with pytest.raises(ValueError, match="strictly increasing"):
        one_shot_sweep(params, [0.5, 0.3], ev)


@pytest.mark.parametrize("brk", [0.3, 0.5, 0.7])
def test_knee_finds_break_of_piecewise_linear_curve(brk):
    s = np.round(np.arange(0, 0.96, 0.05), 2)
    acc = np.where(s <= brk, 0.95 - 0.02 * s, 0.95 - 0.02 * brk - 2.0 * (s - brk))
    assert knee(s, acc) == pytest.approx(brk)
    ppl = np.where(s <= brk, 10 + s, 10 + brk + 40 * (s - brk))  # increasing (perplexity)
    assert knee(s, ppl) == pytest.approx(brk)


def test_essential_sparsity_one_percent_rule():
    s = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    acc = [0.90, 0.899, 0.895, 0.889, 0.80, 0.897]  # 0.889 < 0.891: the drop exceeds 1 % at 0.3
    assert essential_sparsity(s, acc) == 0.2
    assert essential_sparsity(s, [10, 10.05, 10.09, 10.2, 11, 12], higher_is_better=False) == 0.2
    with pytest.raises(ValueError, match="metric has 2 values"):
        essential_sparsity(s, [1.0, 2.0])


def test_near_zero_fraction():
    w = jnp.concatenate([jnp.zeros(30), jnp.linspace(1, 2, 70)]).reshape(10, 10)
    out = near_zero_fraction({"k": w, "bias": jnp.zeros(3)}, rel=0.05)
    assert out["total"] == pytest.approx(0.3)
    assert set(out["per_leaf"]) == {"k"}
