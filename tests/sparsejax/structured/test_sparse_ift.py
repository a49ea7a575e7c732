import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax
from sparsejax.train import cross_entropy_loss
from sparsejax.pruning import rigl
from sparsejax.structured import (
    FAMILIES,
    IsoFLOPLayer,
    SparseIFTCNN,
    SparseIFTMLP,
    count_flops,
    isoflop_plan,
    sparse_ift_mask,
    wide_factor,
)

X = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))


def _macs(plan):
    return sum(int(np.prod(k.shape)) if k.nnz is None else k.nnz for k in plan.kernels.values())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("shape", [((), 48, 40), ((3, 3), 16, 32), ((3, 3), 1, 16)])
def test_plan_is_iso_flop_and_matches_paper_formulas(family, sparsity, shape):
    ks, d_in, d_out = shape
    kpos = int(np.prod(ks)) if ks else 1
    dense = kpos * d_in * d_out
    actual_in = round(d_in * wide_factor(sparsity)) if family == "wide" else None
    plan = isoflop_plan(family, d_in, d_out, sparsity, ks, actual_in=actual_in, widen_out=True)
    assert _macs(plan) == dense  # for doped: sparse S non-zeros + dense low-rank MACs
    for k in plan.kernels.values():
        assert k.nnz is None or 0 < k.nnz <= np.prod(k.shape)
    if family == "parallel":
        assert plan.branches == round(1 / (1 - sparsity))
    if family == "factorized":  # d_sl = K D_in D_out / ((1 - s)(K D_in + D_out)), P14 Sec. 3
        assert plan.rank == math.ceil(dense / ((1 - sparsity) * (kpos * d_in + d_out)))
    if family == "doped":  # d_sd = s K D_in D_out / (K D_in + D_out)
        assert plan.rank == math.floor(sparsity * dense / (kpos * d_in + d_out))
        assert plan.kernels["s"].nnz == dense - plan.rank * (kpos * d_in + d_out)
    if family == "wide":
        assert plan.out_features == round(d_out / math.sqrt(1 - sparsity))


SLOW = pytest.mark.slow
MLP_KW = dict(hidden=(4, 32, 32))  # the last hidden layer pays for Sparse Wide's wider dense head
CNN_KW = dict(channels=(2, 4), hidden=32)


@pytest.mark.parametrize("cls,family", [(SparseIFTMLP, f) for f in FAMILIES[1:]] + [(SparseIFTCNN, "wide")] +
                         [pytest.param(SparseIFTCNN, f, marks=SLOW) for f in ("parallel", "factorized", "doped")])
def test_models_have_exactly_the_dense_flops(cls, family):
    kw = MLP_KW if cls is SparseIFTMLP else CNN_KW
    dense = cls(10, family="dense", **kw)
    vd = jax.jit(dense.init)(jax.random.key(0), X[:1])
    model = cls(10, family=family, sparsity=0.75, **kw)
    v = jax.jit(model.init)(jax.random.key(0), X[:1])
    assert count_flops(model, v, None, X) == count_flops(dense, vd, None, X)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(v["params"]))
    assert n_params > sum(x.size for x in jax.tree_util.tree_leaves(vd["params"]))
    first, last = ("layer_0", "head") if cls is SparseIFTMLP else ("conv_0", "head")
    assert first not in v["nnz"] and last not in v["nnz"]  # dense stem and head (official)
    if family == "wide":  # the dense head is wider: it reads the widened last hidden layer
        assert v["params"][last]["kernel"].shape[0] == round(32 * 2)
    if family == "doped" and cls is SparseIFTMLP:  # the drawn mask realises the plan exactly
        mask = sparse_ift_mask(jax.random.key(1), v)
        assert mask["layer_1"]["u"] is None and mask["layer_0"]["kernel"] is None
        for n, m in zip(jax.tree_util.tree_leaves(v["nnz"]), jax.tree_util.tree_leaves(mask)):
            assert int(np.asarray(m).sum()) == int(n)
        assert count_flops(model, v, mask, X) == count_flops(dense, vd, None, X)


def _ln(y):
    mu = y.mean(-1, keepdims=True)
    return (y - mu) / jnp.sqrt(((y - mu) ** 2).mean(-1, keepdims=True) + 1e-6)


def test_layer_forward_equals_its_definition():
    x = jax.random.normal(jax.random.key(2), (3, 12))
    for family, norm, fn in [
        ("parallel", False, lambda p: sum(x @ p[f"branch_{i}"] for i in range(4)) + p["bias"]),
        ("parallel", True, lambda p: sum(_ln(x @ p[f"branch_{i}"]) for i in range(4))),  # BN per branch, official
        ("factorized", False, lambda p: jax.nn.relu(_ln(x @ p["u"])) @ p["v"] + p["bias"]),  # uv: LN + ReLU
        ("doped", True, lambda p: _ln(x @ p["s"] + x @ p["u"] @ p["v"])),
    ]:
        layer = IsoFLOPLayer(8, 12, family, 0.75, norm=norm)
        p = layer.init(jax.random.key(3), x)["params"]
        np.testing.assert_allclose(layer.apply({"params": p}, x), fn(p), rtol=1e-4, atol=1e-4)
    linear = IsoFLOPLayer(8, 12, "factorized", 0.75, uv_layer="linear")
    p = linear.init(jax.random.key(3), x)["params"]
    np.testing.assert_allclose(linear.apply({"params": p}, x), x @ p["u"] @ p["v"] + p["bias"], rtol=1e-5, atol=1e-5)


def test_normalised_parallel_branches_do_not_merge_into_one_linear_layer():
    x = jax.random.normal(jax.random.key(4), (16, 12))
    layer = IsoFLOPLayer(8, 12, "parallel", 0.5, norm=True)
    p = layer.init(jax.random.key(5), x)["params"]
    merged = IsoFLOPLayer(8, 12, "dense", norm=True)
    pm = {"kernel": p["branch_0"] + p["branch_1"], "norm": p["norm_branch_0"]}
    gap = np.abs(np.asarray(layer.apply({"params": p}, x) - merged.apply({"params": pm}, x))).max()
    assert gap > 0.1  # LN_0(x W_0) + LN_1(x W_1) is not LN(x (W_0 + W_1))


def test_wide_budget_pays_for_the_wider_head():
    plan = isoflop_plan("wide", 32, 32, 0.75, widen_out=True, budget=1024 - 320)
    assert plan.kernels["kernel"].nnz == 1024 - 320 and plan.out_features == 64
    with pytest.raises(ValueError, match="budget must be an int"):
        isoflop_plan("wide", 32, 32, 0.75, budget=-16)
    with pytest.raises(ValueError, match="budget applies to family='wide'"):
        isoflop_plan("doped", 32, 32, 0.75, budget=16)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_rigl_training_keeps_the_flops():
    model = SparseIFTMLP(10, hidden=(4, 8, 8), family="factorized", sparsity=0.9)
    v = model.init(jax.random.key(0), X)
    mask = sparse_ift_mask(jax.random.key(1), v)
    params = sparsejax.apply_mask(v["params"], mask)
    flops0 = count_flops(model, v, mask, X)
    tx = rigl(optax.adam(1e-2), mask, update_every=1, end_step=10, drop_fraction=0.5)
    state = tx.init(params)
    y = jnp.arange(4) % 10

    @jax.jit
    def step(params, state):
        g = jax.grad(lambda p: cross_entropy_loss(model.apply({"params": p}, X), y))(params)
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    for _ in range(2):
        params, state = step(params, state)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(state.mask),
                                                          jax.tree_util.tree_leaves(mask)))
    assert count_flops(model, v, state.mask, X) == flops0


def test_errors():
    with pytest.raises(ValueError, match="family"):
        isoflop_plan("tall", 4, 4, 0.5)
    with pytest.raises(ValueError, match="sparsity"):
        isoflop_plan("wide", 4, 4, 1.0)
    with pytest.raises(ValueError, match="in_features"):
        isoflop_plan("parallel", 4, 4, 0.5, actual_in=5)
    with pytest.raises(ValueError, match="kernel_size"):
        IsoFLOPLayer(4, 1, "dense", 0.0, (3, 3)).init(jax.random.key(0), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="uv_layer"):
        IsoFLOPLayer(4, 4, "factorized", 0.5, uv_layer="gelu").init(jax.random.key(0), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="hidden needs >= 2"):
        SparseIFTMLP(10, hidden=(8,)).init(jax.random.key(0), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="variables"):
        sparse_ift_mask(jax.random.key(0), {"nnz": {}})
