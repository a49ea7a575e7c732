"""Shared flax.linen models used across experiments."""
from sparsejax.nn.models import BNCNN, CNN, MLP
from sparsejax.nn.transformer import DecoderLM, SelfAttention, TransformerBlock, ViT, encode_tokens, image_patches

__all__ = ["MLP", "CNN", "BNCNN", "DecoderLM", "ViT", "TransformerBlock", "SelfAttention", "encode_tokens",
           "image_patches"]
