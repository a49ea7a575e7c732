"""Block sparsity: whole ``(bk, bn)`` tiles of a weight are kept or pruned together, ranked by the
L2 norm of a score over the tile (default ``|w|``, i.e. the block's Frobenius norm).

The blocks tile the trailing two axes ``(K, N)`` of a kernel in the flax layout: ``Dense`` ``(in, out)``
and ``Conv`` ``(*window, in, out)``; leading axes index separate ``(K, N)`` slices whose blocks are
ranked together with all others. With ``bk`` dividing ``in``, a block of a conv slice is also a block
of the im2col matrix ``(prod(window) * in, out)``, so the same mask serves the block-sparse matmul
kernel (`sparsejax.kernels.block_sparse_matmul`). Tiles of ``(16, 16)`` or larger feed a tensor-core
MMA directly (see the kernels' docstring for the block sizes per backend).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.validation import check_array, check_finite_array, check_int, check_number

__all__ = ["block_mask", "block_norms", "is_block_sparse"]


def _check_blocks(shape, block_shape) -> tuple[int, int]:
    if not isinstance(block_shape, (tuple, list)) or len(block_shape) != 2:
        raise ValueError(f"block_shape must be a pair (bk, bn), got {block_shape!r}")
    bk = check_int("block_shape[0]", block_shape[0], minimum=1)
    bn = check_int("block_shape[1]", block_shape[1], minimum=1)
    if len(shape) < 2:
        raise ValueError(f"block sparsity needs a kernel with ndim >= 2, got shape {tuple(shape)}")
    k, n = shape[-2], shape[-1]
    if k % bk or n % bn:
        raise ValueError(f"block_shape {(bk, bn)} must divide the trailing (K, N) = {(k, n)} of shape "
                         f"{tuple(shape)}")
    return bk, bn


def _tiles(x: jax.Array, bk: int, bn: int) -> jax.Array:
    """``(..., K/bk, N/bn, bk, bn)`` view of the trailing two axes."""
    *lead, k, n = x.shape
    return jnp.swapaxes(x.reshape(*lead, k // bk, bk, n // bn, bn), -3, -2)


def block_norms(w: jax.Array, block_shape: tuple[int, int]) -> jax.Array:
    """L2 norm of every ``(bk, bn)`` block of the trailing two axes: shape ``(..., K/bk, N/bn)``."""
    w = jnp.asarray(w)
    bk, bn = _check_blocks(w.shape, block_shape)
    check_finite_array("w", w)
    t = _tiles(w.astype(jnp.float32), bk, bn)
    return jnp.sqrt(jnp.sum(jnp.square(t), axis=(-2, -1)))


def block_mask(w: jax.Array, block_shape: tuple[int, int], sparsity: float, *, score: jax.Array | None = None
               ) -> jax.Array:
    """Bool mask shaped like ``w`` that keeps exactly ``round((1 - sparsity) * n_blocks)`` whole
    ``(bk, bn)`` blocks: those with the largest L2 norm of ``score`` (shape of ``w``, default
    ``|w|``). Ties go to the block earlier in row-major block order, so the count is exact.

    ``sparsity`` may be traced (for gradual schedules under ``jit``); a concrete one must lie in
    ``[0, 1]``. Raises ``ValueError`` unless ``bk`` divides ``K`` and ``bn`` divides ``N``.
    """
    check_array("w", w)
    w = jnp.asarray(w)
    bk, bn = _check_blocks(w.shape, block_shape)
    sparsity = check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, allow_traced=True)
    if score is None:
        score = jnp.abs(w)
    else:
        check_array("score", score, shape=tuple(w.shape))
        check_finite_array("score", score)
        score = jnp.asarray(score)
    check_finite_array("w", w)
    norms = block_norms(score, (bk, bn))
    k = keep_count(1.0 - jnp.asarray(sparsity, jnp.float32), norms.size)
    keep = top_k_mask(norms, k)  # (..., K/bk, N/bn)
    full = jnp.repeat(jnp.repeat(keep, bk, axis=-2), bn, axis=-1)
    return full.reshape(w.shape)


def is_block_sparse(mask: jax.Array, block_shape: tuple[int, int]) -> jax.Array:
    """True iff every ``(bk, bn)`` block of ``mask != 0`` is all kept or all pruned."""
    m = jnp.asarray(mask) != 0
    bk, bn = _check_blocks(m.shape, block_shape)
    t = _tiles(m, bk, bn)
    return jnp.all(jnp.all(t, axis=(-2, -1)) | jnp.all(~t, axis=(-2, -1)))
