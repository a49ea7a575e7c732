"""Affine warps of images and affNIST-style random transforms (P19's evaluation protocol).

affNIST (Tieleman, 2013) transforms each MNIST digit by a random rotation in [-20, 20] degrees,
a shear in [-0.2, 0.2], independent scalings of each axis in [0.8, 1.2] and a random
translation inside the larger canvas. :func:`sample_affnist_transforms` draws these with every
range multiplied by ``magnitude`` (``magnitude = 1`` is affNIST).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from geometry.lie.groups import group_inverse, rotation_2d
from sparsejax.core.validation import check_finite_array

AFFNIST_RANGES = {"rotation_deg": 20.0, "shear": 0.2, "log_scale": math.log(1.2), "translation_frac": 0.15}


def warp_image(image: jax.Array, a: jax.Array, t: jax.Array) -> jax.Array:
    """``(L_(t, a) f)(y) = f(a^{-1}(y - c - t) + c)``: transform about the canvas centre ``c``.

    Bilinear interpolation, zero outside. ``image`` (H, W, C), ``a`` (2, 2), ``t`` (2,) in pixels
    (array-index coordinates (row, col)). ``a`` must be invertible and every input finite (raises
    ``ValueError`` for concrete inputs).
    """
    if image.ndim != 3:
        raise ValueError(f"image must have shape (H, W, C), got {image.shape}")
    if a.shape != (2, 2) or t.shape != (2,):
        raise ValueError(f"a must be (2, 2) and t (2,), got {a.shape} and {t.shape}")
    check_finite_array("image", image)
    check_finite_array("t", t)
    h, w, _ = image.shape
    c = jnp.array([(h - 1) / 2.0, (w - 1) / 2.0])
    grid = jnp.stack(jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij"), -1).astype(image.dtype)
    src = jnp.einsum("ij,abj->abi", group_inverse(a), grid - c - t) + c
    interp = jax.vmap(
        lambda ch: jax.scipy.ndimage.map_coordinates(ch, [src[..., 0], src[..., 1]], order=1, cval=0.0),
        in_axes=-1,
        out_axes=-1,
    )
    return interp(image)


def sample_affnist_transforms(key: jax.Array, num: int, size: int, magnitude: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """``num`` random affNIST transforms ``(a, t)`` for a ``size x size`` canvas, ranges x ``magnitude``.

    ``a = R(theta) Sh(shear) diag(s_0, s_1)`` with ``theta ~ U(+-20 deg)``, ``shear ~ U(+-0.2)``,
    ``log s_i ~ U(+-log 1.2)``; ``t ~ U(+-0.15 size)`` per axis. Returns (num, 2, 2), (num, 2).
    """
    if num < 1 or size < 1:
        raise ValueError(f"num and size must be >= 1, got {num}, {size}")
    if magnitude < 0:
        raise ValueError(f"magnitude must be >= 0, got {magnitude}")
    kr, ks, kc, kt = jax.random.split(key, 4)
    r = AFFNIST_RANGES
    theta = jax.random.uniform(kr, (num,), minval=-1, maxval=1) * math.radians(r["rotation_deg"]) * magnitude
    shear = jax.random.uniform(ks, (num,), minval=-1, maxval=1) * r["shear"] * magnitude
    scale = jnp.exp(jax.random.uniform(kc, (num, 2), minval=-1, maxval=1) * r["log_scale"] * magnitude)
    t = jax.random.uniform(kt, (num, 2), minval=-1, maxval=1) * r["translation_frac"] * size * magnitude
    sh = jnp.broadcast_to(jnp.eye(2), (num, 2, 2)).at[:, 0, 1].set(shear)
    a = rotation_2d(theta) @ sh @ (scale[:, :, None] * jnp.eye(2))
    return a, t
