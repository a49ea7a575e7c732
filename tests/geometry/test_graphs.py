"""Shared graph pieces (geometry.graphs) against networkx references on random weighted graphs."""
import itertools

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from geometry import graphs as G


def _random_graph(n=40, p=0.12, seed=0):
    rng = np.random.default_rng(seed)
    g = nx.gnp_random_graph(n, p, seed=seed)
    for a, b in g.edges:
        g[a][b]["weight"] = float(rng.uniform(0.5, 3.0))
    return g


def test_as_adjacency_matches_networkx_and_rejects_bad_graphs():
    g = _random_graph()
    adj = G.as_adjacency(g)
    for a, b, w in g.edges(data="weight"):
        assert adj[a, b] == adj[b, a] == w
    assert adj.nnz == 2 * g.number_of_edges()
    assert (G.as_adjacency(adj.toarray()) != adj).nnz == 0
    with pytest.raises(ValueError, match="symmetric"):
        G.as_adjacency(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="positive"):
        G.as_adjacency(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="self-loops"):
        G.as_adjacency(np.eye(3))
    with pytest.raises(ValueError, match="square"):
        G.as_adjacency(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="undirected"):
        G.as_adjacency(nx.DiGraph([(0, 1)]))
    with pytest.raises(TypeError, match="graph"):
        G.as_adjacency([[0, 1], [1, 0]])


def test_multi_source_dijkstra_distances_owners_and_forest():
    g = _random_graph(60, 0.08, seed=1)
    adj = G.as_adjacency(g)
    sources = np.array([3, 17, 42])
    dist, owner, pred = G.multi_source_dijkstra(adj, sources)
    ref = nx.multi_source_dijkstra_path_length(g, set(sources.tolist()))
    per_source = [nx.single_source_dijkstra_path_length(g, int(s)) for s in sources]
    for v in range(60):
        if v not in ref:
            assert np.isinf(dist[v]) and owner[v] == -1 and pred[v] == -1
            continue
        assert dist[v] == pytest.approx(ref[v])
        assert per_source[owner[v]][v] == pytest.approx(dist[v])         # the owner is a nearest source
        if v in sources:
            assert pred[v] == -1 and sources[owner[v]] == v
        else:
            assert owner[pred[v]] == owner[v]                           # forest consistent with owners
            assert dist[v] == pytest.approx(dist[pred[v]] + adj[pred[v], v])
    d_lim, o_lim, _ = G.multi_source_dijkstra(adj, sources, limit=1.0)
    assert np.array_equal(np.isfinite(d_lim), dist <= 1.0) and (o_lim[dist > 1.0] == -1).all()
    hops, _, _ = G.multi_source_dijkstra(adj, sources, unweighted=True)
    ref_h = nx.multi_source_dijkstra_path_length(nx.Graph(g.edges), set(sources.tolist()))
    assert all(hops[v] == ref_h[v] for v in ref_h)
    with pytest.raises(ValueError, match="distinct"):
        G.multi_source_dijkstra(adj, [1, 1])
    with pytest.raises(ValueError, match="sources"):
        G.multi_source_dijkstra(adj, [60])


def test_subsets_diameter_and_labels():
    g = _random_graph(30, 0.2, seed=2)
    adj = G.as_adjacency(g)
    rng = np.random.default_rng(0)
    for _ in range(20):
        verts = np.sort(rng.choice(30, size=int(rng.integers(1, 30)), replace=False))
        assert G.is_connected_subset(adj, verts) == nx.is_connected(g.subgraph(verts.tolist()))
    assert not G.is_connected_subset(adj, [])
    big = max(nx.connected_components(g), key=len)
    sub = G.induced_subgraph(adj, sorted(big))
    ref = max(max(d.values()) for _, d in nx.all_pairs_dijkstra_path_length(g.subgraph(big)))
    assert G.graph_diameter(sub) == pytest.approx(ref)
    with pytest.raises(ValueError, match="connected"):
        G.graph_diameter(G.as_adjacency(nx.empty_graph(3)))
    with pytest.raises(ValueError, match="every value"):
        G.check_labels(np.array([0, 2, 2]), 3)
    with pytest.raises(ValueError, match="shape"):
        G.check_labels(np.array([0, 1]), 3)


def test_region_adjacency_hops_and_strong_diameters_match_brute_force():
    g = _random_graph(45, 0.15, seed=3)
    adj = G.as_adjacency(g)
    rng = np.random.default_rng(1)
    _, labels, _ = G.multi_source_dijkstra(adj, rng.choice(45, 6, replace=False))   # connected cells...
    flip = rng.choice(np.flatnonzero(labels >= 0), 5, replace=False)
    labels[flip] = rng.integers(0, 6, 5)                                              # ...some broken
    labels[labels < 0] = 6
    labels = np.unique(labels, return_inverse=True)[1]
    count = G.region_adjacency(adj, labels, reduce="count").toarray()
    total = G.region_adjacency(adj, labels, reduce="sum").toarray()
    lightest = G.region_adjacency(adj, labels, reduce="min").toarray()
    k = labels.max() + 1
    ref_c, ref_s, ref_m = np.zeros((k, k)), np.zeros((k, k)), np.full((k, k), np.inf)
    for a, b, w in g.edges(data="weight"):
        la, lb = labels[a], labels[b]
        if la != lb:
            for x, y in ((la, lb), (lb, la)):
                ref_c[x, y] += 1
                ref_s[x, y] += w
                ref_m[x, y] = min(ref_m[x, y], w)
    assert np.array_equal(count, ref_c) and np.allclose(total, ref_s)
    assert np.allclose(lightest, np.where(np.isinf(ref_m), 0.0, ref_m))
    q = nx.Graph()
    q.add_nodes_from(range(k))
    q.add_edges_from((labels[a], labels[b]) for a, b in g.edges if labels[a] != labels[b])
    hops = G.region_hop_distances(adj, labels)
    ref_h = dict(nx.all_pairs_shortest_path_length(q))
    for a, b in itertools.product(range(k), repeat=2):
        assert hops[a, b] == ref_h[a].get(b, np.inf)
    sd = G.strong_diameters(adj, labels)
    for c in range(k):
        sub = g.subgraph(np.flatnonzero(labels == c).tolist())
        if not nx.is_connected(sub):
            assert np.isinf(sd[c])
        else:
            ref = max((max(d.values()) for _, d in nx.all_pairs_dijkstra_path_length(sub)), default=0.0)
            assert sd[c] == pytest.approx(ref)
    assert np.isinf(sd).any() and np.isfinite(sd).any()    # both cases exercised
    with pytest.raises(ValueError, match="reduce"):
        G.region_adjacency(adj, labels, reduce="max")


def test_region_adjacency_contact_area_on_voxel_grid():
    # 4x4 grid split into left/right halves: 4 faces touch
    adj = G.as_adjacency(nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4), ordering="sorted"))
    labels = np.array([0 if i < 2 else 1 for i in range(4) for _ in range(4)])
    assert G.region_adjacency(adj, labels).toarray().tolist() == [[0, 4], [4, 0]]
    assert sp.issparse(G.region_adjacency(adj, labels))
