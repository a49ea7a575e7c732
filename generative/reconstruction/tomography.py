"""Parallel-beam Radon transform per axial slice, its exact adjoint, and filtered back-projection (P30).

Geometry (as DiffusionMBIR's ``physics/ct.py`` parallel beam over ``[0, pi)``): an image ``(H, W)``
has unit pixels centred at the origin; for view angle ``theta`` and detector offset ``s`` the line
``{s (cos theta, sin theta) + t (-sin theta, cos theta)}`` is sampled at unit steps in ``t`` with
bilinear interpolation (``jax.scipy.ndimage.map_coordinates(order=1)``, zero outside) and summed.
``n_det`` detector bins of unit width default to ``ceil(sqrt(2) max(H, W))`` (the official
``det_count = ceil(256 sqrt 2)`` rule). The discrete operator ``A`` is linear, so its adjoint is
obtained *exactly* with ``jax.linear_transpose`` (no separately written back-projector that would be
only approximately adjoint). Volumes ``(D, H, W)`` are projected slice by slice (vmap over z), which
is the sparse-view CT operator of DiffusionMBIR; sinograms are ``(..., n_views, n_det)``.

FBP uses the discrete Ram-Lak ramp kernel (``h(0) = 1/4``, ``h(n) = -1/(pi n)^2`` for odd ``n``;
Kak & Slaney eq. 3.61, unit spacing) applied by zero-padded FFT, then ``pi / n_views`` times the
adjoint. The adjoint of the bilinear line sampler is an approximate interpolating back-projector,
so FBP is accurate to interpolation blur only.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int


def view_angles(n_views: int, limited: float = math.pi) -> jax.Array:
    """``n_views`` equally spaced angles in ``[0, limited)`` (sparse view: ``limited = pi``)."""
    n_views = check_int("n_views", n_views, minimum=1)
    return jnp.arange(n_views, dtype=jnp.float32) * (limited / n_views)


def default_n_det(h: int, w: int) -> int:
    """Detector bins covering the image diagonal: ``ceil(sqrt(2) max(H, W))``."""
    return int(math.ceil(math.sqrt(2.0) * max(h, w)))


def _radon_slice(image: jax.Array, angles: jax.Array, n_det: int) -> jax.Array:
    h, w = image.shape
    n_t = n_det
    s = jnp.arange(n_det, dtype=jnp.float32) - (n_det - 1) / 2.0
    t = jnp.arange(n_t, dtype=jnp.float32) - (n_t - 1) / 2.0
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

    def one_view(theta):
        c, sn = jnp.cos(theta), jnp.sin(theta)
        xs = s[:, None] * c - t[None, :] * sn + cx
        ys = s[:, None] * sn + t[None, :] * c + cy
        vals = jax.scipy.ndimage.map_coordinates(image, [ys, xs], order=1, mode="constant", cval=0.0)
        return vals.sum(axis=1)

    return jax.vmap(one_view)(angles)


def _check_input(x: jax.Array, angles: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = jnp.asarray(x)
    angles = jnp.asarray(angles, jnp.float32)
    if x.ndim < 2:
        raise ValueError(f"image must have shape (..., H, W), got {x.shape}")
    if angles.ndim != 1 or angles.shape[0] < 1:
        raise ValueError(f"angles must be a non-empty 1D array, got shape {angles.shape}")
    return x, angles


@partial(jax.jit, static_argnames=("n_det",))
def radon(x: jax.Array, angles: jax.Array, n_det: int | None = None) -> jax.Array:
    """Parallel-beam sinogram ``A x`` of images ``(..., H, W)`` -> ``(..., n_views, n_det)``,
    every leading index (e.g. z of a volume) projected independently."""
    x, angles = _check_input(x, angles)
    h, w = x.shape[-2:]
    n_det = default_n_det(h, w) if n_det is None else check_int("n_det", n_det, minimum=1)
    flat = x.reshape((-1, h, w))
    sino = jax.vmap(lambda im: _radon_slice(im, angles, n_det))(flat)
    return sino.reshape(x.shape[:-2] + sino.shape[1:])


def radon_adjoint(sinogram: jax.Array, angles: jax.Array, image_shape: tuple[int, ...],
                  n_det: int | None = None) -> jax.Array:
    """Exact adjoint ``A^T y`` of :func:`radon` (``jax.linear_transpose``): sinogram
    ``(..., n_views, n_det)`` -> images ``image_shape = (..., H, W)``."""
    sinogram = jnp.asarray(sinogram, jnp.float32)
    image_shape = tuple(image_shape)
    if len(image_shape) < 2:
        raise ValueError(f"image_shape must be (..., H, W), got {image_shape}")
    n_det = default_n_det(*image_shape[-2:]) if n_det is None else n_det
    expect = image_shape[:-2] + (jnp.shape(angles)[0], n_det)
    if sinogram.shape != expect:
        raise ValueError(f"sinogram shape {sinogram.shape} does not match image_shape/angles/n_det: expected {expect}")
    primal = jax.ShapeDtypeStruct(image_shape, jnp.float32)
    (out,) = jax.linear_transpose(lambda v: radon(v, angles, n_det), primal)(sinogram)
    return out


def ramp_filter(sinogram: jax.Array) -> jax.Array:
    """Filter each projection (last axis) with the discrete Ram-Lak kernel by zero-padded FFT."""
    sinogram = jnp.asarray(sinogram, jnp.float32)
    n = sinogram.shape[-1]
    size = int(2 ** math.ceil(math.log2(2 * n)))
    k = jnp.arange(size)
    k = jnp.where(k <= size // 2, k, k - size)  # signed offsets, circular
    kernel = jnp.where(k == 0, 0.25, jnp.where(k % 2 == 1, -1.0 / (jnp.pi * jnp.maximum(jnp.abs(k), 1)) ** 2, 0.0))
    freq = jnp.real(jnp.fft.fft(kernel))
    padded = jnp.fft.fft(sinogram, n=size, axis=-1)
    return jnp.real(jnp.fft.ifft(padded * freq, axis=-1))[..., :n]


def fbp(sinogram: jax.Array, angles: jax.Array, image_shape: tuple[int, ...], n_det: int | None = None) -> jax.Array:
    """Filtered back-projection ``(pi / n_views) A^T (ramp * y)`` (Kak & Slaney Sec. 3.3)."""
    angles = jnp.asarray(angles, jnp.float32)
    filtered = ramp_filter(sinogram)
    return (jnp.pi / angles.shape[0]) * radon_adjoint(filtered, angles, image_shape, n_det)


class ParallelBeam:
    """Sparse-view CT operator on ``(D, H, W)`` volumes: ``A``, ``AT`` (exact adjoint) and ``fbp``
    for ``n_views`` angles in ``[0, pi)``. A light container so samplers can take one object."""

    def __init__(self, volume_shape: tuple[int, int, int], n_views: int, n_det: int | None = None):
        if len(tuple(volume_shape)) != 3:
            raise ValueError(f"volume_shape must be (D, H, W), got {volume_shape}")
        self.volume_shape = tuple(int(s) for s in volume_shape)
        self.angles = view_angles(n_views)
        self.n_det = default_n_det(*self.volume_shape[1:]) if n_det is None else check_int("n_det", n_det, minimum=1)

    def A(self, x: jax.Array) -> jax.Array:
        """Sinogram of a volume, ``(D, n_views, n_det)``."""
        return radon(x, self.angles, self.n_det)

    def AT(self, y: jax.Array) -> jax.Array:
        """Exact adjoint back-projection to a ``(D, H, W)`` volume."""
        return radon_adjoint(y, self.angles, self.volume_shape, self.n_det)

    def fbp(self, y: jax.Array) -> jax.Array:
        """Filtered back-projection of a volume's sinogram."""
        return fbp(y, self.angles, self.volume_shape, self.n_det)
