"""Pruning and sparse training methods."""
from sparsejax.pruning.dst import (
    DSTState,
    drop_and_grow,
    drop_fraction_at,
    dynamic_sparse,
    reset_on_grown,
    rigl,
    sign_drop_and_grow,
    sparse_evolutionary_training,
)

__all__ = ["dynamic_sparse", "sparse_evolutionary_training", "rigl", "drop_and_grow", "drop_fraction_at", "DSTState",
           "sign_drop_and_grow", "reset_on_grown"]
