"""S2-Attention (P44): heterogeneous context sharding among heads, as block masks for the causal
block-sparse attention kernel (`sparsejax.kernels.block_sparse_attention`).

Pattern (`s2_block_mask`, following ``get_sparse_attn_mask`` in the official ``linxihui/dkernel``,
``dkernel/utils.py``): blocks of ``block_size`` tokens; for sparse kv head ``h``, query block ``i``
attends key block ``j`` iff

    i >= j   and   ( i - j < local_blocks   or   (j + h * s + head_sliding_offset) mod vert_stride == 0 ),

with the head sliding step ``s = max(1, vert_stride // num_heads)`` (``num_heads`` = query heads, as in
the official code). Positions are absolute (the vertical stripes are the same key blocks for every
query block, so the KV cache of a stripe is reused by all later tokens). Options, as in ``dkernel``:

* ``homo_head=True``: one shared pattern for all heads (shape ``(1, nb, nb)``), the homogeneous
  baseline; no dense heads allowed;
* ``num_dense_heads``: the *last* kv heads are dense (causal);
* ``num_kv_heads`` (GQA): the pattern is built per kv head and shared by its query heads.

Coverage: with ``num_heads >= vert_stride`` the shifts ``h * s`` run through every residue mod
``vert_stride``, so the union of the heads is the full causal mask (each head reads ~1/vert_stride
of the distant context, together they read all of it); with fewer heads there are gaps outside the
local window (``union_covers_causal`` tells). ``vert_stride = 1`` is dense causal attention.

Hybrid dense layers (the paper's "S2 + dense layers", e.g. every other layer dense in Phi-3-small
[recalled]) are a per-layer choice: `attention_fns` builds the tuple of attention functions that
`sparsejax.nn.DecoderLM(attention_fn=...)` takes. `local_block_mask` and `dense_block_mask` are the
local-only and dense baselines; `pattern_stats` counts the attended blocks, the attended token-pair
fraction (attention FLOPs relative to dense causal) and the fraction of the KV cache that a head has
to keep for the last query (KV bytes relative to dense).
"""
from __future__ import annotations

import functools

import numpy as np

from sparsejax.core.validation import check_choice, check_int
from sparsejax.kernels.block_sparse_attention import (
    block_sparse_attention,
    block_sparse_attention_reference,
    check_block_mask,
)

__all__ = ["s2_block_mask", "local_block_mask", "dense_block_mask", "union_covers_causal", "pattern_stats",
           "matched_local_blocks", "s2_attention_fn", "attention_fns"]


def _causal(nb: int) -> np.ndarray:
    return np.tril(np.ones((nb, nb), bool))


def s2_block_mask(num_heads: int, num_blocks: int, *, local_blocks: int, vert_stride: int,
                  homo_head: bool = False, num_kv_heads: int | None = None, num_dense_heads: int = 0,
                  head_sliding_offset: int = 0) -> np.ndarray:
    """Boolean ``(num_heads, nb, nb)`` S2 block mask (``(1, nb, nb)`` with ``homo_head``); module doc."""
    num_heads = check_int("num_heads", num_heads, minimum=1)
    nb = check_int("num_blocks", num_blocks, minimum=1)
    local_blocks = check_int("local_blocks", local_blocks, minimum=0)
    vert_stride = check_int("vert_stride", vert_stride, minimum=1)
    head_sliding_offset = check_int("head_sliding_offset", head_sliding_offset, minimum=0)
    if vert_stride > 1 and local_blocks < 1:
        raise ValueError(f"local_blocks must be >= 1 when vert_stride > 1 (got {local_blocks}): the first "
                         "block of some heads would attend nothing")
    num_kv = num_heads if num_kv_heads is None else check_int("num_kv_heads", num_kv_heads, minimum=1)
    if num_heads % num_kv:
        raise ValueError(f"num_heads={num_heads} must be a multiple of num_kv_heads={num_kv}")
    num_dense_heads = check_int("num_dense_heads", num_dense_heads, minimum=0, maximum=num_kv)
    if homo_head:
        if num_dense_heads:
            raise ValueError("homo_head=True cannot have dense heads (num_dense_heads must be 0)")
        num_heads = num_kv = 1
    step = max(1, vert_stride // num_heads)
    i, j = np.arange(nb)[:, None], np.arange(nb)[None, :]
    masks = []
    for h in range(num_kv):
        if h < num_kv - num_dense_heads:
            stripe = (np.arange(nb) + h * step + head_sliding_offset) % vert_stride == 0
            m = (i >= j) & ((i - j < local_blocks) | stripe[None, :])
        else:
            m = _causal(nb)
        masks += [m] * (num_heads // num_kv)
    return np.stack(masks)


def local_block_mask(num_heads: int, num_blocks: int, local_blocks: int) -> np.ndarray:
    """Sliding window of ``local_blocks`` blocks (the diagonal one included), same for all heads."""
    nb = check_int("num_blocks", num_blocks, minimum=1)
    local_blocks = check_int("local_blocks", local_blocks, minimum=1)
    i, j = np.arange(nb)[:, None], np.arange(nb)[None, :]
    m = (i >= j) & (i - j < local_blocks)
    return np.repeat(m[None], check_int("num_heads", num_heads, minimum=1), 0)


def dense_block_mask(num_heads: int, num_blocks: int) -> np.ndarray:
    """Dense causal block mask for every head."""
    nb = check_int("num_blocks", num_blocks, minimum=1)
    return np.repeat(_causal(nb)[None], check_int("num_heads", num_heads, minimum=1), 0)


def union_covers_causal(block_mask) -> bool:
    """True when the union of the heads' blocks is the full causal block mask."""
    m = check_block_mask(block_mask)
    return bool((m.any(0) == _causal(m.shape[1])).all())


def matched_local_blocks(block_mask) -> int:
    """The local window (in blocks) whose attended-block count is closest to ``block_mask``'s mean
    per-head count (for variants at equal attended blocks per head)."""
    m = check_block_mask(block_mask)
    nb = m.shape[1]
    target = m.sum() / m.shape[0]
    counts = [local_block_mask(1, nb, w).sum() for w in range(1, nb + 1)]
    return int(np.argmin(np.abs(np.asarray(counts) - target))) + 1


def pattern_stats(block_mask, seq_len: int, block_size: int) -> dict:
    """Work and memory of a block mask relative to dense causal attention: kept blocks per head
    (mean), attended block fraction, attended token-pair fraction (= attention FLOPs fraction: QK^T
    and PV both scale with the pairs; exact, counted per block), and the KV fraction: distinct key
    tokens the last query block of each head reads over ``seq_len`` (the KV cache a decoder must
    keep), averaged over heads; ``covers_causal``: the union of the heads is the causal mask."""
    m = check_block_mask(block_mask)
    nb = m.shape[1]
    seq_len = check_int("seq_len", seq_len, minimum=1)
    block_size = check_int("block_size", block_size, minimum=1)
    if -(-seq_len // block_size) != nb:
        raise ValueError(f"seq_len={seq_len} with block_size={block_size} needs {-(-seq_len // block_size)} "
                         f"blocks; block_mask has {nb}")
    sizes = np.minimum(block_size, seq_len - block_size * np.arange(nb)).astype(np.float64)
    block_pairs = np.outer(sizes, sizes)
    np.fill_diagonal(block_pairs, sizes * (sizes + 1) / 2)
    pairs = (m * block_pairs).sum(axis=(1, 2))
    kv_tokens = (m[:, -1, :] * sizes).sum(1)
    return {"blocks_per_head": float(m.sum() / m.shape[0]),
            "block_fraction": float(m.sum() / m.shape[0] / (nb * (nb + 1) / 2)),
            "pair_fraction": float(pairs.mean() / (seq_len * (seq_len + 1) / 2)),
            "kv_fraction": float(kv_tokens.mean() / seq_len),
            "covers_causal": union_covers_causal(m)}


def s2_attention_fn(block_mask, block_size: int, *, impl: str = "reference", backend: str | None = None,
                    interpret: bool | None = None):
    """An ``attention_fn(q, k, v)`` for `sparsejax.nn.SelfAttention`: causal block-sparse attention
    with ``block_mask``; ``impl="kernel"`` runs the Pallas kernel, ``"reference"`` the jnp one."""
    impl = check_choice("impl", impl, ("reference", "kernel"))
    m = check_block_mask(block_mask)
    fn = block_sparse_attention if impl == "kernel" else block_sparse_attention_reference
    kw = {"backend": backend, "interpret": interpret} if impl == "kernel" else {}
    return functools.partial(fn, block_mask=m, block_size=check_int("block_size", block_size, minimum=1), **kw)


def attention_fns(masks, block_size: int, **kwargs) -> tuple:
    """One `s2_attention_fn` per layer from a sequence of block masks (``None``: built-in dense)."""
    return tuple(None if m is None else s2_attention_fn(m, block_size, **kwargs) for m in masks)
