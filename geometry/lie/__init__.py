"""Lie group decompositions and affine-equivariant convolutions (P19).

Mironenco & Forré, "Lie Group Decompositions for Equivariant Neural Networks", ICLR 2024.

* :mod:`geometry.lie.groups`: polar / SL-scale decompositions of GL+(n), the global
  parametrisation ``xi`` and its inverse, group and affine products, inverses and actions.
* :mod:`geometry.lie.haar`: decomposed Haar measure (SO(n) x Pos(n)), samplers and
  Monte-Carlo integration with importance weights.
* :mod:`geometry.lie.layers`: lifting / group convolutions for R^2 x| GL+(2), invariant pooling.
* :mod:`geometry.lie.models`: :class:`AffineGCNN` classifier (GL+(2), SL(2) or SE(2)).
* :mod:`geometry.lie.images`: affine image warps and affNIST-range random transforms.
"""
from geometry.lie.groups import (
    act,
    affine_act,
    affine_inverse,
    affine_product,
    compose_polar,
    gl_dim,
    gl_hat,
    gl_vee,
    group_inverse,
    group_product,
    polar_decomposition,
    rotation_2d,
    sl_scale_decomposition,
    so_log,
    spd_exp,
    spd_log,
    spd_sqrt,
    xi,
    xi_inv,
)
from geometry.lie.haar import (
    GroupSamples,
    equidistant_so2,
    haar_integral,
    haar_so,
    pos_log_density,
    sample_group,
    sym_dim,
)
from geometry.lie.images import AFFNIST_RANGES, sample_affnist_transforms, warp_image
from geometry.lie.layers import (
    GroupConv,
    LiftingConv,
    SirenKernel,
    bilinear_kernel,
    group_conv,
    group_conv_kernels,
    group_layer_norm,
    invariant_pool,
    kernel_mask,
    kernel_offsets,
    lift_conv,
    lifting_kernels,
    relative_coordinates,
    smooth_disk_mask,
    spatial_max_pool,
)
from geometry.lie.models import GROUPS, AffineGCNN, sample_layer_elements

__all__ = [
    "AFFNIST_RANGES", "GROUPS", "AffineGCNN", "GroupConv", "GroupSamples", "LiftingConv", "SirenKernel",
    "act", "affine_act", "affine_inverse", "affine_product", "bilinear_kernel", "compose_polar",
    "equidistant_so2", "gl_dim", "gl_hat", "gl_vee", "group_conv", "group_conv_kernels", "group_inverse", "group_layer_norm",
    "group_product", "haar_integral", "haar_so", "invariant_pool", "kernel_mask", "kernel_offsets", "lift_conv",
    "lifting_kernels", "polar_decomposition", "pos_log_density", "relative_coordinates", "rotation_2d",
    "sample_affnist_transforms", "sample_group", "sample_layer_elements", "sl_scale_decomposition",
    "smooth_disk_mask", "so_log", "spatial_max_pool", "spd_exp", "spd_log", "spd_sqrt", "sym_dim",
    "warp_image", "xi", "xi_inv",
]
