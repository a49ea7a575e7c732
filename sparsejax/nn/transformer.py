"""Small pre-LayerNorm transformers (flax.linen): a vision transformer for digits-sized images and
a decoder-only language model.

Every projection is an ``nn.Dense`` with a 2-D kernel (``qkv``, ``out``, ``fc1``, ``fc2``, heads),
so the default sparsifiable-leaf rule (ndim >= 2, not an embedding table) and N:M masks along the
input axis (axis 0 of a flax kernel, the reduction axis of the matmul) apply to all of them.

Pluggable attention: ``attention_fn(q, k, v) -> y`` with ``q, k, v, y`` of shape ``(B, T, H, D)``
(unscaled projections) replaces the built-in softmax (it then owns scaling and causality), e.g. the
block-sparse S2-Attention of `sparsejax.llm.s2_attention`. `DecoderLM` takes one function for every
layer or a tuple with one entry per layer (``None``: the built-in dense attention).
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from sparsejax.core.validation import check_index_range, check_int


def _check_heads(d_model: int, n_heads: int) -> None:
    if n_heads < 1 or d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection and an ``out`` projection;
    ``attention_fn`` (module doc) replaces the built-in softmax when given. ``head_dim`` defaults to
    ``d_model // n_heads``; setting it (a compact network with heads removed) makes ``qkv``
    ``3 * n_heads * head_dim`` wide."""

    d_model: int
    n_heads: int
    causal: bool = False
    attention_fn: Callable | None = None
    head_dim: int | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        check_int("d_model", self.d_model, minimum=1)
        check_int("n_heads", self.n_heads, minimum=1)
        if self.head_dim is None:
            _check_heads(self.d_model, self.n_heads)
        elif self.n_heads < 1 or self.head_dim < 1:
            raise ValueError(f"n_heads={self.n_heads} and head_dim={self.head_dim} must be >= 1")
        if x.ndim != 3:
            raise ValueError(f"x must have shape (batch, time, d_model), got {x.shape}")
        b, t, _ = x.shape
        head_dim = self.d_model // self.n_heads if self.head_dim is None else self.head_dim
        inner = self.n_heads * head_dim
        qkv = nn.Dense(3 * inner, name="qkv")(x).reshape(b, t, 3, self.n_heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.attention_fn is not None:
            y = self.attention_fn(q, k, v)
            if y.shape != q.shape:
                raise ValueError(f"attention_fn must return shape {q.shape} (B, T, H, D), got {y.shape}")
            return nn.Dense(self.d_model, name="out")(y.reshape(b, t, inner))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(x.dtype)
        if self.causal:
            allowed = jnp.tril(jnp.ones((t, t), bool))
            logits = jnp.where(allowed, logits, jnp.finfo(logits.dtype).min)
        attn = nn.softmax(logits, axis=-1)
        y = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, t, inner)
        return nn.Dense(self.d_model, name="out")(y)


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + attn(LN(x))`` then ``x + fc2(gelu(fc1(LN(x))))``; ``fc1`` is ``mlp_hidden``
    wide (default ``mlp_ratio * d_model``)."""

    d_model: int
    n_heads: int
    mlp_ratio: int = 4
    causal: bool = False
    attention_fn: Callable | None = None
    head_dim: int | None = None
    mlp_hidden: int | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        attn = SelfAttention(self.d_model, self.n_heads, self.causal, attention_fn=self.attention_fn,
                             head_dim=self.head_dim, name="attn")
        x = x + attn(nn.LayerNorm(name="ln1")(x))
        hidden = self.mlp_ratio * self.d_model if self.mlp_hidden is None else self.mlp_hidden
        h = nn.gelu(nn.Dense(hidden, name="fc1")(nn.LayerNorm(name="ln2")(x)))
        return x + nn.Dense(self.d_model, name="fc2")(h)


class DecoderLM(nn.Module):
    """Decoder-only causal language model: token + learned position embeddings, ``n_layers`` pre-LN
    blocks, final LayerNorm and an untied ``lm_head``. ``__call__(tokens[B, T]) -> logits[B, T, V]``
    with ``T <= max_len``; position ``t`` only attends to positions ``<= t``. ``attention_fn``: one
    function for all layers or a tuple of ``n_layers`` entries (module doc)."""

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 64
    mlp_ratio: int = 4
    attention_fn: Callable | tuple | None = None

    @nn.compact
    def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
        check_int("vocab_size", self.vocab_size, minimum=1)
        for name in ("d_model", "n_layers", "n_heads", "max_len", "mlp_ratio"):
            check_int(name, getattr(self, name), minimum=1)
        _check_heads(self.d_model, self.n_heads)
        if tokens.ndim != 2:
            raise ValueError(f"DecoderLM expects tokens of shape (batch, time), got {tokens.shape}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len={self.max_len}")
        check_index_range("tokens", tokens, self.vocab_size)  # concrete tokens only (embedding gathers clamp)
        x = nn.Embed(self.vocab_size, self.d_model, name="tok_embed")(tokens)
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (self.max_len, self.d_model))
        x = x + pos[: tokens.shape[1]]
        fns = self.attention_fn if isinstance(self.attention_fn, tuple) else (self.attention_fn,) * self.n_layers
        if len(fns) != self.n_layers:
            raise ValueError(f"attention_fn has {len(fns)} entries; expected one per layer ({self.n_layers})")
        for i in range(self.n_layers):
            x = TransformerBlock(self.d_model, self.n_heads, self.mlp_ratio, causal=True, attention_fn=fns[i],
                                 name=f"block_{i}")(x)
        return nn.Dense(self.vocab_size, name="lm_head")(nn.LayerNorm(name="ln_f")(x))


def image_patches(x: jnp.ndarray, patch_size: int) -> jnp.ndarray:
    """``(B, H, W, C) -> (B, H/p * W/p, p*p*C)``: non-overlapping patches in row-major token order."""
    b, h, w, c = x.shape
    p = patch_size
    if p < 1 or h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not divisible by patch_size={p}")
    return x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)


def encode_tokens(module: nn.Module, tokens: jnp.ndarray, *, n_layers: int, n_heads: int | tuple[int, ...],
                  mlp_ratio: int, head_dim: int | None = None,
                  mlp_hidden: tuple[int | None, ...] | None = None) -> jnp.ndarray:
    """The ViT trunk, called from inside ``module``'s compact ``__call__``: adds the learned
    ``pos_embedding``, runs ``n_layers`` pre-LN blocks ``block_i`` and the final LayerNorm ``ln_f``,
    and returns the normalised ``(B, T, d)`` tokens. ``n_heads`` and ``mlp_hidden`` may give one entry
    per block (a compact network). Shared by :class:`ViT` and the zoo's masked-patch encoder, so their
    parameter trees match."""
    d_model = tokens.shape[-1]
    heads = (n_heads,) * n_layers if isinstance(n_heads, int) else tuple(n_heads)
    hidden = (None,) * n_layers if mlp_hidden is None else tuple(mlp_hidden)
    tokens = tokens + module.param("pos_embedding", nn.initializers.normal(0.02), (tokens.shape[1], d_model))
    for i in range(n_layers):
        tokens = TransformerBlock(d_model, heads[i], mlp_ratio, head_dim=head_dim, mlp_hidden=hidden[i],
                                  name=f"block_{i}")(tokens)
    return nn.LayerNorm(name="ln_f")(tokens)


class ViT(nn.Module):
    """Vision transformer: non-overlapping ``patch_size`` patches, a linear ``patch_embed``, learned
    position embeddings, ``n_layers`` pre-LN blocks, mean pooling over tokens and a ``head``.
    Input NHWC with H and W divisible by ``patch_size`` (digits: 8x8x1 -> 16 tokens at patch 2).
    A compact ViT (heads / MLP units removed) gives ``n_heads`` and ``mlp_hidden`` per block and a
    fixed ``head_dim``."""

    num_classes: int
    patch_size: int = 2
    d_model: int = 64
    n_layers: int = 2
    n_heads: int | tuple[int, ...] = 4
    mlp_ratio: int = 2
    head_dim: int | None = None
    mlp_hidden: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        heads = (self.n_heads,) * self.n_layers if isinstance(self.n_heads, int) else tuple(self.n_heads)
        hidden = (None,) * self.n_layers if self.mlp_hidden is None else tuple(self.mlp_hidden)
        if len(heads) != self.n_layers or len(hidden) != self.n_layers:
            raise ValueError(f"n_heads {self.n_heads} and mlp_hidden {self.mlp_hidden} need one entry per layer "
                             f"(n_layers={self.n_layers})")
        if self.head_dim is None:
            for h in heads:
                _check_heads(self.d_model, h)
        if x.ndim != 4:
            raise ValueError(f"ViT expects NHWC input, got shape {x.shape}")
        tokens = nn.Dense(self.d_model, name="patch_embed")(image_patches(x, self.patch_size))
        tokens = encode_tokens(self, tokens, n_layers=self.n_layers, n_heads=heads, mlp_ratio=self.mlp_ratio,
                               head_dim=self.head_dim, mlp_hidden=hidden)
        return nn.Dense(self.num_classes, name="head")(tokens.mean(axis=1))
