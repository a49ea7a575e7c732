"""P16: cop decomposition and shortcut partition properties, checked exactly on random graphs."""
import networkx as nx
import numpy as np
import pytest
from networkx.algorithms.approximation import treewidth_min_degree

from geometry.graphs import (
    as_adjacency, graph_diameter, induced_subgraph, is_connected_subset, multi_source_dijkstra, region_adjacency,
    strong_diameters,
)
from geometry.metric import (
    cop_decomposition, delaunay_graph, expander, grid_graph, hop_ratios, k_tree, make_graph, net_voronoi_partition,
    partition_report, random_planar_graph, shortcut_partition,
)


def _nx(adj):
    return nx.from_scipy_sparse_array(adj)


def test_generators_are_connected_and_in_their_class():
    for adj, _ in (grid_graph(7, 1), delaunay_graph(80, 2), random_planar_graph(80, 3)):
        g = _nx(adj)
        assert nx.is_connected(g) and nx.check_planarity(g)[0]
    assert grid_graph(7)[0].nnz == 2 * 2 * 7 * 6
    sparse_pl, dense_pl = random_planar_graph(80, 3, keep=0.0)[0], delaunay_graph(80, 3)[0]
    assert sparse_pl.nnz == 2 * 79 and dense_pl.nnz > sparse_pl.nnz          # keep=0: just the spanning tree
    for window in (None, 4):
        g = _nx(k_tree(60, 3, 4, window=window)[0])
        assert g.number_of_edges() == 3 * 60 - 6 and treewidth_min_degree(g)[0] <= 3
    g = _nx(expander(60, 4, 5)[0])
    assert nx.is_connected(g) and set(dict(g.degree).values()) == {4} and not nx.check_planarity(g)[0]
    with pytest.raises(ValueError, match="family"):
        make_graph("torus", 10)


@pytest.mark.parametrize("family,n,max_cops", [("grid", 100, 3), ("delaunay", 120, 3), ("random_planar", 120, 3),
                                               ("3-tree", 120, 3)])
def test_cop_decomposition_properties(family, n, max_cops):
    adj, _ = make_graph(family, n, seed=7)
    radius = 0.1 * graph_diameter(adj)
    cop = cop_decomposition(adj, radius)
    assert (cop.supernode >= 0).all() and set(cop.supernode) == set(range(cop.n_supernodes))
    # K_r-minor-free lemma: planar (r=5) and treewidth-3 (K_5-minor-free) domains see <= 3 earlier supernodes
    assert cop.max_cops <= max_cops
    for s in range(cop.n_supernodes):
        verts = np.flatnonzero(cop.supernode == s)
        assert is_connected_subset(adj, verts)
        assert all(c < s for c in cop.cops[s])
        skel = np.flatnonzero(cop.on_skeleton & (cop.supernode == s))
        # every vertex within `radius` of the skeleton, measured inside the supernode
        local = np.searchsorted(verts, skel)
        d, _, _ = multi_source_dijkstra(induced_subgraph(adj, verts), local)
        assert d.max() <= radius + 1e-12
        # skeleton is a tree of shortest paths: depth grows by the edge weight, one root
        roots = [v for v in skel if cop.skeleton_parent[v] < 0]
        assert len(roots) == 1 and cop.depth[roots[0]] == 0
        for v in skel:
            p = cop.skeleton_parent[v]
            if p >= 0:
                assert cop.supernode[p] == s and cop.depth[v] == pytest.approx(cop.depth[p] + adj[p, v])
        # the skeleton touches every cop (supernodes adjacent to its domain)
        touching = set(cop.supernode[adj[skel].indices])
        assert set(cop.cops[s]) <= touching


def test_expander_breaks_the_cop_lemma():
    adj, _ = expander(200, 4, seed=0)
    cop = cop_decomposition(adj, 0.1 * graph_diameter(adj))
    assert cop.max_cops > 3            # not minor-free: more cops than any planar graph allows


@pytest.mark.parametrize("family,seed", [("grid", 0), ("delaunay", 1), ("random_planar", 2), ("3-tree", 3),
                                         ("expander", 4)])
@pytest.mark.parametrize("eps", [0.5, 0.2])
def test_shortcut_partition_connected_within_strong_diameter(family, seed, eps):
    adj, _ = make_graph(family, 144, seed)
    delta = graph_diameter(adj)
    labels, _ = shortcut_partition(adj, eps, diameter=delta)
    assert labels.shape == (adj.shape[0],) and set(labels) == set(range(labels.max() + 1))
    sd = strong_diameters(adj, labels)
    assert np.isfinite(sd).all()                      # every cluster connected
    assert sd.max() <= eps * delta * (1 + 1e-12)      # strong diameter <= 2(1/4 + 1/4) eps Delta
    if family != "3-tree" or eps == 0.5:
        assert labels.max() > 0
    report = partition_report(adj, labels, eps, delta)
    assert report["connected"] and report["strong_diam_ratio"] <= 1 + 1e-12 and report["hop_ratio_max"] >= 1


def test_hop_ratios_equal_brute_force_cluster_crossings():
    adj, _ = delaunay_graph(50, seed=5)
    delta = graph_diameter(adj)
    labels, _ = shortcut_partition(adj, 0.3, diameter=delta)
    ratio, clusters = hop_ratios(adj, labels, 0.3, delta)
    # brute force: fewest clusters met by any u-v path = 1 + fewest label changes (Dijkstra on 0/1 arc costs)
    g = nx.DiGraph()
    for a, b in _nx(adj).edges:
        g.add_edge(a, b, w=int(labels[a] != labels[b]))
        g.add_edge(b, a, w=int(labels[a] != labels[b]))
    iu = np.triu_indices(50, k=1)
    changes = {u: nx.single_source_dijkstra_path_length(g, u, weight="w") for u in range(50)}
    ref = np.array([changes[u][v] + 1 for u, v in zip(*iu)])
    assert np.array_equal(clusters, ref)
    d = nx.floyd_warshall_numpy(_nx(adj))
    assert np.allclose(ratio, ref / np.ceil(d[iu] / (0.3 * delta)))


def test_path_graph_hop_bound():
    # on a unit path every cluster is an interval of floor(R)+1 vertices, R = eps*Delta/4, so a u-v path of
    # d edges meets at most ceil((d+1)/(floor(R)+1)) + 1 intervals
    adj = as_adjacency(nx.path_graph(101))
    eps = 0.2
    labels, cop = shortcut_partition(adj, eps, diameter=100.0)
    assert cop.max_cops <= 1
    assert np.all(np.diff(labels) >= 0)                      # intervals in order
    ratio, clusters = hop_ratios(adj, labels, eps, 100.0)
    iu = np.triu_indices(101, k=1)
    d = (iu[1] - iu[0]).astype(float)
    assert np.all(clusters <= np.ceil((d + 1) / (np.floor(eps * 100 / 4) + 1)) + 1)
    assert ratio.max() <= 6


def test_net_voronoi_baseline_and_errors():
    adj, _ = random_planar_graph(150, seed=6)
    delta = graph_diameter(adj)
    rho = 0.15 * delta
    labels = net_voronoi_partition(adj, rho, seed=1)
    sd = strong_diameters(adj, labels)
    assert np.isfinite(sd).all() and sd.max() <= 2 * rho + 1e-12
    assert region_adjacency(adj, labels).shape[0] == labels.max() + 1
    with pytest.raises(ValueError, match="eps"):
        shortcut_partition(adj, 0.0)
    with pytest.raises(ValueError, match="eps"):
        shortcut_partition(adj, 1.5)
    with pytest.raises(ValueError, match="radius"):
        cop_decomposition(adj, -1.0)
    with pytest.raises(ValueError, match="rho"):
        net_voronoi_partition(adj, 0.0)


@pytest.mark.parametrize("family,seed", [("delaunay", 8), ("3-tree", 9), ("expander", 10)])
def test_center_cover_and_oracle_never_below_and_within_additive_bound(family, seed):
    from geometry.metric import center_cover, random_center_cover
    adj, _ = make_graph(family, 100, seed)
    d = nx.floyd_warshall_numpy(_nx(adj))
    delta = d.max()
    labels, _ = shortcut_partition(adj, 0.4, diameter=delta)
    for cover in (center_cover(adj, labels), random_center_cover(adj, 7, seed=seed)):
        assert cover.n_trees == cover.labels.max() + 1
        for t in cover.trees():                       # spanning trees that are subgraphs of G
            assert t.nnz == 2 * 99 and (t.multiply(adj != 0) != t).nnz == 0
            assert np.allclose(t.data, np.asarray(adj[t.nonzero()]).ravel())
        r = cover.dist[cover.labels, np.arange(100)]   # distance of each vertex to its centre
        bound = d + 2 * np.minimum(r[:, None], r[None, :])
        td = cover.tree_distances()
        u, v = np.meshgrid(np.arange(100), np.arange(100), indexing="ij")
        est = cover.query(u.ravel(), v.ravel()).reshape(100, 100)
        for x in (td, est):
            assert (x >= d - 1e-9).all() and (x <= bound + 1e-9).all()
        assert (td <= est + 1e-9).all()                # the tree path is no longer than the path via the root
    r = center_cover(adj, labels)
    assert r.dist[r.labels, np.arange(100)].max() <= 0.4 * delta   # centre within the strong diameter
    with pytest.raises(ValueError, match="u"):
        r.query(np.array([100]), np.array([0]))


def test_skeleton_segments_are_subtrees_of_height_below_length():
    from geometry.metric import segment_skeleton
    adj, _ = make_graph("random_planar", 150, seed=11)
    delta = graph_diameter(adj)
    cop = cop_decomposition(adj, 0.05 * delta)
    length = 0.07 * delta
    seg = segment_skeleton(cop, length)
    skel = np.flatnonzero(cop.on_skeleton)
    assert (seg[skel] >= 0).all() and (seg[~cop.on_skeleton] == -1).all()
    for s in np.unique(seg[skel]):
        members = skel[seg[skel] == s]
        heads = [v for v in members if cop.skeleton_parent[v] < 0 or seg[cop.skeleton_parent[v]] != s]
        assert len(heads) == 1                                        # one entry point: a subtree
        assert (cop.depth[members] - cop.depth[heads[0]] < length).all()
        assert len(set(cop.supernode[members])) == 1
    with pytest.raises(ValueError, match="length"):
        segment_skeleton(cop, 0.0)


def test_generator_and_adjacency_errors():
    with pytest.raises(ValueError, match="side"):
        grid_graph(1)
    with pytest.raises(ValueError, match="keep"):
        random_planar_graph(20, keep=1.5)
    with pytest.raises(ValueError, match="window"):
        k_tree(20, 3, window=0)
    with pytest.raises(ValueError, match="nodes"):
        as_adjacency(nx.Graph([("a", "b")]))


@pytest.mark.parametrize("family,seed", [("grid", 11), ("delaunay", 12), ("3-tree", 13)])
def test_buffer_step_enforces_the_buffer_property(family, seed):
    from geometry.metric.cop import buffer_violations
    adj, _ = make_graph(family, 100, seed)
    delta = graph_diameter(adj)
    radius, gamma = delta / 16, delta / 4
    plain, buffered = cop_decomposition(adj, radius), cop_decomposition(adj, radius, gamma)
    assert buffer_violations(adj, buffered, gamma) == 0
    assert buffer_violations(adj, plain, gamma) > 0          # the plain decomposition does not have it
    assert buffered.max_cops <= 3 and (buffered.supernode >= 0).all()
    for s in range(buffered.n_supernodes):
        assert is_connected_subset(adj, np.flatnonzero(buffered.supernode == s))
    assert buffered.max_radius <= radius + 4 * gamma + 1e-9
    labels, cop = shortcut_partition(adj, 0.5, diameter=delta, radius_frac=0.125, buffer_frac=0.125)
    sd = strong_diameters(adj, labels)
    assert np.isfinite(sd).all() and sd.max() <= 2 * (0.125 * 0.5 * delta + cop.max_radius) + 1e-9
    with pytest.raises(ValueError, match="buffer"):
        cop_decomposition(adj, radius, -1.0)
