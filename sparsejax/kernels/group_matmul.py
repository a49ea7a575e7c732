"""Group-sparse matmuls ``y = x @ W`` from the kept-groups format (P28 fine-grained group sparsity)
and its 2/4/8-bit dequantizing variant (P3 GQSA).

``W`` is ``(K, N)`` with ``G = K // g`` groups of ``g`` consecutive rows per output column. Per column
``c`` and slot ``t < slots`` the format stores the group index ``group_idx[t, c]`` and either the ``g``
values ``values[t, :, c]`` or their packed codes ``packed[t, :, c]`` (``g * bits / 8`` bytes) with a
per-group ``scales[t, c]`` and ``zeros[t, c]``: ``w = (q - zero) * scale`` (GQSA Eq. 1). Padded slots
carry zero values (zero scale).

Kernel layout (Pallas, Triton lowering on GPU): the grid tiles the output into ``(block_m, block_n)``
tiles; each program walks the reduction axis ``block_groups`` groups at a time, matches the stored
group indices of its ``block_n`` columns against the groups of the chunk, and for every in-group
offset ``r < g`` rebuilds the ``(block_groups, block_n)`` slab of ``W`` rows ``G*g + r`` (dequantizing
on the fly in the quantized kernel) and multiplies it with the strided columns ``x[:, G*g + r]``.
Only the kept groups are read from memory; the dense ``W`` never exists in HBM. On a GPU
``block_m``, ``block_n`` and ``block_groups`` must be powers of two and at least 16.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from sparsejax.kernels._util import check_matrix, pick_block, resolve_interpret
from sparsejax.quant.packing import SUPPORTED_BITS, unpack_codes


def _check_group_args(x, group_idx, slots_g_n, g):
    check_matrix("x", x, 2)
    check_matrix("group_idx", group_idx, 2)
    slots, n = slots_g_n
    if group_idx.shape != (slots, n):
        raise ValueError(f"group_idx shape {group_idx.shape} != (slots, N) = {(slots, n)}")
    if not jnp.issubdtype(group_idx.dtype, jnp.integer):
        raise TypeError(f"group_idx must be integer, got {group_idx.dtype}")
    if x.shape[1] % g:
        raise ValueError(f"reduction length K={x.shape[1]} is not divisible by the group size g={g}")


def _dense_from_groups(vals, group_idx, k):
    """``(slots, g, N)`` kept groups -> dense ``(K, N)``."""
    slots, g, n = vals.shape
    onehot = group_idx.astype(jnp.int32)[:, None, :] == jnp.arange(k // g)[None, :, None]
    dense = jnp.einsum("tGn,trn->Grn", onehot.astype(vals.dtype), vals,
                       precision=jax.lax.Precision.HIGHEST)
    return dense.reshape(k, n)


def _dequantize(packed, scales, zeros, bits):
    codes = unpack_codes(packed, bits, axis=1).astype(jnp.float32)
    return (codes - zeros[:, None, :].astype(jnp.float32)) * scales[:, None, :].astype(jnp.float32)


# ----------------------------------------------------------------------------------------------
# plain-jnp references (same signatures as the kernels; block / interpret arguments are ignored)


def group_sparse_matmul_reference(x, values, group_idx, *, block_m: int | None = None,
                                  block_n: int | None = None, block_groups: int | None = None,
                                  interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W`` for group-sparse ``W`` given as ``values (slots, g, N)`` + ``group_idx``."""
    if values.ndim != 3:
        raise ValueError(f"values must be (slots, g, N), got shape {values.shape}")
    _check_group_args(x, group_idx, (values.shape[0], values.shape[2]), values.shape[1])
    w = _dense_from_groups(values.astype(jnp.float32), group_idx, x.shape[1])
    return jnp.dot(x.astype(jnp.float32), w, precision=jax.lax.Precision.HIGHEST).astype(x.dtype)


def group_sparse_dequant_matmul_reference(x, packed, scales, zeros, group_idx, *, bits: int = 4,
                                          block_m: int | None = None, block_n: int | None = None,
                                          block_groups: int | None = None,
                                          interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W`` for group-sparse, group-quantized ``W``: unpack, dequantize, matmul."""
    _check_dequant_args(x, packed, scales, zeros, group_idx, bits)
    vals = _dequantize(packed, scales, zeros, bits)
    w = _dense_from_groups(vals, group_idx, x.shape[1])
    return jnp.dot(x.astype(jnp.float32), w, precision=jax.lax.Precision.HIGHEST).astype(x.dtype)


def _check_dequant_args(x, packed, scales, zeros, group_idx, bits):
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    if packed.ndim != 3 or packed.dtype != jnp.uint8:
        raise ValueError(f"packed must be uint8 (slots, g*bits/8, N), got {packed.dtype} {packed.shape}")
    slots, nbytes, n = packed.shape
    g = nbytes * (8 // bits)
    if scales.shape != (slots, n) or zeros.shape != (slots, n):
        raise ValueError(f"scales {scales.shape} / zeros {zeros.shape} must be (slots, N) = {(slots, n)}")
    _check_group_args(x, group_idx, (slots, n), g)
    return g


# ----------------------------------------------------------------------------------------------
# Pallas kernels


def _group_kernel_body(x_ref, gidx_ref, o_ref, slab_fn, *, g, bg, num_chunks):
    """Shared body: ``slab_fn(r)`` returns the ``(slots, bn)`` float32 values of in-group row ``r``."""
    bm, bn = o_ref.shape
    gidx = gidx_ref[...].astype(jnp.int32)  # (slots, bn)

    def chunk(c, acc):
        g0 = c * bg
        groups = g0 + jax.lax.broadcasted_iota(jnp.int32, (1, bg, 1), 1)
        hit = gidx[:, None, :] == groups  # (slots, bg, bn)

        def row(r, acc):
            vals = slab_fn(r)  # (slots, bn)
            w_r = jnp.sum(jnp.where(hit, vals[:, None, :], 0.0), axis=0)  # (bg, bn)
            x_r = x_ref[:, pl.ds(g0 * g + r, bg, stride=g)].astype(jnp.float32)
            return acc + jnp.dot(x_r, w_r, preferred_element_type=jnp.float32)

        return jax.lax.fori_loop(0, g, row, acc)

    acc = jax.lax.fori_loop(0, num_chunks, chunk, jnp.zeros((bm, bn), jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


def _plain_kernel(x_ref, v_ref, gidx_ref, o_ref, *, g, bg, num_chunks):
    slab = lambda r: v_ref[:, r, :].astype(jnp.float32)
    _group_kernel_body(x_ref, gidx_ref, o_ref, slab, g=g, bg=bg, num_chunks=num_chunks)


def _dequant_kernel(x_ref, p_ref, s_ref, z_ref, gidx_ref, o_ref, *, bits, g, bg, num_chunks):
    per_byte = 8 // bits
    scales = s_ref[...].astype(jnp.float32)
    zeros = z_ref[...].astype(jnp.float32)

    def slab(r):
        byte = p_ref[:, r // per_byte, :].astype(jnp.int32)
        code = jnp.right_shift(byte, (r % per_byte) * bits) & (2**bits - 1)
        return (code.astype(jnp.float32) - zeros) * scales

    _group_kernel_body(x_ref, gidx_ref, o_ref, slab, g=g, bg=bg, num_chunks=num_chunks)


def _blocks(x, n, g, block_m, block_n, block_groups):
    mm, k = x.shape
    bm = pick_block("block_m", mm, block_m, 64)
    bn = pick_block("block_n", n, block_n, 64)
    bg = pick_block("block_groups", k // g, block_groups, 32)
    return mm, k, bm, bn, bg


@functools.partial(jax.jit, static_argnames=("block_m", "block_n", "block_groups", "interpret"))
def group_sparse_matmul(x, values, group_idx, *, block_m: int | None = None, block_n: int | None = None,
                        block_groups: int | None = None, interpret: bool | None = None) -> jax.Array:
    """Pallas ``x @ W`` for group-sparse ``W``: ``x (M, K)``, ``values (slots, g, N)``, ``group_idx
    (slots, N)``. Block sizes must divide ``M``, ``N`` and ``K/g`` (``ValueError`` otherwise)."""
    if values.ndim != 3:
        raise ValueError(f"values must be (slots, g, N), got shape {values.shape}")
    slots, g, n = values.shape
    _check_group_args(x, group_idx, (slots, n), g)
    mm, k, bm, bn, bg = _blocks(x, n, g, block_m, block_n, block_groups)
    kernel = functools.partial(_plain_kernel, g=g, bg=bg, num_chunks=k // g // bg)
    return pl.pallas_call(
        kernel,
        grid=(mm // bm, n // bn),
        in_specs=[
            pl.BlockSpec((bm, k), lambda i, j: (i, 0)),
            pl.BlockSpec((slots, g, bn), lambda i, j: (0, 0, j)),
            pl.BlockSpec((slots, bn), lambda i, j: (0, j)),
        ],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        out_shape=jax.ShapeDtypeStruct((mm, n), x.dtype),
        interpret=resolve_interpret(interpret),
    )(x, values, group_idx)


@functools.partial(jax.jit, static_argnames=("bits", "block_m", "block_n", "block_groups", "interpret"))
def group_sparse_dequant_matmul(x, packed, scales, zeros, group_idx, *, bits: int = 4,
                                block_m: int | None = None, block_n: int | None = None,
                                block_groups: int | None = None,
                                interpret: bool | None = None) -> jax.Array:
    """Pallas ``x @ W`` for GQSA-compressed ``W``: ``packed (slots, g*bits/8, N)`` uint8 codes,
    ``scales``/``zeros``/``group_idx`` ``(slots, N)``; dequantizes kept groups in registers."""
    g = _check_dequant_args(x, packed, scales, zeros, group_idx, bits)
    slots, nbytes, n = packed.shape
    mm, k, bm, bn, bg = _blocks(x, n, g, block_m, block_n, block_groups)
    kernel = functools.partial(_dequant_kernel, bits=bits, g=g, bg=bg, num_chunks=k // g // bg)
    col = lambda i, j: (0, j)
    return pl.pallas_call(
        kernel,
        grid=(mm // bm, n // bn),
        in_specs=[
            pl.BlockSpec((bm, k), lambda i, j: (i, 0)),
            pl.BlockSpec((slots, nbytes, bn), lambda i, j: (0, 0, j)),
            pl.BlockSpec((slots, bn), col),
            pl.BlockSpec((slots, bn), col),
            pl.BlockSpec((slots, bn), col),
        ],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        out_shape=jax.ShapeDtypeStruct((mm, n), x.dtype),
        interpret=resolve_interpret(interpret),
    )(x, packed, scales, zeros, group_idx)
