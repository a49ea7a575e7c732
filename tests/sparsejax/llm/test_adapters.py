"""Adapter API: zero adapters are no-ops, merge/unmerge exact, only the adapter trains, LoRA counts."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.llm import (
    combine, forward, full, get_leaf, lora, lora_num_params, make_adapter_train_step, match_paths, num_trainable,
    set_leaf, slice_adapter,
)
from sparsejax.train import TrainState


@pytest.fixture(scope="module")
def lm():
    from sparsejax.llm import init_lm

    return init_lm(jax.random.PRNGKey(0), 19, d_model=16, n_layers=2, n_heads=2, max_len=8)


def _dyadic(tree, seed):
    """Random values on a 2^-8 grid, so sums and differences are exact in float32."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(np.round(rng.standard_normal(x.shape) * 64) / 256,
                                                              x.dtype) for x in leaves])


def test_lora_zero_init_is_a_no_op_and_counts_match_the_formula(lm):
    params, config = lm
    ad = lora(params, 3, ["blocks/*/out/kernel", "blocks/*/fc2/kernel"], jax.random.PRNGKey(1))
    assert sorted(ad.params) == ["blocks/0/fc2/kernel", "blocks/0/out/kernel", "blocks/1/fc2/kernel",
                                 "blocks/1/out/kernel"]
    merged = ad.merge(params)
    for a, b in zip(jax.tree_util.tree_leaves(merged), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    assert num_trainable(ad) == lora_num_params([(16, 16), (64, 16)] * 2, 3) == 3 * (32 + 80) * 2
    p = dict(ad.params)
    p["blocks/0/fc2/kernel"] = {"A": p["blocks/0/fc2/kernel"]["A"], "B": jnp.ones((3, 16))}
    dw = ad.deltas(params, p)["blocks/0/fc2/kernel"]
    np.testing.assert_allclose(dw, p["blocks/0/fc2/kernel"]["A"] @ jnp.ones((3, 16)), rtol=1e-6)


def test_lora_on_a_conv_kernel_uses_the_reshaped_matrix():
    params = {"conv": {"kernel": jnp.zeros((3, 3, 4, 5))}}
    ad = lora(params, 2, "conv/kernel", jax.random.PRNGKey(0), alpha=4.0)
    a = ad.params["conv/kernel"]["A"]
    assert a.shape == (36, 2) and num_trainable(ad) == lora_num_params([(3, 3, 4, 5)], 2) == 2 * (36 + 5)
    b = jnp.arange(10.0).reshape(2, 5)
    dw = ad.deltas(params, {"conv/kernel": {"A": a, "B": b}})["conv/kernel"]
    np.testing.assert_allclose(dw, (2.0 * a @ b).reshape(3, 3, 4, 5), rtol=1e-6)


@pytest.mark.parametrize("kind", ["lora", "full", "slice"])
def test_merge_then_unmerge_is_exact(lm, kind):
    params, _ = lm
    base = _dyadic(params, 0)
    ad = {"lora": lambda: lora(base, 2, "blocks/*/qkv/kernel", jax.random.PRNGKey(0)),
          "full": lambda: full(base, "lm_head/*"),
          "slice": lambda: slice_adapter(base, {"tok_embed": (0, 15, 19), "blocks/1/fc2/kernel": (0, 2, 9)})}[kind]()
    trained = _dyadic(ad.params, 1)
    if kind == "lora":  # a dyadic product needs dyadic factors with few bits: keep A, B on a coarse grid
        trained = jax.tree_util.tree_map(lambda x: jnp.round(x * 4) / 4, trained)
    merged = ad.merge(base, trained)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(merged),
                                                           jax.tree_util.tree_leaves(base)))
    for a, b in zip(jax.tree_util.tree_leaves(ad.unmerge(merged, trained)), jax.tree_util.tree_leaves(base)):
        np.testing.assert_array_equal(a, b)


def test_only_the_adapter_trains_and_base_gradients_never_exist(lm):
    params, config = lm
    ad = combine(lora(params, 2, "blocks/*/fc1/kernel", jax.random.PRNGKey(2)),
                 slice_adapter(params, {"lm_head/kernel": (1, 10, 19)}))
    tx = optax.adam(1e-2)
    step = make_adapter_train_step(lambda p, x: forward(p, x, config), params, ad, tx)
    x = jax.random.randint(jax.random.PRNGKey(3), (4, 8), 0, 19)
    state = TrainState.create(ad.params, tx)
    for _ in range(3):
        state, loss = step(state, x, jnp.roll(x, -1, axis=1))
    # the state holds adapter entries only; the base tree is untouched
    assert set(state.params) == {"blocks/0/fc1/kernel", "blocks/1/fc1/kernel", "lm_head/kernel"}
    merged = ad.merge(params, state.params)
    head_dw = np.asarray(merged["lm_head"]["kernel"] - params["lm_head"]["kernel"])
    assert np.all(head_dw[:, :10] == 0) and np.any(head_dw[:, 10:] != 0)
    for path in ("blocks/0/qkv/kernel", "blocks/1/fc2/kernel", "tok_embed"):
        np.testing.assert_array_equal(get_leaf(merged, path), get_leaf(params, path))


def test_tree_helpers_and_bad_targets(lm):
    params, _ = lm
    assert match_paths(params, "blocks/1/*/kernel") == [f"blocks/1/{n}/kernel" for n in ("fc1", "fc2", "out", "qkv")]
    new = set_leaf(params, "blocks/0/out/bias", jnp.ones(16))
    assert float(new["blocks"][0]["out"]["bias"].sum()) == 16 and float(params["blocks"][0]["out"]["bias"].sum()) == 0
    with pytest.raises(ValueError, match="match no leaf"):
        lora(params, 2, "nothing/*", jax.random.PRNGKey(0))
    with pytest.raises(KeyError, match="no leaf at path"):
        get_leaf(params, "blocks/7/out")
    with pytest.raises(ValueError, match="overlap"):
        combine(full(params, "lm_head/*"), slice_adapter(params, {"lm_head/kernel": (1, 0, 2)}))
    with pytest.raises(ValueError, match="stop of lm_head/kernel"):
        slice_adapter(params, {"lm_head/kernel": (1, 5, 40)})
    with pytest.raises(ValueError, match="rank"):
        lora(params, 0, "lm_head/kernel", jax.random.PRNGKey(0))
