"""Small denoising diffusion models and semantic directions in their h-space.

* :mod:`~generative.diffusion.schedules`: linear and cosine noise schedules (``NoiseSchedule``);
* :mod:`~generative.diffusion.ddpm`: forward process ``q_sample``, epsilon-prediction loss, train step;
* :mod:`~generative.diffusion.unet`: flax.linen ``UNet`` returning ``(eps, h)`` and accepting a shift of ``h``;
* :mod:`~generative.diffusion.ddim`: DDIM sampling (eta >= 0, h-space shifts per step) and inversion;
* :mod:`~generative.diffusion.hspace`: h-space directions of Haas et al. (P17): PCA, Jacobian SVD,
  supervised directions, projection, editing;
* :mod:`~generative.diffusion.shapes`: images of shapes with known factors and their estimators.
"""
from generative.diffusion.ddim import DDIMTrajectory, ddim_invert, ddim_sample, ddim_sigma, ddim_timesteps
from generative.diffusion.ddpm import ddpm_loss, make_ddpm_train_step, q_sample
from generative.diffusion.hspace import (
    JacobianSVD,
    PCADirections,
    denoiser_jacobian_directions,
    edit_along_direction,
    extreme_scores_direction,
    global_direction_at,
    jacobian_svd,
    mean_difference_direction,
    pca_directions,
    project_out,
    scale_to_h_std,
)
from generative.diffusion.schedules import NoiseSchedule, cosine_schedule, linear_schedule, make_schedule
from generative.diffusion.shapes import (
    FACTOR_NAMES,
    SQUARENESS_THRESHOLD,
    ShapeData,
    estimate_factors,
    factor_ranges,
    make_shapes_dataset,
    render_shapes,
    sample_factors,
)
from generative.diffusion.unet import UNet, timestep_embedding, unet_eps_fn

__all__ = [
    "NoiseSchedule", "linear_schedule", "cosine_schedule", "make_schedule",
    "q_sample", "ddpm_loss", "make_ddpm_train_step",
    "UNet", "timestep_embedding", "unet_eps_fn",
    "DDIMTrajectory", "ddim_sample", "ddim_invert", "ddim_sigma", "ddim_timesteps",
    "PCADirections", "JacobianSVD", "pca_directions", "jacobian_svd", "denoiser_jacobian_directions", "global_direction_at",
    "mean_difference_direction", "extreme_scores_direction", "project_out", "scale_to_h_std",
    "edit_along_direction",
    "FACTOR_NAMES", "SQUARENESS_THRESHOLD", "ShapeData", "factor_ranges", "sample_factors", "render_shapes",
    "make_shapes_dataset", "estimate_factors",
]
