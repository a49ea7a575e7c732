"""Sparse autoencoders with TopK, Feature Choice and Mutual Choice allocation (P37)."""
from sparsejax.sae.allocation import (
    METHODS,
    allocate,
    feature_choice_mask,
    mutual_choice_mask,
    row_top_k_mask,
    topk_mask,
    uniform_capacities,
    zipf_capacities,
)
from sparsejax.sae.model import (
    AUX_LOSSES,
    SAEState,
    aux_reconstruction_loss,
    calibrate_threshold,
    decode,
    encode,
    encode_inference,
    init_sae,
    init_state,
    make_sae_step,
    nmse,
    normalize_decoder,
    pre_activations,
    project_decoder_grad,
    zipf_underuse_weights,
)
from sparsejax.sae.synthetic import mean_max_cosine, random_directions, sample_superposition

__all__ = [
    "METHODS", "AUX_LOSSES", "allocate", "topk_mask", "feature_choice_mask", "mutual_choice_mask", "row_top_k_mask",
    "uniform_capacities", "zipf_capacities", "SAEState", "init_sae", "init_state", "make_sae_step",
    "pre_activations", "encode", "encode_inference", "decode", "nmse", "normalize_decoder",
    "project_decoder_grad", "zipf_underuse_weights", "aux_reconstruction_loss", "calibrate_threshold", "random_directions",
    "sample_superposition", "mean_max_cosine",
]
