"""Test graphs for shortcut partitions (P16): planar, bounded-treewidth and expander families.

Every generator takes a ``seed`` (NumPy ``default_rng``) and returns a connected symmetric CSR adjacency
(:func:`geometry.graphs.as_adjacency`) plus the vertex coordinates where the graph is geometric.

* :func:`grid_graph` -- ``side x side`` grid, i.i.d. U[1, 2] edge weights (planar).
* :func:`delaunay_graph` -- Delaunay triangulation of ``n`` uniform points in the unit square
  (``scipy.spatial.Delaunay``), Euclidean weights (planar).
* :func:`random_planar_graph` -- a Delaunay triangulation with each non-tree edge kept with probability
  ``keep`` (a random spanning tree is always kept, so it stays connected; planar, sparser, less regular).
* :func:`k_tree` -- random k-tree (treewidth k, hence K_{k+2}-minor-free), U[1, 2] weights; the
  ``"3-tree"`` family attaches each vertex near the last 8 (``window=8``) so its diameter grows with n.
* :func:`expander` -- random d-regular graph (``networkx.random_regular_graph``), U[1, 2] weights: an
  expander w.h.p. and not minor-free for any fixed r -- the negative control.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.spatial import Delaunay

from geometry.graphs import as_adjacency
from sparsejax.core.validation import check_int, check_number

__all__ = ["grid_graph", "delaunay_graph", "random_planar_graph", "k_tree", "expander", "make_graph", "FAMILIES"]


def _from_edges(n: int, edges: np.ndarray, weights: np.ndarray) -> sp.csr_matrix:
    adj = sp.coo_matrix((weights, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    return as_adjacency(adj.maximum(adj.T))


def grid_graph(side: int, seed: int = 0):
    """``side x side`` grid with U[1, 2] weights; returns ``(adj, coords)``."""
    side = check_int("side", side, minimum=2)
    rng = np.random.default_rng(seed)
    g = nx.grid_2d_graph(side, side)
    edges = np.array([(i * side + j, k * side + l) for (i, j), (k, l) in g.edges])
    coords = np.array([(i, j) for i in range(side) for j in range(side)], dtype=float)
    return _from_edges(side * side, edges, rng.uniform(1.0, 2.0, len(edges))), coords


def _delaunay_edges(points: np.ndarray) -> np.ndarray:
    tri = Delaunay(points)
    s = tri.simplices
    e = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def delaunay_graph(n: int, seed: int = 0):
    """Delaunay triangulation of ``n`` uniform points, Euclidean weights; returns ``(adj, points)``."""
    n = check_int("n", n, minimum=3)
    pts = np.random.default_rng(seed).uniform(size=(n, 2))
    e = _delaunay_edges(pts)
    return _from_edges(n, e, np.linalg.norm(pts[e[:, 0]] - pts[e[:, 1]], axis=1)), pts


def random_planar_graph(n: int, seed: int = 0, keep: float = 0.5):
    """Delaunay graph thinned to a random spanning tree plus each other edge with probability ``keep``."""
    n = check_int("n", n, minimum=3)
    keep = check_number("keep", keep, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(seed)
    pts = rng.uniform(size=(n, 2))
    e = _delaunay_edges(pts)
    w = np.linalg.norm(pts[e[:, 0]] - pts[e[:, 1]], axis=1)
    rand = sp.coo_matrix((rng.uniform(1.0, 2.0, len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    tree = csgraph.minimum_spanning_tree(rand).tocoo()          # random spanning tree (random MST)
    in_tree = set(zip(np.minimum(tree.row, tree.col), np.maximum(tree.row, tree.col)))
    mask = np.array([(a, b) in in_tree for a, b in e]) | (rng.uniform(size=len(e)) < keep)
    return _from_edges(n, e[mask], w[mask]), pts


def k_tree(n: int, k: int = 3, seed: int = 0, window: int | None = None):
    """Random k-tree on ``n`` vertices: start from K_{k+1}; each new vertex joins a random k-clique made
    when one of the last ``window`` vertices was added (any earlier one when ``window`` is None: a
    low-diameter "random" k-tree; a small window gives a long, path-like k-tree). U[1, 2] weights."""
    k = check_int("k", k, minimum=1)
    n = check_int("n", n, minimum=k + 1)
    if window is not None:
        window = check_int("window", window, minimum=1)
    rng = np.random.default_rng(seed)
    edges = [(a, b) for a in range(k + 1) for b in range(a + 1, k + 1)]
    base = list(range(k + 1))
    cliques = [tuple(base[:i] + base[i + 1:]) for i in range(k + 1)]
    for v in range(k + 1, n):
        lo = 0 if window is None else max(0, len(cliques) - window * k)
        c = cliques[rng.integers(lo, len(cliques))]
        edges += [(u, v) for u in c]
        cliques += [tuple(x for x in c if x != u) + (v,) for u in c]
    edges = np.array(edges)
    return _from_edges(n, edges, rng.uniform(1.0, 2.0, len(edges))), None


def expander(n: int, d: int = 4, seed: int = 0):
    """Random ``d``-regular graph (re-drawn until connected), U[1, 2] weights."""
    n = check_int("n", n, minimum=d + 1)
    d = check_int("d", d, minimum=3)
    rng = np.random.default_rng(seed)
    for attempt in range(100):
        g = nx.random_regular_graph(d, n, seed=int(rng.integers(2**31)))
        if nx.is_connected(g):
            break
    else:  # pragma: no cover - a random d>=3-regular graph is connected w.h.p.
        raise RuntimeError("no connected random regular graph in 100 draws")
    edges = np.array(g.edges)
    return _from_edges(n, edges, rng.uniform(1.0, 2.0, len(edges))), None


FAMILIES = {"grid": lambda n, seed: grid_graph(int(round(np.sqrt(n))), seed),
            "delaunay": delaunay_graph, "random_planar": random_planar_graph,
            "3-tree": lambda n, seed: k_tree(n, 3, seed, window=8), "expander": lambda n, seed: expander(n, 4, seed)}


def make_graph(family: str, n: int, seed: int = 0):
    """One graph of ``family`` (a key of :data:`FAMILIES`) with about ``n`` vertices; returns ``(adj, coords)``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    return FAMILIES[family](n, seed)
