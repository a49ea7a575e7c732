"""Pure-JAX differentiable 3D Gaussian splatting (Kerbl et al. 2023), the renderer of P46 (LM-Gaussian).

Each Gaussian has a mean, a scale (log-parametrised), a rotation quaternion, an opacity (logit) and an
RGB colour (logit). Rendering: world covariance ``Sigma = R S S^T R^T``; EWA projection
``Sigma' = J W Sigma W^T J^T`` with the perspective Jacobian ``J`` at the camera-space mean (Zwicker et
al. 2002, eq. 31; 3DGS eq. 5); a per-pixel front-to-back alpha compositing over the depth-sorted
Gaussians, ``C = sum_i c_i a_i prod_{j<i} (1 - a_j)`` (3DGS eq. 3).

Deviations from the CUDA rasteriser (named): no tiles, every pixel composites all Gaussians (fine at
32x32 images and a few hundred Gaussians, O(H W N) memory); no 1/255 alpha cut-off and no early stop
at transmittance 1e-4 (the image stays smooth in the parameters); colours are view-independent RGB
(no spherical harmonics); the global depth sort (by camera-space mean depth) is not differentiated.
Depth is the alpha-weighted mean depth, normals are the alpha-weighted shortest-axis normals (as in
GOF/LM-Gaussian's normal rendering), oriented towards the camera and expressed in camera coordinates.

With ``geometry=True`` the renderer also returns the per-pixel quantities that LM-Gaussian's
regularisers need (its RaDe-GS rasteriser, ``submodules/diff-gaussian-rasterization/cuda_rasterizer/
forward.cu``): ``ray_depth`` (alpha-weighted per-pixel depth of each Gaussian along the pixel ray),
``median_depth`` (the depth of the last Gaussian composited while the transmittance is still above
0.5, among those with alpha >= 1/255) and ``distortion`` (see
:func:`~generative.reconstruction.splat.regularizers.distortion`); as in the kernel, Gaussians whose
per-pixel depth is at most the near plane 0.2 are left out of these three maps. Deviation: the per-pixel depth of a
Gaussian is the exact depth of its density maximum along the ray, ``z = d^T A mu / d^T A d`` with
``A`` the inverse camera-space covariance and ``d = K^-1 (u, v, 1)``; RaDe-GS uses a first-order
(planar) approximation of the same point around the projected centre.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from generative.reconstruction.cameras import Camera
from generative.reconstruction.splat.regularizers import NEAR_PLANE, distortion, median_depth

PARAM_KEYS = ("means", "log_scales", "quats", "opacity_logits", "color_logits")


def quat_to_rotmat(q: jax.Array) -> jax.Array:
    """Rotation matrices ``(N, 3, 3)`` of (normalised) quaternions ``(N, 4)`` in ``(w, x, y, z)`` order."""
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return jnp.stack([
        jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def covariances(log_scales: jax.Array, quats: jax.Array) -> jax.Array:
    """World covariances ``R S S^T R^T`` (3DGS eq. 6), shape ``(N, 3, 3)``."""
    M = quat_to_rotmat(quats) * jnp.exp(log_scales)[:, None, :]
    return M @ jnp.swapaxes(M, -1, -2)


def camera_arrays(cam: Camera, dtype=jnp.float32) -> dict:
    """The camera as a pytree of arrays for the jitted renderer."""
    return {"R": jnp.asarray(cam.R, dtype), "t": jnp.asarray(cam.t, dtype),
            "K": jnp.asarray([cam.fx, cam.fy, cam.cx, cam.cy], dtype)}


def project(params: dict, cam: dict, blur: float = 0.3, near: float = 0.05):
    """EWA projection: 2D means ``(N, 2)``, 2D covariances ``(N, 2, 2)``, depths ``(N,)``, validity.

    ``blur`` is the screen-space low-pass variance added to ``Sigma'`` (3DGS's 0.3 px^2).
    """
    R, t, K = cam["R"], cam["t"], cam["K"]
    fx, fy, cx, cy = K[0], K[1], K[2], K[3]
    p = params["means"] @ R.T + t
    z = p[:, 2]
    valid = z > near
    zs = jnp.where(valid, z, 1.0)
    uv = jnp.stack([fx * p[:, 0] / zs + cx, fy * p[:, 1] / zs + cy], -1)
    zero = jnp.zeros_like(zs)
    J = jnp.stack([jnp.stack([fx / zs, zero, -fx * p[:, 0] / zs ** 2], -1),
                   jnp.stack([zero, fy / zs, -fy * p[:, 1] / zs ** 2], -1)], -2)
    JW = J @ R
    cov2 = JW @ covariances(params["log_scales"], params["quats"]) @ jnp.swapaxes(JW, -1, -2)
    cov2 = cov2 + blur * jnp.eye(2, dtype=cov2.dtype)
    return uv, cov2, z, valid


def gaussian_normals(params: dict, cam: dict) -> jax.Array:
    """Camera-space unit normals ``(N, 3)``: the shortest scale axis, flipped to face the camera."""
    Rg = quat_to_rotmat(params["quats"])
    axis = jnp.argmin(params["log_scales"], axis=-1)
    n = jnp.take_along_axis(Rg, axis[:, None, None], axis=2)[..., 0]  # column of the smallest scale
    n_cam = n @ cam["R"].T
    p = params["means"] @ cam["R"].T + cam["t"]
    sign = jnp.where(jnp.sum(n_cam * p, -1) > 0, -1.0, 1.0)
    return n_cam * sign[:, None]


def ray_depths(params: dict, cam: dict, pix: jax.Array) -> jax.Array:
    """Depth ``(P, N)`` of each Gaussian's density maximum along the rays of pixel centres ``pix (P, 2)``.

    Along ``x = t d`` with ``d = ((u - cx)/fx, (v - cy)/fy, 1)`` the density of a Gaussian with camera
    mean ``mu`` and inverse covariance ``A`` peaks at ``t* = d^T A mu / d^T A d``, which is the z-depth
    because ``d_z = 1``.
    """
    R, K = cam["R"], cam["K"]
    mu = params["means"] @ R.T + cam["t"]
    Rg = R @ quat_to_rotmat(params["quats"])  # camera-space Gaussian axes
    A = (Rg * jnp.exp(-2 * params["log_scales"])[:, None, :]) @ jnp.swapaxes(Rg, -1, -2)
    d = jnp.stack([(pix[:, 0] - K[2]) / K[0], (pix[:, 1] - K[3]) / K[1], jnp.ones_like(pix[:, 0])], -1)
    num = d @ jnp.einsum("nij,nj->ni", A, mu).T
    den = jnp.einsum("pi,nij,pj->pn", d, A, d)
    return num / den


@partial(jax.jit, static_argnames=("width", "height", "blur", "geometry"))
def render(params: dict, cam: dict, width: int, height: int, background=None, blur: float = 0.3,
           geometry: bool = False) -> dict:
    """Render colour ``(H, W, 3)``, depth ``(H, W)``, normals ``(H, W, 3)`` and accumulated alpha ``(H, W)``.

    ``params`` holds ``means (N,3)``, ``log_scales (N,3)``, ``quats (N,4)``, ``opacity_logits (N,)``,
    ``color_logits (N,3)``; ``cam`` comes from :func:`camera_arrays`. Depth is ``sum_i w_i z_i``
    (unnormalised; divide by alpha for the surface depth), likewise the normals. ``geometry=True`` adds
    ``ray_depth``, ``median_depth`` and ``distortion`` maps ``(H, W)`` (see the module docstring).
    """
    uv, cov2, z, valid = project(params, cam, blur)
    order = jnp.argsort(jax.lax.stop_gradient(jnp.where(valid, z, jnp.inf)))
    uv, cov2, z, valid = uv[order], cov2[order], z[order], valid[order]
    opac = jax.nn.sigmoid(params["opacity_logits"])[order]
    color = jax.nn.sigmoid(params["color_logits"])[order]
    normals = gaussian_normals(params, cam)[order]
    a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
    det = a * c - b * b
    conic = jnp.stack([c / det, -b / det, a / det], -1)  # inverse 2D covariance
    pix = jnp.stack(jnp.meshgrid(jnp.arange(width) + 0.5, jnp.arange(height) + 0.5), -1).reshape(-1, 2)
    pix = pix.astype(uv.dtype)
    d = pix[:, None, :] - uv[None, :, :]  # (P, N, 2)
    power = -0.5 * (conic[:, 0] * d[..., 0] ** 2 + 2 * conic[:, 1] * d[..., 0] * d[..., 1] + conic[:, 2] * d[..., 1] ** 2)
    alpha = jnp.where(valid, jnp.minimum(opac * jnp.exp(jnp.minimum(power, 0.0)), 0.99), 0.0)
    trans = jnp.cumprod(jnp.concatenate([jnp.ones_like(alpha[:, :1]), 1.0 - alpha[:, :-1]], 1), 1)
    w = trans * alpha  # (P, N)
    acc = w.sum(1)
    bg = jnp.zeros(3, uv.dtype) if background is None else jnp.asarray(background, uv.dtype)
    rgb = w @ color + (1.0 - acc)[:, None] * bg
    out = {"rgb": rgb.reshape(height, width, 3), "depth": (w @ z).reshape(height, width),
           "normals": (w @ normals).reshape(height, width, 3), "alpha": acc.reshape(height, width)}
    if geometry:
        p_sorted = {k: v[order] for k, v in params.items()}
        zr = ray_depths(p_sorted, cam, pix)
        ok = valid[None, :] & (zr > NEAR_PLANE)  # the CUDA kernel skips depths <= NEAR_PLANE
        zr = jnp.where(ok, zr, NEAR_PLANE)
        wg = jnp.where(ok, w, 0.0)
        out["ray_depth"] = (wg * zr).sum(1).reshape(height, width)
        out["median_depth"] = median_depth(trans, jnp.where(ok, alpha, 0.0), zr).reshape(height, width)
        out["distortion"] = distortion(wg, zr).reshape(height, width)
    return out


def render_camera(params: dict, cam: Camera, background=None, blur: float = 0.3, geometry: bool = False) -> dict:
    """:func:`render` for a :class:`~generative.reconstruction.cameras.Camera`."""
    check_params(params)
    dtype = params["means"].dtype
    return render(params, camera_arrays(cam, dtype), cam.width, cam.height, background, blur, geometry)


def check_params(params: dict) -> None:
    """Raise ``ValueError`` unless ``params`` holds the five Gaussian arrays with consistent shapes."""
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"params lacks {missing}")
    n = params["means"].shape[0]
    want = {"means": (n, 3), "log_scales": (n, 3), "quats": (n, 4), "opacity_logits": (n,), "color_logits": (n, 3)}
    for k, s in want.items():
        if tuple(params[k].shape) != s:
            raise ValueError(f"params[{k!r}] must have shape {s}, got {tuple(params[k].shape)}")


def init_gaussians(points, colors, scale: float = 0.05, opacity: float = 0.1, dtype=jnp.float32) -> dict:
    """Isotropic Gaussians at ``points`` (N, 3) with RGB ``colors`` in (0, 1) (3DGS initialisation,
    with one fixed ``scale`` instead of the nearest-neighbour distance)."""
    points = np.asarray(points, np.float64)
    colors = np.clip(np.asarray(colors, np.float64), 1e-3, 1 - 1e-3)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise ValueError(f"points and colors must both have shape (N, 3), got {points.shape}, {colors.shape}")
    n = len(points)
    quats = np.zeros((n, 4)); quats[:, 0] = 1.0
    return {"means": jnp.asarray(points, dtype), "log_scales": jnp.full((n, 3), np.log(scale), dtype),
            "quats": jnp.asarray(quats, dtype), "opacity_logits": jnp.full((n,), np.log(opacity / (1 - opacity)), dtype),
            "color_logits": jnp.asarray(np.log(colors / (1 - colors)), dtype)}
