"""LM-Gaussian (P46) losses: photometric, depth and normal priors, with corrupted ground truth as the
stand-in for the large models.

Stand-ins (named): DUSt3R/Marigold monocular depth -> :func:`corrupt_depth` (the true depth under an
unknown affine map plus smooth and white noise; the Pearson loss is affine-invariant, as for real
monocular depth); Marigold normals -> :func:`corrupt_normals` (true normals plus Gaussian noise,
renormalised). Weights from the official ``stage1_360.py`` (see the P46 brief): photometric
``(1 - 0.2) L1 + 0.2 (1 - SSIM)``, depth ``0.1 (global Pearson + local patch Pearson)``, normal
``0.01 L1 + 0.01 (1 - cos)``. Deviations: local Pearson uses all non-overlapping ``patch`` x ``patch``
tiles (official: random 128-px patches covering 50%). The point-cloud render loss ``L_pr``, the
depth-normal consistency and the distortion loss live in :mod:`~generative.reconstruction.splat.regularizers`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LAMBDA_DSSIM = 0.2
LAMBDA_DEPTH = 0.1
LAMBDA_NORMAL_L1 = 0.01
LAMBDA_NORMAL_COS = 0.01


def _gauss_window(size: int = 11, sigma: float = 1.5) -> jnp.ndarray:
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return jnp.asarray(np.outer(g, g))


def ssim_jax(x: jax.Array, y: jax.Array, window: int = 11) -> jax.Array:
    """Differentiable mean SSIM of ``(H, W, C)`` images in [0, 1] (Gaussian window, as 3DGS ``loss_utils.ssim``)."""
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"x and y must be equal (H, W, C) images, got {x.shape}, {y.shape}")
    w = _gauss_window(window).astype(x.dtype)[:, :, None, None]
    C = x.shape[-1]

    def filt(img):
        img = jnp.moveaxis(img, -1, 0)[:, None]  # (C, 1, H, W)
        out = jax.lax.conv_general_dilated(img, jnp.moveaxis(w, (2, 3), (0, 1)), (1, 1), "SAME")
        return out[:, 0]

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.mean() * (C / C)


def photometric_loss(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """3DGS / LM-Gaussian image loss ``(1 - 0.2) L1 + 0.2 (1 - SSIM)``."""
    return (1 - LAMBDA_DSSIM) * jnp.abs(pred - gt).mean() + LAMBDA_DSSIM * (1 - ssim_jax(pred, gt))


def pearson(a: jax.Array, b: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Pearson correlation of two arrays (flattened)."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return (a * b).sum() / jnp.sqrt((a * a).sum() * (b * b).sum() + eps)


def depth_prior_loss(depth: jax.Array, prior: jax.Array, patch: int = 8) -> jax.Array:
    """``(1 - Pearson)`` globally plus the mean over ``patch`` tiles (LM-Gaussian's global + local depth loss)."""
    if depth.shape != prior.shape or depth.ndim != 2:
        raise ValueError(f"depth and prior must be equal (H, W) maps, got {depth.shape}, {prior.shape}")
    H, W = depth.shape
    if H % patch or W % patch:
        raise ValueError(f"patch {patch} must divide the image size {depth.shape}")
    tile = lambda m: m.reshape(H // patch, patch, W // patch, patch).transpose(0, 2, 1, 3).reshape(-1, patch * patch)
    local = jax.vmap(pearson)(tile(depth), tile(prior))
    return (1 - pearson(depth, prior)) + (1 - local).mean()


def normal_prior_loss(normals: jax.Array, prior: jax.Array, mask: jax.Array) -> jax.Array:
    """``0.01 L1 + 0.01 (1 - cos)`` between rendered and prior normals on ``mask`` (weights included)."""
    m = mask.astype(normals.dtype)
    denom = jnp.maximum(m.sum(), 1.0)
    l1 = (jnp.abs(normals - prior).sum(-1) * m).sum() / denom
    nn_ = normals / jnp.sqrt((normals * normals).sum(-1, keepdims=True) + 1e-12)
    cos = ((nn_ * prior).sum(-1) * m).sum() / denom
    return LAMBDA_NORMAL_L1 * l1 + LAMBDA_NORMAL_COS * (1 - cos)


def corrupt_depth(depth: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, noise: float = 0.05,
                  smooth: float = 0.1, background: float | None = None) -> np.ndarray:
    """Stand-in for DUSt3R/Marigold depth: ``a d + b`` plus a smooth low-frequency warp and white noise.

    ``noise`` and ``smooth`` are relative to the depth range; background pixels get the far value
    (``background`` or max depth x 1.5), as monocular estimators return a far background.
    """
    H, W = depth.shape
    rng_ = float(depth[mask].max() - depth[mask].min()) if mask.any() else 1.0
    far = background if background is not None else (float(depth[mask].max()) * 1.5 if mask.any() else 1.0)
    d = np.where(mask, depth, far)
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    ph = rng.uniform(0, 2 * np.pi, 2)
    warp = smooth * rng_ * np.sin(2 * np.pi * xx + ph[0]) * np.cos(2 * np.pi * yy + ph[1])
    a, b = rng.uniform(0.5, 2.0), rng.uniform(-1.0, 1.0)
    return a * (d + warp + noise * rng_ * rng.standard_normal(d.shape)) + b


def corrupt_normals(normals: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, sigma: float = 0.2) -> np.ndarray:
    """Stand-in for Marigold normals: true normals plus N(0, sigma^2) noise, renormalised (0 off-mask)."""
    n = normals + sigma * rng.standard_normal(normals.shape)
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    return np.where(mask[..., None], n, 0.0)
