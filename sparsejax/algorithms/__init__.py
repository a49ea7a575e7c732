"""Algorithms with guarantees: text-to-pattern Hamming distances (P6), dynamic submodular maximisation (P36),
a tester-learner for halfspaces (P1), partial information decomposition and local/global fairness in
federated learning (P35)."""
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
    hamming_packed,
    packed_threshold,
)
from sparsejax.algorithms.dynamic_submodular import (
    DynamicSubmodular,
    LattanziDynamic,
    RecomputeGreedy,
    SieveStreamingDynamic,
    brute_force_opt,
    lazy_greedy,
    opt_guesses,
)
from sparsejax.algorithms.submodular_objectives import Coverage, FacilityLocation, graph_coverage
from sparsejax.algorithms.fair_fl import (
    AGLFOPResult, Disparities, aglfop, disparities, fedavg_logistic, federated_synthetic, predict_logistic,
    szy_distribution,
)
from sparsejax.algorithms.pid import (
    PID, broja_unique, conditional_mutual_information, entropy, joint_distribution, mutual_information, pid_broja,
)
from sparsejax.algorithms.testable_halfspaces import (
    TestResult, adversarial_eta, calibrate_thresholds, chow_vector, expected_error, gaussian_error, massart_eta,
    psgd_candidates, sample_labels, surrogate_gradients, surrogate_loss, tester_learner, tester_statistics,
    zero_one_error,
)
