"""Compressed storage for N:M sparse weights: the kept values plus their in-group positions.

Along the compressed axis (the input / reduction axis of a weight, length ``K``) the entries are
split into ``K // m`` groups of ``m`` consecutive entries; each group stores exactly ``n`` values
(in ascending position order) and ``n`` positions in ``[0, m)``. This is the layout sparse tensor
cores consume for 2:4; `sparsejax.kernels.to_nm24` repacks 2:4 weights with 2-bit positions for
`sparsejax.kernels.nm24_matmul`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_index_range, is_traced, check_type, check_int


class NMCompressed(NamedTuple):
    """An N:M sparse array: ``values`` and ``indices`` have the compressed axis of length
    ``K * n // m``; ``indices`` (int8) hold each value's position inside its group of ``m``."""

    values: jax.Array
    indices: jax.Array
    n: int
    m: int
    axis: int
    shape: tuple[int, ...]


def _check_nm(shape, n: int, m: int, axis: int) -> int:
    if not (isinstance(n, (int, np.integer)) and isinstance(m, (int, np.integer))):
        raise TypeError(f"n and m must be ints, got {type(n).__name__}, {type(m).__name__}")
    if not 0 < n < m or m > 127:
        raise ValueError(f"need 0 < n < m <= 127, got n={n}, m={m}")
    if len(shape) == 0:
        raise ValueError("cannot N:M-compress a scalar")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} out of range for shape {tuple(shape)}")
    axis = axis % len(shape)
    if shape[axis] % m:
        raise ValueError(f"axis {axis} has length {shape[axis]}, not divisible by m={m}")
    return axis


def nm_compress(x: jax.Array, n: int, m: int, axis: int = -2) -> NMCompressed:
    """Keep the ``n`` largest-magnitude entries of every ``m`` consecutive entries along ``axis``
    (ties broken by the lower position) and store them as values + positions. ``axis`` defaults
    to ``-2``, the input axis of flax kernels (the one rule of :mod:`sparsejax.structured.nm`).

    Entries already zero are stored as explicit zeros when a group has fewer than ``n`` non-zeros,
    so ``nm_decompress(nm_compress(x))`` equals ``x`` exactly whenever ``x`` is already N:M sparse.
    """
    x = jnp.asarray(x)
    axis = _check_nm(x.shape, n, m, axis)
    moved = jnp.moveaxis(x, axis, -1)
    groups = moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m)
    # top-n by magnitude (stable: lower position first on ties), then back to ascending position
    order = jnp.argsort(-jnp.abs(groups), axis=-1, stable=True)[..., :n]
    pos = jnp.sort(order, axis=-1)
    vals = jnp.take_along_axis(groups, pos, axis=-1)
    out_shape = (*moved.shape[:-1], moved.shape[-1] // m * n)
    values = jnp.moveaxis(vals.reshape(out_shape), -1, axis)
    indices = jnp.moveaxis(pos.astype(jnp.int8).reshape(out_shape), -1, axis)
    return NMCompressed(values, indices, int(n), int(m), axis, tuple(x.shape))


def nm_decompress(c: NMCompressed) -> jax.Array:
    """Dense array of ``c.shape`` with the stored values at their positions and zeros elsewhere.

    Checks the format first: ``n``/``m``/``axis`` against ``shape``, ``values`` and ``indices`` of
    the compressed shape, positions in ``[0, m)`` and strictly increasing inside each group
    (concrete indices; a traced array is checked for dtype only), so corrupt indices raise
    instead of being dropped by the one-hot scatter."""
    shape = tuple(int(d) for d in c.shape)
    axis = _check_nm(shape, c.n, c.m, c.axis)
    n, m = int(c.n), int(c.m)
    want = shape[:axis] + (shape[axis] // m * n,) + shape[axis + 1:]
    check_array("values", c.values, shape=want)
    check_array("indices", c.indices, shape=want, dtype_kind="iu")
    check_index_range("indices", c.indices, m)
    vals = jnp.moveaxis(c.values, axis, -1)
    pos = jnp.moveaxis(c.indices, axis, -1).astype(jnp.int32)
    if not is_traced(c.indices):
        grouped = np.asarray(pos).reshape(*pos.shape[:-1], -1, n)
        if n > 1 and not (np.diff(grouped, axis=-1) > 0).all():
            raise ValueError("indices must be strictly increasing inside every group of n (duplicate or unsorted "
                             "positions would overwrite values)")
    vals = vals.reshape(*vals.shape[:-1], -1, n)
    pos = pos.reshape(*pos.shape[:-1], -1, n)
    onehot = pos[..., None] == jnp.arange(m)  # (..., G, n, m)
    dense = jnp.sum(jnp.where(onehot, vals[..., None], jnp.zeros((), vals.dtype)), axis=-2)
    dense = dense.reshape(*dense.shape[:-2], -1)
    return jnp.moveaxis(dense, -1, axis)


def nm_nbytes(c: NMCompressed, index_bits: int | None = None) -> int:
    """Exact storage in bytes: values at their dtype plus the positions, either as stored (int8,
    ``index_bits=None``) or bit-packed at ``index_bits`` bits each (2 for the 2:4 hardware
    metadata), rounded up to whole bytes."""
    check_type("c", c, NMCompressed)
    if index_bits is not None:
        check_int("index_bits", index_bits, minimum=1)
    count = int(np.prod(c.values.shape))
    if index_bits is None:
        return int(c.values.nbytes + c.indices.nbytes)
    if index_bits < int(np.ceil(np.log2(c.m))):
        raise ValueError(f"index_bits={index_bits} cannot hold positions in [0, {c.m})")
    return count * c.values.dtype.itemsize + (count * index_bits + 7) // 8
