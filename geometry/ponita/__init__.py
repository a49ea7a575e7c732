"""PΘNITA (P2): SE(n)-equivariant networks by weight sharing in position-orientation space.

Bi-invariant attributes (:mod:`.invariants`), orientation grids (:mod:`.grids`), padded neighbour
graphs built in JAX (:mod:`.graph`), the separable group convolution and ConvNeXt block
(:mod:`.layers`), the :class:`Ponita` network with :func:`energy_and_forces`, EGNN and e3nn-jax
baselines in the same interface (:mod:`.baselines`), and the N-body / Lennard-Jones / digit
point-cloud data generators (:mod:`.data`), and the measured equivariance error under random
rotations with optional averaging over random grid rotations (:mod:`.equivariance`).
"""
from geometry.ponita.baselines import EGNN, TensorProductNet
from geometry.ponita.equivariance import equivariance_error, grid_averaged_apply
from geometry.ponita.graph import (
    Neighbours,
    PointCloudBatch,
    gather_neighbours,
    masked_node_sum,
    pad_point_clouds,
    polynomial_cutoff,
    radius_graph,
    relative_positions,
)
from geometry.ponita.grids import (
    circle_grid,
    fibonacci_sphere,
    icosahedral_rotations,
    icosahedron,
    orientation_grid,
    random_rotation,
    repulsion_sphere,
    rotate_grid,
)
from geometry.ponita.invariants import (
    distance_invariant,
    fiber_bundle_attributes,
    position_orientation_invariants,
)
from geometry.ponita.layers import (
    ConvNextBlock,
    KernelBasis,
    SeparableFiberConv,
    lift_to_grid,
    polynomial_features,
    sphere_to_scalar,
    sphere_to_vector,
)
from geometry.ponita.model import Ponita, calibrate, energy_and_forces
from geometry.ponita.models import MODELS, make_model

__all__ = [
    "Ponita", "calibrate", "equivariance_error", "grid_averaged_apply", "energy_and_forces", "EGNN", "TensorProductNet", "make_model", "MODELS",
    "distance_invariant", "position_orientation_invariants", "fiber_bundle_attributes",
    "circle_grid", "fibonacci_sphere", "repulsion_sphere", "icosahedron", "icosahedral_rotations",
    "orientation_grid", "random_rotation", "rotate_grid",
    "PointCloudBatch", "Neighbours", "radius_graph", "gather_neighbours", "relative_positions",
    "polynomial_cutoff", "masked_node_sum", "pad_point_clouds",
    "polynomial_features", "KernelBasis", "SeparableFiberConv", "ConvNextBlock", "lift_to_grid",
    "sphere_to_scalar", "sphere_to_vector",
]
