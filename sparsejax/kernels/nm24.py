"""2:4 sparse matmul ``y = x @ W`` with packed 2-bit indices, for memory-bound GEMV (P7's N:M format).

Format `NM24`: ``W (K, N)`` is 2:4 sparse along ``K`` (every group of 4 consecutive rows of a column
keeps at most 2 weights). ``values (2, K/4, N)`` holds slot ``s`` of group ``G`` at ``[s, G]``;
``meta (K/8, N)`` uint8 holds the in-group positions, 2 bits per kept weight: byte ``p`` carries
group ``p`` in its low nibble and group ``p + K/8`` in its high nibble, each nibble ``pos0 | pos1 << 2``.
Bytes: 2 values (bf16) + 4 bits per 4 weights = 0.5625x of dense bf16.

Kernel (grid ``(M/bm, N/bn)``): ``x`` is passed as ``(4, M, K/4)`` (position-major, a cheap transpose
of the activations) so that the columns meeting in-group position ``j`` are contiguous. Per chunk of
``c`` groups the kernel loads one meta byte tile and the two value slabs, rebuilds for each position
``j`` the ``(c, bn)`` operand ``W_j = [pos0 == j] v0 + [pos1 == j] v1`` in registers (2 selects per
weight, no dense ``W`` in memory) and runs 4 MMAs ``x_j @ W_j``.

What this does and does not buy: the bytes moved are 0.56x of dense, which is what bounds a GEMV
(M <= 16). The MMA work stays dense (2·M·K·N) because Pallas exposes no sparse tensor cores
(``mma.sp`` / cuSPARSELt's 2:4 path needs the hardware metadata operand, which neither the Triton
nor the Mosaic GPU dialects of Pallas can emit), so the ~1.6x compute-bound 2:4 speedup of
cuSPARSELt is out of reach here; at large M this kernel is slower than dense.

Differentiation: ``custom_vjp`` with ``dx = dy W^T`` and ``d values`` (the dense ``x^T dy`` read at the
kept positions; the backward is plain jnp).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from sparsejax.core.validation import check_array, check_finite_array, is_traced
from sparsejax.kernels._util import (
    check_activations,
    check_tile,
    compiler_params,
    largest_tile,
    pad_axis,
    pick_block_m,
    resolve_backend,
    resolve_interpret,
    round_up,
)

__all__ = ["NM24", "to_nm24", "from_nm24", "nm24_matmul", "nm24_matmul_reference", "nm24_nbytes"]

K_ALIGN = 128  # K is padded so that each half of the meta rows splits into chunks of >= 16 groups


@functools.partial(jax.tree_util.register_dataclass, data_fields=["values", "meta"], meta_fields=["shape"])
@dataclasses.dataclass(frozen=True)
class NM24:
    """2:4 values + packed 2-bit positions of a ``(K, N)`` weight (module docstring)."""

    values: jax.Array  # (2, Kp/4, Np)
    meta: jax.Array    # (Kp/8, Np) uint8
    shape: tuple[int, int]

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.values.shape[1] * 4, self.values.shape[2]


def to_nm24(w, mask=None, dtype=None) -> NM24:
    """Compress a ``(K, N)`` weight that is 2:4 along ``K`` (``mask`` bool, shape of ``w``; default
    ``w != 0``). Raises if a group of 4 keeps more than 2 (prune with `sparsejax.structured.nm_mask`
    along axis 0 first). Host side; ``K`` is zero-padded to a multiple of 128, ``N`` to 16."""
    check_array("w", w, ndim=2, dtype_kind="f")
    check_finite_array("w", w)
    w_np = np.asarray(w)
    k, n = w_np.shape
    if mask is None:
        keep = w_np != 0
    else:
        check_array("mask", mask, shape=(k, n))
        keep = np.asarray(mask).astype(bool)
    kp, np_ = round_up(k, K_ALIGN), round_up(n, 16)
    wp = np.zeros((kp, np_), w_np.dtype)
    wp[:k, :n] = np.where(keep, w_np, 0)
    kp_mask = np.zeros((kp, np_), bool)
    kp_mask[:k, :n] = keep
    groups = kp_mask.reshape(kp // 4, 4, np_)
    if groups.sum(1).max(initial=0) > 2:
        bad = int((groups.sum(1) > 2).sum())
        raise ValueError(f"w is not 2:4 sparse along K: {bad} groups of 4 keep more than 2 weights "
                         "(prune with sparsejax.structured.nm_mask(w, 2, 4, axis=0) first)")
    # positions of the kept entries, padded with unused positions (value 0) to exactly 2 per group
    order = np.argsort(~groups, axis=1, kind="stable")[:, :2]  # kept positions first, ascending
    vals = np.take_along_axis(wp.reshape(kp // 4, 4, np_), order, axis=1)  # (G, 2, Np)
    vals = np.where(np.take_along_axis(groups, order, axis=1), vals, 0)
    nib = (order[:, 0] | (order[:, 1] << 2)).astype(np.uint8)  # (G, Np)
    half = kp // 8
    meta = (nib[:half] | (nib[half:] << 4)).astype(np.uint8)
    values = np.ascontiguousarray(vals.transpose(1, 0, 2))
    return NM24(jnp.asarray(values if dtype is None else values.astype(dtype)), jnp.asarray(meta), (int(k), int(n)))


def _positions(meta: jax.Array, xp=jnp) -> tuple[jax.Array, jax.Array]:
    """``(G, Np)`` positions of slot 0 and slot 1 from the packed meta (``xp=np`` on the host, so a
    concrete meta can be checked while a caller's ``jit`` is tracing)."""
    b = xp.asarray(meta).astype(xp.int32)
    nib = xp.concatenate([b & 15, b >> 4], axis=0)
    return nib & 3, nib >> 2


def from_nm24(c: NM24) -> jax.Array:
    """Dense ``(K, N)`` weight; jittable."""
    _check_nm24(c)
    p0, p1 = _positions(c.meta)
    j = jnp.arange(4)[None, :, None]
    dense = jnp.where(p0[:, None] == j, c.values[0][:, None], 0) + jnp.where(p1[:, None] == j, c.values[1][:, None], 0)
    kp, np_ = c.padded_shape
    return dense.reshape(kp, np_)[: c.shape[0], : c.shape[1]].astype(c.values.dtype)


def nm24_nbytes(c: NM24) -> int:
    """Exact bytes of the stored arrays (values + packed positions; padding included)."""
    _check_nm24(c)
    return int(c.values.nbytes + c.meta.nbytes)


def _check_nm24(c) -> NM24:
    if not isinstance(c, NM24):
        raise TypeError(f"c must be an NM24, got {type(c).__name__}")
    check_array("c.values", c.values, ndim=3, dtype_kind="f")
    _, kg, np_ = c.values.shape
    if c.values.shape[0] != 2 or kg % (K_ALIGN // 4) or np_ % 16:
        raise ValueError(f"c.values must be (2, Kp/4, Np) with Kp % {K_ALIGN} == 0, Np % 16 == 0, "
                         f"got {tuple(c.values.shape)}")
    check_array("c.meta", c.meta, shape=(kg // 2, np_), dtype_kind="u")
    if c.meta.dtype != jnp.uint8:
        raise TypeError(f"c.meta must be uint8, got {c.meta.dtype}")
    if not is_traced(c.meta):
        p0, p1 = _positions(c.meta, np)
        if np.any(p0 >= p1):
            raise ValueError("c.meta must list two increasing positions per group of 4 (slot 0 < slot 1), "
                             f"got {int(np.sum(p0 >= p1))} groups with slot 0 >= slot 1")
    return c


def nm24_matmul_reference(x, c: NM24, *, block_m: int | None = None, block_n: int | None = None,
                          backend: str | None = None, interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W``: decompress, cast to the dtype of ``x``, ``jnp.dot`` with f32 accumulation."""
    _check_nm24(c)
    check_activations(x, c.shape[0])
    return jnp.dot(x, from_nm24(c).astype(x.dtype), preferred_element_type=jnp.float32).astype(x.dtype)


def _operands(byte, half, v0, v1, dtype):
    nib = (byte >> (4 * half)) & 15
    p0, p1 = nib & 3, nib >> 2
    zero = jnp.zeros(v0.shape, dtype)
    return [jnp.where(p0 == j, v0.astype(dtype), zero) + jnp.where(p1 == j, v1.astype(dtype), zero)
            for j in range(4)]


def _nm_triton_kernel(xs_ref, v_ref, m_ref, o_ref, *, c, kh):
    def body(t, acc):
        p0 = pl.multiple_of(t * c, c)
        byte = m_ref[pl.ds(p0, c), :].astype(jnp.int32)
        for h in range(2):
            g0 = pl.multiple_of(p0 + h * kh, c)
            ws = _operands(byte, h, v_ref[0, pl.ds(g0, c), :], v_ref[1, pl.ds(g0, c), :], xs_ref.dtype)
            for j in range(4):
                acc = acc + jnp.dot(xs_ref[j, :, pl.ds(g0, c)], ws[j], preferred_element_type=jnp.float32)
        return acc

    acc = jax.lax.fori_loop(0, kh // c, body, jnp.zeros(o_ref.shape, jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


def _nm_tpu_kernel(*refs, chunks):
    xs = refs[:8]   # (h, j) -> (1, bm, c)
    v_refs = refs[8:10]  # h -> (2, c, bn)
    m_ref, o_ref, acc_ref = refs[10:]
    t = pl.program_id(2)

    @pl.when(t == 0)
    def _():
        acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

    byte = m_ref[...].astype(jnp.int32)
    for h in range(2):
        ws = _operands(byte, h, v_refs[h][0], v_refs[h][1], xs[0].dtype)
        for j in range(4):
            acc_ref[...] += jnp.dot(xs[4 * h + j][0], ws[j], preferred_element_type=jnp.float32)

    @pl.when(t == chunks - 1)
    def _():
        o_ref[...] = acc_ref[...].astype(o_ref.dtype)


def _nm_pallas(xs, values, meta, *, bm, bn, backend, interpret):
    _, mp, kg = xs.shape
    kh, np_ = meta.shape
    out_shape = jax.ShapeDtypeStruct((mp, np_), xs.dtype)
    if backend == "triton":
        c = 32 if kh % 32 == 0 else 16
        return pl.pallas_call(
            functools.partial(_nm_triton_kernel, c=c, kh=kh), grid=(mp // bm, np_ // bn),
            in_specs=[pl.BlockSpec((4, bm, kg), lambda i, j: (0, i, 0)),
                      pl.BlockSpec((2, kg, bn), lambda i, j: (0, 0, j)),
                      pl.BlockSpec((kh, bn), lambda i, j: (0, j))],
            out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)), out_shape=out_shape, interpret=interpret,
            compiler_params=None if interpret else compiler_params("triton"),
        )(xs, values, meta)
    from jax.experimental.pallas import tpu as pltpu

    if kh % 128:
        raise ValueError(f"the TPU 2:4 kernel needs K to be a multiple of 1024 (lane-wide chunks), got padded "
                         f"K={kh * 8}")
    c = 128
    chunks = kh // c
    x_specs = [pl.BlockSpec((1, bm, c), (lambda i, j, t, h=h, jj=jj: (jj, i, t + h * chunks)))
               for h in range(2) for jj in range(4)]
    v_specs = [pl.BlockSpec((2, c, bn), (lambda i, j, t, h=h: (0, t + h * chunks, j))) for h in range(2)]
    return pl.pallas_call(
        functools.partial(_nm_tpu_kernel, chunks=chunks), grid=(mp // bm, np_ // bn, chunks),
        in_specs=x_specs + v_specs + [pl.BlockSpec((c, bn), lambda i, j, t: (t, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j, t: (i, j)), out_shape=out_shape,
        scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32)], interpret=interpret,
        compiler_params=None if interpret else compiler_params(
            "tpu", tpu_semantics=("parallel", "parallel", "arbitrary")),
    )(*([xs] * 8), values, values, meta)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _nmmm(x2, values, meta, cfg):
    shape, bm, bn, backend, interpret = cfg
    kp = values.shape[1] * 4
    mp = round_up(x2.shape[0], bm)
    xp = pad_axis(pad_axis(x2, 0, mp), 1, kp)
    xs = xp.reshape(mp, kp // 4, 4).transpose(2, 0, 1)  # (4, Mp, Kp/4): position-major
    y = _nm_pallas(xs, values, meta, bm=bm, bn=bn, backend=backend, interpret=interpret)
    return y[: x2.shape[0], : shape[1]]


def _nmmm_fwd(x2, values, meta, cfg):
    return _nmmm(x2, values, meta, cfg), (x2, values, meta)


def _nmmm_bwd(cfg, res, dy):
    x2, values, meta = res
    shape = cfg[0]
    c = NM24(values, meta, shape)
    w = from_nm24(c).astype(jnp.float32)
    dy = dy.astype(jnp.float32)
    dx = (dy @ w.T).astype(x2.dtype)
    kp, np_ = c.padded_shape
    dw = pad_axis(pad_axis(x2.astype(jnp.float32).T @ dy, 0, kp), 1, np_).reshape(kp // 4, 4, np_)
    p0, p1 = _positions(meta)
    dv = jnp.stack([jnp.take_along_axis(dw, p[:, None], axis=1)[:, 0] for p in (p0, p1)])
    return dx, dv.astype(values.dtype), None


_nmmm.defvjp(_nmmm_fwd, _nmmm_bwd)


def nm24_matmul(x, c: NM24, *, block_m: int | None = None, block_n: int | None = None,
                backend: str | None = None, interpret: bool | None = None) -> jax.Array:
    """Pallas ``x @ W`` for ``x (..., K)`` (bf16/f16/f32) and a 2:4 `NM24` weight; f32 accumulation."""
    _check_nm24(c)
    check_activations(x, c.shape[0])
    x2 = x.reshape(-1, x.shape[-1])
    bm = pick_block_m(x2.shape[0], block_m)
    np_ = c.padded_shape[1]
    bn = largest_tile(np_) if block_n is None else check_tile("block_n", block_n)
    if np_ % bn:
        raise ValueError(f"block_n={bn} must divide the padded N={np_}")
    cfg = (tuple(c.shape), bm, bn, resolve_backend(backend), resolve_interpret(interpret))
    return _nmmm(x2, c.values, c.meta, cfg).reshape(*x.shape[:-1], c.shape[1])
