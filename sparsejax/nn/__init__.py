"""Shared flax.linen models used across experiments."""
from sparsejax.nn.models import CNN, MLP

__all__ = ["MLP", "CNN"]
