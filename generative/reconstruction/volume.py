"""Volume rendering along camera rays (NeRF-style emission-absorption), an analytic 360-degree scene, and
density + RGB fields on the P40 encodings.

Quadrature (NeRF, Mildenhall et al. 2020, eq. 3): along a ray split ``[near, far]`` into ``S`` equal
bins, take one sample ``t_i`` per bin (stratified: uniform inside the bin; deterministic: the bin
centre) and composite

``C = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i + (1 - sum_i w_i) c_bg``,
``T_i = exp(-sum_{j<i} sigma_j delta_j)``, ``w_i = T_i (1 - exp(-sigma_i delta_i))``.

Deviation from NeRF's ``delta_i = t_{i+1} - t_i`` (last one 1e10): ``delta_i`` is the bin width
``(far - near) / S``, so the deltas always sum to the ray's length inside the box; for bin centres the
two agree except for the last sample. A constant density ``sigma`` then gives exactly the closed-form
opacity ``1 - exp(-sigma L)`` (tested). Rays are clipped to an axis-aligned box (slab method), as
Instant-NGP marches only inside its unit cube; a ray that misses gets ``near = far`` (zero weights).

The scene (:func:`sphere_scene`) is volumetric, not a surface: ``sigma(x) = sigma_max *
sigmoid(-sdf(x) / eps)`` with ``sdf`` the distance to the union of P46's coloured spheres
(:data:`generative.reconstruction.splat.scene.DEFAULT_SPHERES`), colour the albedo of the nearest
sphere with Lambertian shading under P46's light (normal from that sphere). Its ground-truth images
are rendered with :func:`render_rays` and many samples, so the fit target and the model share the
same image formation.

:func:`init_radiance_field` / :func:`radiance` put a density + RGB head on
:func:`generative.reconstruction.fields.apply_field` (either lattice, same parameters): world points
in ``[-bound, bound]^3`` are mapped to the unit cube, ``sigma = softplus(raw_0)``, ``rgb =
sigmoid(raw_1..3)``. Deviations from Instant-NGP's NeRF: one MLP for density and colour and no
view-direction input (the scene is view-independent), softplus instead of the truncated exponential,
no occupancy grid (every bin is evaluated).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from generative.reconstruction.cameras import Camera, generate_rays
from generative.reconstruction.fields import apply_field, init_field
from sparsejax.core.validation import check_array, check_int, check_number

__all__ = [
    "ray_box", "sample_along_rays", "composite", "render_rays", "render_in_chunks", "camera_rays", "sphere_scene",
    "init_radiance_field", "radiance",
]


def ray_box(origins, dirs, bound: float = 1.0) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Entry and exit distances ``(R,)`` of rays ``o + t d`` through the box ``[-bound, bound]^3`` (slab method).

    ``near`` is clipped at 0 (the box may contain the origin); a ray that misses gets ``near = far``.
    """
    origins = check_array("origins", jnp.asarray(origins), ndim=2, dtype_kind="f")
    dirs = check_array("dirs", jnp.asarray(dirs), shape=tuple(origins.shape), dtype_kind="f")
    if origins.shape[1] != 3:
        raise ValueError(f"origins must have shape (R, 3), got {tuple(origins.shape)}")
    check_number("bound", bound, minimum=0.0, min_inclusive=False)
    safe = jnp.where(jnp.abs(dirs) < 1e-12, jnp.where(dirs < 0, -1e-12, 1e-12), dirs)
    t0, t1 = (-bound - origins) / safe, (bound - origins) / safe
    near = jnp.maximum(jnp.minimum(t0, t1).max(-1), 0.0)
    far = jnp.maximum(t0, t1).min(-1)
    return near, jnp.maximum(far, near)


def sample_along_rays(near, far, n_samples: int, key=None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Sample distances ``t`` and deltas ``(R, S)``: one sample per equal bin of ``[near, far]``.

    With a PRNG ``key`` the sample is uniform in its bin (NeRF's stratified sampling), otherwise the
    bin centre; ``delta`` is the bin width (see the module docstring).
    """
    check_int("n_samples", n_samples, minimum=1)
    near = check_array("near", jnp.asarray(near), ndim=1, dtype_kind="f")
    far = check_array("far", jnp.asarray(far), shape=tuple(near.shape), dtype_kind="f")
    if key is None:
        u = jnp.full((near.shape[0], n_samples), 0.5, near.dtype)
    else:
        u = jax.random.uniform(key, (near.shape[0], n_samples), near.dtype)
    width = (far - near)[:, None] / n_samples
    t = near[:, None] + (jnp.arange(n_samples, dtype=near.dtype) + u) * width
    return t, jnp.broadcast_to(width, t.shape)


def composite(sigma, rgb, deltas, background=0.0, t=None) -> dict:
    """Alpha compositing of NeRF eq. 3: ``rgb (R, 3)``, ``opacity (R,)``, ``weights (R, S)`` (+ ``depth`` if ``t``).

    ``sigma`` and ``deltas`` are ``(R, S)`` (densities >= 0), ``rgb`` is ``(R, S, C)``; the leftover
    transmittance ``1 - opacity`` shows ``background`` (a scalar or a ``(C,)`` colour).
    """
    sigma = check_array("sigma", jnp.asarray(sigma), ndim=2, dtype_kind="f")
    deltas = check_array("deltas", jnp.asarray(deltas), shape=tuple(sigma.shape), dtype_kind="f")
    rgb = check_array("rgb", jnp.asarray(rgb), ndim=3, dtype_kind="f")
    if tuple(rgb.shape[:2]) != tuple(sigma.shape):
        raise ValueError(f"rgb shape {tuple(rgb.shape)} does not start with sigma's {tuple(sigma.shape)}")
    return _composite(sigma, rgb, deltas, jnp.asarray(background, rgb.dtype), t)


def _composite(sigma, rgb, deltas, background, t=None) -> dict:
    tau = sigma * deltas
    trans = jnp.exp(-(jnp.cumsum(tau, axis=1) - tau))                 # T_i = exp(-sum_{j<i} tau_j)
    weights = trans * -jnp.expm1(-tau)                                  # T_i (1 - exp(-tau_i))
    opacity = weights.sum(1)
    out = {"rgb": jnp.einsum("rs,rsc->rc", weights, rgb) + (1.0 - opacity)[:, None] * background,
           "opacity": opacity, "weights": weights}
    if t is not None:
        out["depth"] = (weights * t).sum(1)
    return out


def render_rays(field: Callable, origins, dirs, near, far, n_samples: int, key=None, background=0.0) -> dict:
    """Render rays through ``field``: points ``(R*S, 3) -> (sigma (R*S,), rgb (R*S, C))``, then :func:`composite`.

    Samples come from :func:`sample_along_rays` (stratified when ``key`` is given). Returns the
    :func:`composite` dict with ``depth`` (expected distance, unnormalised by the opacity).
    """
    origins = jnp.asarray(origins)
    dirs = jnp.asarray(dirs)
    t, deltas = sample_along_rays(near, far, n_samples, key)
    pts = origins[:, None, :] + t[..., None] * dirs[:, None, :]
    sigma, rgb = field(pts.reshape(-1, 3))
    r, s = t.shape
    return _composite(sigma.reshape(r, s), rgb.reshape(r, s, -1), deltas, jnp.asarray(background, rgb.dtype), t)


def render_in_chunks(fn: Callable, *arrays, chunk: int = 4096) -> np.ndarray:
    """``fn(*arrays)`` evaluated on row chunks of ``chunk`` rays (the last padded), concatenated as numpy.

    ``fn`` maps arrays with a common leading axis to one array with that leading axis; with a jitted
    ``fn`` every chunk reuses one compilation, and memory stays bounded by the chunk size.
    """
    check_int("chunk", chunk, minimum=1)
    arrays = [jnp.asarray(a) for a in arrays]
    n = arrays[0].shape[0]
    if n == 0 or any(a.shape[0] != n for a in arrays):
        raise ValueError(f"arrays must share a non-empty leading axis, got {[tuple(a.shape) for a in arrays]}")
    out = []
    for start in range(0, n, chunk):
        part = [a[start:start + chunk] for a in arrays]
        m = part[0].shape[0]
        if m < chunk and n > chunk:                                   # pad so that every chunk has one shape
            part = [jnp.concatenate([p, jnp.repeat(p[-1:], chunk - m, 0)]) for p in part]
        out.append(np.asarray(fn(*part))[:m])
    return np.concatenate(out)


def camera_rays(cams: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """Origins and unit directions ``(n_cams * H * W, 3)`` of every pixel of ``cams`` (row-major per camera)."""
    if len(cams) == 0:
        raise ValueError("cams must hold at least one camera")
    rays = [generate_rays(c) for c in cams]
    return (np.concatenate([o.reshape(-1, 3) for o, _ in rays]).astype(np.float32),
            np.concatenate([d.reshape(-1, 3) for _, d in rays]).astype(np.float32))


def sphere_scene(spheres=None, sigma_max: float = 40.0, eps: float = 0.02, ambient: float = 0.3) -> Callable:
    """Analytic volumetric scene ``x (N, 3) -> (sigma (N,), rgb (N, 3))``: soft union of coloured spheres.

    ``sigma = sigma_max * sigmoid(-sdf / eps)``; colour = nearest sphere's albedo times
    ``ambient + (1 - ambient) max(n . light, 0)`` (P46's light). ``spheres`` defaults to P46's
    ``DEFAULT_SPHERES`` ((centre, radius, albedo) triples).
    """
    from generative.reconstruction.splat.scene import DEFAULT_SPHERES, LIGHT
    spheres = DEFAULT_SPHERES if spheres is None else spheres
    if len(spheres) == 0:
        raise ValueError("spheres must hold at least one (centre, radius, albedo)")
    check_number("sigma_max", sigma_max, minimum=0.0)
    check_number("eps", eps, minimum=0.0, min_inclusive=False)
    centres = jnp.asarray([s[0] for s in spheres], jnp.float32)
    radii = jnp.asarray([s[1] for s in spheres], jnp.float32)
    albedo = jnp.asarray([s[2] for s in spheres], jnp.float32)
    light = jnp.asarray(LIGHT, jnp.float32)

    def field(x):
        diff = x[:, None, :] - centres                                    # (N, K, 3)
        dist = jnp.sqrt((diff ** 2).sum(-1) + 1e-12)
        sdf = dist - radii
        k = jnp.argmin(sdf, axis=1)
        n = jnp.take_along_axis(diff, k[:, None, None], 1)[:, 0] / jnp.take_along_axis(dist, k[:, None], 1)
        shade = ambient + (1.0 - ambient) * jnp.maximum(n @ light, 0.0)
        return sigma_max * jax.nn.sigmoid(-sdf.min(1) / eps), shade[:, None] * albedo[k]

    return field


def init_radiance_field(key, *, n_levels: int = 8, table_size: int = 2 ** 14, n_features: int = 2,
                        hidden: Sequence[int] = (64, 64)) -> dict:
    """Parameters of a 3D density + RGB field (:func:`~generative.reconstruction.fields.init_field`, 4 outputs).

    The lattice is chosen at :func:`radiance`, so hash-grid and simplex fields have identical parameters.
    """
    return init_field(key, 3, 4, n_levels=n_levels, table_size=table_size, n_features=n_features, hidden=hidden)


def radiance(params: dict, x, resolutions, lattice: str = "simplex", bound: float = 1.0) -> tuple[jnp.ndarray,
                                                                                                  jnp.ndarray]:
    """Density ``softplus(raw_0)`` ``(N,)`` and colour ``sigmoid(raw_1..3)`` ``(N, 3)`` at world points ``x (N, 3)``.

    ``x`` in ``[-bound, bound]^3`` is mapped to the encodings' unit cube ``(x + bound) / (2 bound)``.
    """
    check_number("bound", bound, minimum=0.0, min_inclusive=False)
    try:
        out_dim = params["mlp"]["params"]["head"]["kernel"].shape[1]
    except (TypeError, KeyError) as err:
        raise TypeError("params must be the dict of init_radiance_field (keys tables/mlp)") from err
    if out_dim != 4:
        raise ValueError(f"a radiance field has 4 outputs (density + RGB), got {out_dim}")
    raw = apply_field(params, (jnp.asarray(x) + bound) / (2.0 * bound), resolutions, lattice)
    return jax.nn.softplus(raw[:, 0]), jax.nn.sigmoid(raw[:, 1:])
