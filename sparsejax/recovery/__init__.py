"""Sparse and low-rank recovery: LDP regression, robust matrix completion, Kronecker SBL, spectral unmixing."""
from sparsejax.recovery.matrix_completion import alternating_minimization, soft_impute  # noqa: F401
