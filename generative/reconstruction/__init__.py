"""3D reconstruction and neural fields: field encodings and volume rendering (P40), image/volume metrics (P30, P38,
P46)."""
from generative.reconstruction.metrics import PLANES, psnr, ssim, volume_metrics
from generative.reconstruction.fields import (
    LATTICES, PRIMES, apply_field, cube_vertices, encode, hash_grid_encode, hash_index, init_field, init_tables,
    level_resolutions, simplex_encode, simplex_vertices, skew, vertices_touched,
)
from generative.reconstruction.volume import (
    camera_rays, composite, init_radiance_field, radiance, ray_box, render_in_chunks, render_rays, sample_along_rays,
    sphere_scene,
)
from generative.reconstruction.phantoms import (
    ellipsoid_mask, phantom_batch, random_cylinder_phantom, random_ellipsoid_phantom,
)
from generative.reconstruction.tomography import (
    ParallelBeam, default_n_det, fbp, radon, radon_adjoint, ramp_filter, view_angles,
)

__all__ = [
    "LATTICES", "PLANES", "PRIMES", "apply_field", "cube_vertices", "encode", "hash_grid_encode", "hash_index", "init_field",
    "init_tables", "level_resolutions", "simplex_encode", "simplex_vertices", "skew",
    "vertices_touched", "camera_rays", "composite", "init_radiance_field", "radiance", "ray_box", "render_in_chunks",
    "render_rays", "sample_along_rays", "sphere_scene", "psnr", "ssim", "volume_metrics",
    "ellipsoid_mask", "phantom_batch", "random_cylinder_phantom", "random_ellipsoid_phantom",
    "ParallelBeam", "default_n_det", "fbp", "radon", "radon_adjoint", "ramp_filter", "view_angles",
]
