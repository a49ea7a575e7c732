"""Pruning and sparse training methods."""
from sparsejax.pruning.dst import (
    DSTState,
    drop_and_grow,
    drop_fraction_at,
    dynamic_sparse,
    rigl,
    sparse_evolutionary_training,
)

__all__ = ["dynamic_sparse", "sparse_evolutionary_training", "rigl", "drop_and_grow", "drop_fraction_at", "DSTState"]
