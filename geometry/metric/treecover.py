"""Multi-scale (1 + O(eps)) tree cover and its distance oracle from shortcut partitions (P16 application,
RECONSTRUCTED simplest version).

Construction (:func:`multiscale_tree_cover`): scales Delta_j = Delta / 2^j, j = 0..J with Delta_J below the
lightest edge. At each scale a shortcut partition P_j with clusters of strong diameter <= eps*Delta_j
(:func:`geometry.metric.shortcut_partition`, ``diameter=Delta_j``); every cluster C gets a centre c (least
eccentricity inside C) and the shortest-path tree of G from c restricted to the ball B(c, (1 + eps) Delta_j).
Clusters are coloured greedily so that balls of one colour are vertex-disjoint; one colour class is a forest
(disjoint shortest-path trees, each a subgraph of G), and the cover is the list of all forests over all scales.

Stretch: for u, v with Delta_j / 2 < d(u, v) <= Delta_j (some j), the centre c of u's cluster in P_j has
d(u, c) <= eps*Delta_j, so v is inside the ball and d_T(u, v) <= d(u, c) + d(c, v) <= d(u, v) + 2 eps Delta_j
< (1 + 4 eps) d(u, v). Trees are subgraphs of G, so d_T >= d_G always.

Oracle (:class:`TreeCover` ``query``): min over the forests holding u and v in one tree of d(c, u) + d(c, v) --
the route through the tree root, an upper bound on that tree distance with the same (1 + 4 eps) bound;
space = total ball size, query time = number of forests holding u.

Deviations from the paper: the number of forests is (colours per scale) x (number of scales), i.e. grows with
log(aspect ratio); the paper's O_r(1)-size cover combines scales (and its O(1)-query linear-space oracle uses
more structure), which is not reproduced. The colouring count is bounded by how many balls of radius
(1 + eps) Delta_j meet one ball, a packing quantity, not by the paper's argument; at the sizes measured the
total exceeds n, so the O(1) size is not observable here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from geometry.graphs import all_pairs_distances, graph_diameter, induced_subgraph
from geometry.metric.partition import shortcut_partition
from sparsejax.core.validation import check_index_range, check_number

__all__ = ["TreeCover", "multiscale_tree_cover", "random_tree_cover"]


@dataclass(frozen=True)
class TreeCover:
    """``forests``: list of dicts with ``root[n]`` (root of the tree holding v, -1 if v is in no tree),
    ``dist[n]`` (d_G(root, v), inf if none), ``pred[n]`` (tree parent, -1 at roots / outside) and ``scale``."""

    forests: list
    n: int

    @property
    def n_trees(self) -> int:
        return len(self.forests)

    def query(self, u, v) -> np.ndarray:
        """Oracle estimate: min over forests with u, v in one tree of d(root, u) + d(root, v) (inf if none)."""
        u, v = np.asarray(u), np.asarray(v)
        check_index_range("u", u, self.n)
        check_index_range("v", v, self.n)
        best = np.full(np.broadcast(u, v).shape, np.inf)
        for f in self.forests:
            same = (f["root"][u] >= 0) & (f["root"][u] == f["root"][v])
            best = np.where(same, np.minimum(best, f["dist"][u] + f["dist"][v]), best)
        best[u == v] = 0.0
        return best

    def forest_adjacency(self, i: int) -> sp.csr_matrix:
        """Forest ``i`` as a CSR adjacency (edge weights d(root, child) - d(root, parent) = G edge weights)."""
        f = self.forests[i]
        child = np.flatnonzero(f["pred"] >= 0)
        par = f["pred"][child]
        t = sp.coo_matrix((f["dist"][child] - f["dist"][par], (child, par)), shape=(self.n, self.n)).tocsr()
        return t + t.T

    def tree_distances(self) -> np.ndarray:
        """Dense n x n min over forests of the exact forest distance (small n only)."""
        return np.min([all_pairs_distances(self.forest_adjacency(i)) for i in range(self.n_trees)], axis=0)


def _centres(adj, labels):
    out = []
    for c in range(int(labels.max()) + 1):
        verts = np.flatnonzero(labels == c)
        if verts.size == 1:
            out.append(int(verts[0]))
            continue
        ecc = all_pairs_distances(induced_subgraph(adj, verts)).max(axis=1)
        out.append(int(verts[np.argmin(ecc)]))
    return np.array(out)


def _colour_balls(adj, centres, radius, scale, n):
    """Greedy colouring of the balls B(c, radius) so that same-colour balls are disjoint; one forest each."""
    dist, pred = csgraph.dijkstra(adj, directed=False, indices=centres, limit=radius, return_predecessors=True)
    forests = []
    for i, c in enumerate(centres):
        ball = np.flatnonzero(np.isfinite(dist[i]))
        for f in forests:
            if (f["root"][ball] < 0).all():
                break
        else:
            f = {"root": np.full(n, -1, dtype=np.int64), "dist": np.full(n, np.inf),
                 "pred": np.full(n, -1, dtype=np.int64), "scale": scale}
            forests.append(f)
        f["root"][ball] = c
        f["dist"][ball] = dist[i, ball]
        f["pred"][ball] = np.where(pred[i, ball] < 0, -1, pred[i, ball])
    return forests


def multiscale_tree_cover(adj: sp.csr_matrix, eps: float, *, diameter: float | None = None) -> TreeCover:
    """Reconstructed multi-scale tree cover with stretch <= 1 + 4 eps (module docstring)."""
    eps = check_number("eps", eps, minimum=0.0, maximum=1.0, min_inclusive=False)
    n = adj.shape[0]
    delta = graph_diameter(adj) if diameter is None else check_number("diameter", diameter, minimum=0.0,
                                                                       min_inclusive=False)
    w_min = float(adj.data.min())
    forests, scale = [], delta
    while True:
        labels, _ = shortcut_partition(adj, eps, diameter=scale)
        forests += _colour_balls(adj, _centres(adj, labels), (1 + eps) * scale * (1 + 1e-12), scale, n)
        if scale < w_min:           # every pair has d >= w_min > scale: all later scales are useless
            break
        scale /= 2.0
    return TreeCover(forests, n)


def random_tree_cover(adj: sp.csr_matrix, k: int, seed: int = 0) -> TreeCover:
    """Baseline: ``k`` full shortest-path trees of G from uniformly random roots."""
    n = adj.shape[0]
    k = int(min(k, n))
    roots = np.random.default_rng(seed).choice(n, size=k, replace=False)
    dist, pred = csgraph.dijkstra(adj, directed=False, indices=roots, return_predecessors=True)
    forests = [{"root": np.full(n, r, dtype=np.int64), "dist": dist[i], "pred": np.where(pred[i] < 0, -1, pred[i]),
                "scale": np.inf} for i, r in enumerate(roots)]
    return TreeCover(forests, n)
