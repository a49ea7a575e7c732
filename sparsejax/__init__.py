"""sparsejax: pure-functional JAX implementations of sparse training, pruning and structured
sparsity (masking transforms composable with any optax optimizer and flax model)."""
from sparsejax.core import (
    GradualPruningState,
    MaskedState,
    Report,
    apply_mask,
    default_predicate,
    er_densities,
    erk_densities,
    gradual_pruning,
    magnitude_mask,
    masked,
    polynomial_sparsity,
    random_mask,
    report,
    sparsity,
    top_k_mask,
    uniform_densities,
)

__version__ = "0.1.0"

__all__ = [
    "uniform_densities", "er_densities", "erk_densities", "random_mask", "magnitude_mask", "apply_mask",
    "sparsity", "top_k_mask", "report", "Report", "masked", "gradual_pruning", "polynomial_sparsity",
    "MaskedState", "GradualPruningState", "default_predicate",
]
