"""Structured sparsity: N:M masks, SR-STE and P7's progressive gradient-flow recipes, Sparse
Iso-FLOP Transformations (P14), fine-grained group sparsity (P28)."""
from sparsejax.structured.gradient_flow import (
    METHODS,
    NMRecipe,
    SRSTEState,
    OFFICIAL_DECAY_COEF,
    exponential_mask_decay,
    frame_index,
    densify_structure_levels,
    geometric_structure_levels,
    level_schedule,
    level_mask,
    linear_mask_decay,
    nm_recipe,
    sr_ste,
    ste_sparse,
    stepwise_structure_decay,
    structure_decay_levels,
)
from sparsejax.structured.nm import is_nm_sparse, nm_keep, nm_mask
from sparsejax.structured.sparse_ift import (
    FAMILIES,
    IsoFLOPLayer,
    IsoFLOPPlan,
    KernelPlan,
    SparseIFTCNN,
    SparseIFTMLP,
    count_flops,
    isoflop_plan,
    sparse_ift_mask,
    wide_factor,
)

__all__ = [
    "nm_mask", "nm_keep", "is_nm_sparse", "sr_ste", "SRSTEState", "ste_sparse", "linear_mask_decay",
    "exponential_mask_decay", "stepwise_structure_decay", "geometric_structure_levels", "densify_structure_levels",
    "level_schedule", "frame_index", "level_mask",
    "OFFICIAL_DECAY_COEF", "structure_decay_levels", "nm_recipe", "NMRecipe",
    "METHODS", "FAMILIES", "IsoFLOPLayer", "IsoFLOPPlan", "KernelPlan", "SparseIFTMLP", "SparseIFTCNN",
    "count_flops", "isoflop_plan", "sparse_ift_mask", "wide_factor",
]
# group sparsity (P28) and the N:M compressed format: exported below by their owner.
from sparsejax.structured.group import (  # noqa: E402
    GroupCompressed, group_compress, group_decompress, group_mask, group_masks, group_nbytes, group_norms,
    is_group_sparse,
)
from sparsejax.structured.rearrange import Rearrangement, kept_energy, permute_channels, rearrange_channels  # noqa: E402
from sparsejax.structured.nm_format import NMCompressed, nm_compress, nm_decompress, nm_nbytes  # noqa: E402

__all__ += [
    "group_norms", "group_mask", "group_masks", "is_group_sparse", "GroupCompressed", "group_compress",
    "group_decompress", "group_nbytes", "Rearrangement", "kept_energy", "permute_channels", "rearrange_channels",
    "NMCompressed", "nm_compress", "nm_decompress", "nm_nbytes",
]
# block sparsity: masks of whole (bk, bn) tiles (the format served by sparsejax.kernels.block_sparse_matmul)
from sparsejax.structured.block import block_mask, block_norms, is_block_sparse  # noqa: E402

__all__ += ["block_mask", "block_norms", "is_block_sparse"]
