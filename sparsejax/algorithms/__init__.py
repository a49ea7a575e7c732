"""Algorithms with guarantees: text-to-pattern Hamming distances (P6), dynamic submodular maximisation (P36)."""
from sparsejax.algorithms.hamming import (
    EXACT_METHODS,
    abrahamson_threshold,
    hamming_abrahamson,
    hamming_approx_kp,
    hamming_approx_sampled,
    hamming_brute,
    hamming_distances,
    hamming_fft,
    hamming_k_bounded,
)
from sparsejax.algorithms.dynamic_submodular import (
    DynamicSubmodular,
    LattanziDynamic,
    RecomputeGreedy,
    brute_force_opt,
    lazy_greedy,
    opt_guesses,
)
from sparsejax.algorithms.submodular_objectives import Coverage, FacilityLocation, graph_coverage
