"""Weight-only quantized matmuls: W4/W8 with group-wise scales and zero points (GQSA Eq. 1,
``w = (q - z) * s``), dense (`QuantizedWeight`) and block-sparse (`QuantBlockSparse`, GQSA W4 + S%).

Target: memory-bound decode (``M <= 16``), where the bytes of the weight decide the time: W4 moves
0.25x the bytes of bf16 (+ one f16 scale and one uint8 zero per group), W4 + 50% block sparsity
about 0.13x. Codes are unpacked and dequantized in registers to the activation dtype (bf16/f16/
f32) and fed to the MMA with an f32 accumulator; the dense weight never exists in memory.

Packing avoids in-kernel interleaves (Triton has no cheap reshape of register tiles): the
``8/bits`` codes of one byte come from rows (dense) or columns (blocks) that are a fixed stride
apart, so unpacking a byte tile gives ``8/bits`` contiguous sub-tiles, each an MMA operand.

* `QuantizedWeight`: ``packed (Kp/ppb, Np)``, byte ``p`` holding code rows ``p + i*Kp/ppb``
  (``ppb = 8/bits``, ``i < ppb``); ``scales``/``zeros`` ``(Kp/g, Np)``. ``K`` is padded to a multiple
  of ``g * ppb`` and ``N`` to a multiple of 16 (padding has scale 0). The kernel (grid
  ``(M/bm, N/bn)``) walks ``Kp/ppb`` packed rows ``g`` at a time: per chunk one byte tile, ``ppb``
  dequantized ``(g, bn)`` tiles and ``ppb`` MMAs with the matching ``x`` slices. ``g`` must be a
  power of two ``>= 16`` on GPU (``>= 128`` on TPU).
* `QuantBlockSparse`: kept ``(bk, bn)`` blocks as in `BlockSparse`, one quantization group per
  block column (``g = bk``): ``packed (nnzb, bk, bn/ppb)`` with byte column ``c`` holding block
  columns ``c + i*bn/ppb``, ``scales``/``zeros`` ``(nnzb, bn)``. The kernel iterates over kept blocks
  only, like `block_sparse_matmul`; ``bn/ppb`` must be ``>= 16`` on GPU.

Trade-off against GQSA's per-column group format: there every output column keeps its own groups,
so a kept group meets one column of ``W`` and cannot feed an MMA (a kernel must gather ``x`` per
column, on CUDA cores). Sharing the kept groups across a tile of ``bn`` columns costs accuracy
(coarser pattern) and buys MMA work proportional to the kept blocks.

Differentiation: ``custom_vjp`` with ``dx = dy W^T`` and the scale gradient (E2E-OQP trains the
scales with the codes frozen); codes and zero points are integers (no gradient).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from sparsejax.core.validation import check_array, check_finite_array, check_index_range, check_int, is_traced
from sparsejax.kernels._util import (
    block_grid,
    check_activations,
    check_compiled_tiles,
    check_tile,
    compiler_params,
    largest_tile,
    pad_axis,
    pick_block_m,
    resolve_backend,
    resolve_interpret,
    round_up,
)

__all__ = ["QuantizedWeight", "quantize_weight", "quantized_from_codes", "dequantize_weight", "quantized_matmul",
           "quantized_matmul_reference", "quantized_nbytes", "QuantBlockSparse", "to_quant_block_sparse",
           "dequantize_block_sparse", "block_sparse_quantized_matmul", "block_sparse_quantized_matmul_reference",
           "KERNEL_BITS"]

KERNEL_BITS = (4, 8)


def _check_bits(bits) -> int:
    bits = check_int("bits", bits)
    if bits not in KERNEL_BITS:
        raise ValueError(f"bits must be one of {KERNEL_BITS} for the quantized kernels, got {bits}")
    return bits


def _pack_split(codes: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Byte ``p`` along ``axis`` holds codes ``p + i * L`` (``L`` = length / codes per byte)."""
    ppb = 8 // bits
    parts = np.split(codes.astype(np.uint32), ppb, axis=axis)
    return sum(p << (i * bits) for i, p in enumerate(parts)).astype(np.uint8)


def _unpack_split(packed: jax.Array, bits: int, axis: int) -> jax.Array:
    ppb = 8 // bits
    p = packed.astype(jnp.int32)
    return jnp.concatenate([(p >> (i * bits)) & (2**bits - 1) for i in range(ppb)], axis=axis)


# ---------------------------------------------------------------------------------------------
# dense W4 / W8


@functools.partial(jax.tree_util.register_dataclass, data_fields=["packed", "scales", "zeros"],
                   meta_fields=["bits", "g", "shape"])
@dataclasses.dataclass(frozen=True)
class QuantizedWeight:
    """Group-quantized ``(K, N)`` weight in the kernel's split packing (module docstring)."""

    packed: jax.Array   # (Kp / (8 / bits), Np) uint8
    scales: jax.Array   # (Kp / g, Np) float16 / float32
    zeros: jax.Array    # (Kp / g, Np) uint8
    bits: int
    g: int
    shape: tuple[int, int]

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.packed.shape[0] * (8 // self.bits), self.packed.shape[1]


def quantized_from_codes(codes, scale, zero, bits: int, g: int, *, scale_dtype=jnp.float16) -> QuantizedWeight:
    """Pack integer ``codes (K, N)`` in ``[0, 2**bits)`` with per-group ``scale``/``zero`` ``(K/g, N)``
    (zero an integer in ``[0, 2**bits)``). Out-of-range codes or zero points raise (nothing is masked)."""
    bits = _check_bits(bits)
    g = check_tile("g", g, minimum=1)
    check_array("codes", codes, ndim=2, dtype_kind="iu")
    k, n = codes.shape
    if k % g:
        raise ValueError(f"g={g} must divide K={k}")
    check_array("scale", scale, shape=(k // g, n), dtype_kind="f")
    check_array("zero", zero, shape=(k // g, n))
    check_finite_array("scale", scale)
    check_index_range("codes", codes, 2**bits)
    z = np.asarray(zero)
    if not np.all(np.isfinite(z)) or np.any(z != np.round(z)) or z.min(initial=0) < 0 or z.max(initial=0) >= 2**bits:
        raise ValueError(f"zero must hold integers in [0, {2**bits}), got values in [{z.min()}, {z.max()}]")
    ppb = 8 // bits
    kp, np_ = round_up(k, g * ppb), round_up(n, 16)
    c = np.zeros((kp, np_), np.uint8)
    c[:k, :n] = np.asarray(codes)
    s = np.zeros((kp // g, np_), np.float32)
    s[: k // g, :n] = np.asarray(scale, np.float32)
    zz = np.zeros((kp // g, np_), np.uint8)
    zz[: k // g, :n] = z.astype(np.uint8)
    return QuantizedWeight(jnp.asarray(_pack_split(c, bits, 0)), jnp.asarray(s, scale_dtype), jnp.asarray(zz),
                           bits, g, (int(k), int(n)))


def quantize_weight(w, bits: int, g: int, *, scale_dtype=jnp.float16) -> QuantizedWeight:
    """Min/max group quantization of a float ``(K, N)`` weight (`sparsejax.quant.minmax_params`)."""
    from sparsejax.quant.group_quant import minmax_params, quantize

    check_array("w", w, ndim=2, dtype_kind="f")
    check_finite_array("w", w)
    bits = _check_bits(bits)
    g = check_tile("g", g, minimum=1)
    k, n = w.shape
    wp = pad_axis(jnp.asarray(w, jnp.float32), 0, round_up(k, g))  # ragged K: zero rows, sliced off on use
    scale, zero = minmax_params(wp, bits, g)
    qw = quantized_from_codes(quantize(wp, scale, zero, bits, g), scale, zero, bits, g, scale_dtype=scale_dtype)
    return dataclasses.replace(qw, shape=(int(k), int(n)))


def dequantize_weight(qw: QuantizedWeight) -> jax.Array:
    """Dense float32 ``(K, N)`` weight ``(q - z) * s``; jittable."""
    _check_quantized(qw)
    codes = _unpack_split(qw.packed, qw.bits, 0).astype(jnp.float32)
    g = qw.g
    w = (codes - jnp.repeat(qw.zeros.astype(jnp.float32), g, 0)) * jnp.repeat(qw.scales.astype(jnp.float32), g, 0)
    return w[: qw.shape[0], : qw.shape[1]]


def quantized_nbytes(qw) -> int:
    """Exact bytes of the stored arrays (packed codes, scales, zero points, indices if any; padding included)
    of a `QuantizedWeight` or a `QuantBlockSparse`."""
    _check_qbs(qw) if isinstance(qw, QuantBlockSparse) else _check_quantized(qw)
    return int(sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(qw)))


def _check_quantized(qw) -> QuantizedWeight:
    if not isinstance(qw, QuantizedWeight):
        raise TypeError(f"qw must be a QuantizedWeight, got {type(qw).__name__}")
    _check_bits(qw.bits)
    kp, np_ = qw.padded_shape
    check_array("qw.packed", qw.packed, ndim=2, dtype_kind="u")
    check_array("qw.scales", qw.scales, shape=(kp // qw.g, np_), dtype_kind="f")
    check_array("qw.zeros", qw.zeros, shape=(kp // qw.g, np_), dtype_kind="u")
    if qw.packed.dtype != jnp.uint8 or qw.zeros.dtype != jnp.uint8:
        raise TypeError(f"qw.packed and qw.zeros must be uint8, got {qw.packed.dtype} / {qw.zeros.dtype}")
    if not is_traced(qw.zeros):
        check_index_range("qw.zeros", qw.zeros, 2**qw.bits)
    return qw


def quantized_matmul_reference(x, qw: QuantizedWeight, *, block_m: int | None = None, block_n: int | None = None,
                               backend: str | None = None, interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W``: dequantize, cast to the dtype of ``x``, ``jnp.dot`` with f32 accumulation."""
    _check_quantized(qw)
    check_activations(x, qw.shape[0])
    w = dequantize_weight(qw).astype(x.dtype)
    return jnp.dot(x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def _dequant_tile(codes, z, s, dtype):
    return ((codes.astype(jnp.float32) - z.astype(jnp.float32)) * s.astype(jnp.float32)).astype(dtype)


def _q_triton_kernel(x_ref, p_ref, s_ref, z_ref, o_ref, *, bits, g, kh):
    ppb, mask = 8 // bits, 2**bits - 1
    chunks = kh // g

    def body(t, acc):
        p0 = pl.multiple_of(t * g, g)
        byte = p_ref[pl.ds(p0, g), :].astype(jnp.int32)  # (g, bn)
        for i in range(ppb):
            gi = t + i * chunks
            w = _dequant_tile((byte >> (i * bits)) & mask, z_ref[pl.ds(gi, 1), :], s_ref[pl.ds(gi, 1), :],
                              x_ref.dtype)
            xs = x_ref[:, pl.ds(pl.multiple_of(p0 + i * kh, g), g)]
            acc = acc + jnp.dot(xs, w, preferred_element_type=jnp.float32)
        return acc

    acc = jax.lax.fori_loop(0, chunks, body, jnp.zeros(o_ref.shape, jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


def _q_tpu_kernel(*refs, bits, g, chunks):
    ppb, mask = 8 // bits, 2**bits - 1
    x_refs, (p_ref, s_ref, z_ref, o_ref, acc_ref) = refs[:ppb], refs[ppb:]
    t = pl.program_id(2)

    @pl.when(t == 0)
    def _():
        acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

    byte = p_ref[...].astype(jnp.int32)
    for i in range(ppb):
        gi = t + i * chunks
        w = _dequant_tile((byte >> (i * bits)) & mask, z_ref[pl.ds(gi, 1), :], s_ref[pl.ds(gi, 1), :],
                          x_refs[i].dtype)
        acc_ref[...] += jnp.dot(x_refs[i][...], w, preferred_element_type=jnp.float32)

    @pl.when(t == chunks - 1)
    def _():
        o_ref[...] = acc_ref[...].astype(o_ref.dtype)


def _q_pallas(xp, packed, scales, zeros, *, bits, g, bm, bn, backend, interpret):
    mp, kp = xp.shape
    kh, np_ = packed.shape
    ppb = 8 // bits
    out_shape = jax.ShapeDtypeStruct((mp, np_), xp.dtype)
    if backend == "triton":
        return pl.pallas_call(
            functools.partial(_q_triton_kernel, bits=bits, g=g, kh=kh), grid=(mp // bm, np_ // bn),
            in_specs=[pl.BlockSpec((bm, kp), lambda i, j: (i, 0)), pl.BlockSpec((kh, bn), lambda i, j: (0, j)),
                      pl.BlockSpec(scales.shape[:1] + (bn,), lambda i, j: (0, j)),
                      pl.BlockSpec(zeros.shape[:1] + (bn,), lambda i, j: (0, j))],
            out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)), out_shape=out_shape, interpret=interpret,
            compiler_params=None if interpret else compiler_params("triton"),
        )(xp, packed, scales, zeros)
    from jax.experimental.pallas import tpu as pltpu

    chunks = kh // g
    x_specs = [pl.BlockSpec((bm, g), (lambda i, j, t, c=c: (i, t + c * chunks))) for c in range(ppb)]
    return pl.pallas_call(
        functools.partial(_q_tpu_kernel, bits=bits, g=g, chunks=chunks), grid=(mp // bm, np_ // bn, chunks),
        in_specs=x_specs + [pl.BlockSpec((g, bn), lambda i, j, t: (t, j)),
                            pl.BlockSpec(scales.shape[:1] + (bn,), lambda i, j, t: (0, j)),
                            pl.BlockSpec(zeros.shape[:1] + (bn,), lambda i, j, t: (0, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j, t: (i, j)), out_shape=out_shape,
        scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32)], interpret=interpret,
        compiler_params=None if interpret else compiler_params(
            "tpu", tpu_semantics=("parallel", "parallel", "arbitrary")),
    )(*([xp] * ppb), packed, scales, zeros)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _qmm(x2, packed, scales, zeros, meta):
    bits, g, shape, bm, bn, backend, interpret = meta
    kp = packed.shape[0] * (8 // bits)
    xp = pad_axis(pad_axis(x2, 0, round_up(x2.shape[0], bm)), 1, kp)
    y = _q_pallas(xp, packed, scales, zeros, bits=bits, g=g, bm=bm, bn=bn, backend=backend, interpret=interpret)
    return y[: x2.shape[0], : shape[1]]


def _qmm_fwd(x2, packed, scales, zeros, meta):
    return _qmm(x2, packed, scales, zeros, meta), (x2, packed, scales, zeros)


def _qmm_bwd(meta, res, dy):
    bits, g, shape, *_ = meta
    x2, packed, scales, zeros = res
    qw = QuantizedWeight(packed, scales, zeros, bits, g, shape)
    w = dequantize_weight(qw)
    dy = dy.astype(jnp.float32)
    dx = (dy @ w.T).astype(x2.dtype)
    # dW = x^T dy; d scale = sum over the group of dW * (q - z)
    dw = pad_axis(pad_axis(x2.astype(jnp.float32).T @ dy, 0, qw.padded_shape[0]), 1, qw.padded_shape[1])
    codes = _unpack_split(packed, bits, 0).astype(jnp.float32) - jnp.repeat(zeros.astype(jnp.float32), g, 0)
    ds = (dw * codes).reshape(-1, g, qw.padded_shape[1]).sum(1)
    return dx, None, ds.astype(scales.dtype), None


_qmm.defvjp(_qmm_fwd, _qmm_bwd)


def quantized_matmul(x, qw: QuantizedWeight, *, block_m: int | None = None, block_n: int | None = None,
                     backend: str | None = None, interpret: bool | None = None) -> jax.Array:
    """Pallas ``x @ W`` for ``x (..., K)`` (bf16/f16/f32) and a W4/W8 `QuantizedWeight`; output dtype of
    ``x``, f32 accumulation. ``block_n`` defaults to the largest power of two ``<= 128`` dividing ``Np``."""
    _check_quantized(qw)
    check_activations(x, qw.shape[0])
    backend = resolve_backend(backend)
    x2 = x.reshape(-1, x.shape[-1])
    bm = pick_block_m(x2.shape[0], block_m)
    np_ = qw.padded_shape[1]
    bn = largest_tile(np_) if block_n is None else check_tile("block_n", block_n)
    if np_ % bn:
        raise ValueError(f"block_n={bn} must divide the padded N={np_}")
    if qw.g < 16:
        raise ValueError(f"the quantized kernel needs a group size g >= 16 (one MMA per group), got g={qw.g}")
    interpret = resolve_interpret(interpret)
    check_compiled_tiles(backend, interpret, g_lane=qw.g, block_n_lane=bn)
    meta = (qw.bits, qw.g, tuple(qw.shape), bm, bn, backend, interpret)
    y = _qmm(x2, qw.packed, qw.scales, qw.zeros, meta)
    return y.reshape(*x.shape[:-1], qw.shape[1])


# ---------------------------------------------------------------------------------------------
# block-sparse W4 / W8 (GQSA W4 + S%)


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["packed", "scales", "zeros", "block_rows", "block_ptr"],
                   meta_fields=["bits", "shape", "block_shape", "max_blocks_per_col"])
@dataclasses.dataclass(frozen=True)
class QuantBlockSparse:
    """Kept ``(bk, bn)`` blocks, group-quantized per block column (module docstring)."""

    packed: jax.Array      # (nnzb, bk, bn / (8 / bits)) uint8
    scales: jax.Array      # (nnzb, bn)
    zeros: jax.Array       # (nnzb, bn) uint8
    block_rows: jax.Array  # (nnzb,) int32
    block_ptr: jax.Array   # (N/bn + 1,) int32
    bits: int
    shape: tuple[int, int]
    block_shape: tuple[int, int]
    max_blocks_per_col: int

    @property
    def grid_shape(self) -> tuple[int, int]:
        return block_grid(self.shape, self.block_shape)

    @property
    def nnzb(self) -> int:
        return int(self.packed.shape[0])

    def index_view(self, values):
        """A `BlockSparse` with these ``values`` and this format's indices (for the shared reference)."""
        from sparsejax.kernels.block_sparse import BlockSparse

        return BlockSparse(values, self.block_rows, self.block_ptr, self.shape, self.block_shape,
                           self.max_blocks_per_col)


def to_quant_block_sparse(w, block_shape: tuple[int, int], bits: int, mask=None, *, codes=None, scale=None,
                          zero=None, scale_dtype=jnp.float16) -> QuantBlockSparse:
    """Compress a ``(K, N)`` weight to kept blocks (``mask`` as in `to_block_sparse`) quantized with one
    group per block column (min/max of the kept block, 0 in range). ``codes``/``scale``/``zero``
    (shapes ``(K, N)``, ``(K/bk, N)``, ``(K/bk, N)``, group size ``bk``) reuse frozen GQSA codes instead."""
    from sparsejax.kernels.block_sparse import to_block_sparse
    from sparsejax.quant.group_quant import minmax_params, quantize

    bits = _check_bits(bits)
    bs = to_block_sparse(w, block_shape, mask)
    bk, bn = bs.block_shape
    kb, nb = bs.grid_shape
    ppb = 8 // bits
    if bn % ppb:
        raise ValueError(f"block_shape[1]={bn} must be divisible by the {ppb} codes per byte")
    k, n = bs.shape
    if codes is None:
        w_np = np.zeros((kb * bk, nb * bn), np.float32)
        w_np[:k, :n] = np.asarray(w, np.float32)
        scale, zero = minmax_params(jnp.asarray(w_np), bits, bk)
        codes = quantize(jnp.asarray(w_np), scale, zero, bits, bk)
    else:
        check_array("codes", codes, shape=(k, n), dtype_kind="iu")
        check_index_range("codes", codes, 2**bits)
        if k % bk or n % bn:
            raise ValueError(f"codes need K, N divisible by the block shape {bs.block_shape}, got {(k, n)}")
        check_array("scale", scale, shape=(k // bk, n), dtype_kind="f")
        check_array("zero", zero, shape=(k // bk, n))
        check_finite_array("scale", scale)
        z = np.asarray(zero)
        if np.any(z != np.round(z)) or z.min(initial=0) < 0 or z.max(initial=0) >= 2**bits:
            raise ValueError(f"zero must hold integers in [0, {2**bits}), got values in [{z.min()}, {z.max()}]")
    codes = np.asarray(codes).astype(np.uint8)
    rows = np.asarray(bs.block_rows)
    cols = np.repeat(np.arange(nb), np.diff(np.asarray(bs.block_ptr)))
    ctiles = codes.reshape(kb, bk, nb, bn).transpose(0, 2, 1, 3)[rows, cols]  # (nnzb, bk, bn)
    stiles = np.asarray(scale, np.float32).reshape(kb, nb, bn)[rows, cols]
    ztiles = np.round(np.asarray(zero)).astype(np.uint8).reshape(kb, nb, bn)[rows, cols]
    return QuantBlockSparse(jnp.asarray(_pack_split(ctiles, bits, 2)), jnp.asarray(stiles, scale_dtype),
                            jnp.asarray(ztiles), bs.block_rows, bs.block_ptr, bits, bs.shape, bs.block_shape,
                            bs.max_blocks_per_col)


def dequantize_block_sparse(q: QuantBlockSparse) -> jax.Array:
    """Float32 ``(nnzb, bk, bn)`` values of the kept blocks."""
    _check_qbs(q)
    codes = _unpack_split(q.packed, q.bits, 2).astype(jnp.float32)
    return (codes - q.zeros[:, None, :].astype(jnp.float32)) * q.scales[:, None, :].astype(jnp.float32)


def _check_qbs(q) -> QuantBlockSparse:
    from sparsejax.kernels.block_sparse import check_block_sparse

    if not isinstance(q, QuantBlockSparse):
        raise TypeError(f"q must be a QuantBlockSparse, got {type(q).__name__}")
    _check_bits(q.bits)
    bk, bn = q.block_shape
    check_array("q.packed", q.packed, shape=(None, bk, bn // (8 // q.bits)), dtype_kind="u")
    check_array("q.scales", q.scales, shape=(q.nnzb, bn), dtype_kind="f")
    check_array("q.zeros", q.zeros, shape=(q.nnzb, bn), dtype_kind="u")
    check_index_range("q.zeros", q.zeros, 2**q.bits)
    check_block_sparse(q.index_view(np.zeros((q.nnzb, bk, bn), np.float32)))
    return q


def block_sparse_quantized_matmul_reference(x, q: QuantBlockSparse, *, block_m: int | None = None,
                                            backend: str | None = None, interpret: bool | None = None):
    """Plain-jnp ``x @ W``: dequantize the kept blocks, then the block-sparse reference."""
    from sparsejax.kernels.block_sparse import block_sparse_matmul_reference

    _check_qbs(q)
    return block_sparse_matmul_reference(x, q.index_view(dequantize_block_sparse(q)))


def _qbs_triton_kernel(ptr_ref, rows_ref, x_ref, p_ref, s_ref, z_ref, o_ref, *count_refs, bits, bk, bnh):
    ppb, mask = 8 // bits, 2**bits - 1
    j = pl.program_id(1)
    bm = o_ref.shape[0]

    def body(b, carry):
        accs, n = carry
        r = rows_ref[b]
        xb = x_ref[:, pl.ds(pl.multiple_of(r * bk, bk), bk)]
        byte = p_ref[b].astype(jnp.int32)  # (bk, bnh)
        out = []
        for i in range(ppb):
            cs = pl.ds(i * bnh, bnh)
            w = _dequant_tile((byte >> (i * bits)) & mask, z_ref[pl.ds(b, 1), cs], s_ref[pl.ds(b, 1), cs], xb.dtype)
            out.append(accs[i] + jnp.dot(xb, w, preferred_element_type=jnp.float32))
        return tuple(out), n + 1

    init = tuple(jnp.zeros((bm, bnh), jnp.float32) for _ in range(ppb))
    accs, n = jax.lax.fori_loop(ptr_ref[j], ptr_ref[j + 1], body, (init, jnp.int32(0)))
    for i in range(ppb):
        o_ref[:, pl.ds(i * bnh, bnh)] = accs[i].astype(o_ref.dtype)
    if count_refs:
        count_refs[0][0, 0] = n


def _qbs_tpu_kernel(ptr_ref, rows_ref, x_ref, p_ref, s_ref, z_ref, o_ref, *rest, bits, bnh, steps):
    *count_refs, acc_ref = rest
    ppb, mask = 8 // bits, 2**bits - 1
    j, t = pl.program_id(1), pl.program_id(2)

    @pl.when(t == 0)
    def _():
        acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)
        if count_refs:
            count_refs[0][0, 0] = jnp.int32(0)

    @pl.when(t < ptr_ref[j + 1] - ptr_ref[j])
    def _():
        xb = x_ref[...]
        byte = p_ref[0].astype(jnp.int32)
        for i in range(ppb):
            cs = pl.ds(i * bnh, bnh)
            w = _dequant_tile((byte >> (i * bits)) & mask, z_ref[0, :, cs], s_ref[0, :, cs], xb.dtype)
            acc_ref[:, cs] += jnp.dot(xb, w, preferred_element_type=jnp.float32)
        if count_refs:
            count_refs[0][0, 0] += 1

    @pl.when(t == steps - 1)
    def _():
        o_ref[...] = acc_ref[...].astype(o_ref.dtype)


def _qbs_pallas(xp, packed, scales, zeros, rows, ptr, *, meta, debug_counts=False):
    bits, (bk, bn), (kb, nb), steps, bm, backend, interpret = meta
    mp = xp.shape[0]
    gm, nnzb, bnh = mp // bm, packed.shape[0], bn // (8 // bits)
    out_shape = [jax.ShapeDtypeStruct((mp, nb * bn), xp.dtype)]
    if debug_counts:
        out_shape.append(jax.ShapeDtypeStruct((gm, nb), jnp.int32))
    if backend == "triton":
        out_specs = [pl.BlockSpec((bm, bn), lambda i, j: (i, j))]
        if debug_counts:
            out_specs.append(pl.BlockSpec((1, 1), lambda i, j: (i, j)))
        full = lambda *shape: pl.BlockSpec(shape, lambda i, j: (0,) * len(shape))  # noqa: E731
        return pl.pallas_call(
            functools.partial(_qbs_triton_kernel, bits=bits, bk=bk, bnh=bnh), grid=(gm, nb),
            in_specs=[full(*ptr.shape), full(*rows.shape), pl.BlockSpec((bm, kb * bk), lambda i, j: (i, 0)),
                      full(*packed.shape), full(*scales.shape), full(*zeros.shape)],
            out_specs=out_specs, out_shape=out_shape, interpret=interpret,
            compiler_params=None if interpret else compiler_params("triton"),
        )(ptr, rows, xp, packed, scales, zeros)
    from jax.experimental.pallas import tpu as pltpu

    def blk(j, t, p):
        count = p[j + 1] - p[j]
        return jnp.minimum(p[j] + jnp.minimum(t, jnp.maximum(count - 1, 0)), nnzb - 1)

    out_specs = [pl.BlockSpec((bm, bn), lambda i, j, t, p, r: (i, j))]
    if debug_counts:
        out_specs.append(pl.BlockSpec((1, 1), lambda i, j, t, p, r: (i, j)))
    grid_spec = pltpu.PrefetchScalarGridSpec(
        num_scalar_prefetch=2, grid=(gm, nb, steps),
        in_specs=[pl.BlockSpec((bm, bk), lambda i, j, t, p, r: (i, r[blk(j, t, p)])),
                  pl.BlockSpec((1, bk, bnh), lambda i, j, t, p, r: (blk(j, t, p), 0, 0)),
                  pl.BlockSpec((1, 1, bn), lambda i, j, t, p, r: (blk(j, t, p), 0, 0)),
                  pl.BlockSpec((1, 1, bn), lambda i, j, t, p, r: (blk(j, t, p), 0, 0))],
        out_specs=out_specs, scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32)])
    return pl.pallas_call(
        functools.partial(_qbs_tpu_kernel, bits=bits, bnh=bnh, steps=steps), grid_spec=grid_spec,
        out_shape=out_shape, interpret=interpret,
        compiler_params=None if interpret else compiler_params(
            "tpu", tpu_semantics=("parallel", "parallel", "arbitrary")),
    )(ptr, rows, xp, packed, scales[:, None, :], zeros[:, None, :])


def _qbs_run(x2, q_arrays, meta, debug_counts=False):
    packed, scales, zeros, rows, ptr = q_arrays
    bits, (bk, bn), (kb, nb), steps, bm, *_ = meta
    xp = pad_axis(pad_axis(x2, 0, round_up(x2.shape[0], bm)), 1, kb * bk)
    return _qbs_pallas(xp, packed, scales, zeros, rows.astype(jnp.int32), ptr.astype(jnp.int32), meta=meta,
                       debug_counts=debug_counts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _qbsmm(x2, packed, scales, zeros, rows, ptr, meta, n):
    return _qbs_run(x2, (packed, scales, zeros, rows, ptr), meta)[0][: x2.shape[0], :n]


def _qbsmm_fwd(x2, packed, scales, zeros, rows, ptr, meta, n):
    return _qbsmm(x2, packed, scales, zeros, rows, ptr, meta, n), (x2, packed, scales, zeros, rows, ptr)


def _qbsmm_bwd(meta, n, res, dy):
    from sparsejax.kernels.block_sparse import BlockSparse, _bsmm_bwd

    x2, packed, scales, zeros, rows, ptr = res
    bits, block_shape, grid_shape, steps, *_ = meta
    codes = _unpack_split(packed, bits, 2).astype(jnp.float32) - zeros[:, None, :].astype(jnp.float32)
    values = codes * scales[:, None, :].astype(jnp.float32)
    dx, dvals, _, _ = _bsmm_bwd((block_shape, grid_shape, steps, None, None, None), n, (x2, values, rows, ptr), dy)
    ds = jnp.sum(dvals * codes, axis=1)
    return dx, None, ds.astype(scales.dtype), None, None, None


_qbsmm.defvjp(_qbsmm_fwd, _qbsmm_bwd)


def block_sparse_quantized_matmul(x, q: QuantBlockSparse, *, block_m: int | None = None,
                                  backend: str | None = None, interpret: bool | None = None,
                                  debug_counts: bool = False):
    """Pallas ``x @ W`` for a block-sparse W4/W8 weight (GQSA W4 + S%): MMAs only on the kept blocks,
    codes dequantized in registers. ``debug_counts`` as in `block_sparse_matmul`."""
    _check_qbs(q)
    check_activations(x, q.shape[0])
    x2 = x.reshape(-1, x.shape[-1])
    bm = pick_block_m(x2.shape[0], block_m)
    backend, interpret = resolve_backend(backend), resolve_interpret(interpret)
    bk, bn = q.block_shape
    check_compiled_tiles(backend, interpret, bk_lane=bk, bn_over_codes_per_byte_lane=bn // (8 // q.bits))
    meta = (q.bits, tuple(q.block_shape), tuple(q.grid_shape), max(1, q.max_blocks_per_col), bm, backend, interpret)
    out_shape = (*x.shape[:-1], q.shape[1])
    arrays = (q.packed, q.scales, q.zeros, q.block_rows, q.block_ptr)
    if q.nnzb == 0:
        y = jnp.zeros(out_shape, x.dtype)
        return (y, jnp.zeros((round_up(x2.shape[0], bm) // bm, q.grid_shape[1]), jnp.int32)) if debug_counts else y
    if debug_counts:
        y, counts = _qbs_run(x2, arrays, meta, debug_counts=True)
        return y[: x2.shape[0], : q.shape[1]].reshape(out_shape), counts
    return _qbsmm(x2, *arrays, meta, q.shape[1]).reshape(out_shape)
