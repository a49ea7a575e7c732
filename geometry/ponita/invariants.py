"""Bi-invariant attributes of point pairs on R^n, R^2 x S^1 and R^3 x S^2.

PΘNITA (Bekkers et al., ICLR 2024, Sec. 3, Thm. 1 and Eqs. 8-10) shares message weights between
pairs that are equivalent under SE(n) by conditioning the message function on attributes that
identify the equivalence class of the pair ``(x_i, x_j)`` (receiver i, sender j):

* R^n:           ``a_ij = |x_j - x_i|``                                                  (Eq. 8)
* R^3 x S^2:     ``a_ij = (o_i·x_ij, |x_ij - (o_i·x_ij) o_i|, o_i·o_j)`` with ``x_ij = x_j - x_i`` (Eq. 9)
* R^2 x S^1:     ``a_ij = (o_i·x_ij, o_i^⊥·x_ij, o_i·o_j)``  (signed second component, as in the
  official code, because SE(2) contains no reflection about o_i)

The paper's 3-tuple on R^3 x S^2 does not see the twist of ``o_j`` about ``o_i`` relative to
``x_ij`` (the quotient is 4-dimensional). ``complete=True`` appends ``o_j·x_ij`` and the triple
product ``det[o_i, x_ij, o_j]`` (in 2D: ``o_i^⊥·o_j``), which together separate every pair of
SE(n)-inequivalent generic point pairs; the separable PΘNITA layer only needs the fibre-bundle
attributes of :func:`fiber_bundle_attributes` (Sec. 4.2: spatial ``(o·x_ij, |x_ij ⊥ o|)`` per grid
orientation and the fibre attribute ``o·o'``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from sparsejax.core.validation import check_array, check_finite_array


def safe_norm(x: jax.Array, axis: int = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm with a zero (not NaN) gradient at the origin."""
    sq = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _check_dim(x: jax.Array, name: str, dims=(2, 3)) -> int:
    check_array(name, x, dtype_kind="f")
    check_finite_array(name, x)
    if x.ndim < 1 or x.shape[-1] not in dims:
        raise ValueError(f"{name} must end in a spatial axis of size {dims}, got shape {x.shape}")
    return x.shape[-1]


def distance_invariant(rel_pos: jax.Array) -> jax.Array:
    """R^n attribute (Eq. 8): ``|x_j - x_i|`` for ``rel_pos = x_j - x_i``, shape ``(..., 1)``."""
    _check_dim(rel_pos, "rel_pos")
    return safe_norm(rel_pos, keepdims=True)


def _perp(o: jax.Array) -> jax.Array:
    """Rotate 2D vectors by +90 degrees."""
    return jnp.stack([-o[..., 1], o[..., 0]], -1)


def position_orientation_invariants(
    rel_pos: jax.Array, ori_i: jax.Array, ori_j: jax.Array, complete: bool = False
) -> jax.Array:
    """Bi-invariant attributes of ``(x_i, o_i)``, ``(x_j, o_j)`` on R^n x S^{n-1} (Eq. 9), ``n`` in {2, 3}.

    ``rel_pos = x_j - x_i``; arrays broadcast against each other. Returns ``(..., 3)`` with
    ``(o_i·x_ij, |x_ij ⊥ o_i|, o_i·o_j)`` in 3D or ``(o_i·x_ij, o_i^⊥·x_ij, o_i·o_j)`` in 2D; with
    ``complete`` ``(..., 5)`` in 3D (adds ``o_j·x_ij`` and ``det[o_i, x_ij, o_j]``) and ``(..., 4)``
    in 2D (adds ``o_i^⊥·o_j``). All are unchanged by any rotation + translation of both pairs.
    """
    d = _check_dim(rel_pos, "rel_pos")
    _check_dim(ori_i, "ori_i", (d,))
    _check_dim(ori_j, "ori_j", (d,))
    along = jnp.sum(rel_pos * ori_i, -1)
    cos = jnp.sum(ori_i * ori_j, -1)
    if d == 3:
        ortho = safe_norm(rel_pos - along[..., None] * ori_i)
        parts = [along, ortho, cos]
        if complete:
            parts += [jnp.sum(rel_pos * ori_j, -1), jnp.sum(ori_i * jnp.cross(rel_pos, ori_j), -1)]
    else:
        parts = [along, jnp.sum(rel_pos * _perp(ori_i), -1), cos]
        if complete:
            parts.append(jnp.sum(_perp(ori_i) * ori_j, -1))
    parts = jnp.broadcast_arrays(*parts)
    return jnp.stack(parts, -1)


def fiber_bundle_attributes(rel_pos: jax.Array, grid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Separable attributes on the fibre bundle R^n x grid (Sec. 4.2, separable group convolution).

    ``rel_pos``: ``(..., n)`` = ``x_j - x_i``; ``grid``: ``(O, n)`` shared orientations.
    Returns ``spatial (..., O, 2)`` = ``(o·x_ij, |x_ij ⊥ o|)`` (2D: ``(o·x_ij, o^⊥·x_ij)``) for the
    receiving orientation ``o`` (the sender uses the same grid index), and ``fiber (O, O, k)`` =
    ``o·o'`` (k = 1; in 2D k = 2, adding ``o^⊥·o'`` so SE(2) is not confused with O(2)).
    """
    d = _check_dim(rel_pos, "rel_pos")
    if grid.ndim != 2 or grid.shape[-1] != d:
        raise ValueError(f"grid must be (num_ori, {d}), got shape {grid.shape}")
    rel = rel_pos[..., None, :]
    along = jnp.sum(rel * grid, -1)
    if d == 3:
        second = safe_norm(rel - along[..., None] * grid)
    else:
        second = jnp.sum(rel * _perp(grid), -1)
    spatial = jnp.stack([along, second], -1)
    fiber = (grid @ grid.T)[..., None]
    if d == 2:
        fiber = jnp.concatenate([fiber, (_perp(grid) @ grid.T)[..., None]], -1)
    return spatial, fiber
