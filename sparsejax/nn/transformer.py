"""Small pre-LayerNorm transformers (flax.linen): a vision transformer for digits-sized images and
a decoder-only language model.

Every projection is an ``nn.Dense`` with a 2-D kernel (``qkv``, ``out``, ``fc1``, ``fc2``, heads),
so the default sparsifiable-leaf rule (ndim >= 2, not an embedding table) and N:M masks along the
input axis (axis 0 of a flax kernel, the reduction axis of the matmul) apply to all of them.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sparsejax.core.validation import check_index_range, check_int


def _check_heads(d_model: int, n_heads: int) -> None:
    if n_heads < 1 or d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection and an ``out`` projection."""

    d_model: int
    n_heads: int
    causal: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        check_int("d_model", self.d_model, minimum=1)
        check_int("n_heads", self.n_heads, minimum=1)
        _check_heads(self.d_model, self.n_heads)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (batch, time, d_model), got {x.shape}")
        b, t, _ = x.shape
        head_dim = self.d_model // self.n_heads
        qkv = nn.Dense(3 * self.d_model, name="qkv")(x).reshape(b, t, 3, self.n_heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(x.dtype)
        if self.causal:
            allowed = jnp.tril(jnp.ones((t, t), bool))
            logits = jnp.where(allowed, logits, jnp.finfo(logits.dtype).min)
        attn = nn.softmax(logits, axis=-1)
        y = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, t, self.d_model)
        return nn.Dense(self.d_model, name="out")(y)


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + attn(LN(x))`` then ``x + fc2(gelu(fc1(LN(x))))``."""

    d_model: int
    n_heads: int
    mlp_ratio: int = 4
    causal: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x + SelfAttention(self.d_model, self.n_heads, self.causal, name="attn")(nn.LayerNorm(name="ln1")(x))
        h = nn.gelu(nn.Dense(self.mlp_ratio * self.d_model, name="fc1")(nn.LayerNorm(name="ln2")(x)))
        return x + nn.Dense(self.d_model, name="fc2")(h)


class DecoderLM(nn.Module):
    """Decoder-only causal language model: token + learned position embeddings, ``n_layers`` pre-LN
    blocks, final LayerNorm and an untied ``lm_head``. ``__call__(tokens[B, T]) -> logits[B, T, V]``
    with ``T <= max_len``; position ``t`` only attends to positions ``<= t``."""

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 64
    mlp_ratio: int = 4

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
        for i in range(self.n_layers):
            x = TransformerBlock(self.d_model, self.n_heads, self.mlp_ratio, causal=True, name=f"block_{i}")(x)
        return nn.Dense(self.vocab_size, name="lm_head")(nn.LayerNorm(name="ln_f")(x))


class ViT(nn.Module):
    """Vision transformer: non-overlapping ``patch_size`` patches, a linear ``patch_embed``, learned
    position embeddings, ``n_layers`` pre-LN blocks, mean pooling over tokens and a ``head``.
    Input NHWC with H and W divisible by ``patch_size`` (digits: 8x8x1 -> 16 tokens at patch 2)."""

    num_classes: int
    patch_size: int = 2
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        _check_heads(self.d_model, self.n_heads)
        if x.ndim != 4:
            raise ValueError(f"ViT expects NHWC input, got shape {x.shape}")
        b, h, w, c = x.shape
        p = self.patch_size
        if p < 1 or h % p or w % p:
            raise ValueError(f"image size {h}x{w} is not divisible by patch_size={p}")
        patches = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)
        tokens = nn.Dense(self.d_model, name="patch_embed")(patches)
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (tokens.shape[1], self.d_model))
        tokens = tokens + pos
        for i in range(self.n_layers):
            tokens = TransformerBlock(self.d_model, self.n_heads, self.mlp_ratio, name=f"block_{i}")(tokens)
        pooled = nn.LayerNorm(name="ln_f")(tokens).mean(axis=1)
        return nn.Dense(self.num_classes, name="head")(pooled)
