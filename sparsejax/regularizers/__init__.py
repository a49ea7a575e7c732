"""Regularizers for structured sparsity: proximal group lasso and WGSEF (P24), MaskSparsity (P33)."""
from sparsejax.regularizers.prox import (
    ProxState, group_lasso, group_lasso_factors, k_support_norm, nonzero_groups, proximal_groups, sef, wgsef,
    wgsef_factors,
)

__all__ = ["k_support_norm", "sef", "wgsef_factors", "group_lasso_factors", "proximal_groups", "group_lasso",
           "wgsef", "nonzero_groups", "ProxState"]
