"""Steiner point removal through shortcut partitions over scales (P16 application, RECONSTRUCTED).

Problem: given terminals T in a weighted connected graph G, find a minor M of G on exactly the vertex set T
(every vertex contracted into the cluster of one terminal; clusters disjoint, connected, covering V; a minor
edge t-t' exists iff some G edge joins their clusters) whose edges weigh d_G(t, t'). Then
d_M(t, t') >= d_G(t, t') always (triangle inequality) and the *distortion* is max d_M / d_G over terminal pairs.
The paper (via its planar predecessor arXiv 2306.06235) proves O_r(1) distortion for K_r-minor-free graphs.

The paper's reduction was not readable here. :func:`shortcut_spr` is the simplest constructive version with the
same shape -- every vertex is contracted at the scale of its distance to T, through clusters of that scale:

1. dT(v) = distance to the nearest terminal. Scales Delta_j = base * 2^j, base = smallest positive dT.
2. At scale j, a shortcut partition P_j of G with clusters of strong diameter <= Delta_j
   (:func:`geometry.metric.shortcut_partition` with eps*diameter = Delta_j). A not-yet-assigned vertex is
   *eligible* once dT(v) <= ``reach`` * Delta_j.
3. Repeat to a fixpoint: each connected piece of (eligible unassigned vertices inside one cluster of P_j) that
   has a G edge into an assigned vertex joins the adjacent terminal cluster whose terminal is nearest (in d_G)
   to the piece. Joining along an edge keeps every terminal cluster connected.
4. Go to the next scale until every vertex is assigned (at Delta_j >= diameter all vertices are eligible,
   and G is connected, so the fixpoint assigns everything).

So a vertex is absorbed in a piece of diameter O(dT(v)) next to a cluster that already reaches it -- the
low-hop property is what bounds how far a cluster can "run" along a shortest path. No distortion bound is
proved for this reconstruction; it is measured. Baseline :func:`voronoi_spr`: every vertex to its nearest
terminal (multi-source Dijkstra; shortest-path forests, so clusters are connected).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from geometry.graphs import all_pairs_distances, graph_diameter, induced_subgraph, multi_source_dijkstra
from geometry.metric.partition import shortcut_partition
from sparsejax.core.validation import check_index_range, check_number

__all__ = ["TerminalMinor", "shortcut_spr", "voronoi_spr", "terminal_minor"]


@dataclass(frozen=True)
class TerminalMinor:
    """``terminals[k]``; ``labels[n]`` (position in ``terminals`` of each vertex's cluster); ``weights`` the k x k
    CSR minor with edge weights d_G(t, t'); ``witness`` dict (i, j) -> a G edge (u, v) with u in cluster i,
    v in cluster j; ``terminal_dist`` the k x k matrix d_G restricted to T."""

    terminals: np.ndarray
    labels: np.ndarray
    weights: sp.csr_matrix
    witness: dict
    terminal_dist: np.ndarray

    def minor_distances(self) -> np.ndarray:
        """k x k shortest-path distances in the minor."""
        return csgraph.shortest_path(self.weights, method="D", directed=False)

    def distortion(self) -> float:
        """max over terminal pairs of d_M / d_G (>= 1)."""
        k = self.terminals.size
        if k < 2:
            return 1.0
        iu = np.triu_indices(k, k=1)
        return float((self.minor_distances()[iu] / self.terminal_dist[iu]).max())


def _check_terminals(adj, terminals):
    terminals = np.asarray(terminals)
    check_index_range("terminals", terminals, adj.shape[0])
    if terminals.ndim != 1 or terminals.size == 0:
        raise ValueError("terminals must be a non-empty 1-D index array")
    if np.unique(terminals).size != terminals.size:
        raise ValueError("terminals must be distinct")
    if csgraph.connected_components(adj, directed=False, return_labels=False) != 1:
        raise ValueError("graph must be connected")
    return terminals.astype(np.int64)


def terminal_minor(adj: sp.csr_matrix, terminals, labels, terminal_dist: np.ndarray | None = None) -> TerminalMinor:
    """Minor induced by contracting each cluster of ``labels`` (positions into ``terminals``) to its terminal,
    edges weighted by d_G between the terminals. Raises if ``labels`` is not a valid terminal partition."""
    terminals = _check_terminals(adj, terminals)
    labels = np.asarray(labels, dtype=np.int64)
    k = terminals.size
    if labels.shape != (adj.shape[0],) or labels.min() < 0 or labels.max() >= k:
        raise ValueError("labels must give every vertex a terminal position in 0..k-1")
    if not np.array_equal(labels[terminals], np.arange(k)):
        raise ValueError("each terminal must lie in its own cluster")
    if terminal_dist is None:
        terminal_dist = csgraph.dijkstra(adj, directed=False, indices=terminals)[:, terminals]
    coo = sp.triu(adj, k=1).tocoo()
    a, b = labels[coo.row], labels[coo.col]
    cross = a != b
    witness = {}
    for u, v, i, j in zip(coo.row[cross], coo.col[cross], a[cross], b[cross]):
        key = (int(min(i, j)), int(max(i, j)))
        if key not in witness:
            witness[key] = (int(u), int(v)) if i < j else (int(v), int(u))
    if witness:
        ii, jj = np.array(list(witness)).T
        w = terminal_dist[ii, jj]
        weights = sp.coo_matrix((np.r_[w, w], (np.r_[ii, jj], np.r_[jj, ii])), shape=(k, k)).tocsr()
    else:
        weights = sp.csr_matrix((k, k))
    return TerminalMinor(terminals, labels, weights, witness, terminal_dist)


def voronoi_spr(adj: sp.csr_matrix, terminals) -> TerminalMinor:
    """Baseline: contract every vertex into its nearest terminal (Voronoi cells of T)."""
    terminals = _check_terminals(adj, terminals)
    _, owner, _ = multi_source_dijkstra(adj, terminals)
    return terminal_minor(adj, terminals, owner)


def shortcut_spr(adj: sp.csr_matrix, terminals, *, eps: float = 0.5, reach: float = 1.0,
                 diameter: float | None = None) -> TerminalMinor:
    """Reconstructed scale-by-scale SPR through shortcut partitions (module docstring, steps 1-4).

    ``eps`` is the partition's eps (only its cluster diameter eps*diameter = Delta_j is fixed per scale, so
    eps sets how the cop decomposition's expansion/segment lengths relate to the scale); ``reach`` the
    eligibility factor dT(v) <= reach * Delta_j."""
    terminals = _check_terminals(adj, terminals)
    eps = check_number("eps", eps, minimum=0.0, maximum=1.0, min_inclusive=False)
    reach = check_number("reach", reach, minimum=0.0, min_inclusive=False)
    n, k = adj.shape[0], terminals.size
    delta = graph_diameter(adj) if diameter is None else float(diameter)
    d_t = csgraph.dijkstra(adj, directed=False, indices=terminals)          # k x n
    d_near = d_t.min(axis=0)
    labels = np.full(n, -1, dtype=np.int64)
    labels[terminals] = np.arange(k)
    pos = d_near[d_near > 0]
    scale = float(pos.min()) if pos.size else delta
    indptr, indices = adj.indptr, adj.indices
    while (labels < 0).any():
        if scale >= delta:
            part = np.zeros(n, dtype=np.int64)                              # one cluster: the whole graph
        else:
            part, _ = shortcut_partition(adj, eps, diameter=scale / eps)
        eligible = (labels < 0) & ((d_near <= reach * scale) | (scale >= delta))
        changed = True
        while changed and eligible.any():
            changed = False
            verts = np.flatnonzero(eligible)
            sub = induced_subgraph(adj, verts)
            coo = sub.tocoo()
            keep = part[verts][coo.row] == part[verts][coo.col]                 # edges inside one cluster
            same = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=sub.shape)
            _, piece = csgraph.connected_components(same, directed=False)
            for p in np.unique(piece):
                members = verts[piece == p]
                nbr = np.concatenate([indices[indptr[v]:indptr[v + 1]] for v in members])
                touching = np.unique(labels[nbr][labels[nbr] >= 0])
                if touching.size == 0:
                    continue
                best = touching[np.argmin(d_t[touching][:, members].min(axis=1))]
                labels[members] = best
                eligible[members] = False
                changed = True
        scale *= 2.0
    return terminal_minor(adj, terminals, labels, d_t[:, terminals])
