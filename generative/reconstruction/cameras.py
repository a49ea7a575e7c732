"""Pinhole cameras, look-at poses, 360-degree orbits and per-pixel rays (shared by P46 and P40).

Convention (OpenCV / 3DGS): world -> camera is ``x_cam = R x_world + t``; the camera looks along +z,
+x is image right and +y is image down. Pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Camera(NamedTuple):
    """Pinhole camera: rotation ``R`` (3, 3) and translation ``t`` (3,) world -> camera, intrinsics."""

    R: np.ndarray
    t: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, ``-R^T t``."""
        return -np.asarray(self.R).T @ np.asarray(self.t)


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera ``(R, t)`` of a camera at ``eye`` looking at ``target`` (+z forward, +y down)."""
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    fwd = target - eye
    if np.linalg.norm(fwd) == 0:
        raise ValueError("eye and target coincide")
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("up is parallel to the viewing direction")
    right = right / np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])  # rows: camera axes in world coordinates
    return R, -R @ eye


def make_camera(eye, target, *, width: int, height: int, fov_deg: float = 50.0, up=(0.0, 0.0, 1.0)) -> Camera:
    """Look-at camera with a horizontal field of view ``fov_deg`` and the principal point at the centre."""
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}, {height}")
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must lie in (0, 180), got {fov_deg}")
    R, t = look_at(eye, target, up)
    f = 0.5 * width / np.tan(np.deg2rad(fov_deg) / 2)
    return Camera(R, t, float(f), float(f), width / 2.0, height / 2.0, int(width), int(height))


def orbit_cameras(n: int, *, radius: float = 3.0, elevation_deg: float = 20.0, width: int = 32, height: int = 32,
                  fov_deg: float = 50.0, target=(0.0, 0.0, 0.0), phase_deg: float = 0.0) -> list[Camera]:
    """``n`` cameras evenly spaced in azimuth on a 360-degree orbit, all looking at ``target``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    return [orbit_camera(phase_deg + 360.0 * i / n, radius=radius, elevation_deg=elevation_deg, width=width,
                         height=height, fov_deg=fov_deg, target=target) for i in range(n)]


def orbit_camera(azimuth_deg: float, *, radius: float = 3.0, elevation_deg: float = 20.0, width: int = 32,
                 height: int = 32, fov_deg: float = 50.0, target=(0.0, 0.0, 0.0)) -> Camera:
    """One orbit camera at azimuth ``azimuth_deg`` (degrees) and elevation ``elevation_deg``."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    eye = np.asarray(target, np.float64) + radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return make_camera(eye, target, width=width, height=height, fov_deg=fov_deg)


def pixel_grid(cam: Camera) -> np.ndarray:
    """Pixel centres ``(H, W, 2)`` as ``(u, v)``."""
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    return np.stack([u, v], -1)


def generate_rays(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World-space ray origins and unit directions ``(H, W, 3)`` through every pixel centre."""
    uv = pixel_grid(cam)
    d_cam = np.stack([(uv[..., 0] - cam.cx) / cam.fx, (uv[..., 1] - cam.cy) / cam.fy, np.ones(uv.shape[:2])], -1)
    d = d_cam @ np.asarray(cam.R)  # R^T d_cam for each pixel
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return np.broadcast_to(cam.center, d.shape).copy(), d


def project_points(cam: Camera, x) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(N, 2)`` and camera depths ``(N,)`` of world points ``x`` (N, 3)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (N, 3), got {x.shape}")
    p = x @ np.asarray(cam.R).T + cam.t
    z = p[:, 2]
    uv = np.stack([cam.fx * p[:, 0] / z + cam.cx, cam.fy * p[:, 1] / z + cam.cy], -1)
    return uv, z
