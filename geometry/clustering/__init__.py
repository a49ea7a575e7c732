"""Clustering: shared metrics (Hungarian accuracy, NMI); iLA-SDP (P8) and manifold linearizing and clustering (P20)."""
from geometry.clustering.metrics import clustering_accuracy, normalized_mutual_info

__all__ = ["clustering_accuracy", "normalized_mutual_info"]
