"""Core masking transforms (P4 and the base of every sparsity method): masks as pytrees,
per-layer density distributions, sparsity types, exact-count random / magnitude masks, reports,
and optax transforms that keep pruned weights at zero."""
from sparsejax.core.densities import (
    er_densities,
    erk_densities,
    layer_order,
    uniform_densities,
    uniform_plus_densities,
)
from sparsejax.core.masks import apply_mask, keep_count, magnitude_mask, random_mask, sparsity, top_k_mask
from sparsejax.core.packed import PackedMask, pack_mask, pack_masks, unpack_mask, unpack_masks
from sparsejax.core.report import Report, compressed_nbytes, report
from sparsejax.core.sparsity_types import (
    Block,
    Channel,
    Group,
    NByM,
    SparsityType,
    Unstructured,
    parse_sparsity_type,
)
from sparsejax.core.transforms import (
    GradualPruningState,
    MaskedState,
    gradual_pruning,
    keep_mask,
    masked,
    polynomial_sparsity,
)
from sparsejax.core.registry import ALGORITHM_REGISTRY, all_algorithm_names, create, register_algorithm
from sparsejax.core.scores import (
    activation_norms,
    grasp_scores,
    ratios_from_scores,
    saliency_scores,
    snip_scores,
    wanda_mask,
    wanda_scores,
)
from sparsejax.core.ste import ste_magnitude_pruning
from sparsejax.core.tree import default_predicate, param_count

__all__ = [
    "uniform_densities", "er_densities", "erk_densities", "uniform_plus_densities", "layer_order", "random_mask",
    "magnitude_mask", "apply_mask", "keep_count", "sparsity", "top_k_mask", "report", "Report", "compressed_nbytes", "keep_mask", "masked",
    "gradual_pruning", "polynomial_sparsity", "MaskedState", "GradualPruningState", "default_predicate", "param_count",
    "SparsityType", "Unstructured", "NByM", "Block", "Channel", "Group", "parse_sparsity_type",
    "create", "register_algorithm", "all_algorithm_names", "ALGORITHM_REGISTRY", "ste_magnitude_pruning",
    "saliency_scores", "snip_scores", "grasp_scores", "activation_norms", "wanda_scores", "wanda_mask",
    "ratios_from_scores", "PackedMask", "pack_mask", "unpack_mask", "pack_masks", "unpack_masks",
]
