"""Clustering: shared metrics (Hungarian accuracy, NMI); iLA-SDP (P8) and manifold linearizing and clustering (P20)."""
from geometry.clustering.lasdp import (
    ILASDPResult, estimate_parameters, ila_sdp, la_cost_matrices, la_sdp, membership_matrices, neg2_profile_loglik,
    peng_wei_sdp, round_memberships,
)
from geometry.clustering.metrics import clustering_accuracy, normalized_mutual_info
from geometry.clustering.mixtures import sample_gaussian_mixture, two_cluster_heterogeneous

__all__ = ["clustering_accuracy", "normalized_mutual_info",
           "ILASDPResult", "estimate_parameters", "ila_sdp", "la_cost_matrices", "la_sdp", "membership_matrices",
           "neg2_profile_loglik", "peng_wei_sdp", "round_memberships",
           "sample_gaussian_mixture", "two_cluster_heterogeneous"]
