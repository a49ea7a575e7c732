"""Causal block-sparse flash attention: each query block attends only to the key blocks its head's
block mask keeps (the kernel of S2-Attention, P44; the pattern lives in `sparsejax.llm.s2_attention`).

Inputs ``q (B, T, H, D)``, ``k, v (B, T, Hkv, D)`` with ``H`` a multiple of ``Hkv`` (GQA: query head
``h`` reads kv head ``h // (H / Hkv)``), and a boolean ``block_mask (H, nb, nb)`` (or ``(1, nb, nb)``,
shared by all heads), ``nb = ceil(T / block_size)``: query block ``i`` of head ``h`` attends key block
``j`` iff ``block_mask[h, i, j]``, and inside a kept block token ``t`` sees token ``s`` iff ``s <= t``
(causal). The mask must be causal (nothing above the block diagonal) and keep every diagonal block, so
that every query sees at least itself; both are checked. Softmax scale ``sm_scale`` (default
``1/sqrt(D)``); f32 accumulation; output dtype of ``q``. ``T`` is zero-padded to whole blocks (padded
keys are later than every real query, so causality hides them).

`BlockLayout` is the CSR form of the mask (as in the official ``dkernel``): per (head, query block)
the sorted kept key blocks ``cols`` (padded to ``max_cols``) and their ``counts``.

Backends (`sparsejax.kernels._util`):

* ``"triton"``: grid ``(B, H, nb)``; program ``(b, h, i)`` keeps its ``(block_size, D)`` query tile,
  reads ``counts[h, i]`` and loops over exactly that many kept key blocks (``cols`` read in-kernel),
  with the online softmax of FlashAttention-2 (running max, running sum, rescaled accumulator). Work
  and K/V traffic are proportional to the kept blocks. ``block_size`` and ``D`` must be powers of two
  ``>= 16`` (``tl.dot``).
* ``"tpu"``: JAX's splash attention (``jax.experimental.pallas.ops.tpu.splash_attention``) with a
  per-head token mask built from the block mask (splash skips the fully masked ``(block_q, block_kv)``
  blocks itself); ``block_size`` must be a multiple of 128 and ``T`` a multiple of ``block_size``;
  GQA repeats the kv heads. Splash brings its own backward.

Differentiable: the Triton / interpret path has a ``custom_vjp`` whose backward is the VJP of the
jnp reference (the dense masked softmax; correct, not block-sparse: a fused backward kernel is not
written). ``debug_counts=True`` also returns the ``(B, H, nb)`` number of key blocks each program
visited (the work test), Triton / interpret only, not differentiable.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from sparsejax.core.validation import check_array, check_int, check_number
from sparsejax.kernels._util import (
    check_compiled_tiles,
    check_tile,
    compiler_params,
    pad_axis,
    resolve_backend,
    resolve_interpret,
    round_up,
)

__all__ = ["BlockLayout", "block_layout", "check_block_mask", "block_sparse_attention",
           "block_sparse_attention_reference", "token_mask"]

MASK_VALUE = -0.7 * float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """CSR layout of a block mask: ``cols (H, nb, max_cols)`` int32 (kept key blocks, ascending, padded
    with the last kept block) and ``counts (H, nb)`` int32."""

    cols: np.ndarray
    counts: np.ndarray

    @property
    def max_cols(self) -> int:
        return int(self.cols.shape[-1])


def check_block_mask(block_mask, num_heads: int | None = None, num_blocks: int | None = None) -> np.ndarray:
    """A concrete boolean ``(H or 1, nb, nb)`` mask that is causal and keeps every diagonal block."""
    if isinstance(block_mask, jax.core.Tracer):
        raise TypeError("block_mask must be concrete (a numpy/jax array known at trace time), got a tracer")
    m = np.asarray(block_mask)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"block_mask must have shape (heads, nb, nb), got {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("block_mask must be boolean (or 0/1)")
        m = m.astype(bool)
    if num_heads is not None and m.shape[0] not in (1, num_heads):
        raise ValueError(f"block_mask has {m.shape[0]} heads; expected 1 or {num_heads}")
    if num_blocks is not None and m.shape[1] != num_blocks:
        raise ValueError(f"block_mask has {m.shape[1]} blocks per side; the sequence needs {num_blocks}")
    upper = np.triu(np.ones(m.shape[1:], bool), 1)
    if (m & upper).any():
        raise ValueError("block_mask is not causal: some query block attends a later key block")
    diag = np.diagonal(m, axis1=1, axis2=2)
    if not diag.all():
        h, i = np.argwhere(~diag)[0]
        raise ValueError(f"block_mask misses the diagonal block of head {h}, query block {i} "
                         "(its first token would attend to nothing)")
    return m


def block_layout(block_mask) -> BlockLayout:
    """CSR layout (`BlockLayout`) of a checked block mask; host side."""
    m = check_block_mask(block_mask)
    counts = m.sum(-1).astype(np.int32)
    max_cols = int(counts.max())
    cols = np.zeros(m.shape[:2] + (max_cols,), np.int32)
    for h in range(m.shape[0]):
        for i in range(m.shape[1]):
            kept = np.flatnonzero(m[h, i])
            cols[h, i, : kept.size] = kept
            cols[h, i, kept.size:] = kept[-1]
    return BlockLayout(cols, counts)


def token_mask(block_mask, seq_len: int, block_size: int) -> np.ndarray:
    """Token-level ``(H, T, T)`` boolean mask: the block mask expanded to tokens, AND causal."""
    m = np.asarray(block_mask, bool)
    seq_len = check_int("seq_len", seq_len, minimum=1)
    block_size = check_int("block_size", block_size, minimum=1)
    full = np.repeat(np.repeat(m, block_size, 1), block_size, 2)[:, :seq_len, :seq_len]
    return full & np.tril(np.ones((seq_len, seq_len), bool))


def _check_qkv(q, k, v):
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_array(name, x, ndim=4, dtype_kind="f")
    b, t, h, d = q.shape
    if k.shape != v.shape or k.shape[0] != b or k.shape[1] != t or k.shape[3] != d:
        raise ValueError(f"k and v must have shape (B={b}, T={t}, Hkv, D={d}), got {k.shape} and {v.shape}")
    if h % k.shape[2]:
        raise ValueError(f"query heads H={h} must be a multiple of kv heads Hkv={k.shape[2]}")
    return b, t, h, d, k.shape[2]


def _scale(sm_scale, d):
    return 1.0 / math.sqrt(d) if sm_scale is None else check_number("sm_scale", sm_scale, minimum=0.0,
                                                                     min_inclusive=False)


def block_sparse_attention_reference(q, k, v, block_mask, *, block_size: int, sm_scale: float | None = None,
                                     backend: str | None = None, interpret: bool | None = None):
    """Plain-jnp masked softmax attention with the token mask of ``block_mask`` (module doc); dense
    work. ``backend``/``interpret`` are ignored."""
    b, t, h, d, hkv = _check_qkv(q, k, v)
    block_size = check_int("block_size", block_size, minimum=1)
    m = check_block_mask(block_mask, h, -(-t // block_size))
    allowed = jnp.asarray(token_mask(m, t, block_size))  # (H or 1, T, T)
    g = h // hkv
    kk = jnp.repeat(k, g, axis=2) if g > 1 else k
    vv = jnp.repeat(v, g, axis=2) if g > 1 else v
    s = jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32), kk.astype(jnp.float32)) * _scale(sm_scale, d)
    s = jnp.where(allowed[None], s, MASK_VALUE)
    p = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", p, vv.astype(jnp.float32)).astype(q.dtype)


# ---------------------------------------------------------------------------------------------
# Triton / interpret kernel


def _kernel(cnt_ref, cols_ref, q_ref, k_ref, v_ref, o_ref, *count_refs, sm_scale, bs, nb, max_cols,
            shared_mask):
    h, i = pl.program_id(1), pl.program_id(2)
    row = (0 if shared_mask else h) * nb + i
    n = cnt_ref[row]
    q = q_ref[...]
    q_pos = i * bs + jnp.arange(bs)

    def body(t, carry):
        o, m_prev, l_prev = carry
        j = cols_ref[row * max_cols + t]
        start = pl.multiple_of(j * bs, bs)
        kb = k_ref[pl.ds(start, bs), :]
        vb = v_ref[pl.ds(start, bs), :]
        s = jnp.dot(q, kb.T, preferred_element_type=jnp.float32) * sm_scale
        s = jnp.where(q_pos[:, None] >= (j * bs + jnp.arange(bs))[None, :], s, MASK_VALUE)
        m_next = jnp.maximum(m_prev, jnp.max(s, axis=-1))
        corr = jnp.exp(m_prev - m_next)
        p = jnp.exp(s - m_next[:, None])
        l_next = corr * l_prev + jnp.sum(p, axis=-1)
        o = corr[:, None] * o + jnp.dot(p.astype(vb.dtype), vb, preferred_element_type=jnp.float32)
        return o, m_next, l_next

    init = (jnp.zeros(o_ref.shape, jnp.float32), jnp.full((bs,), -jnp.inf, jnp.float32),
            jnp.zeros((bs,), jnp.float32))
    o, _, l_fin = jax.lax.fori_loop(0, n, body, init)
    o_ref[...] = (o / l_fin[:, None]).astype(o_ref.dtype)
    if count_refs:
        count_refs[0][0, 0, 0] = n


def _pallas_forward(q, k, v, counts, cols, meta, debug_counts=False):
    """Padded ``(B, Tp, H, D)`` inputs -> output (and the per-program visit counts)."""
    bs, nb, max_cols, sm_scale, shared_mask, interpret = meta
    b, tp, h, d = q.shape
    g = h // k.shape[2]
    out_shape = [jax.ShapeDtypeStruct(q.shape, q.dtype)]
    out_specs = [pl.BlockSpec((None, bs, None, d), lambda bb, hh, i: (bb, i, hh, 0))]
    if debug_counts:
        out_shape.append(jax.ShapeDtypeStruct((b, h, nb), jnp.int32))
        out_specs.append(pl.BlockSpec((1, 1, 1), lambda bb, hh, i: (bb, hh, i)))
    kv_spec = pl.BlockSpec((None, tp, None, d), lambda bb, hh, i: (bb, 0, hh // g, 0))
    return pl.pallas_call(
        functools.partial(_kernel, sm_scale=sm_scale, bs=bs, nb=nb, max_cols=max_cols, shared_mask=shared_mask),
        grid=(b, h, nb),
        in_specs=[pl.BlockSpec(counts.shape, lambda bb, hh, i: (0,)),
                  pl.BlockSpec(cols.shape, lambda bb, hh, i: (0,)),
                  pl.BlockSpec((None, bs, None, d), lambda bb, hh, i: (bb, i, hh, 0)), kv_spec, kv_spec],
        out_specs=out_specs, out_shape=out_shape, interpret=interpret,
        compiler_params=None if interpret else compiler_params("triton", num_warps=4 if d <= 64 else 8),
    )(counts, cols, q, k, v)


def _pad_inputs(q, k, v, bs):
    tp = round_up(q.shape[1], bs)
    return pad_axis(q, 1, tp), pad_axis(k, 1, tp), pad_axis(v, 1, tp)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _attention(q, k, v, counts, cols, meta, block_mask_key):
    qp, kp, vp = _pad_inputs(q, k, v, meta[0])
    return _pallas_forward(qp, kp, vp, counts, cols, meta)[0][:, : q.shape[1]]


def _attention_fwd(q, k, v, counts, cols, meta, block_mask_key):
    return _attention(q, k, v, counts, cols, meta, block_mask_key), (q, k, v)


def _attention_bwd(meta, block_mask_key, res, dy):
    q, k, v = res
    mask = np.frombuffer(block_mask_key[0], bool).reshape(block_mask_key[1])
    ref = functools.partial(block_sparse_attention_reference, block_mask=mask, block_size=meta[0],
                            sm_scale=meta[3])
    _, vjp = jax.vjp(ref, q, k, v)
    dq, dk, dv = vjp(dy)
    return dq, dk, dv, None, None


_attention.defvjp(_attention_fwd, _attention_bwd)


# ---------------------------------------------------------------------------------------------
# TPU: splash attention


def _splash(q, k, v, m, bs, sm_scale, interpret):
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk

    b, t, h, d = q.shape
    if bs % 128 or t % bs:
        raise ValueError(f"the TPU (splash) path needs block_size a multiple of 128 and T a multiple of it, "
                         f"got block_size={bs}, T={t}")
    tm = np.broadcast_to(token_mask(m, t, bs), (h, t, t))
    sizes = sk.BlockSizes(block_q=bs, block_kv=bs, block_kv_compute=bs, block_q_dkv=bs, block_kv_dkv=bs,
                          block_kv_dkv_compute=bs, block_q_dq=bs, block_kv_dq=bs)
    kernel = sk.make_splash_mha(np.array(tm), head_shards=1, q_seq_shards=1, block_sizes=sizes,
                                interpret=interpret)
    g = h // k.shape[2]
    kk = jnp.repeat(k, g, axis=2) if g > 1 else k
    vv = jnp.repeat(v, g, axis=2) if g > 1 else v
    qh, kh, vh = (x.transpose(0, 2, 1, 3) for x in ((q * sm_scale).astype(q.dtype), kk, vv))
    return jax.vmap(kernel)(qh, kh, vh).transpose(0, 2, 1, 3)


# ---------------------------------------------------------------------------------------------
# public kernel


def block_sparse_attention(q, k, v, block_mask, *, block_size: int, sm_scale: float | None = None,
                           backend: str | None = None, interpret: bool | None = None,
                           debug_counts: bool = False):
    """Pallas causal block-sparse attention (module doc); same signature and result as
    `block_sparse_attention_reference`."""
    b, t, h, d, hkv = _check_qkv(q, k, v)
    bs = check_tile("block_size", block_size, minimum=1)
    nb = -(-t // bs)
    m = check_block_mask(block_mask, h, nb)
    backend = resolve_backend(backend)
    interpret = resolve_interpret(interpret)
    scale = _scale(sm_scale, d)
    if backend == "tpu":
        if debug_counts:
            raise ValueError("debug_counts is only available for backend='triton'")
        return _splash(q, k, v, m, bs, scale, interpret)
    check_compiled_tiles(backend, interpret, block_size=bs, head_dim=d)
    if not interpret and (d & (d - 1)):
        raise ValueError(f"head_dim={d}: the Triton kernel needs a power of two")
    lay = block_layout(m)
    meta = (bs, nb, lay.max_cols, scale, m.shape[0] == 1, interpret)
    counts, cols = jnp.asarray(lay.counts.reshape(-1)), jnp.asarray(lay.cols.reshape(-1))
    if debug_counts:
        y, visits = _pallas_forward(*_pad_inputs(q, k, v, bs), counts, cols, meta, debug_counts=True)
        return y[:, :t], visits
    return _attention(q, k, v, counts, cols, meta, (m.tobytes(), m.shape))
