"""Document encoders for P13: the inference-free sparse encoder and a dense dual-encoder baseline.

:class:`SparseDocEncoder`: token embedding, one bidirectional pre-LN transformer block
(:func:`sparsejax.nn.transformer.encode_tokens`), final LayerNorm and a vocabulary head tied to the
embedding (``logits = h E^T + b``); ``d = log(1 + relu(max over positions of logits))`` (the
official ``_encode`` with ``lelu_alpha = 0``), padding token zeroed. Deviations: the paper starts
from a pre-trained MLM (BERT-size); here the encoder is trained from scratch on the synthetic
corpus, and documents have a fixed length (no attention mask: the synthetic documents have no
padding).

:class:`DenseEncoder` (baseline, siamese: one network for queries and documents): the same trunk
on ``max_len`` learned positions, mean pooling over non-padding tokens, L2 normalisation. Padding
tokens are attended to (there is no attention mask in ``TransformerBlock``) but not pooled.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sparsejax.nn.transformer import TransformerBlock, encode_tokens
from sparsejax.retrieval.corpus import PAD


class SparseDocEncoder(nn.Module):
    """``tokens (B, L) -> (B, V)`` non-negative sparse document vectors (module doc)."""

    vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (batch, length), got {tokens.shape}")
        embed = nn.Embed(self.vocab_size, self.d_model, name="tok_embed")
        h = encode_tokens(self, embed(tokens), n_layers=1, n_heads=self.n_heads, mlp_ratio=self.mlp_ratio)
        logits = embed.attend(h) + self.param("head_bias", nn.initializers.zeros, (self.vocab_size,))
        d = jnp.log1p(nn.relu(jnp.max(logits, axis=1)))
        return d.at[:, PAD].set(0.0)


class DenseEncoder(nn.Module):
    """``tokens (B, L <= max_len) -> (B, d_model)`` unit-norm embeddings (module doc)."""

    vocab_size: int
    max_len: int
    d_model: int = 64
    n_heads: int = 4
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
        if tokens.ndim != 2 or tokens.shape[1] > self.max_len:
            raise ValueError(f"tokens must have shape (batch, length <= {self.max_len}), got {tokens.shape}")
        x = nn.Embed(self.vocab_size, self.d_model, name="tok_embed")(tokens)
        x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (self.max_len, self.d_model))[: tokens.shape[1]]
        h = nn.LayerNorm(name="ln_f")(TransformerBlock(self.d_model, self.n_heads, self.mlp_ratio, name="block_0")(x))
        keep = (tokens != PAD).astype(h.dtype)[..., None]
        pooled = (h * keep).sum(1) / jnp.maximum(keep.sum(1), 1.0)
        return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-6)
