"""Shortcut partitions in minor-free graphs (P16): cop decompositions, shortcut partitions, their exact
checks, the test-graph families, a simplified cluster-centre tree cover / distance oracle, a multi-scale tree
cover with its oracle, and Steiner point removal (reconstructed). Shared graph
pieces live in :mod:`geometry.graphs`."""
from geometry.metric.cop import CopDecomposition, buffer_violations, cop_decomposition
from geometry.metric.cover import CenterCover, center_cover, random_center_cover
from geometry.metric.generators import (
    FAMILIES, delaunay_graph, expander, grid_graph, k_tree, make_graph, random_planar_graph,
)
from geometry.metric.partition import (
    hop_ratios, net_voronoi_partition, partition_report, segment_skeleton, shortcut_partition,
)
from geometry.metric.spr import TerminalMinor, shortcut_spr, terminal_minor, voronoi_spr
from geometry.metric.treecover import TreeCover, multiscale_tree_cover, random_tree_cover

__all__ = [
    "buffer_violations", "CenterCover", "center_cover", "random_center_cover", "CopDecomposition",
    "cop_decomposition", "FAMILIES",
    "delaunay_graph", "expander", "grid_graph", "k_tree", "make_graph", "random_planar_graph", "hop_ratios",
    "net_voronoi_partition", "partition_report", "segment_skeleton", "shortcut_partition", "TerminalMinor",
    "shortcut_spr", "terminal_minor", "voronoi_spr", "TreeCover", "multiscale_tree_cover", "random_tree_cover",
]
