"""Random 3D "Shepp-Logan-like" ellipsoid phantoms for sparse-view CT experiments (P30).

A phantom is a ``(D, H, W)`` volume (z, y, x) in the unit cube ``[-1, 1]^3``: a head ellipsoid of
value ``head_value`` with a thinner skull rim, plus ``num_inner`` random inner ellipsoids with random
centres, semi-axes, rotation about z and additive intensities, clipped to ``[0, 1]``. This is a
stand-in for the AAPM CT volumes of DiffusionMBIR (Chung et al. 2023), which are not available here;
rotations are about the z axis only (a design choice: axial slices then look like 2D Shepp-Logan
slices, and structures are elongated along z so that a z-TV prior is meaningful).
The out-of-distribution family :func:`random_cylinder_phantom` uses axis-aligned elliptic cylinders
and spheres instead.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int, check_key, check_number


def _grid(shape: tuple[int, int, int]) -> tuple[jax.Array, jax.Array, jax.Array]:
    d, h, w = shape
    z, y, x = jnp.meshgrid(jnp.linspace(-1, 1, d), jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w), indexing="ij")
    return z, y, x


def _check_shape(shape) -> tuple[int, int, int]:
    if len(tuple(shape)) != 3:
        raise ValueError(f"shape must be (D, H, W), got {shape}")
    return tuple(check_int("shape", s, minimum=2) for s in shape)


def ellipsoid_mask(shape, center, axes, angle) -> jax.Array:
    """Boolean ``(D, H, W)`` mask of the ellipsoid with ``center`` (z, y, x), semi-axes ``axes``
    (z, y, x) and rotation ``angle`` (radians) about the z axis, in ``[-1, 1]^3`` coordinates."""
    shape = _check_shape(shape)
    z, y, x = _grid(shape)
    cz, cy, cx = center
    az, ay, ax = axes
    c, s = jnp.cos(angle), jnp.sin(angle)
    xr = c * (x - cx) + s * (y - cy)
    yr = -s * (x - cx) + c * (y - cy)
    return ((z - cz) / az) ** 2 + (yr / ay) ** 2 + (xr / ax) ** 2 <= 1.0


def random_ellipsoid_phantom(key: jax.Array, shape=(16, 32, 32), num_inner: int = 8,
                             head_value: float = 0.8) -> jax.Array:
    """One random ellipsoid phantom of ``shape`` (D, H, W), values in ``[0, 1]``.

    Head: ellipsoid of semi-axes (0.95, ~0.85, ~0.7) with a skull rim (value 1) of ~8% thickness and
    interior ``head_value``; inner ellipsoids: centres inside the head, semi-axes 0.08-0.35 in-plane
    and 0.3-0.9 along z, intensity offsets uniform in ``[-0.4, 0.3]``.
    """
    check_key("key", key)
    shape = _check_shape(shape)
    num_inner = check_int("num_inner", num_inner, minimum=0)
    head_value = check_number("head_value", head_value, minimum=0.0, maximum=1.0)
    return _ellipsoid_phantom(key, shape, num_inner, head_value)


@partial(jax.jit, static_argnums=(1, 2))
def _ellipsoid_phantom(key, shape, num_inner, head_value):
    k_head, k_in = jax.random.split(key)
    hy, hx = jax.random.uniform(k_head, (2,), minval=jnp.array([0.8, 0.62]), maxval=jnp.array([0.9, 0.78]))
    outer = ellipsoid_mask(shape, (0.0, 0.0, 0.0), (0.95, hy, hx), 0.0)
    inner = ellipsoid_mask(shape, (0.0, 0.0, 0.0), (0.9, 0.92 * hy, 0.92 * hx), 0.0)
    vol = jnp.where(outer, 1.0, 0.0)
    vol = jnp.where(inner, head_value, vol)
    for k in jax.random.split(k_in, num_inner):
        kc, ka, kr, kv = jax.random.split(k, 4)
        cy, cx = jax.random.uniform(kc, (2,), minval=-0.5, maxval=0.5) * jnp.array([hy, hx])
        cz = jax.random.uniform(jax.random.fold_in(kc, 1), (), minval=-0.4, maxval=0.4)
        ay, ax = jax.random.uniform(ka, (2,), minval=0.08, maxval=0.35)
        az = jax.random.uniform(jax.random.fold_in(ka, 1), (), minval=0.3, maxval=0.9)
        angle = jax.random.uniform(kr, (), minval=0.0, maxval=jnp.pi)
        value = jax.random.uniform(kv, (), minval=-0.4, maxval=0.3)
        m = ellipsoid_mask(shape, (cz, cy, cx), (az, ay, ax), angle) & inner
        vol = vol + jnp.where(m, value, 0.0)
    return jnp.clip(vol, 0.0, 1.0).astype(jnp.float32)


def random_cylinder_phantom(key: jax.Array, shape=(16, 32, 32), num_inner: int = 6) -> jax.Array:
    """Out-of-distribution phantom: a head cylinder (value 0.6) holding axis-aligned elliptic
    cylinders spanning a random z range and spheres, values in ``[0, 1]``."""
    check_key("key", key)
    shape = _check_shape(shape)
    num_inner = check_int("num_inner", num_inner, minimum=0)
    return _cylinder_phantom(key, shape, num_inner)


@partial(jax.jit, static_argnums=(1, 2))
def _cylinder_phantom(key, shape, num_inner):
    z, y, x = _grid(shape)
    vol = jnp.where((y / 0.85) ** 2 + (x / 0.8) ** 2 <= 1.0, 0.6, 0.0)
    for i, k in enumerate(jax.random.split(key, num_inner)):
        kc, ka, kv = jax.random.split(k, 3)
        cy, cx = jax.random.uniform(kc, (2,), minval=-0.45, maxval=0.45)
        r = jax.random.uniform(ka, (), minval=0.08, maxval=0.25)
        value = jax.random.uniform(kv, (), minval=-0.5, maxval=0.4)
        if i % 2 == 0:
            z0, z1 = jnp.sort(jax.random.uniform(jax.random.fold_in(kc, 1), (2,), minval=-1.0, maxval=1.0))
            m = ((y - cy) ** 2 + ((x - cx) / 0.7) ** 2 <= r**2) & (z >= z0) & (z <= z1)
        else:
            cz = jax.random.uniform(jax.random.fold_in(kc, 2), (), minval=-0.6, maxval=0.6)
            m = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= (1.5 * r) ** 2
        vol = vol + jnp.where(m & (vol > 0), value, 0.0)
    return jnp.clip(vol, 0.0, 1.0).astype(jnp.float32)


def phantom_batch(key: jax.Array, n: int, shape=(16, 32, 32), family: str = "ellipsoid", **kwargs) -> jax.Array:
    """``n`` independent phantoms, shape ``(n, D, H, W)``; ``family`` is ``"ellipsoid"`` or ``"cylinder"``."""
    n = check_int("n", n, minimum=1)
    makers = {"ellipsoid": random_ellipsoid_phantom, "cylinder": random_cylinder_phantom}
    if family not in makers:
        raise ValueError(f"unknown phantom family {family!r}; valid: {sorted(makers)}")
    return jnp.stack([makers[family](k, shape, **kwargs) for k in jax.random.split(key, n)])
