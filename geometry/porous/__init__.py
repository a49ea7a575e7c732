"""Pore-space representations and microbial-decomposition simulation (P34, Monga, Klai et al., arXiv 2309.01611).

* :mod:`geometry.porous.volumes` -- synthetic porous volumes (complement of overlapping grain spheres; thresholded
  Gaussian random fields).
* :mod:`geometry.porous.representations` -- voxel graph (reference), curvilinear-skeleton branch regions,
  greedy maximal balls; each as a :class:`PoreGraph` (volumes, centroids, contact areas, distances).
* :mod:`geometry.porous.simulate` -- the authors' DOM diffusion + microbial decomposition model on a PoreGraph.
"""
from geometry.porous.representations import (
    PoreGraph, ball_graph, region_graph, skeleton_regions, voxel_adjacency, voxel_graph, well_mixed_graph,
)
from geometry.porous.simulate import DecompositionParams, simulate, well_mixed_rhs
from geometry.porous.volumes import gaussian_field_pores, largest_pore_component, sphere_pack

__all__ = [
    "PoreGraph", "ball_graph", "region_graph", "skeleton_regions", "voxel_adjacency", "voxel_graph",
    "well_mixed_graph", "DecompositionParams", "simulate", "well_mixed_rhs", "gaussian_field_pores",
    "largest_pore_component", "sphere_pack",
]
