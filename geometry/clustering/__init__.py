"""Clustering: shared metrics (Hungarian accuracy, NMI), iLA-SDP (P8) and manifold linearizing and clustering (P20)."""
from geometry.clustering.lasdp import (
    ILASDPResult, estimate_parameters, ila_sdp, la_cost_matrices, la_sdp, membership_matrices, neg2_profile_loglik,
    peng_wei_sdp, round_memberships,
)
from geometry.clustering.manifolds import union_of_manifolds, union_of_subspaces
from geometry.clustering.metrics import clustering_accuracy, normalized_mutual_info
from geometry.clustering.mixtures import sample_gaussian_mixture, two_cluster_heterogeneous
from geometry.clustering.mlc import (
    MLCNet, cluster_membership, coding_rate, compressed_rate, copy_feature_head, doubly_stochastic_membership,
    make_mlc_step, make_warmup_step, mlc_loss, mlc_optimizer, numerical_rank, rate_reduction, subspace_statistics,
    warmup_loss,
)

__all__ = [
    "clustering_accuracy", "normalized_mutual_info",
    "ILASDPResult", "estimate_parameters", "ila_sdp", "la_cost_matrices", "la_sdp", "membership_matrices",
    "neg2_profile_loglik", "peng_wei_sdp", "round_memberships",
    "sample_gaussian_mixture", "two_cluster_heterogeneous",
    "union_of_manifolds", "union_of_subspaces",
    "MLCNet", "cluster_membership", "coding_rate", "compressed_rate", "copy_feature_head",
    "doubly_stochastic_membership", "make_mlc_step", "make_warmup_step", "mlc_loss", "mlc_optimizer",
    "numerical_rank", "rate_reduction", "subspace_statistics", "warmup_loss",
]
