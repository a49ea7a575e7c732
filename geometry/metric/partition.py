"""Shortcut partitions (P16, Chang et al. SODA 2024, arXiv 2308.00555) and the exact checks of their two
properties, with a net-Voronoi baseline.

An (eps, h)-shortcut partition of a graph G of diameter Delta is a partition into clusters with
(i) strong diameter <= eps*Delta (distance measured inside the cluster) and (ii) the low-hop property:
every pair u, v is joined by a path of G meeting at most eps*h*ceil(d(u, v)/(eps*Delta)) clusters. The
paper proves eps*h = 2^{O(r log r)} for K_r-minor-free graphs (independent of eps and n).
A u-v path meeting m clusters exists iff the cluster graph has a path of m - 1 hops (clusters are
connected), so :func:`hop_ratios` measures m exactly as hop_cluster_graph + 1 and reports
m / ceil(d/(eps*Delta)) -- the empirical eps*h.

:func:`shortcut_partition` (RECONSTRUCTION, see :mod:`geometry.metric.cop`): a cop decomposition with
expansion radius ``radius_frac*eps*Delta``; each skeleton tree is cut into *segments*: a skeleton vertex
starts a new segment when floor(depth/L) exceeds its tree parent's (L = ``segment_frac*eps*Delta``, depth =
distance to the skeleton root), so a segment is a subtree of height < L. Every supernode vertex joins the
segment of its nearest skeleton vertex (multi-source Dijkstra inside the supernode). A cluster is then
within L + radius of its segment head inside itself: strong diameter <= 2(L + radius) = eps*Delta with the
defaults radius_frac = segment_frac = 1/4 (our constants; the paper's are not reproduced).

Baseline :func:`net_voronoi_partition`: a greedy rho-net in random order (rho = eps*Delta/2 by default) and
the Voronoi cells of its points (multi-source Dijkstra): connected, strong radius <= rho.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from geometry.graphs import (
    all_pairs_distances, graph_diameter, induced_subgraph, multi_source_dijkstra, region_hop_distances,
    strong_diameters,
)
from geometry.metric.cop import CopDecomposition, cop_decomposition
from sparsejax.core.validation import check_number

__all__ = ["shortcut_partition", "segment_skeleton", "net_voronoi_partition", "hop_ratios", "partition_report"]


def segment_skeleton(cop: CopDecomposition, length: float) -> np.ndarray:
    """Segment id of every skeleton vertex (-1 off the skeleton): heads are roots and vertices whose
    floor(depth/length) exceeds their parent's; others inherit their parent's segment."""
    length = check_number("length", length, minimum=0.0, min_inclusive=False)
    seg = np.full(cop.supernode.size, -1, dtype=np.int64)
    skel = np.flatnonzero(cop.on_skeleton)
    order = skel[np.argsort(cop.depth[skel], kind="stable")]   # parents (smaller depth) first
    n_seg = 0
    for v in order:
        p = cop.skeleton_parent[v]
        if p < 0 or np.floor(cop.depth[v] / length) > np.floor(cop.depth[p] / length):
            seg[v] = n_seg
            n_seg += 1
        else:
            seg[v] = seg[p]
    return seg


def shortcut_partition(adj: sp.csr_matrix, eps: float, *, diameter: float | None = None,
                       radius_frac: float = 0.25, segment_frac: float = 0.25, buffer_frac: float = 0.0):
    """Reconstructed shortcut partition; returns ``(labels, cop)`` with clusters numbered 0..k-1.

    ``diameter`` defaults to the exact graph diameter. Strong diameter <= 2(radius_frac + segment_frac)*eps*Delta
    without a buffer; with ``buffer_frac`` > 0 (the reconstructed buffer step, gamma = buffer_frac*eps*Delta)
    it is <= 2(segment_frac*eps*Delta + cop.max_radius).
    """
    eps = check_number("eps", eps, minimum=0.0, maximum=1.0, min_inclusive=False)
    radius_frac = check_number("radius_frac", radius_frac, minimum=0.0, min_inclusive=False)
    segment_frac = check_number("segment_frac", segment_frac, minimum=0.0, min_inclusive=False)
    delta = graph_diameter(adj) if diameter is None else check_number("diameter", diameter, minimum=0.0,
                                                                       min_inclusive=False)
    buffer_frac = check_number("buffer_frac", buffer_frac, minimum=0.0)
    cop = cop_decomposition(adj, radius_frac * eps * delta, buffer_frac * eps * delta)
    seg = segment_skeleton(cop, segment_frac * eps * delta)
    labels = np.full(adj.shape[0], -1, dtype=np.int64)
    for s in range(cop.n_supernodes):
        verts = np.flatnonzero(cop.supernode == s)
        sources = np.flatnonzero(cop.on_skeleton[verts])
        _, owner, _ = multi_source_dijkstra(induced_subgraph(adj, verts), sources)
        if (owner < 0).any():  # cannot happen: a supernode is the skeleton's neighbourhood inside the domain
            raise RuntimeError(f"supernode {s} has vertices unreachable from its skeleton")
        labels[verts] = seg[verts[sources[owner]]]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64), cop


def net_voronoi_partition(adj: sp.csr_matrix, rho: float, seed: int = 0) -> np.ndarray:
    """Voronoi cells of a greedy ``rho``-net built in a random vertex order (baseline partition)."""
    rho = check_number("rho", rho, minimum=0.0, min_inclusive=False)
    rng = np.random.default_rng(seed)
    covered = np.zeros(adj.shape[0], dtype=bool)
    centers = []
    for v in rng.permutation(adj.shape[0]):
        if not covered[v]:
            centers.append(v)
            d = csgraph.dijkstra(adj, directed=False, indices=v, limit=rho)
            covered |= d <= rho
    _, owner, _ = multi_source_dijkstra(adj, np.array(centers))
    return owner


def hop_ratios(adj: sp.csr_matrix, labels, eps: float, diameter: float, dist: np.ndarray | None = None):
    """For all pairs u != v: clusters met = hop(C(u), C(v)) + 1 and the ratio to ceil(d(u,v)/(eps*Delta)).
    Returns ``(ratio, clusters)`` as flat arrays over the pairs u < v."""
    dist = all_pairs_distances(adj) if dist is None else dist
    hops = region_hop_distances(adj, labels)
    iu = np.triu_indices(adj.shape[0], k=1)
    clusters = hops[labels[iu[0]], labels[iu[1]]] + 1
    return clusters / np.ceil(dist[iu] / (eps * diameter)), clusters


def partition_report(adj: sp.csr_matrix, labels, eps: float, diameter: float, dist: np.ndarray | None = None):
    """Exact measures of a partition: cluster count, whether all clusters are connected, max strong
    diameter / (eps*Delta), and the max / mean / 99th-percentile hop ratio over all pairs."""
    sd = strong_diameters(adj, labels)
    ratio, _ = hop_ratios(adj, labels, eps, diameter, dist)
    return {"n_clusters": int(sd.size), "connected": bool(np.isfinite(sd).all()),
            "strong_diam_ratio": float(sd.max() / (eps * diameter)), "hop_ratio_max": float(ratio.max()),
            "hop_ratio_mean": float(ratio.mean()), "hop_ratio_p99": float(np.quantile(ratio, 0.99))}
