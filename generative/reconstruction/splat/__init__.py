"""Pure-JAX 3D Gaussian splatting with LM-Gaussian's large-model priors (P46): renderer, density
control, a synthetic 360-degree scene, depth/normal priors, the geometric regularisers (point-cloud render
loss, depth-normal consistency, distortion) and a diffusion repair prior."""
from generative.reconstruction.splat.render import (
    PARAM_KEYS, camera_arrays, check_params, covariances, gaussian_normals, init_gaussians, project, quat_to_rotmat,
    ray_depths, render, render_camera,
)
from generative.reconstruction.splat.regularizers import (
    depth_normal_error, depth_normal_loss, depth_to_normal, distortion, distortion_loss, edge_weights,
    interpolate_cameras, median_depth, ndc_depth, point_cloud_render, point_render_loss,
)
from generative.reconstruction.splat.scene import DEFAULT_SPHERES, trace_spheres
from generative.reconstruction.splat.priors import (
    corrupt_depth, corrupt_normals, depth_prior_loss, normal_prior_loss, pearson, photometric_loss, ssim_jax,
)
from generative.reconstruction.splat.densify import densify_and_prune
from generative.reconstruction.splat.refine import augment, pseudo_view_weights, repair, train_repair_model

__all__ = [
    "PARAM_KEYS", "camera_arrays", "check_params", "covariances", "gaussian_normals", "init_gaussians", "project",
    "quat_to_rotmat", "ray_depths", "render", "render_camera", "DEFAULT_SPHERES", "trace_spheres", "corrupt_depth",
    "corrupt_normals", "depth_prior_loss", "normal_prior_loss", "pearson", "photometric_loss", "ssim_jax",
    "densify_and_prune", "augment", "pseudo_view_weights", "repair", "train_repair_model",
    "depth_normal_error", "depth_normal_loss", "depth_to_normal", "distortion", "distortion_loss", "edge_weights",
    "interpolate_cameras", "median_depth", "ndc_depth", "point_cloud_render", "point_render_loss",
]
