"""Fine-grained group sparsity (SparseByteNN, P28): whole groups of ``g`` consecutive weights along
the input (reduction) axis -- or, with ``axis=-1``, along the output axis -- are kept or pruned
together, ranked by their group L2 norm (the whole-network channel rearrangement that clusters
important weights into groups is :mod:`sparsejax.structured.rearrange`).

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

from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.sparsity_types import Group, ranks_last
from sparsejax.core.tree import path_str, select
from sparsejax.core.validation import check_array, check_index_range, check_int, check_number, is_traced, check_type


def _check_group(shape, g: int, axis: int) -> int:
    if not isinstance(g, (int, np.integer)) or g < 1:
        raise ValueError(f"group size g must be a positive int, got {g!r}")
    if len(shape) < 2:
        raise ValueError(f"group sparsity needs a weight w with ndim >= 2, got shape {tuple(shape)}")
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


def _check_count(total: int, sparsity, where: str) -> None:
    """Concrete sparsity: raise when ``round((1 - s) * total)`` would prune every group."""
    if is_traced(sparsity):
        return
    s = check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    if int(keep_count(1.0 - s, total)) == 0:
        raise ValueError(f"{where}: sparsity {s} keeps round({1.0 - s:g} * {total}) = 0 of {total} groups, which "
                         f"prunes the whole layer; lower the sparsity or use a smaller group size")


def group_mask(w: jax.Array, g: int, sparsity: float, axis: int = -2, *, balanced: bool = False,
               scores: jax.Array | None = None) -> jax.Array:
    """Bool mask shaped like ``w`` that keeps the highest-scoring groups of ``g`` weights along ``axis``.

    ``scores`` (default: ``group_norms``) has the shape returned by ``group_norms``. With
    ``balanced=False`` exactly ``round((1 - sparsity) * #groups)`` best groups of the whole tensor
    are kept (layer-wise ranking); with ``balanced=True`` every output column (every slice over
    the other axes) keeps the same number, which gives a dense compressed layout without padding.
    Ties are broken towards the lower index, so the kept count is exact. ``sparsity`` may be
    traced; a concrete one that would keep no group raises ``ValueError`` (nothing is clamped).
    """
    w = jnp.asarray(w)
    axis = _check_group(w.shape, g, axis)
    stype = Group(int(g), axis, balanced)
    s = group_norms(w, g, axis) if scores is None else jnp.asarray(scores, jnp.float32)
    expected = (*jnp.moveaxis(w, axis, -1).shape[:-1], w.shape[axis] // g)
    if s.shape != expected:
        raise ValueError(f"scores shape {s.shape} != group shape {expected}")
    _check_count(s.shape[-1] if balanced else s.size, sparsity, "group_mask")
    density = 1.0 - sparsity if is_traced(sparsity) else 1.0 - float(sparsity)
    if balanced:
        keep = ranks_last(s) < keep_count(density, s.shape[-1])
    else:
        keep = top_k_mask(s, keep_count(density, s.size))
    return stype.expand(keep, w.shape)


def group_masks(params, g: int, sparsity: float, *, balanced: bool = False, predicate=None, axis: int = -2):
    """Mask pytree (``None`` at non-sparsified leaves) with ``group_mask`` applied along ``axis`` of
    every sparsifiable leaf: ``-2``, the input axis of flax ``Dense`` ``(in, out)`` and ``Conv``
    ``(..., in, out)`` kernels (groups of consecutive input channels for one output), or ``-1``,
    the output axis (groups of consecutive output channels for one input, the 1 x N layout of
    mobile sparse engines). Composes with ``sparsejax.keep_mask`` like the core masks."""
    chosen = select(params, predicate)

    def leaf(path, c, p):
        if c is None:
            return None
        where = f"params leaf {path_str(path)!r}"
        try:
            return group_mask(p, g, sparsity, axis, balanced=balanced)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    return jax.tree_util.tree_map_with_path(leaf, chosen, params, is_leaf=lambda x: x is None)


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
    """Dense ``(K, N)`` weight with zeros in the pruned groups.

    Checks the format first: ``g`` divides ``K``, ``values`` is ``(slots, g, N)``, ``group_idx`` is
    ``(slots, N)`` with entries in ``[0, K // g)`` (concrete; traced: dtype only), and no column
    lists a group twice with non-zero values, so corrupt indices raise instead of being dropped."""
    if len(c.shape) != 2:
        raise ValueError(f"GroupCompressed.shape must be (K, N), got {c.shape}")
    k, n = (int(d) for d in c.shape)
    g = check_int("g", c.g, minimum=1)
    if k % g:
        raise ValueError(f"g={g} does not divide K={k}")
    check_array("values", c.values, shape=(None, g, n))
    check_array("group_idx", c.group_idx, shape=(c.values.shape[0], n), dtype_kind="iu")
    check_index_range("group_idx", c.group_idx, k // g)
    if not is_traced(c.group_idx) and not is_traced(c.values):
        idx = np.asarray(c.group_idx).astype(np.int64)
        live = np.abs(np.asarray(c.values)).sum(axis=1) > 0  # (slots, N): padded slots are all-zero
        for col in range(n):
            used = idx[live[:, col], col]
            if used.size != np.unique(used).size:
                raise ValueError(f"group_idx lists a group twice in column {col} (corrupt compressed weight)")
    G = k // c.g
    onehot = c.group_idx.astype(jnp.int32)[:, None, :] == jnp.arange(G)[None, :, None]  # (slots, G, N)
    dense = jnp.einsum("tgn,trn->grn", onehot.astype(c.values.dtype), c.values)
    return dense.reshape(k, n)


def group_nbytes(c: GroupCompressed) -> int:
    """Exact bytes of the stored arrays (values + group indices, padding included)."""
    check_type("c", c, GroupCompressed)
    return int(c.values.nbytes + c.group_idx.nbytes)
