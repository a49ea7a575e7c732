"""LM-Gaussian (P46) geometric regularisers: the point-cloud render loss ``L_pr`` at virtual poses, the
depth-normal consistency loss and the depth distortion loss.

The paper describes them in Sec. IV-C (weighted virtual-view regularisation) and IV-D (the Gaussian
refinement losses); the equation numbers could not be checked here, so the functions cite the official
code (``hanyangyu1021/LMGaussian``), whose values they follow:

* ``L_pr`` (``stage1_360.py``, ``utils/loss_utils.lpr_loss``): L1 between the Gaussian render at a virtual
  pose and a render of the initial (DUSt3R) point cloud at that pose (pytorch3d points, radius 0.01 NDC,
  20 points per pixel, normalised-weight compositing). Virtual poses: ``interpolate_camera_poses``, 10
  per pair of consecutive training cameras (slerp of R, lerp of t). Weight 0.6 in the 360 stage 1
  (0.3 in ``stage1_forward.py``; the brief's 0.3 is the forward-facing value).
* depth-normal consistency (``stage1_360.py``/``stage2_360.py``, ``utils/graphics_utils.depth_double_to_normal``):
  normals from finite differences of the back-projected mean depth (depth / alpha) and median depth,
  compared with the normalised rendered normals, ``0.4 (1 - cos)_mean + 0.6 (1 - cos)_median``;
  weight ``lambda_depth_normal = 0.05`` from ``regularization_from_iter``.
* distortion (``stage2_360.py`` and the RaDe-GS rasteriser): per pixel
  ``sum_i w_i sum_{j<i} w_j (m_i - m_j)^2`` of NDC-mapped depths ``m = f (z - n) / ((f - n) z)`` with
  n = 0.2, f = 100, the weights detached, divided by the (detached) squared alpha, weighted by the image
  edge map ``exp(-max |grad I|)`` and averaged; weight ``lambda_distortion = 100`` from
  ``regularization_from_iter`` (stage 2 only).

Where the official code differs from the brief/paper, the code is followed: ``L_pr``'s weight is 0.6
(360), and stage 2 turns the monocular depth and normal priors off (``opt.opt_train_depth = False``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from generative.reconstruction.cameras import Camera

LAMBDA_PR = 0.6
LAMBDA_DEPTH_NORMAL = 0.05
LAMBDA_DISTORTION = 100.0
DEPTH_RATIO = 0.6
NEAR_PLANE, FAR_PLANE = 0.2, 100.0
ALPHA_MIN = 1.0 / 255.0


# ------------------------------------------------------------------------------------------- distortion
def ndc_depth(z: jax.Array, near: float = NEAR_PLANE, far: float = FAR_PLANE) -> jax.Array:
    """The rasteriser's depth map to [0, 1]: ``far (z - near) / ((far - near) z)``."""
    return far * (z - near) / ((far - near) * z)


def distortion(weights: jax.Array, depths: jax.Array, near: float = NEAR_PLANE, far: float = FAR_PLANE) -> jax.Array:
    """Depth distortion of depth-sorted rays ``(..., N)``: ``sum_i w_i sum_{j<i} w_j (m_i - m_j)^2``.

    ``m`` is :func:`ndc_depth`. Computed with exclusive prefix sums as in the RaDe-GS/LM-Gaussian CUDA
    forward pass; the weights are detached (its backward pass propagates the distortion to the depths
    only: "Opacity is detached from depth distortion loss").
    """
    w = jax.lax.stop_gradient(weights)
    m = ndc_depth(depths, near, far)
    a = jnp.cumsum(w, -1) - w
    b1 = jnp.cumsum(w * m, -1) - w * m
    b2 = jnp.cumsum(w * m * m, -1) - w * m * m
    return (w * (m * m * a - 2 * m * b1 + b2)).sum(-1)


def median_depth(trans: jax.Array, alpha: jax.Array, depths: jax.Array) -> jax.Array:
    """Median depth of depth-sorted rays ``(..., N)`` as the rasteriser's ``middepth``.

    The depth of the last Gaussian whose transmittance *before* it is > 0.5, among those with
    ``alpha >= 1/255`` (the CUDA kernel skips the others); 0 where there is none.
    """
    hit = (trans > 0.5) & (alpha >= ALPHA_MIN)
    n = hit.shape[-1]
    last = n - 1 - jnp.argmax(hit[..., ::-1], axis=-1)
    d = jnp.take_along_axis(depths, last[..., None], -1)[..., 0]
    return jnp.where(hit.any(-1), d, 0.0)


def edge_weights(image: jax.Array) -> jax.Array:
    """LM-Gaussian/GOF edge map ``(H, W)`` of an ``(H, W, C)`` image: ``exp(-max`` of the four mean-abs
    neighbour differences``)`` inside, 0 on the one-pixel border (``scene/cameras.py``)."""
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W, C), got {image.shape}")
    c = image[1:-1, 1:-1]
    g = jnp.stack([jnp.abs(c - image[1:-1, :-2]).mean(-1), jnp.abs(c - image[1:-1, 2:]).mean(-1),
                   jnp.abs(c - image[:-2, 1:-1]).mean(-1), jnp.abs(c - image[2:, 1:-1]).mean(-1)], -1).max(-1)
    return jnp.pad(jnp.exp(-g), 1)


def distortion_loss(distortion_map: jax.Array, alpha: jax.Array, edge: jax.Array) -> jax.Array:
    """Stage-2 distortion loss (``stage2_360.py``): ``mean(edge * D / sg(alpha^2))`` over pixels with
    alpha > 0 (here alpha >= 1/255: the tile-free renderer has no exact zeros). Weight not included."""
    a = jax.lax.stop_gradient(alpha)
    ok = a >= ALPHA_MIN
    return (jnp.where(ok, distortion_map / jnp.where(ok, a * a, 1.0), 0.0) * edge).mean()


# ----------------------------------------------------------------------------------- depth-normal
def depth_to_normal(depth: jax.Array, K: jax.Array) -> jax.Array:
    """Camera-space normals ``(H, W, 3)`` of a z-depth map ``(H, W)`` (``depth_double_to_normal``).

    Pixels back-project to ``depth * ((u + 0.5 - cx)/fx, (v + 0.5 - cy)/fy, 1)``; the normal is
    ``normalize(dP/dv x dP/du)`` with central differences (facing the camera), 0 on the border.
    ``K = (fx, fy, cx, cy)``.
    """
    H, W = depth.shape
    u, v = jnp.meshgrid(jnp.arange(W) + 0.5, jnp.arange(H) + 0.5)
    P = depth[..., None] * jnp.stack([(u - K[2]) / K[0], (v - K[3]) / K[1], jnp.ones_like(u)], -1)
    dv = P[2:, 1:-1] - P[:-2, 1:-1]
    du = P[1:-1, 2:] - P[1:-1, :-2]
    return jnp.pad(_normalize(jnp.cross(dv, du)), ((1, 1), (1, 1), (0, 0)))


def _normalize(n: jax.Array) -> jax.Array:
    # torch.nn.functional.normalize: x / max(|x|, 1e-12); zero vectors stay zero, with a finite gradient
    # there (the gradient of a plain norm at 0 is NaN, e.g. on empty background pixels)
    sq = (n * n).sum(-1, keepdims=True)
    return n * jax.lax.rsqrt(jnp.maximum(sq, 1e-24))


def depth_normal_error(normals: jax.Array, depth: jax.Array, K: jax.Array) -> jax.Array:
    """Per-pixel ``1 - <normalize(normals), depth_to_normal(depth)>`` ``(H, W)``."""
    return 1.0 - (_normalize(normals) * depth_to_normal(depth, K)).sum(-1)


def depth_normal_loss(normals: jax.Array, depth: jax.Array, alpha: jax.Array, median: jax.Array, K: jax.Array,
                      depth_ratio: float = DEPTH_RATIO) -> jax.Array:
    """Depth-normal consistency (``stage1_360.py``/``stage2_360.py``), weight not included.

    ``(1 - r) mean(err(depth / alpha)) + r mean(err(median))`` with ``r = 0.6``; the mean runs over all
    pixels, as in the official code (border and empty pixels contribute the constant 1). ``depth / alpha``
    is set to 0 where alpha < 1/255 (the official code zeroes only alpha = 0).
    """
    if normals.shape[:2] != depth.shape or depth.shape != alpha.shape or depth.shape != median.shape:
        raise ValueError(f"shapes differ: normals {normals.shape}, depth {depth.shape}, alpha {alpha.shape}, "
                         f"median {median.shape}")
    ok = alpha >= ALPHA_MIN  # official: depth / alpha with NaN -> 0; here tiny alphas too (finite gradients)
    mean_depth = jnp.where(ok, depth / jnp.where(ok, alpha, 1.0), 0.0)
    return ((1 - depth_ratio) * depth_normal_error(normals, mean_depth, K).mean()
            + depth_ratio * depth_normal_error(normals, median, K).mean())


# ------------------------------------------------------------------------------------------ L_pr
def interpolate_cameras(cams: list[Camera], n_per_pair: int = 10) -> list[Camera]:
    """Virtual poses of ``interpolate_camera_poses``: for each consecutive training pair, ``n_per_pair``
    poses at ``s = j / n_per_pair`` (slerp of R, lerp of t; ``s = 0`` is the first camera; no wrap-around)."""
    if len(cams) < 2 or n_per_pair < 1:
        raise ValueError(f"need >= 2 cameras and n_per_pair >= 1, got {len(cams)}, {n_per_pair}")
    out = []
    for c1, c2 in zip(cams[:-1], cams[1:]):
        slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([c1.R, c2.R])))
        for j in range(n_per_pair):
            s = j / n_per_pair
            out.append(c1._replace(R=slerp(s).as_matrix(), t=(1 - s) * np.asarray(c1.t) + s * np.asarray(c2.t)))
    return out


def point_cloud_render(points, colors, cam: Camera, *, radius_px: float, points_per_pixel: int = 20,
                       background=(0.0, 0.0, 0.0), chunk: int = 4096) -> np.ndarray:
    """Render a coloured point cloud ``(M, 3)`` at ``cam`` as pytorch3d's ``PointsRenderer`` with
    ``NormWeightedCompositor``: per pixel, the ``points_per_pixel`` nearest (in z) points whose projection
    lies within ``radius_px`` of the pixel centre, weights ``1 - d^2 / r^2``, colour ``sum w c / sum w``;
    ``background`` where no point lands. Returns ``(H, W, 3)`` (numpy; a fixed target, no gradient)."""
    points, colors = np.asarray(points, np.float64), np.asarray(colors, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise ValueError(f"points and colors must both be (M, 3), got {points.shape}, {colors.shape}")
    if radius_px <= 0 or points_per_pixel < 1:
        raise ValueError(f"radius_px must be > 0 and points_per_pixel >= 1, got {radius_px}, {points_per_pixel}")
    p = points @ np.asarray(cam.R).T + np.asarray(cam.t)
    front = p[:, 2] > 1e-6
    p, col = p[front], colors[front]
    uv = np.stack([cam.fx * p[:, 0] / p[:, 2] + cam.cx, cam.fy * p[:, 1] / p[:, 2] + cam.cy], -1)
    order = np.argsort(p[:, 2])
    uv, col = uv[order], col[order]
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    pix = np.stack([u.ravel(), v.ravel()], -1)
    out = np.empty((len(pix), 3))
    bg = np.asarray(background, np.float64)
    for s in range(0, len(pix), chunk):
        d2 = ((pix[s:s + chunk, None, :] - uv[None]) ** 2).sum(-1)  # (P, M), points sorted near -> far
        inside = d2 < radius_px ** 2
        rank = np.cumsum(inside, 1)
        keep = inside & (rank <= points_per_pixel)
        w = np.where(keep, 1 - d2 / radius_px ** 2, 0.0)
        sw = w.sum(1)
        rgb = (w @ col) / np.maximum(sw, 1e-10)[:, None]
        out[s:s + chunk] = np.where(keep.any(1)[:, None], rgb, bg)
    return out.reshape(cam.height, cam.width, 3)


def point_render_loss(render_rgb: jax.Array, point_rgb: jax.Array) -> jax.Array:
    """``L_pr = mean |I_gs - I_pc|`` (``utils/loss_utils.lpr_loss``), weight not included."""
    if render_rgb.shape != point_rgb.shape:
        raise ValueError(f"shapes differ: {render_rgb.shape}, {point_rgb.shape}")
    return jnp.abs(render_rgb - point_rgb).mean()
