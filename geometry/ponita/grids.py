"""Orientation grids on S^1 and S^2 (the fibres of R^2 x S^1 and R^3 x S^2) and rotations.

PΘNITA (Bekkers et al., ICLR 2024, Sec. 4) discretises the fibre S^{n-1} of position-orientation
space with a shared grid of ``num_ori`` unit vectors. On S^2 the official code uses a
Coulomb-repulsion grid; we offer a Fibonacci spiral (closed form), a repulsion refinement of it and
the icosahedron's 12 vertices, whose 60 symmetry rotations permute the grid exactly (used by the
exact-equivariance tests). On S^1 the grid is the ``num_ori`` equally spaced angles.
"""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from sparsejax.core.validation import check_key, check_int, check_finite_array

GRID_METHODS = ("fibonacci", "repulsion", "icosahedron")


def _check_count(n, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n (grid size) must be an int, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"n (grid size) must be >= {minimum}, got {n}")
    return int(n)


def circle_grid(n: int) -> np.ndarray:
    """``n`` equally spaced unit vectors on S^1: ``(cos 2πk/n, sin 2πk/n)``, shape ``(n, 2)``."""
    n = _check_count(n)
    angles = 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)


def fibonacci_sphere(n: int) -> np.ndarray:
    """Near-uniform ``n``-point grid on S^2 (golden-angle spiral with equal-area latitudes), ``(n, 3)``."""
    n = _check_count(n)
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(np.clip(1.0 - z**2, 0.0, None))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], -1).astype(np.float32)


def repulsion_sphere(n: int, steps: int = 300, step_size: float = 0.05) -> np.ndarray:
    """``n``-point S^2 grid minimising the Coulomb energy ``sum_{i<j} 1/|o_i - o_j|``.

    Projected gradient descent started from :func:`fibonacci_sphere` (the official code repels a
    random start); deterministic. Shape ``(n, 3)``.
    """
    n = _check_count(n, 2)
    if steps < 0 or step_size <= 0:
        raise ValueError(f"need steps >= 0 and step_size > 0, got {steps}, {step_size}")
    x = fibonacci_sphere(n).astype(np.float64)
    for _ in range(steps):  # plain numpy: the grid is a constant, also when built inside jit
        rel = x[:, None] - x[None]
        d = np.linalg.norm(rel, axis=-1) + np.eye(n)
        g = -np.sum(rel / d[..., None] ** 3 * (1 - np.eye(n))[..., None], 1)  # d/dx_i sum 1/|x_i - x_j|
        g -= np.sum(g * x, -1, keepdims=True) * x  # tangent part
        g /= np.max(np.linalg.norm(g, axis=-1)) + 1e-12
        x = x - step_size * (np.pi / np.sqrt(n)) * g
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x.astype(np.float32)


def icosahedron() -> np.ndarray:
    """The 12 unit vertices of the regular icosahedron, ``(12, 3)``."""
    phi = (1 + np.sqrt(5.0)) / 2
    verts = []
    for a, b in itertools.product((-1.0, 1.0), repeat=2):
        verts += [(0.0, a, b * phi), (a, b * phi, 0.0), (b * phi, 0.0, a)]
    v = np.asarray(verts)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _cached_grid(n: int, dim: int, method: str) -> np.ndarray:
    if dim == 2:
        return circle_grid(n)
    if method == "fibonacci":
        return fibonacci_sphere(n)
    if method == "repulsion":
        return repulsion_sphere(n)
    if n != 12:
        raise ValueError(f"the icosahedral grid has 12 points, got num_ori={n}")
    return icosahedron()


def orientation_grid(n: int, dim: int = 3, method: str = "repulsion") -> np.ndarray:
    """Grid of ``n`` unit vectors on S^{dim-1} (``dim`` 2 or 3); ``method`` picks the S^2 grid.

    Cached per ``(n, dim, method)``; ``method`` is ignored on S^1 (uniform angles).
    """
    n = _check_count(n)
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    if method not in GRID_METHODS:
        raise ValueError(f"unknown grid method {method!r}; valid: {', '.join(GRID_METHODS)}")
    return _cached_grid(n, dim, method).copy()


def random_rotation(key: jax.Array, dim: int = 3, dtype=jnp.float32) -> jax.Array:
    """A Haar-random rotation matrix in SO(dim) (QR of a Gaussian matrix, sign-fixed, det +1)."""
    check_key("key", key)
    dim = check_int("dim", dim, minimum=2)
    a = jax.random.normal(key, (dim, dim), dtype)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    flip = jnp.where(jnp.linalg.det(q) < 0, -1.0, 1.0).astype(dtype)
    return q.at[:, 0].multiply(flip)


def rotate_grid(grid: jax.Array, rotation: jax.Array) -> jax.Array:
    """Rotate every grid vector: ``o -> R o`` (rows of ``grid``)."""
    if grid.ndim != 2 or rotation.shape != (grid.shape[-1], grid.shape[-1]):
        raise ValueError(f"need grid (n, d) and rotation (d, d), got {grid.shape} and {rotation.shape}")
    check_finite_array("rotation", rotation)
    return grid @ rotation.T


def icosahedral_rotations() -> np.ndarray:
    """The 60 rotations mapping the :func:`icosahedron` vertex set onto itself, ``(60, 3, 3)``.

    Each rotation is fixed by where it sends vertex 0 and one of its 5 neighbours (12 x 5 = 60).
    """
    v = icosahedron().astype(np.float64)
    nbr_dot = np.max(v[0] @ v[1:].T)  # cosine between adjacent vertices

    def frame(a, b):
        e1 = a
        e2 = b - (b @ a) * a
        e2 /= np.linalg.norm(e2)
        return np.stack([e1, e2, np.cross(e1, e2)], -1)

    j0 = 1 + int(np.argmax(v[0] @ v[1:].T))
    src = frame(v[0], v[j0])
    out = []
    for i in range(12):
        for j in range(12):
            if i != j and np.isclose(v[i] @ v[j], nbr_dot):
                out.append(frame(v[i], v[j]) @ src.T)
    return np.asarray(out, np.float32)
