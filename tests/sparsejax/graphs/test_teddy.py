"""P32: TEDDY edge scores against a per-edge loop, exact pruned counts, nested masks, the l0
projection's exact count, the GCN/GIN propagation and the batched trainer."""
import math

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from sparsejax.graphs import (
    GCN, GIN, dc_csbm, degrees, dense_adjacency, distillation_loss, edge_keep_mask, edge_sparsity_levels,
    karate_club, l0_keep_count, l0_project, masked_graph, n_parameters, nested_edge_masks, propagate, teddy_scores,
    train_node_classifiers, ugs_masks,
)


def _random_graph(seed, n=30, p=0.15, loops=3):
    g = nx.gnp_random_graph(n, p, seed=seed)
    rng = np.random.default_rng(seed)
    g.add_edges_from((int(v), int(v)) for v in rng.choice(n, loops, replace=False))
    edges = np.array(sorted((min(a, b), max(a, b)) for a, b in g.edges()), np.int32)
    return g, edges


def test_scores_equal_per_edge_loop():
    g, edges = _random_graph(0)
    n = g.number_of_nodes()
    adj = nx.to_numpy_array(g, nodelist=range(n))          # self-loop = 1 on the diagonal, as torch_sparse
    deg = adj.sum(1)
    np.testing.assert_allclose(np.asarray(degrees(edges, n)), deg)

    def ghat(i):
        if deg[i] == 0:
            return 0.0
        return sum(deg[k] ** -0.5 for k in range(n) if adj[i, k]) / deg[i]

    want = [ghat(i) / deg[i] * ghat(j) / deg[j] for i, j in edges]
    np.testing.assert_allclose(np.asarray(teddy_scores(edges, n)), want, rtol=1e-5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_pruned_count_nested_and_loops_kept(seed):
    _, edges = _random_graph(seed, n=40, p=0.2, loops=4)
    scores = teddy_scores(edges, 40)
    loop = edges[:, 0] == edges[:, 1]
    n_e = int((~loop).sum())
    levels = np.sort(np.random.default_rng(seed).uniform(0, 1, 5))
    masks = np.asarray(nested_edge_masks(scores, edges, levels))
    for p, m in zip(levels, masks):
        assert (~m).sum() == int(p * n_e)
        assert m[loop].all()
        removed, kept = np.asarray(scores)[~m], np.asarray(scores)[m & ~loop]
        if removed.size and kept.size:
            assert removed.max() <= kept.min()
    assert (masks[1:] <= masks[:-1]).all()                   # nested: a pruned edge stays pruned
    np.testing.assert_allclose(edge_sparsity_levels(0.1, 3), [0.1, 0.19, 0.271])


def test_l0_projection_keeps_exact_count():
    key = jax.random.PRNGKey(0)
    params = {"a": jax.random.normal(key, (7, 5)), "b": {"c": jax.random.normal(jax.random.fold_in(key, 1), (11,))}}
    n = 46
    project = jax.jit(l0_project)
    for p in (0.0, 0.1, 0.37, 0.9, 1.0):
        keep = l0_keep_count(n, p)
        assert keep == n - math.ceil(n * p)
        proj, mask = project(params, jnp.int32(keep))
        flat = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(proj)])
        orig = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(params)])
        assert (flat != 0).sum() == keep
        if 0 < keep < n:
            assert np.abs(orig[flat != 0]).min() >= np.abs(orig[flat == 0]).max()
        np.testing.assert_array_equal(flat[flat != 0], orig[flat != 0])
    assert int(sum(m.sum() for m in jax.tree_util.tree_leaves(l0_project(params, 9)[1]))) == 9


def test_propagation_forms_agree_and_kd_is_kl():
    _, edges = _random_graph(4, n=20, loops=0)
    mask = np.random.default_rng(0).random(len(edges)) < 0.6
    g = masked_graph(edges, 20, mask)
    h = jax.random.normal(jax.random.PRNGKey(2), (20, 3))
    np.testing.assert_allclose(np.asarray(dense_adjacency(g) @ h), np.asarray(propagate(g, h)), rtol=1e-5, atol=1e-6)
    a = np.zeros((20, 20))
    a[edges[mask, 0], edges[mask, 1]] = a[edges[mask, 1], edges[mask, 0]] = 1
    a += np.eye(20)
    d = a.sum(1)
    np.testing.assert_allclose(np.asarray(GCN.adjacency(g)), a / np.sqrt(d[:, None] * d[None]), rtol=1e-5)
    s, t = np.random.default_rng(1).normal(size=(2, 6, 4))
    ps, pt = (np.exp(v) / np.exp(v).sum(1, keepdims=True) for v in (s, t))
    assert float(distillation_loss(jnp.asarray(s), jnp.asarray(t))) == pytest.approx(
        np.sum(pt * np.log(pt / ps)) / 6, rel=1e-4)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_trainer_batches_models_and_respects_masks():
    data = karate_club(0)
    model = GCN(8, data.n_classes)
    keys = [jax.random.PRNGKey(i) for i in range(3)]
    e = len(data.edges)
    total = n_parameters(model, data)
    keep = l0_keep_count(total, 0.5)
    edge_w = np.ones((3, e))
    edge_w[2] = 0.0
    res = train_node_classifiers(model, data, keys, edge_w, l0_keep=[total, keep, keep], epochs=5,
                                 kd_weight=[0.0, 0.0, 0.1], teacher=np.zeros((3, data.n_nodes, 2)))
    assert res["test_acc"].shape == (3,) and ((0 <= res["test_acc"]) & (res["test_acc"] <= 1)).all()
    assert res["weight_density"][0] == 1.0
    assert res["weight_density"][1] == pytest.approx(keep / total)
    assert res["logits"].shape == (3, data.n_nodes, 2) and (res["best_epoch"] < 5).all()
    with pytest.raises(ValueError, match="teacher"):
        train_node_classifiers(model, data, keys[:1], np.ones((1, e)), kd_weight=[1.0], epochs=2)
    gin = GIN(8, data.n_classes)
    out = gin.apply(gin.init(keys[0], data.x, GIN.adjacency(masked_graph(data.edges, data.n_nodes))), data.x,
                    GIN.adjacency(masked_graph(data.edges, data.n_nodes)))
    assert out.shape == (data.n_nodes, 2)


def test_ugs_masks_nested_exact_and_generator():
    data = dc_csbm(0, n=60, n_classes=3, avg_degree=5.0, feature_dim=4)
    assert data.edges.shape[1] == 2 and (data.edges[:, 0] < data.edges[:, 1]).all()
    assert (data.train.sum(), data.val.sum(), data.test.sum()) == (12, 12, 36)
    masks = ugs_masks(GCN(4, 3), data, [jax.random.PRNGKey(0)], [0.2, 0.5], epochs=5)
    e = len(data.edges)
    assert masks.shape == (1, 2, e)
    assert [(1 - m).sum() for m in masks[0]] == [int(0.2 * e), int(0.5 * e)]
    assert (masks[0, 1] <= masks[0, 0]).all()
    with pytest.raises(ValueError, match="increase"):
        ugs_masks(GCN(4, 3), data, [jax.random.PRNGKey(0)], [0.5, 0.2], epochs=2)
    with pytest.raises(ValueError, match="edges"):
        teddy_scores(np.array([[0, 5]], np.int32), 3)
    with pytest.raises(ValueError, match="sparsity"):
        edge_keep_mask(jnp.ones(2), np.array([[0, 1], [1, 2]], np.int32), 1.5)
