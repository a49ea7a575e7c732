"""Shared graph pieces for graph and voxel-set partitions (P16 shortcut partitions, P34 pore regions).

A graph is an undirected ``scipy.sparse`` CSR adjacency matrix with positive finite edge weights
(``as_adjacency`` builds one from a networkx graph, a dense array or any sparse matrix and checks it).
Everything runs on NumPy/SciPy (``scipy.sparse.csgraph``): the graphs have irregular sizes and the
algorithms are sequential, so JAX static shapes add nothing here.

* :func:`multi_source_dijkstra` -- distances to the nearest of several sources, the owner (index of that
  source) and the shortest-path-forest predecessors; BFS with ``unweighted=True``. Owners are consistent
  with the forest (a vertex's predecessor has the same owner), so Voronoi cells are connected.
* :func:`induced_subgraph`, :func:`is_connected_subset`, :func:`all_pairs_distances`, :func:`graph_diameter`.
* :func:`region_adjacency` -- the region (cluster) graph of a labelling, with edge counts (contact areas),
  summed or minimum crossing weights; :func:`region_hop_distances` -- hop (BFS) distances in it.
* :func:`strong_diameters` -- exact diameter of each region measured inside the region (``inf`` when the
  region is disconnected).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from sparsejax.core.validation import check_array, check_choice, check_index_range

__all__ = [
    "as_adjacency", "multi_source_dijkstra", "induced_subgraph", "is_connected_subset", "all_pairs_distances",
    "graph_diameter", "check_labels", "region_adjacency", "region_hop_distances", "strong_diameters",
]


def as_adjacency(graph, weight: str = "weight") -> sp.csr_matrix:
    """Symmetric CSR adjacency (float64) of ``graph``: a networkx graph (edge attribute ``weight``,
    default 1), a square dense array or a sparse matrix. Raises on asymmetric, negative, zero-stored or
    non-finite weights and on self-loops."""
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a main dependency
        nx = None
    if nx is not None and isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise ValueError("graph must be undirected, got a directed networkx graph")
        nodes = list(graph.nodes)
        if nodes != list(range(len(nodes))):
            raise ValueError("graph nodes must be 0..n-1 in order; use nx.convert_node_labels_to_integers")
        adj = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=weight, format="csr")
    elif sp.issparse(graph):
        adj = graph
    elif hasattr(graph, "shape"):
        check_array("graph", graph, ndim=2, dtype_kind="fiu")
        adj = sp.csr_matrix(np.asarray(graph, dtype=np.float64))
    else:
        raise TypeError(f"graph must be a networkx graph, an array or a sparse matrix, got {type(graph).__name__}")
    adj = sp.csr_matrix(adj, dtype=np.float64)
    if adj.shape[0] != adj.shape[1]:
        raise ValueError(f"graph must be square, got shape {adj.shape}")
    adj.eliminate_zeros()
    data = adj.data
    if data.size and (not np.isfinite(data).all() or data.min() <= 0):
        raise ValueError(f"graph weights must be positive and finite, got values in [{data.min()}, {data.max()}]")
    if adj.diagonal().any():
        raise ValueError("graph must have no self-loops")
    if (abs(adj - adj.T) > 1e-12 * max(1.0, float(data.max(initial=0.0)))).nnz:
        raise ValueError("graph must be undirected (symmetric adjacency)")
    adj.sort_indices()
    return adj


def multi_source_dijkstra(adj: sp.csr_matrix, sources, *, limit: float = np.inf, unweighted: bool = False):
    """Distances to the nearest source, its owner and the shortest-path forest.

    Returns ``(dist, owner, pred)``: ``dist[v]`` the distance from ``v`` to the nearest source (``inf`` if
    unreached within ``limit``), ``owner[v]`` the *position* in ``sources`` of that source (``-1`` if
    unreached), ``pred[v]`` the predecessor on the forest (``-1`` at sources and unreached vertices). Ties
    are broken by SciPy's heap order; ``owner[pred[v]] == owner[v]`` always holds.
    """
    sources = np.atleast_1d(np.asarray(sources))
    check_index_range("sources", sources, adj.shape[0])
    if sources.size == 0:
        raise ValueError("sources must be non-empty")
    if len(np.unique(sources)) != sources.size:
        raise ValueError("sources must be distinct")
    dist, pred, src = csgraph.dijkstra(adj, directed=False, indices=sources, min_only=True, limit=limit,
                                       unweighted=unweighted, return_predecessors=True)
    position = np.full(adj.shape[0], -1, dtype=np.int64)
    position[sources] = np.arange(sources.size)
    owner = np.where(src >= 0, position[np.maximum(src, 0)], -1)
    pred = np.where(pred < 0, -1, pred).astype(np.int64)
    return dist, owner, pred


def induced_subgraph(adj: sp.csr_matrix, vertices) -> sp.csr_matrix:
    """Adjacency of G[vertices] (rows/columns in the order of ``vertices``)."""
    vertices = np.asarray(vertices)
    check_index_range("vertices", vertices, adj.shape[0])
    return adj[vertices][:, vertices]


def is_connected_subset(adj: sp.csr_matrix, vertices) -> bool:
    """True when G[vertices] is connected (an empty set is not)."""
    vertices = np.asarray(vertices)
    if vertices.size == 0:
        return False
    n_comp = csgraph.connected_components(induced_subgraph(adj, vertices), directed=False, return_labels=False)
    return n_comp == 1


def all_pairs_distances(adj: sp.csr_matrix, *, unweighted: bool = False) -> np.ndarray:
    """Dense n x n shortest-path distances (Dijkstra from every vertex; ``inf`` between components)."""
    return csgraph.shortest_path(adj, method="D", directed=False, unweighted=unweighted)


def graph_diameter(adj: sp.csr_matrix, dist: np.ndarray | None = None) -> float:
    """Exact weighted diameter; raises if the graph is disconnected."""
    dist = all_pairs_distances(adj) if dist is None else dist
    diam = float(dist.max())
    if not np.isfinite(diam):
        raise ValueError("graph must be connected to have a finite diameter")
    return diam


def check_labels(labels, n: int) -> np.ndarray:
    """Integer labels ``0..k-1`` of length ``n``, every label used; returns them as int64."""
    labels = np.asarray(labels)
    check_array("labels", labels, shape=(n,), dtype_kind="iu")
    check_index_range("labels", labels, max(n, 1))
    used = np.unique(labels)
    if used.size and (used[0] != 0 or used[-1] != used.size - 1):
        raise ValueError(f"labels must use every value 0..k-1, got {used.size} distinct values up to {used[-1]}")
    return labels.astype(np.int64)


def region_adjacency(adj: sp.csr_matrix, labels, *, reduce: str = "count") -> sp.csr_matrix:
    """k x k region graph: entry (a, b), a != b, aggregates the edges of G between regions a and b.

    ``reduce``: ``"count"`` (number of crossing edges, the contact area on a voxel grid), ``"sum"`` (total
    crossing weight) or ``"min"`` (lightest crossing edge). The diagonal is empty.
    """
    check_choice("reduce", reduce, ("count", "sum", "min"))
    labels = check_labels(labels, adj.shape[0])
    k = int(labels.max()) + 1 if labels.size else 0
    coo = sp.triu(adj, k=1).tocoo()
    a, b, w = labels[coo.row], labels[coo.col], coo.data
    keep = a != b
    a, b, w = np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]]), np.concatenate([w[keep]] * 2)
    if reduce == "min":
        order = np.lexsort((w, b, a))
        a, b, w = a[order], b[order], w[order]
        first = np.ones(a.size, dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        a, b, w = a[first], b[first], w[first]
    elif reduce == "count":
        w = np.ones_like(w)
    return sp.csr_matrix((w, (a, b)), shape=(k, k))  # duplicates are summed


def region_hop_distances(adj: sp.csr_matrix, labels) -> np.ndarray:
    """k x k hop (unweighted BFS) distances in the region graph of ``labels``."""
    return csgraph.shortest_path(region_adjacency(adj, labels), directed=False, unweighted=True)


def strong_diameters(adj: sp.csr_matrix, labels) -> np.ndarray:
    """Exact strong diameter of each region: max over pairs of the distance inside G[region]
    (``inf`` if the region is disconnected, 0 for a single vertex)."""
    labels = check_labels(labels, adj.shape[0])
    k = int(labels.max()) + 1 if labels.size else 0
    members = np.split(np.argsort(labels, kind="stable"), np.cumsum(np.bincount(labels, minlength=k))[:-1])
    out = np.empty(k)
    for c, verts in enumerate(members):
        out[c] = all_pairs_distances(induced_subgraph(adj, verts)).max() if verts.size > 1 else 0.0
    return out
