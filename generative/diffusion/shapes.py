"""Images of a single shape with known generative factors, and analytic estimators of them.

Each image (``H = W = image_size``, one channel, values in ``[-1, 1]``, background ``-1``) shows
one disk or axis-aligned square. Factors, in the column order of :data:`FACTOR_NAMES`:

* ``size``: square root of the shape's area in pixels (disk: ``sqrt(pi) r``; square: side);
* ``x``, ``y``: centre in pixel coordinates (pixel ``j`` has centre ``j``; ``x`` is the column);
* ``brightness``: intensity in ``[0, 1]`` inside the shape (pixel value ``-1 + 2 * intensity``);
* ``shape``: 0 for a disk, 1 for a square.

Pixels are anti-aliased by their covered area (exact for the square, a one-pixel linear ramp
for the disk) so that every factor is recoverable from moments of the intensity ``I = (x+1)/2``:
mass ``M = sum I``, brightness the mean ``I`` over the interior pixels (``I >= 0.8 max I``), size ``sqrt(M / brightness)``, centre
``sum I p / M`` and the shape from the normalised fourth moment
``E[dx^2 dy^2] / (E[dx^2] E[dy^2])`` (1 for a square, 2/3 for a disk).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats

from sparsejax.core.validation import check_finite_array, check_int, check_number

FACTOR_NAMES = ("size", "x", "y", "brightness", "shape")
SQUARENESS_THRESHOLD = 5.0 / 6.0  # midway between a disk (2/3) and a square (1)


class ShapeData(NamedTuple):
    """``images`` ``(N, H, W, 1)`` in ``[-1, 1]`` and their ``factors`` ``(N, 5)`` (see :data:`FACTOR_NAMES`)."""

    images: jax.Array
    factors: jax.Array


def factor_ranges(image_size: int) -> dict[str, tuple[float, float]]:
    """Ranges of the continuous factors for ``image_size`` (the shape always fits in the image)."""
    image_size = check_int("image_size", image_size, minimum=8)
    size = (0.25 * image_size, 0.5 * image_size)
    margin = 0.5 * size[1] * 1.2 + 0.5
    centre = (margin - 0.5, image_size - 0.5 - margin)
    return {"size": size, "x": centre, "y": centre, "brightness": (0.4, 1.0)}


def sample_factors(key: jax.Array, n: int, image_size: int = 16, *, size_brightness_corr: float = 0.0) -> jax.Array:
    """Draw ``n`` factor vectors: continuous factors uniform on :func:`factor_ranges` (through a
    Gaussian copula in which ``size`` and ``brightness`` have correlation ``size_brightness_corr``),
    shape class a fair coin. The correlation plants the kind of dataset bias that the paper's
    projection (Sec. 5.1) is meant to remove."""
    n = check_int("n", n, minimum=1)
    if not -1.0 < size_brightness_corr < 1.0:
        raise ValueError(f"size_brightness_corr must be in (-1, 1), got {size_brightness_corr}")
    ranges = factor_ranges(image_size)
    kz, ks = jax.random.split(key)
    z = jax.random.normal(kz, (n, 4))  # size, x, y, brightness
    rho = size_brightness_corr
    z = z.at[:, 3].set(rho * z[:, 0] + math.sqrt(1.0 - rho**2) * z[:, 3])
    u = jstats.norm.cdf(z)
    lo = jnp.array([ranges[k][0] for k in FACTOR_NAMES[:4]])
    hi = jnp.array([ranges[k][1] for k in FACTOR_NAMES[:4]])
    shape = jax.random.bernoulli(ks, 0.5, (n, 1)).astype(jnp.float32)
    return jnp.concatenate([lo + (hi - lo) * u, shape], axis=1)


def render_shapes(factors: jax.Array, image_size: int = 16) -> jax.Array:
    """Render factor vectors ``(N, 5)`` as anti-aliased images ``(N, H, W, 1)`` in ``[-1, 1]``."""
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must have shape (N, {len(FACTOR_NAMES)}), got {factors.shape}")
    check_finite_array("factors", factors)
    image_size = check_int("image_size", image_size, minimum=1)
    coords = jnp.arange(image_size, dtype=jnp.float32)

    def one(f):
        size, cx, cy, bright, shape = f
        dx = jnp.abs(coords[None, :] - cx)
        dy = jnp.abs(coords[:, None] - cy)
        half = 0.5 * size
        square = jnp.clip(half + 0.5 - dx, 0.0, 1.0) * jnp.clip(half + 0.5 - dy, 0.0, 1.0)
        disk = jnp.clip(size / math.sqrt(math.pi) + 0.5 - jnp.sqrt(dx**2 + dy**2), 0.0, 1.0)
        cover = jnp.where(shape > 0.5, square, disk)
        return (-1.0 + 2.0 * bright * cover)[..., None]

    return jax.vmap(one)(factors.astype(jnp.float32))


def make_shapes_dataset(key: jax.Array, n: int, image_size: int = 16, *, size_brightness_corr: float = 0.0) -> ShapeData:
    """``n`` random shape images and their factors (:func:`sample_factors`, :func:`render_shapes`)."""
    factors = sample_factors(key, n, image_size, size_brightness_corr=size_brightness_corr)
    return ShapeData(render_shapes(factors, image_size), factors)


def estimate_factors(images: jax.Array, *, floor: float = 0.1) -> jax.Array:
    """Analytic estimates ``(N, 5)`` of the factors of images ``(N, H, W, 1)`` from intensity moments.

    Intensities ``I = (x + 1) / 2`` below ``floor`` are treated as background (robust to sampler
    noise). The ``shape`` column is the continuous *squareness* ``E[dx^2 dy^2] / (E[dx^2] E[dy^2])``
    (about 2/3 for a disk, 1 for a square); threshold it with :data:`SQUARENESS_THRESHOLD` for a class.
    """
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f"images must have shape (N, H, W, 1), got {images.shape}")
    check_number("floor", floor, minimum=0.0, maximum=1.0, max_inclusive=False)
    inten = jnp.clip((images[..., 0] + 1.0) / 2.0, 0.0, 1.0)
    inten = jnp.where(inten >= floor, inten, 0.0)
    h, w = images.shape[1:3]
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    mass = jnp.maximum(inten.sum(axis=(1, 2)), 1e-6)
    interior = inten >= 0.8 * inten.max(axis=(1, 2), keepdims=True)
    bright = (inten * interior).sum(axis=(1, 2)) / jnp.maximum(interior.sum(axis=(1, 2)), 1)
    size = jnp.sqrt(mass / jnp.maximum(bright, 1e-6))
    cx = (inten * xs).sum(axis=(1, 2)) / mass
    cy = (inten * ys).sum(axis=(1, 2)) / mass
    dx2 = (xs[None] - cx[:, None, None]) ** 2
    dy2 = (ys[None] - cy[:, None, None]) ** 2

    def mean(v):
        return (inten * v).sum(axis=(1, 2)) / mass

    squareness = mean(dx2 * dy2) / jnp.maximum(mean(dx2) * mean(dy2), 1e-6)
    return jnp.stack([size, cx, cy, bright, squareness], axis=1)
