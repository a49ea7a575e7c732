"""S²FT: selection counts, co-permutation invariance, zero slice no-op, only the slice trains, costs."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.core import param_count
from sparsejax.llm import (
    co_permute, forward, lora, make_adapter_train_step, s2ft, select_units, training_costs, unit_orders,
    unpermute,
)
from sparsejax.train import TrainState

L, H, D, F, V = 3, 4, 16, 64, 21


@pytest.fixture(scope="module")
def lm():
    from sparsejax.llm import init_lm

    params, config = init_lm(jax.random.PRNGKey(0), V, d_model=D, n_layers=L, n_heads=H, max_len=8)
    # non-zero biases so that permuting them is tested too
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.1 * jnp.sin(jnp.arange(x.size, dtype=x.dtype)).reshape(x.shape) if "bias" in str(p) else x,
        params)
    tok = jax.random.randint(jax.random.PRNGKey(1), (4, 8), 0, V)
    return params, config, tok


def test_random_selection_counts_follow_the_official_global_rule(lm):
    params, config, _ = lm
    sel = select_units(params, config, o_ratio=0.25, d_ratio=0.1, seed=3)
    assert sum(map(len, sel["heads"])) == int(0.25 * L * H) == 3
    assert sum(map(len, sel["channels"])) == int(0.1 * L * F) == 19
    for units, n in ((sel["heads"], H), (sel["channels"], F)):
        assert len(units) == L and all(u == sorted(set(u)) and all(0 <= x < n for x in u) for u in units)
    assert sel != select_units(params, config, o_ratio=0.25, d_ratio=0.1, seed=4)
    defaults = select_units(params, config)  # official ratios: 0.052 * 12 heads -> 0, 0.02 * 192 channels -> 3
    assert sum(map(len, defaults["heads"])) == 0 and sum(map(len, defaults["channels"])) == 3


def test_magnitude_selection_picks_the_largest_rows(lm):
    params, config, _ = lm
    sel = select_units(params, config, o_ratio=0.0, d_ratio=0.05, method="magnitude")
    norms = np.concatenate([np.linalg.norm(np.asarray(b["fc2"]["kernel"]), axis=1) for b in params["blocks"]])
    chosen = [i * F + c for i, cs in enumerate(sel["channels"]) for c in cs]
    assert sorted(chosen) == sorted(np.argsort(-norms)[:int(0.05 * L * F)].tolist())


def test_co_permutation_leaves_outputs_unchanged_and_inverts_exactly(lm, fwd):
    params, config, tok = lm
    rng = np.random.default_rng(0)
    orders = [{"heads": rng.permutation(H), "channels": rng.permutation(F)} for _ in range(L)]
    permuted = co_permute(params, config, orders)
    assert not np.array_equal(permuted["blocks"][0]["fc2"]["kernel"], params["blocks"][0]["fc2"]["kernel"])
    np.testing.assert_allclose(fwd(permuted, tok, config=config), fwd(params, tok, config=config), atol=2e-5, rtol=0)
    for a, b in zip(jax.tree_util.tree_leaves(unpermute(permuted, config, orders)), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)


def test_unit_orders_put_the_selection_first():
    orders = unit_orders({"heads": [[2], []], "channels": [[1, 4], [0]]}, 3, 5)
    assert orders[0]["heads"].tolist() == [2, 0, 1] and orders[0]["channels"].tolist() == [1, 4, 0, 2, 3]
    assert orders[1]["heads"].tolist() == [0, 1, 2] and orders[1]["channels"].tolist() == [0, 1, 2, 3, 4]


def test_zero_slice_is_a_no_op_and_training_changes_only_the_selected_rows(lm, fwd):
    params, config, tok = lm
    sel = {"heads": [[1], [], [0, 3]], "channels": [[5, 9], [0], []]}
    permuted, ad, orders = s2ft(params, config, sel)
    assert sorted(ad.params) == ["blocks/0/fc2/kernel", "blocks/0/out/kernel", "blocks/1/fc2/kernel",
                                 "blocks/2/out/kernel"]
    hd = D // H
    assert ad.params["blocks/2/out/kernel"].shape == (2 * hd, D) and ad.params["blocks/0/fc2/kernel"].shape == (2, D)
    np.testing.assert_allclose(fwd(ad.merge(permuted), tok, config=config), fwd(params, tok, config=config), atol=2e-5)
    tx = optax.adam(1e-2)
    step = make_adapter_train_step(lambda p, x: forward(p, x, config), permuted, ad, tx)
    state = TrainState.create(ad.params, tx)
    for _ in range(2):
        state, _ = step(state, tok, jnp.roll(tok, -1, axis=1))
    fused = unpermute(ad.merge(permuted, state.params), config, orders)
    changed = {}
    for (path, a), (_, b) in zip(jax.tree_util.tree_flatten_with_path(fused)[0],
                                 jax.tree_util.tree_flatten_with_path(params)[0]):
        diff = np.asarray(a) != np.asarray(b)
        if diff.any():
            changed[jax.tree_util.keystr(path)] = np.flatnonzero(diff.any(axis=1))
    heads_rows = lambda hs: sorted(h * hd + j for h in hs for j in range(hd))  # noqa: E731
    assert {k: v.tolist() for k, v in changed.items()} == {
        "['blocks'][0]['out']['kernel']": heads_rows([1]), "['blocks'][0]['fc2']['kernel']": [5, 9],
        "['blocks'][1]['fc2']['kernel']": [0], "['blocks'][2]['out']['kernel']": heads_rows([0, 3])}


def test_analytic_costs_rank_full_above_lora_above_s2ft(lm):
    params, config, _ = lm
    _, s2, _ = s2ft(params, config, {"heads": [[0], [], []], "channels": [[1, 2], [3], []]})
    lo = lora(params, 1, ["blocks/*/out/kernel", "blocks/*/fc2/kernel"], jax.random.PRNGKey(0))
    c = {m: training_costs(params, config, a, method=m, batch_size=2, seq_len=8)
         for m, a in (("full", None), ("lora", lo), ("s2ft", s2))}
    assert c["full"]["trainable"] == param_count(params)
    assert c["s2ft"]["trainable"] == (4 + 3) * D and c["lora"]["trainable"] == L * (D + D + F + D)
    assert c["full"]["memory_floats"] > c["lora"]["memory_floats"] > c["s2ft"]["memory_floats"]
    assert c["full"]["flops"] > c["lora"]["flops"] > c["s2ft"]["flops"]
    assert c["s2ft"]["weight_grad_activation_floats"] == 2 * 8 * (4 + 3)
    with pytest.raises(ValueError, match="needs its adapter"):
        training_costs(params, config, None, method="lora", batch_size=2, seq_len=8)


def test_bad_selections_are_rejected(lm):
    params, config, _ = lm
    with pytest.raises(ValueError, match="distinct ids"):
        s2ft(params, config, {"heads": [[4], [], []], "channels": [[], [], []]})
    with pytest.raises(ValueError, match="selection is empty"):
        s2ft(params, config, {"heads": [[], [], []], "channels": [[], [], []]})
    with pytest.raises(ValueError, match="o_ratio"):
        select_units(params, config, o_ratio=1.5)
