"""Graph sparsification: TEDDY degree-based one-shot edge masks, l0-ball weight projection,
distillation, GCN/GIN on segment_sum, graph generators and the UGS-lite baseline (P32)."""
from sparsejax.graphs.gnn import GCN, GIN, Graph, dense_adjacency, directed_messages, gcn_adjacency, gcn_normalize, masked_graph, propagate, with_weights
from sparsejax.graphs.synthetic import NodeGraph, dc_csbm, karate_club
from sparsejax.graphs.teddy import (
    degrees, distillation_loss, edge_keep_mask, edge_sparsity_levels, l0_keep_count, l0_project, n_pruned_edges,
    nested_edge_masks, teddy_scores,
)
from sparsejax.graphs.train import n_parameters, train_node_classifiers, ugs_edge_scores, ugs_masks

__all__ = [
    "GCN", "GIN", "Graph", "dense_adjacency", "directed_messages", "gcn_adjacency", "gcn_normalize", "masked_graph", "propagate", "with_weights",
    "NodeGraph", "dc_csbm", "karate_club", "degrees", "teddy_scores", "edge_sparsity_levels", "n_pruned_edges",
    "edge_keep_mask", "nested_edge_masks", "l0_keep_count", "l0_project", "distillation_loss", "n_parameters",
    "train_node_classifiers", "ugs_edge_scores", "ugs_masks",
]
