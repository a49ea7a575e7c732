"""Sparse and structured recovery: LDP sparse regression (P10), Kronecker-structured SBL (P31), robust
spectral unmixing (P22), robust alternating minimisation for matrix completion (P26); shared metrics and
synthetic generators."""
from sparsejax.recovery.generators import (
    as_rng, endmember_spectra, hyperspectral_scene, irs_mimo_problem, kron_all, kron_sparse_problem,
    noise_variance, sparse_regression_data, steering_dictionary,
)
from sparsejax.recovery.kron_sbl import (
    am_update, classic_sbl, kro_sbl, kron_matvec, kron_omp, kron_posterior, oracle_ls, sbl_cost, svd_update,
)
from sparsejax.recovery.ldp_regression import (
    closed_form_estimate, covariance_sensitivity, cross_sensitivity, gaussian_sigma, hard_threshold, ldp_iht,
    nldp_estimate, noise_scales, privatize, soft_threshold, user_sums,
)
from sparsejax.recovery.matrix_completion import alternating_minimization, soft_impute
from sparsejax.recovery.metrics import (
    abundance_rmse, match_endmembers, nmse, sad, spectral_angles, support_recovery_rate,
)
from sparsejax.recovery.unmixing import fcls, guidance_map, objective, unmix, vca

__all__ = [
    "as_rng", "endmember_spectra", "hyperspectral_scene", "irs_mimo_problem", "kron_all", "kron_sparse_problem",
    "noise_variance", "sparse_regression_data", "steering_dictionary",
    "am_update", "classic_sbl", "kro_sbl", "kron_matvec", "kron_omp", "kron_posterior", "oracle_ls", "sbl_cost",
    "svd_update",
    "closed_form_estimate", "covariance_sensitivity", "cross_sensitivity", "gaussian_sigma", "hard_threshold",
    "ldp_iht", "nldp_estimate", "noise_scales", "privatize", "soft_threshold", "user_sums",
    "abundance_rmse", "match_endmembers", "nmse", "sad", "spectral_angles", "support_recovery_rate",
    "fcls", "guidance_map", "objective", "unmix", "vca",
    "alternating_minimization", "soft_impute",
]
