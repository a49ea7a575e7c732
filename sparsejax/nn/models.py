"""Small flax.linen classifiers with a width multiplier."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
from sparsejax.core.validation import check_int, check_number


def _scaled(features: Sequence[int], width: float) -> list[int]:
    if width <= 0:
        raise ValueError(f"width multiplier must be > 0, got {width}")
    return [max(1, int(round(f * width))) for f in features]


class MLP(nn.Module):
    """ReLU MLP; inputs are flattened. Hidden sizes are ``hidden * width``."""

    num_classes: int
    hidden: Sequence[int] = (128, 128)
    width: float = 1.0

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=1)
        for h in self.hidden:
            check_int("hidden", h, minimum=1)
        check_number("width", self.width, minimum=0.0, min_inclusive=False)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x.reshape(x.shape[0], -1)
        for i, f in enumerate(_scaled(self.hidden, self.width)):
            x = nn.relu(nn.Dense(f, name=f"dense_{i}")(x))
        return nn.Dense(self.num_classes, name="head")(x)


class CNN(nn.Module):
    """3x3 conv stack (ReLU, 2x2 average pool after each) + dense head; channels ``* width``."""

    num_classes: int
    channels: Sequence[int] = (16, 32)
    hidden: int = 64
    width: float = 1.0

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=1)
        for c in self.channels:
            check_int("channels", c, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_number("width", self.width, minimum=0.0, min_inclusive=False)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if x.ndim != 4:
            raise ValueError(f"x must be an NHWC batch (B, H, W, C) for CNN, got shape {x.shape}")
        for i, c in enumerate(_scaled(self.channels, self.width)):
            x = nn.relu(nn.Conv(c, (3, 3), padding="SAME", name=f"conv_{i}")(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(_scaled([self.hidden], self.width)[0], name="dense")(x))
        return nn.Dense(self.num_classes, name="head")(x)
