"""Fine-grained group sparsity (SparseByteNN, P28): whole groups of ``g`` consecutive weights along
the input (reduction) axis are kept or pruned together, ranked by their group L2 norm.

For a weight ``W`` of shape ``(K, N)`` (flax ``Dense`` layout: input axis first) the input axis is
split into ``G = K // g`` groups for every output column ``c``; group ``(j, c)`` is the vector
``W[j*g:(j+1)*g, c]``. The granularity sits between unstructured (``g = 1``) and channel pruning
(``g = K``); a kept group is a dense, vectorisable run of ``g`` weights, which is what the
SparseByteNN kernels exploit. Compressed storage keeps, per output column, the kept groups and
their group indices (a block-sparse-row format with ``1 x g`` blocks, also used by GQSA, P3).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def _check_group(shape, g: int, axis: int) -> int:
    if not isinstance(g, (int, np.integer)) or g < 1:
        raise ValueError(f"group size g must be a positive int, got {g!r}")
    if len(shape) < 2:
        raise ValueError(f"group sparsity needs a weight with ndim >= 2, got shape {tuple(shape)}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} out of range for shape {tuple(shape)}")
    axis = axis % len(shape)
    if shape[axis] % g:
        raise ValueError(f"input axis {axis} has length {shape[axis]}, not divisible by group size g={g}")
    return axis


def _grouped(w: jax.Array, g: int, axis: int) -> jax.Array:
    """``(..., G, g)`` view with the grouped axis moved last and split into groups."""
    moved = jnp.moveaxis(w, axis, -1)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // g, g)


def group_norms(w: jax.Array, g: int, axis: int = -2) -> jax.Array:
    """L2 norm of every group of ``g`` consecutive weights along ``axis`` (the SparseByteNN
    pruning criterion). Shape: ``w`` with ``axis`` moved last and divided by ``g``."""
    w = jnp.asarray(w)
    axis = _check_group(w.shape, g, axis)
    return jnp.sqrt(jnp.sum(jnp.square(_grouped(w, g, axis).astype(jnp.float32)), axis=-1))


def _keep_count(total: int, sparsity: float) -> int:
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return max(1, int(round(total * (1.0 - float(sparsity)))))


def group_mask(w: jax.Array, g: int, sparsity: float, axis: int = -2, *, balanced: bool = False,
               scores: jax.Array | None = None) -> jax.Array:
    """Bool mask shaped like ``w`` that keeps the highest-scoring groups of ``g`` weights along ``axis``.

    ``scores`` (default: ``group_norms``) has the shape returned by ``group_norms``. With
    ``balanced=False`` the ``round((1 - sparsity) * #groups)`` best groups of the whole tensor are kept
    (layer-wise ranking); with ``balanced=True`` every output column (every slice over the other axes)
    keeps the same number of groups, which gives a dense compressed layout without padding.
    Ties are broken towards the lower index, so the kept count is exact.
    """
    w = jnp.asarray(w)
    axis = _check_group(w.shape, g, axis)
    s = group_norms(w, g, axis) if scores is None else jnp.asarray(scores, jnp.float32)
    expected = (*jnp.moveaxis(w, axis, -1).shape[:-1], w.shape[axis] // g)
    if s.shape != expected:
        raise ValueError(f"scores shape {s.shape} != group shape {expected}")
    if balanced:
        k = _keep_count(s.shape[-1], sparsity)
        order = jnp.argsort(-s, axis=-1, stable=True)
        ranks = jnp.argsort(order, axis=-1, stable=True)
        keep = ranks < k
    else:
        k = _keep_count(s.size, sparsity)
        order = jnp.argsort(-s.reshape(-1), stable=True)
        keep = (jnp.zeros(s.size, bool).at[order[:k]].set(True)).reshape(s.shape)
    full = jnp.repeat(keep, g, axis=-1)
    return jnp.moveaxis(full, -1, axis)


def group_masks(params, g: int, sparsity: float, *, balanced: bool = False, predicate=None):
    """Mask pytree (``None`` at non-sparsified leaves) with ``group_mask`` applied along the input
    axis (``-2``: flax ``Dense`` ``(in, out)`` and ``Conv`` ``(..., in, out)`` kernels) of every
    sparsifiable leaf. Composes with ``sparsejax.masked`` like the core masks."""
    from sparsejax.core.tree import select

    chosen = select(params, predicate)
    return jax.tree_util.tree_map(
        lambda c, p: None if c is None else group_mask(p, g, sparsity, -2, balanced=balanced),
        chosen, params, is_leaf=lambda x: x is None,
    )


def is_group_sparse(w: jax.Array, g: int, axis: int = -2) -> jax.Array:
    """True iff every group of ``g`` consecutive entries along ``axis`` is all-zero or all-non-zero
    for the mask ``w != 0`` (use on a bool mask)."""
    m = _grouped(jnp.asarray(w) != 0, g, _check_group(jnp.shape(w), g, axis))
    return jnp.all(jnp.all(m, -1) | jnp.all(~m, -1))


class GroupCompressed(NamedTuple):
    """Group-sparse ``(K, N)`` matrix: per output column ``c`` slot ``t`` holds the kept group
    ``group_idx[t, c]`` with values ``values[t, :, c]`` (``g`` weights). Columns with fewer kept groups
    than ``slots`` are padded with zero groups (index 0), counted in the footprint."""

    values: jax.Array      # (slots, g, N)
    group_idx: jax.Array   # (slots, N), uint8 when G <= 256 else uint16 / int32
    g: int
    shape: tuple[int, int]


def index_dtype(num_groups: int):
    """Smallest unsigned dtype that holds group indices ``0 .. num_groups - 1``."""
    if num_groups <= 256:
        return jnp.uint8
    if num_groups <= 65536:
        return jnp.uint16
    return jnp.int32


def kept_group_slots(mask: jax.Array, g: int) -> tuple[np.ndarray, int]:
    """Host-side: (per-column kept-group indices sorted ascending, padded with -1) and the slot count
    (max kept groups over columns). ``mask`` is a ``(K, N)`` bool group mask."""
    mask = np.asarray(mask)
    _check_group(mask.shape, g, 0)
    if mask.ndim != 2:
        raise ValueError(f"group compression needs a 2-D (K, N) weight, got shape {mask.shape}")
    keep = mask.reshape(mask.shape[0] // g, g, mask.shape[1]).any(axis=1)  # (G, N)
    slots = max(1, int(keep.sum(axis=0).max()))
    # stable sort puts kept groups first in ascending order, then the pruned ones
    order = np.argsort(~keep, axis=0, kind="stable")[:slots]
    taken = np.take_along_axis(keep, order, axis=0)
    return np.where(taken, order, -1), slots


def group_compress(w: jax.Array, g: int, mask: jax.Array | None = None) -> GroupCompressed:
    """Compress a ``(K, N)`` weight whose pruned groups are given by ``mask`` (default ``w != 0``).
    Host-side (the slot count is data dependent). The kernels serve block-shared groups instead
    (`sparsejax.kernels.BlockSparse`): per-column group lists cannot feed an MMA."""
    w = jnp.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"group compression needs a 2-D (K, N) weight, got shape {w.shape}")
    mask = (w != 0) if mask is None else jnp.asarray(mask, bool)
    if mask.shape != w.shape:
        raise ValueError(f"mask shape {mask.shape} != weight shape {w.shape}")
    idx, _ = kept_group_slots(mask, g)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    grouped = jnp.where(mask, w, 0).reshape(w.shape[0] // g, g, w.shape[1])  # (G, g, N)
    vals = jnp.take_along_axis(grouped, jnp.asarray(safe)[:, None, :], axis=0)  # (slots, g, N)
    vals = jnp.where(jnp.asarray(valid)[:, None, :], vals, 0)
    gidx = jnp.asarray(safe, index_dtype(w.shape[0] // g))
    return GroupCompressed(vals, gidx, int(g), tuple(w.shape))


def group_decompress(c: GroupCompressed) -> jax.Array:
    """Dense ``(K, N)`` weight with zeros in the pruned groups."""
    k, n = c.shape
    G = k // c.g
    onehot = c.group_idx.astype(jnp.int32)[:, None, :] == jnp.arange(G)[None, :, None]  # (slots, G, N)
    dense = jnp.einsum("tgn,trn->grn", onehot.astype(c.values.dtype), c.values)
    return dense.reshape(k, n)


def group_nbytes(c: GroupCompressed) -> int:
    """Exact bytes of the stored arrays (values + group indices, padding included)."""
    return int(c.values.nbytes + c.group_idx.nbytes)
