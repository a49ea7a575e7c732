"""Graph representations of a pore space (P34): voxels, curvilinear-skeleton regions, maximal balls.

Every representation is a :class:`PoreGraph`: node volumes V_i (voxels), centroids (voxel coordinates), a
symmetric contact matrix s_ij and centroid distances d_ij; the diffusion conductance is theta_ij = D s_ij / d_ij
(authors' ``THETA`` in utils.py). Units are voxels (side 24 um in the paper).

* voxel graph (reference): one node per pore voxel, 6-neighbourhood, s = 1, d = 1.
* skeleton regions (the paper's method): 3-D curvilinear skeleton (``skimage.morphology.skeletonize``, Lee'94
  thinning), branch points (skeleton voxels with > 2 skeleton 26-neighbours) removed, the remaining branches
  labelled (26-connectivity), every pore voxel assigned to the branch of its geodesically nearest skeleton voxel
  by multi-source BFS inside the pore space (:func:`geometry.graphs.multi_source_dijkstra`); s_ij = number of
  shared voxel faces, d_ij = centroid distance.
* balls (baseline): greedy maximal inscribed balls from the Euclidean distance transform (largest first, until
  every pore voxel is covered); balls overlapping (``|c_i - c_j| < r_i + r_j``) are adjacent with s_ij = pi min(r)^2,
  d_ij = ``|c_i - c_j|`` and V_i = 4/3 pi r^3 (the authors' sphere geometry, with its approximation error).

Deviations: the paper's segmentation code is not public (regions ship precomputed), so the branch splitting is a
reconstruction: no spur pruning; branch-point voxels are not seeds (they join the nearest branch); a region that
is not 6-connected after BFS is split into its 6-connected parts (regions are then connected by construction);
d_ij is floored at 1 voxel (two region centroids can nearly coincide in non-convex regions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from geometry.graphs import multi_source_dijkstra, region_adjacency
from sparsejax.core.validation import check_array

__all__ = ["PoreGraph", "voxel_adjacency", "voxel_graph", "skeleton_regions", "region_graph", "ball_graph",
           "well_mixed_graph"]


@dataclass(frozen=True)
class PoreGraph:
    """Nodes of a pore representation: ``volume`` (n,), ``centroid`` (n, 3), ``contact`` (n x n sparse s_ij),
    ``distance`` (sparse d_ij on the same pattern), and ``voxel_node`` (node of every pore voxel, in
    ``np.argwhere(mask)`` order; used to place biomass spots)."""

    volume: np.ndarray
    centroid: np.ndarray
    contact: sp.csr_matrix
    distance: sp.csr_matrix
    voxel_node: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.volume.size)

    def conductance(self, diffusion: float) -> sp.csr_matrix:
        """theta_ij = D s_ij / d_ij (authors' THETA)."""
        theta = self.contact.copy()
        theta.data = diffusion * self.contact.data / self.distance.data
        return theta


def _check_mask(mask) -> np.ndarray:
    mask = check_array("mask", mask, ndim=3, dtype_kind="b")
    if not mask.any():
        raise ValueError("mask has no pore voxels")
    return np.asarray(mask)


def voxel_adjacency(mask) -> tuple[sp.csr_matrix, np.ndarray]:
    """6-neighbour adjacency (unit weights) of the pore voxels and their coordinates (``np.argwhere`` order)."""
    mask = _check_mask(mask)
    coords = np.argwhere(mask)
    index = -np.ones(mask.shape, dtype=np.int64)
    index[mask] = np.arange(coords.shape[0])
    rows, cols = [], []
    for axis in range(3):
        a = np.take(index, range(mask.shape[axis] - 1), axis=axis)
        b = np.take(index, range(1, mask.shape[axis]), axis=axis)
        keep = (a >= 0) & (b >= 0)
        rows.append(a[keep]), cols.append(b[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = coords.shape[0]
    adj = sp.csr_matrix((np.ones(2 * r.size), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n))
    return adj, coords


def voxel_graph(mask) -> PoreGraph:
    """Reference representation: every pore voxel a node (V = 1, s = 1, d = 1 on the 6-neighbourhood)."""
    adj, coords = voxel_adjacency(mask)
    n = coords.shape[0]
    return PoreGraph(np.ones(n), coords.astype(np.float64), adj, adj.copy(), np.arange(n))


def skeleton_regions(mask, *, adj: sp.csr_matrix | None = None) -> np.ndarray:
    """Region label (0..k-1) of every pore voxel (``np.argwhere`` order) from the skeleton branches.

    Regions partition the pore voxels and each region is 6-connected.
    """
    from skimage.morphology import skeletonize

    mask = _check_mask(mask)
    if adj is None:
        adj, _ = voxel_adjacency(mask)
    skel = skeletonize(mask).astype(bool) & mask
    nbrs = ndimage.convolve(skel.astype(np.int32), np.ones((3, 3, 3), np.int32), mode="constant") - 1
    branches = skel & (nbrs <= 2)
    lab, nb = ndimage.label(branches, structure=np.ones((3, 3, 3)))
    index = -np.ones(mask.shape, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    seeds = index[branches]
    seed_label = lab[branches] - 1
    if seeds.size == 0:  # skeleton made only of junctions (or empty): fall back to all skeleton voxels / one voxel
        seeds = index[skel] if skel.any() else np.array([0])
        seed_label = np.zeros(seeds.size, dtype=np.int64)
    _, owner, _ = multi_source_dijkstra(adj, seeds, unweighted=True)
    labels = np.where(owner >= 0, seed_label[np.maximum(owner, 0)], -1)
    # voxels in pore components without a seed: one region per such component
    if (labels < 0).any():
        _, comp = csgraph.connected_components(adj, directed=False)
        free = labels < 0
        _, inv = np.unique(comp[free], return_inverse=True)
        labels[free] = labels.max() + 1 + inv
    # split regions that are not 6-connected: keep only intra-region edges, take components
    coo = adj.tocoo()
    keep = labels[coo.row] == labels[coo.col]
    intra = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adj.shape)
    _, parts = csgraph.connected_components(intra, directed=False)
    _, labels = np.unique(parts, return_inverse=True)
    return labels.astype(np.int64)


def region_graph(mask, labels=None) -> PoreGraph:
    """Region adjacency graph of a labelling of the pore voxels (default :func:`skeleton_regions`): V = voxel
    count, centroid = mean voxel coordinate, s_ij = shared faces, d_ij = max(1, centroid distance)."""
    adj, coords = voxel_adjacency(mask)
    if labels is None:
        labels = skeleton_regions(mask, adj=adj)
    contact = region_adjacency(adj, labels, reduce="count").tocsr()
    k = contact.shape[0]
    volume = np.bincount(labels, minlength=k).astype(np.float64)
    centroid = np.stack([np.bincount(labels, coords[:, a], minlength=k) for a in range(3)], 1) / volume[:, None]
    return PoreGraph(volume, centroid, contact, _distances(contact, centroid), np.asarray(labels))


def _distances(contact: sp.csr_matrix, centroid: np.ndarray) -> sp.csr_matrix:
    coo = contact.tocoo()
    d = np.maximum(1.0, np.linalg.norm(centroid[coo.row] - centroid[coo.col], axis=1))
    return sp.csr_matrix((d, (coo.row, coo.col)), shape=contact.shape)


def ball_graph(mask) -> PoreGraph:
    """Greedy maximal-ball baseline: repeatedly take the uncovered pore voxel with the largest distance-transform
    value r, add the ball of radius r there and mark the voxels within r covered; adjacency by ball overlap."""
    mask = _check_mask(mask)
    dt = ndimage.distance_transform_edt(mask)
    coords = np.argwhere(mask)
    radius_at = dt[mask]
    covered = np.zeros(mask.shape, dtype=bool)
    order = np.argsort(-radius_at, kind="stable")
    centres, radii = [], []
    for v in order:
        p = coords[v]
        if covered[tuple(p)]:
            continue
        r = float(radius_at[v])
        lo = np.maximum(0, np.floor(p - r).astype(int))
        hi = np.minimum(mask.shape, np.ceil(p + r).astype(int) + 1)
        box = tuple(slice(lo[a], hi[a]) for a in range(3))
        g = np.ogrid[box]
        inside = sum((g[a] - p[a]) ** 2 for a in range(3)) <= r * r
        covered[box] |= inside & mask[box]
        centres.append(p), radii.append(r)
    centres = np.asarray(centres, dtype=np.float64)
    radii = np.asarray(radii)
    tree = cKDTree(centres)
    pairs = tree.query_pairs(2 * radii.max(), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.linalg.norm(centres[i] - centres[j], axis=1)
    keep = dist < radii[i] + radii[j]
    i, j, dist = i[keep], j[keep], np.maximum(dist[keep], 1.0)
    s = np.pi * np.minimum(radii[i], radii[j]) ** 2
    n = centres.shape[0]
    rows, cols = np.concatenate([i, j]), np.concatenate([j, i])
    contact = sp.csr_matrix((np.concatenate([s, s]), (rows, cols)), shape=(n, n))
    distance = sp.csr_matrix((np.concatenate([dist, dist]), (rows, cols)), shape=(n, n))
    _, owner = tree.query(coords.astype(np.float64))  # voxel -> nearest ball centre (for biomass placement)
    return PoreGraph(4.0 / 3.0 * np.pi * radii ** 3, centres, contact, distance, owner.astype(np.int64))


def well_mixed_graph(mask) -> PoreGraph:
    """Trivial baseline: the whole pore space as one well-mixed node."""
    mask = _check_mask(mask)
    coords = np.argwhere(mask).astype(np.float64)
    empty = sp.csr_matrix((1, 1))
    return PoreGraph(np.array([float(coords.shape[0])]), coords.mean(0, keepdims=True), empty, empty.copy(),
                     np.zeros(coords.shape[0], dtype=np.int64))
