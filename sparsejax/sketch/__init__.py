"""Randomised linear algebra: sketches, leverage scores, Lewis weights, sketch-based solvers (shared),
least squares with an ℓ∞ guarantee (P9) and ℓp sensitivity sampling (P11)."""
from sparsejax.sketch.linf_regression import (
    gaussian_instance, linf_error_ratio, linf_regression, linf_sketch_size, spiky_instance,
)
from sparsejax.sketch.sensitivity import (
    estimate_distortion, lewis_sensitivity_bound, lp_sensitivities, sample_size_bound, sampled_lp_norm,
    sensitivity_sample,
)
from sparsejax.sketch.solvers import lp_regression, preconditioned_lstsq, sketch_and_solve
from sparsejax.sketch.transforms import (
    SKETCHES, approximate_leverage_scores, fwht, leverage_scores, lewis_weights, sketch,
)
