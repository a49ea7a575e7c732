"""P23 DASS pieces: sparse ops (density 1 = dense, exact top-k, STE gradient), mixed ops, derivation, search loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.nas.dass import (
    OPS, Conv, MixedOp, Network, Op, check_genotype, derive, nonzeros, num_edges, prunable_size, random_genotype,
    search, ste_topk,
)

X = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 4))


def test_sparse_conv_density_one_equals_dense_and_keeps_exact_count():
    sparse, dense = Conv(4, 3, density=1.0), Conv(4, 3)
    p = sparse.init(jax.random.PRNGKey(1), X)["params"]
    y = sparse.apply({"params": p}, X)
    np.testing.assert_allclose(y, dense.apply({"params": {"kernel": p["kernel"]}}, X), atol=1e-6)
    m = ste_topk(p["scores"], 0.1)
    assert int(m.sum()) == round(0.1 * p["scores"].size)
    # a sparse conv is the dense conv of the masked kernel
    y01 = Conv(4, 3, density=0.1).apply({"params": p}, X)
    np.testing.assert_allclose(y01, dense.apply({"params": {"kernel": p["kernel"] * m}}, X), atol=1e-5)


def test_ste_passes_gradient_to_scores():
    conv = Conv(4, 1, density=0.25)
    p = conv.init(jax.random.PRNGKey(2), X)["params"]
    g = jax.grad(lambda p: (conv.apply({"params": p}, X) ** 2).sum())(p)
    # dL/dS = dL/dW~ * W, nonzero also on pruned entries; dL/dW is masked
    mask = np.asarray(ste_topk(p["scores"], 0.25)) > 0
    assert np.abs(np.asarray(g["scores"])[~mask]).sum() > 0
    assert np.all(np.asarray(g["kernel"])[~mask] == 0)


def test_mixed_op_one_hot_equals_chosen_op():
    mixed = MixedOp(4, 0.5)
    p = mixed.init(jax.random.PRNGKey(3), X, jnp.ones(len(OPS)) / len(OPS))["params"]
    for i, name in enumerate(OPS):
        y = mixed.apply({"params": p}, X, jax.nn.one_hot(i, len(OPS)))
        ref = Op(name, 4, 0.5).apply({"params": p.get(name, {})}, X)
        np.testing.assert_allclose(y, ref, atol=1e-6)


def test_derive_picks_top2_non_zero_edges():
    alpha = np.zeros((num_edges(2), len(OPS)))
    zero, conv, skip = OPS.index("zero"), OPS.index("sparse_conv_3x3"), OPS.index("skip")
    alpha[:, zero] = 5.0  # zero never chosen
    alpha[1, conv] = 3.0
    alpha[0, skip] = 2.0
    alpha[4, conv] = 4.0
    alpha[2, skip] = 1.0
    g = derive(alpha, 2)
    assert g == (((0, "skip"), (1, "sparse_conv_3x3")), ((0, "skip"), (2, "sparse_conv_3x3")))
    assert check_genotype(g, 2) == g
    rg = random_genotype(jax.random.PRNGKey(4), 3)
    assert len(rg) == 3 and all(len(n) == 2 and "zero" not in dict(n).values() for n in rg)
    with pytest.raises(ValueError, match="input of node 0"):
        check_genotype((((2, "skip"),),), 1)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_search_loop_runs_and_derived_network_trains_shapes():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 16).astype(np.int32)
    net = Network(3, channels=4, n_cells=1, n_nodes=1, density=0.5)
    res = search(net, x, y, x, y, steps=3, warmup_steps=1, batch_size=8, key=jax.random.PRNGKey(0), log_every=1)
    assert res.alpha.shape == (num_edges(1), len(OPS)) and len(res.train_loss) == 3
    assert np.isfinite(res.val_loss).all() and len(res.genotype) == 1
    disc = Network(3, channels=4, n_cells=1, n_nodes=1, genotype=res.genotype)
    p = disc.init(jax.random.PRNGKey(1), x[:1])["params"]
    assert disc.apply({"params": p}, x).shape == (16, 3)
    assert nonzeros(p) == prunable_size(p)
