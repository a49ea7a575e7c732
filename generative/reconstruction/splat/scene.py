"""Synthetic 360-degree scene for P46: a few coloured spheres, ray-traced with analytic depth and normals.

Shading is Lambertian under a fixed world light plus ambient (view-independent, so that RGB Gaussians
without spherical harmonics can represent it exactly in the limit). Depth is camera z-depth (the
renderer's convention), normals are in camera coordinates; background pixels have depth 0, normal 0.
"""
from __future__ import annotations

import numpy as np

from generative.reconstruction.cameras import Camera, generate_rays

DEFAULT_SPHERES = (
    # centre, radius, albedo
    ((0.0, 0.0, 0.0), 0.55, (0.85, 0.25, 0.2)),
    ((0.75, 0.35, -0.15), 0.3, (0.2, 0.7, 0.3)),
    ((-0.55, 0.6, 0.1), 0.28, (0.25, 0.35, 0.9)),
    ((-0.2, -0.75, -0.2), 0.33, (0.9, 0.8, 0.2)),
)
LIGHT = np.array([0.4, 0.3, 0.87]) / np.linalg.norm([0.4, 0.3, 0.87])


def trace_spheres(cam: Camera, spheres=DEFAULT_SPHERES, background: float = 0.0, ambient: float = 0.3) -> dict:
    """Ray-trace ``spheres`` from ``cam``: ``rgb (H,W,3)``, ``depth (H,W)``, ``normals (H,W,3)``, ``mask``."""
    if not spheres:
        raise ValueError("spheres must hold at least one (centre, radius, albedo)")
    o, d = generate_rays(cam)
    best = np.full(d.shape[:2], np.inf)
    nrm = np.zeros(d.shape)
    col = np.zeros(d.shape)
    for c, r, alb in spheres:
        oc = o - np.asarray(c)
        b = np.sum(oc * d, -1)
        disc = b * b - (np.sum(oc * oc, -1) - r * r)
        s = -b - np.sqrt(np.maximum(disc, 0.0))
        hit = (disc > 0) & (s > 0) & (s < best)
        best = np.where(hit, s, best)
        n = (o + s[..., None] * d - np.asarray(c)) / r
        shade = ambient + (1 - ambient) * np.clip(n @ LIGHT, 0.0, None)
        nrm = np.where(hit[..., None], n, nrm)
        col = np.where(hit[..., None], shade[..., None] * np.asarray(alb), col)
    mask = np.isfinite(best)
    rgb = np.where(mask[..., None], col, background)
    pts = o + np.where(mask, best, 0.0)[..., None] * d
    depth = np.where(mask, (pts @ np.asarray(cam.R).T + cam.t)[..., 2], 0.0)
    n_cam = nrm @ np.asarray(cam.R).T
    return {"rgb": rgb, "depth": depth, "normals": np.where(mask[..., None], n_cam, 0.0), "mask": mask, "points": pts}
