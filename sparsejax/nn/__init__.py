"""Shared flax.linen models used across experiments."""
from sparsejax.nn.models import BNCNN, CNN, MLP

__all__ = ["MLP", "CNN", "BNCNN"]
from sparsejax.nn.transformer import DecoderLM, SelfAttention, TransformerBlock, ViT  # noqa: E402

__all__ += ["DecoderLM", "ViT", "TransformerBlock", "SelfAttention"]
