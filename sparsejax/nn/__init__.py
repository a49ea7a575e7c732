"""Shared flax.linen models used across experiments."""
from sparsejax.nn.models import CNN, MLP

__all__ = ["MLP", "CNN"]
from sparsejax.nn.transformer import DecoderLM, SelfAttention, TransformerBlock, ViT  # noqa: E402

__all__ += ["DecoderLM", "ViT", "TransformerBlock", "SelfAttention"]
