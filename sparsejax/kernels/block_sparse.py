"""Block-sparse matmul ``y = x @ W`` for a weight stored as its kept ``(bk, bn)`` blocks.

Format `BlockSparse` (block-compressed by output-column tile, i.e. BSR of ``W^T``): the kept
blocks sorted by column tile, ``values (nnzb, bk, bn)``, their row-block indices ``block_rows
(nnzb,)`` and offsets ``block_ptr (N/bn + 1,)``: the blocks of column tile ``j`` are
``block_ptr[j] .. block_ptr[j+1] - 1``. ``shape`` is the logical ``(K, N)``; ``K`` and ``N`` are
zero-padded up to whole blocks. Build it from a block mask (`sparsejax.structured.block_mask`) with
`to_block_sparse`; `from_block_sparse` gives the dense weight back.

Kernels (work and weight bytes scale with the kept blocks):

* ``backend="triton"``: grid ``(M/bm, N/bn)``; program ``(i, j)`` reads ``block_ptr[j]``,
  ``block_ptr[j+1]`` and loops over exactly those kept blocks, each one an MMA of the ``(bm, bk)``
  slice of ``x`` at rows-block ``block_rows[b]`` with the ``(bk, bn)`` block (bf16/f16 operands, f32
  accumulator). Index arrays are read inside the kernel (Triton has no scalar prefetch).
* ``backend="tpu"``: ``PrefetchScalarGridSpec`` with the index arrays in SMEM and grid
  ``(M/bm, N/bn, T)``, ``T`` = most kept blocks of any column tile; the index maps fetch block
  ``block_ptr[j] + t`` and its ``x`` slice, steps ``t`` past a tile's count repeat the last block
  index (no new DMA) and skip the MMA.

Block sizes: ``bk``, ``bn`` are fixed by the format; powers of two ``>= 16`` on GPU (``(32, 32)`` to
``(64, 64)`` keep the MMA fed while staying fine-grained; 16 is the smallest tensor-core tile) and
multiples of ``(128, 128)`` on TPU (lane width). ``block_m`` defaults to the next power of two of
``M`` in [16, 128] (16 for decode). Ragged ``M`` is zero-padded to ``block_m``.

Differentiable: a ``custom_vjp`` gives ``dx = dy W^T`` and ``d values = x_blk^T dy_blk`` for the kept
blocks only (jnp gathers + segment sums; training the compressed weights keeps the pattern).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from sparsejax.core.validation import check_array, check_finite_array, check_index_range, is_traced
from sparsejax.kernels._util import (
    block_grid,
    check_activations,
    check_compiled_tiles,
    check_tile,
    compiler_params,
    pad_axis,
    pick_block_m,
    resolve_backend,
    resolve_interpret,
    round_up,
)

__all__ = ["BlockSparse", "to_block_sparse", "from_block_sparse", "block_sparse_matmul",
           "block_sparse_matmul_reference", "block_sparse_nbytes", "check_block_sparse"]


@functools.partial(jax.tree_util.register_dataclass, data_fields=["values", "block_rows", "block_ptr"],
                   meta_fields=["shape", "block_shape", "max_blocks_per_col"])
@dataclasses.dataclass(frozen=True)
class BlockSparse:
    """Kept ``(bk, bn)`` blocks of a ``(K, N)`` weight, grouped by output-column tile (module doc)."""

    values: jax.Array       # (nnzb, bk, bn)
    block_rows: jax.Array   # (nnzb,) int32, row-block index of each kept block
    block_ptr: jax.Array    # (N/bn + 1,) int32, offsets of each column tile's blocks
    shape: tuple[int, int]
    block_shape: tuple[int, int]
    max_blocks_per_col: int

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(K/bk, N/bn)`` after padding to whole blocks."""
        return block_grid(self.shape, self.block_shape)

    @property
    def nnzb(self) -> int:
        return int(self.values.shape[0])


def to_block_sparse(w: jax.Array, block_shape: tuple[int, int], mask: jax.Array | None = None,
                    dtype=None) -> BlockSparse:
    """Compress a 2-D ``(K, N)`` weight: keep the blocks where ``mask`` (bool, shape of ``w``, whole
    blocks; default: blocks with a non-zero) is set. Ragged ``K``/``N`` are zero-padded to whole
    blocks. Host side (the kept count is data dependent)."""
    check_array("w", w, ndim=2, dtype_kind="f")
    check_finite_array("w", w)
    bk = check_tile("block_shape[0]", block_shape[0], minimum=1)
    bn = check_tile("block_shape[1]", block_shape[1], minimum=1)
    w_np = np.asarray(w)
    k, n = w_np.shape
    kp, np_ = round_up(k, bk), round_up(n, bn)
    wp = np.zeros((kp, np_), w_np.dtype)
    wp[:k, :n] = w_np
    if mask is None:
        mp = wp != 0
    else:
        check_array("mask", mask, shape=(k, n))
        mp = np.zeros((kp, np_), bool)
        mp[:k, :n] = np.asarray(mask).astype(bool)
    kb, nb = kp // bk, np_ // bn
    tiles = mp.reshape(kb, bk, nb, bn)
    keep = tiles.any(axis=(1, 3))  # (kb, nb)
    if mask is not None:
        # a kept block may reach into the zero padding; inside the logical shape it must be whole
        inside = np.zeros((kp, np_), bool)
        inside[:k, :n] = True
        if np.any(np.repeat(np.repeat(keep, bk, 0), bn, 1) & inside & ~mp):
            raise ValueError(f"mask is not block-sparse with block_shape {(bk, bn)}: some block is partly "
                             "kept (build it with sparsejax.structured.block_mask)")
    cols, rows = np.nonzero(keep.T)  # column-major order: grouped by column tile, rows ascending
    vals = wp.reshape(kb, bk, nb, bn).transpose(0, 2, 1, 3)[rows, cols]  # (nnzb, bk, bn)
    counts = keep.sum(axis=0)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = jnp.asarray(vals if dtype is None else vals.astype(dtype))
    return BlockSparse(values, jnp.asarray(rows.astype(np.int32)), jnp.asarray(ptr), (int(k), int(n)),
                       (bk, bn), int(counts.max(initial=0)))


def from_block_sparse(bs: BlockSparse) -> jax.Array:
    """Dense ``(K, N)`` weight (zeros in the pruned blocks); jittable."""
    check_block_sparse(bs)
    bk, bn = bs.block_shape
    kb, nb = bs.grid_shape
    cols = _block_cols(bs)
    dense = jnp.zeros((kb, nb, bk, bn), bs.values.dtype).at[bs.block_rows, cols].set(bs.values)
    return dense.transpose(0, 2, 1, 3).reshape(kb * bk, nb * bn)[: bs.shape[0], : bs.shape[1]]


def block_sparse_nbytes(bs: BlockSparse) -> int:
    """Exact bytes of the stored arrays (values + row indices + tile offsets)."""
    check_block_sparse(bs)
    return int(bs.values.nbytes + bs.block_rows.nbytes + bs.block_ptr.nbytes)


def _block_cols(bs: BlockSparse) -> jax.Array:
    """Column-tile index of every kept block (from ``block_ptr``)."""
    nb = bs.grid_shape[1]
    return jnp.repeat(jnp.arange(nb, dtype=jnp.int32), jnp.diff(bs.block_ptr), total_repeat_length=bs.nnzb)


def check_block_sparse(bs) -> BlockSparse:
    """Static checks of a `BlockSparse` (shapes, dtypes) and, when concrete, of its index arrays:
    ``block_rows`` in ``[0, K/bk)``, ``block_ptr`` non-decreasing from 0 to ``nnzb``, at most
    ``max_blocks_per_col`` blocks per tile. JAX gathers would clamp bad indices silently."""
    if not isinstance(bs, BlockSparse):
        raise TypeError(f"bs must be a BlockSparse, got {type(bs).__name__}")
    bk, bn = bs.block_shape
    kb, nb = bs.grid_shape
    check_array("bs.values", bs.values, shape=(None, bk, bn), dtype_kind="f")
    nnzb = bs.values.shape[0]
    check_array("bs.block_rows", bs.block_rows, shape=(nnzb,), dtype_kind="iu")
    check_array("bs.block_ptr", bs.block_ptr, shape=(nb + 1,), dtype_kind="iu")
    check_index_range("bs.block_rows", bs.block_rows, kb)
    if not is_traced(bs.block_ptr):
        ptr = np.asarray(bs.block_ptr).astype(np.int64)
        counts = np.diff(ptr)
        if ptr[0] != 0 or ptr[-1] != nnzb or np.any(counts < 0):
            raise ValueError(f"bs.block_ptr must rise from 0 to nnzb={nnzb}, got {ptr.tolist()}")
        if counts.size and counts.max() > bs.max_blocks_per_col:
            raise ValueError(f"bs.max_blocks_per_col={bs.max_blocks_per_col} < the largest tile count "
                             f"{int(counts.max())}")
    return bs


# ---------------------------------------------------------------------------------------------
# reference (plain jnp; work proportional to the kept blocks too)


def _gathered(x2: jax.Array, bs: BlockSparse) -> jax.Array:
    """``(M, nnzb, bk)``: the slice of ``x`` that meets each kept block."""
    bk = bs.block_shape[0]
    kb = bs.grid_shape[0]
    xp = pad_axis(x2, 1, kb * bk)
    return xp.reshape(x2.shape[0], kb, bk)[:, bs.block_rows]


def _reference_2d(x2: jax.Array, bs: BlockSparse) -> jax.Array:
    nb, bn = bs.grid_shape[1], bs.block_shape[1]
    m = x2.shape[0]
    if bs.nnzb == 0:
        return jnp.zeros((m, bs.shape[1]), x2.dtype)
    prod = jnp.einsum("mbk,bkn->bmn", _gathered(x2, bs), bs.values.astype(x2.dtype),
                      preferred_element_type=jnp.float32)
    y = jax.ops.segment_sum(prod, _block_cols(bs), num_segments=nb, indices_are_sorted=True)  # (nb, m, bn)
    return y.transpose(1, 0, 2).reshape(m, nb * bn)[:, : bs.shape[1]].astype(x2.dtype)


def block_sparse_matmul_reference(x: jax.Array, bs: BlockSparse, *, block_m: int | None = None,
                                  backend: str | None = None, interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W`` for ``x (..., K)``: gathers the ``x`` slice of every kept block, one batched
    MMA, a segment sum per column tile (f32 accumulation). Tile/backend arguments are ignored."""
    check_block_sparse(bs)
    check_activations(x, bs.shape[0])
    x2 = x.reshape(-1, x.shape[-1])
    return _reference_2d(x2, bs).reshape(*x.shape[:-1], bs.shape[1])


# ---------------------------------------------------------------------------------------------
# Pallas kernels


def _triton_kernel(ptr_ref, rows_ref, x_ref, v_ref, o_ref, *count_refs, bk):
    j = pl.program_id(1)

    def body(b, carry):
        acc, n = carry
        r = rows_ref[b]
        xb = x_ref[:, pl.ds(pl.multiple_of(r * bk, bk), bk)]
        wb = v_ref[b].astype(xb.dtype)
        return acc + jnp.dot(xb, wb, preferred_element_type=jnp.float32), n + 1

    acc, n = jax.lax.fori_loop(ptr_ref[j], ptr_ref[j + 1], body,
                               (jnp.zeros(o_ref.shape, jnp.float32), jnp.int32(0)))
    o_ref[...] = acc.astype(o_ref.dtype)
    if count_refs:
        count_refs[0][0, 0] = n


def _tpu_kernel(ptr_ref, rows_ref, x_ref, v_ref, o_ref, *rest, steps):
    *count_refs, acc_ref = rest
    j, t = pl.program_id(1), pl.program_id(2)
    count = ptr_ref[j + 1] - ptr_ref[j]

    @pl.when(t == 0)
    def _():
        acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)
        if count_refs:
            count_refs[0][0, 0] = jnp.int32(0)

    @pl.when(t < count)
    def _():
        xb = x_ref[...]
        acc_ref[...] += jnp.dot(xb, v_ref[0].astype(xb.dtype), preferred_element_type=jnp.float32)
        if count_refs:
            count_refs[0][0, 0] += 1

    @pl.when(t == steps - 1)
    def _():
        o_ref[...] = acc_ref[...].astype(o_ref.dtype)


def _pallas_2d(x2, values, rows, ptr, *, meta, debug_counts=False):
    """Padded ``(Mp, Kp) @ W -> (Mp, Np)`` (plus per-program block counts when ``debug_counts``)."""
    (bk, bn), (kb, nb), steps, bm, backend, interpret = meta
    mp = x2.shape[0]
    gm = mp // bm
    nnzb = values.shape[0]
    out_shape = [jax.ShapeDtypeStruct((mp, nb * bn), x2.dtype)]
    if debug_counts:
        out_shape.append(jax.ShapeDtypeStruct((gm, nb), jnp.int32))
    if backend == "triton":
        out_specs = [pl.BlockSpec((bm, bn), lambda i, j: (i, j))]
        if debug_counts:
            out_specs.append(pl.BlockSpec((1, 1), lambda i, j: (i, j)))
        return pl.pallas_call(
            functools.partial(_triton_kernel, bk=bk),
            grid=(gm, nb),
            in_specs=[pl.BlockSpec(ptr.shape, lambda i, j: (0,)), pl.BlockSpec(rows.shape, lambda i, j: (0,)),
                      pl.BlockSpec((bm, kb * bk), lambda i, j: (i, 0)),
                      pl.BlockSpec((nnzb, bk, bn), lambda i, j: (0, 0, 0))],
            out_specs=out_specs, out_shape=out_shape, interpret=interpret,
            compiler_params=None if interpret else compiler_params("triton"),
        )(ptr, rows, x2, values)

    from jax.experimental.pallas import tpu as pltpu

    def blk(j, t, ptr_ref):
        count = ptr_ref[j + 1] - ptr_ref[j]
        return jnp.minimum(ptr_ref[j] + jnp.minimum(t, jnp.maximum(count - 1, 0)), nnzb - 1)

    out_specs = [pl.BlockSpec((bm, bn), lambda i, j, t, p, r: (i, j))]
    if debug_counts:
        out_specs.append(pl.BlockSpec((1, 1), lambda i, j, t, p, r: (i, j)))
    grid_spec = pltpu.PrefetchScalarGridSpec(
        num_scalar_prefetch=2, grid=(gm, nb, steps),
        in_specs=[pl.BlockSpec((bm, bk), lambda i, j, t, p, r: (i, r[blk(j, t, p)])),
                  pl.BlockSpec((1, bk, bn), lambda i, j, t, p, r: (blk(j, t, p), 0, 0))],
        out_specs=out_specs, scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32)])
    return pl.pallas_call(
        functools.partial(_tpu_kernel, steps=steps), grid_spec=grid_spec, out_shape=out_shape,
        interpret=interpret,
        compiler_params=None if interpret else compiler_params(
            "tpu", tpu_semantics=("parallel", "parallel", "arbitrary")),
    )(ptr, rows, x2, values)


def _run(x2, values, rows, ptr, meta, debug_counts=False):
    (bk, bn), (kb, nb), steps, bm, backend, interpret = meta
    mp = round_up(x2.shape[0], bm)
    xp = pad_axis(pad_axis(x2, 0, mp), 1, kb * bk)
    return _pallas_2d(xp, values, rows.astype(jnp.int32), ptr.astype(jnp.int32), meta=meta,
                      debug_counts=debug_counts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _bsmm(x2, values, rows, ptr, meta, n):
    return _run(x2, values, rows, ptr, meta)[0][: x2.shape[0], :n]


def _bsmm_fwd(x2, values, rows, ptr, meta, n):
    return _bsmm(x2, values, rows, ptr, meta, n), (x2, values, rows, ptr)


def _bsmm_bwd(meta, n, res, dy):
    x2, values, rows, ptr = res
    (bk, bn), (kb, nb), *_ = meta
    m = x2.shape[0]
    cols = jnp.repeat(jnp.arange(nb, dtype=jnp.int32), jnp.diff(ptr), total_repeat_length=values.shape[0])
    dyp = pad_axis(dy.astype(jnp.float32), 1, nb * bn).reshape(m, nb, bn)[:, cols]  # (m, nnzb, bn)
    xg = pad_axis(x2, 1, kb * bk).reshape(m, kb, bk)[:, rows].astype(jnp.float32)  # (m, nnzb, bk)
    dvals = jnp.einsum("mbk,mbn->bkn", xg, dyp)
    dxg = jnp.einsum("mbn,bkn->bmk", dyp, values.astype(jnp.float32))
    dx = jax.ops.segment_sum(dxg, rows, num_segments=kb)  # (kb, m, bk)
    dx = dx.transpose(1, 0, 2).reshape(m, kb * bk)[:, : x2.shape[1]]
    return dx.astype(x2.dtype), dvals.astype(values.dtype), None, None


_bsmm.defvjp(_bsmm_fwd, _bsmm_bwd)


def _meta(x2, bs, block_m, backend, interpret):
    backend = resolve_backend(backend)
    bm = pick_block_m(x2.shape[0], block_m)
    steps = max(1, bs.max_blocks_per_col)
    interpret = resolve_interpret(interpret)
    bk, bn = bs.block_shape
    check_compiled_tiles(backend, interpret, bk_lane=bk, bn_lane=bn)
    return (tuple(bs.block_shape), tuple(bs.grid_shape), steps, bm, backend, interpret)


def block_sparse_matmul(x: jax.Array, bs: BlockSparse, *, block_m: int | None = None,
                        backend: str | None = None, interpret: bool | None = None,
                        debug_counts: bool = False):
    """Pallas ``x @ W`` for ``x (..., K)`` and a `BlockSparse` ``W (K, N)``; output dtype of ``x``,
    f32 accumulation. ``debug_counts=True`` also returns the ``(M/bm, N/bn)`` int32 count of MMAs
    each program ran (the work test: their sum is ``nnzb * M/bm``); it is not differentiable."""
    check_block_sparse(bs)
    check_activations(x, bs.shape[0])
    x2 = x.reshape(-1, x.shape[-1])
    meta = _meta(x2, bs, block_m, backend, interpret)
    out_shape = (*x.shape[:-1], bs.shape[1])
    if bs.nnzb == 0:
        y = jnp.zeros(out_shape, x.dtype)
        return (y, jnp.zeros((round_up(x2.shape[0], meta[3]) // meta[3], bs.grid_shape[1]), jnp.int32)) \
            if debug_counts else y
    if debug_counts:
        y, counts = _run(x2, bs.values, bs.block_rows, bs.block_ptr, meta, debug_counts=True)
        return y[: x2.shape[0], : bs.shape[1]].reshape(out_shape), counts
    y = _bsmm(x2, bs.values, bs.block_rows, bs.block_ptr, meta, bs.shape[1])
    return y.reshape(out_shape)
