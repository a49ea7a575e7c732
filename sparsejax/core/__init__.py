"""Core masking transforms (P4 and the base of every sparsity method): masks as pytrees,
per-layer density distributions, exact-count random / magnitude masks, reports, and optax
transforms that keep pruned weights at zero."""
from sparsejax.core.densities import er_densities, erk_densities, uniform_densities
from sparsejax.core.masks import apply_mask, magnitude_mask, random_mask, sparsity, top_k_mask
from sparsejax.core.report import Report, report
from sparsejax.core.transforms import (
    GradualPruningState,
    MaskedState,
    gradual_pruning,
    masked,
    polynomial_sparsity,
)
from sparsejax.core.tree import default_predicate

__all__ = [
    "uniform_densities", "er_densities", "erk_densities", "random_mask", "magnitude_mask", "apply_mask",
    "sparsity", "top_k_mask", "report", "Report", "masked", "gradual_pruning", "polynomial_sparsity",
    "MaskedState", "GradualPruningState", "default_predicate",
]
