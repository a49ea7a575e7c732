"""Cluster-centre tree cover and distance oracle on a partition (P16 applications, SIMPLIFIED).

NOT the paper's constructions: P16's (1+eps) tree cover with O_r(1) trees and its linear-space O(1)-query
oracle are multi-scale and combine many partitions; they are not reproduced. What is here is the
single-scale building block, with a guarantee that follows from the strong-diameter property alone:

* Tree cover: one shortest-path tree of G per cluster, rooted at the cluster's centre (the vertex of least
  eccentricity inside the cluster). Every tree is a subgraph of G, so tree distances never fall below
  d_G; and d_T(u, v) <= d(u, c) + d(c, v) <= d_G(u, v) + 2 d(u, c) for the centre c of u's cluster.
* Oracle: the k x n table of distances from the centres; ``query(u, v)`` = min over the centres c of the
  clusters of u and v of d(c, u) + d(c, v) -- O(1) time, k*n space. Same bound.

Stated distortion (both): d_G(u,v) <= estimate <= d_G(u,v) + 2 min(r(u), r(v)), r(x) = d_G(x, centre of
x's cluster) <= the cluster's strong radius <= eps*Delta for a shortcut partition. The random-centre
baseline (:func:`random_center_cover`) has k random roots and Voronoi clusters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from geometry.graphs import all_pairs_distances, check_labels, induced_subgraph, multi_source_dijkstra
from sparsejax.core.validation import check_index_range, check_int

__all__ = ["CenterCover", "center_cover", "random_center_cover"]


@dataclass(frozen=True)
class CenterCover:
    """``centers[k]``, ``labels[n]`` (cluster of each vertex), ``dist[k, n]`` (G-distances from centres),
    ``pred[k, n]`` (shortest-path-tree parents, -1 at roots)."""

    centers: np.ndarray
    labels: np.ndarray
    dist: np.ndarray
    pred: np.ndarray

    @property
    def n_trees(self) -> int:
        return int(self.centers.size)

    def trees(self) -> list:
        """The shortest-path trees as CSR adjacencies (subgraphs of G)."""
        n = self.labels.size
        out = []
        for i in range(self.n_trees):
            child = np.flatnonzero(self.pred[i] >= 0)
            par = self.pred[i, child]
            w = self.dist[i, child] - self.dist[i, par]
            t = sp.coo_matrix((w, (child, par)), shape=(n, n)).tocsr()
            out.append(t + t.T)
        return out

    def tree_distances(self) -> np.ndarray:
        """Dense n x n min over the trees of the exact tree distance (small n only)."""
        return np.min([all_pairs_distances(t) for t in self.trees()], axis=0)

    def query(self, u, v) -> np.ndarray:
        """Oracle estimate for index arrays ``u``, ``v``: via the centres of u's and v's clusters."""
        n = self.labels.size
        u, v = np.asarray(u), np.asarray(v)
        check_index_range("u", u, n)
        check_index_range("v", v, n)
        cu, cv = self.labels[u], self.labels[v]
        return np.minimum(self.dist[cu, u] + self.dist[cu, v], self.dist[cv, u] + self.dist[cv, v])


def _build(adj, centers, labels) -> CenterCover:
    dist, pred = csgraph.dijkstra(adj, directed=False, indices=centers, return_predecessors=True)
    return CenterCover(np.asarray(centers), labels, dist, np.where(pred < 0, -1, pred).astype(np.int64))


def center_cover(adj: sp.csr_matrix, labels) -> CenterCover:
    """Cover/oracle with one tree per cluster of ``labels``, rooted at the cluster's least-eccentric vertex."""
    labels = check_labels(labels, adj.shape[0])
    centers = []
    for c in range(int(labels.max()) + 1):
        verts = np.flatnonzero(labels == c)
        ecc = all_pairs_distances(induced_subgraph(adj, verts)).max(axis=1)
        centers.append(int(verts[np.argmin(ecc)]))
    return _build(adj, np.array(centers), labels)


def random_center_cover(adj: sp.csr_matrix, k: int, seed: int = 0) -> CenterCover:
    """Baseline: ``k`` uniformly random roots, each vertex assigned to its nearest root."""
    k = check_int("k", k, minimum=1, maximum=adj.shape[0])
    centers = np.sort(np.random.default_rng(seed).choice(adj.shape[0], size=k, replace=False))
    _, owner, _ = multi_source_dijkstra(adj, centers)
    return _build(adj, centers, owner)
