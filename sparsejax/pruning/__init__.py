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

# --- prune-retrain recipes (issue 16: IMP, SMS, ISS-P, essential sparsity, QuickSelection) ---
from sparsejax.pruning.essential import essential_sparsity, knee, near_zero_fraction, one_shot_sweep  # noqa: E402
from sparsejax.pruning.imp import (  # noqa: E402
    IMPResult, imp, make_retrain, mask_iou, per_phase_rate, phase_sparsity, prune_magnitude, retrain_schedule,
)
from sparsejax.pruning.quickselection import (  # noqa: E402
    DAE, evolve, neuron_strength, select_features, train_quickselection,
)
from sparsejax.pruning.soft_shrinkage import SoftShrinkageState, frozen_mask, gradient_stats, iss_p  # noqa: E402
from sparsejax.pruning.soups import (  # noqa: E402
    Soup, average, greedy_soup, sparse_model_soup, stack_trees, train_ingredients, unstack_tree,
)

__all__ += [
    "imp", "IMPResult", "make_retrain", "mask_iou", "per_phase_rate", "phase_sparsity", "prune_magnitude",
    "retrain_schedule", "Soup", "average", "greedy_soup", "sparse_model_soup", "stack_trees", "unstack_tree",
    "train_ingredients", "iss_p", "SoftShrinkageState", "frozen_mask", "gradient_stats", "one_shot_sweep",
    "essential_sparsity", "knee", "near_zero_fraction", "DAE", "evolve", "neuron_strength", "select_features",
    "train_quickselection",
]
# --- end of prune-retrain recipes ---

# --- HESSO (issue 17) ---
from sparsejax.pruning.hesso import (  # noqa: E402
    HESSOState, cric_scores, group_magnitude, hesso, importance_scores, lowest_groups, with_redundant, zero_groups,
)

__all__ += ["hesso", "HESSOState", "cric_scores", "group_magnitude", "importance_scores", "lowest_groups",
            "with_redundant", "zero_groups"]
# --- end of HESSO ---
