"""P16 applications: Steiner point removal minors and the multi-scale tree cover / oracle, checked exactly."""
import networkx as nx
import numpy as np
import pytest

from geometry.graphs import all_pairs_distances, as_adjacency, is_connected_subset
from geometry.metric import make_graph
from geometry.metric.spr import shortcut_spr, terminal_minor, voronoi_spr
from geometry.metric.treecover import multiscale_tree_cover, random_tree_cover


def _check_minor(adj, m, dist):
    n, k = adj.shape[0], m.terminals.size
    assert m.labels.shape == (n,) and set(m.labels) == set(range(k))           # clusters cover V, one per terminal
    assert np.array_equal(m.labels[m.terminals], np.arange(k))
    for i in range(k):
        assert is_connected_subset(adj, np.flatnonzero(m.labels == i))       # each cluster connected
    # minor edges <-> G edges between clusters, weighted d_G(t, t')
    a = adj.tocoo()
    cross = {(min(x, y), max(x, y)) for x, y in zip(m.labels[a.row], m.labels[a.col]) if x != y}
    assert set(m.witness) == cross
    for (i, j), (u, v) in m.witness.items():
        assert adj[u, v] > 0 and m.labels[u] == i and m.labels[v] == j
        assert m.weights[i, j] == pytest.approx(dist[m.terminals[i], m.terminals[j]])
    dm = m.minor_distances()
    dt = dist[np.ix_(m.terminals, m.terminals)]
    assert np.all(dm >= dt - 1e-9) and np.isfinite(dm).all()                  # never shrinks, minor connected
    assert m.distortion() == pytest.approx(np.max(dm[dt > 0] / dt[dt > 0]))


@pytest.mark.parametrize("family,seed,k", [("grid", 0, 10), ("delaunay", 1, 25), ("3-tree", 2, 12),
                                           ("expander", 3, 20)])
def test_spr_minors_are_valid_and_never_shrink(family, seed, k):
    adj, _ = make_graph(family, 100, seed)
    dist = all_pairs_distances(adj)
    terminals = np.random.default_rng(seed).choice(adj.shape[0], k, replace=False)
    for m in (shortcut_spr(adj, terminals), voronoi_spr(adj, terminals)):
        _check_minor(adj, m, dist)


def test_spr_on_a_path_is_exact_and_errors():
    adj = as_adjacency(nx.path_graph(30))
    m = shortcut_spr(adj, [0, 7, 29])
    assert np.all(np.diff(m.labels) >= 0) and m.distortion() == pytest.approx(1.0)  # intervals, no detour
    assert shortcut_spr(adj, [5]).distortion() == 1.0 and (shortcut_spr(adj, [5]).labels == 0).all()
    with pytest.raises(ValueError, match="distinct"):
        shortcut_spr(adj, [1, 1])
    with pytest.raises(ValueError, match="terminal"):
        terminal_minor(adj, [0, 7], np.ones(30, dtype=int))
    with pytest.raises(ValueError, match="connected"):
        voronoi_spr(as_adjacency(nx.empty_graph(3)), [0])


@pytest.mark.parametrize("family,seed,eps", [("grid", 4, 0.5), ("delaunay", 5, 0.3), ("3-tree", 6, 0.5)])
def test_multiscale_cover_stretch_and_oracle(family, seed, eps):
    adj, _ = make_graph(family, 64, seed)
    dist = all_pairs_distances(adj)
    cover = multiscale_tree_cover(adj, eps)
    iu = np.triu_indices(adj.shape[0], k=1)
    est = cover.query(*iu)
    exact = cover.tree_distances()[iu]
    d = dist[iu]
    assert np.all(exact >= d - 1e-9) and np.all(est >= exact - 1e-9)     # trees dominate; oracle >= tree dist
    assert np.all(est <= (1 + 4 * eps) * d + 1e-9)                          # proved (1 + 4 eps) stretch
    for i in range(cover.n_trees):                                          # forests that are subgraphs of G
        f = cover.forest_adjacency(i).tocoo()
        assert nx.is_forest(nx.from_scipy_sparse_array(cover.forest_adjacency(i)))
        assert np.allclose(f.data, adj.toarray()[f.row, f.col])
    rnd = random_tree_cover(adj, 3, seed=seed)
    assert rnd.n_trees == 3 and np.all(rnd.query(*iu) >= d - 1e-9)
    assert cover.query([0], [0])[0] == 0.0
    with pytest.raises(ValueError, match="eps"):
        multiscale_tree_cover(adj, 0.0)
