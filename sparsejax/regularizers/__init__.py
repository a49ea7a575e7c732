"""Regularizers for structured sparsity: proximal group lasso and WGSEF (P24), MaskSparsity (P33)."""
from sparsejax.regularizers.prox import (
    ProxState, group_lasso, group_lasso_factors, k_support_norm, nonzero_groups, proximal_groups, sef, wgsef,
    wgsef_factors,
)

__all__ = ["k_support_norm", "sef", "wgsef_factors", "group_lasso_factors", "proximal_groups", "group_lasso",
           "wgsef", "nonzero_groups", "ProxState"]
from sparsejax.regularizers.mask_sparsity import (  # noqa: E402
    bn_gammas, bn_scale_mask, l1_filter_keep, masked_l1, slimming_keep, threshold_keep, uniform_keep,
)

__all__ += ["masked_l1", "bn_scale_mask", "bn_gammas", "slimming_keep", "uniform_keep", "l1_filter_keep",
            "threshold_keep"]
