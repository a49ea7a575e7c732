"""Sparse neural architecture search: Random Search over node masks (P18) and DASS (P23)."""
from sparsejax.nas.random_search import (
    CandidateRun,
    candidate_accuracy,
    masked_params,
    node_weight_mask,
    nodes_kept,
    random_node_masks,
    search_scores,
    select_best,
    steps_to_fraction,
    train_candidates,
)

from sparsejax.nas.dass import OPS, Conv, MixedOp, Network, SearchResult, derive, random_genotype, search, ste_topk

__all__ = ["OPS", "Conv", "MixedOp", "Network", "SearchResult", "derive", "random_genotype", "search", "ste_topk",
           "CandidateRun", "candidate_accuracy", "masked_params", "node_weight_mask", "nodes_kept",
           "random_node_masks", "search_scores", "select_best", "steps_to_fraction", "train_candidates"]
