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


class BNCNN(nn.Module):
    """3x3 ``VALID`` conv stack, each conv (no bias) followed by BatchNorm and ReLU, global average pool
    and a dense ``head`` (layers ``conv_<i>``, ``bn_<i>``, ``head``). ``VALID`` padding makes a channel
    whose BN scale is zero emit a spatially constant map, so its shift folds exactly into the next
    layer's bias (``sparsejax.structured.coupled.extract``). With ``residual=True`` a block whose width
    equals the previous block's adds the (centre-cropped) previous output before the ReLU.
    Call with ``train=True`` and ``mutable=["batch_stats"]`` to update the running statistics."""

    num_classes: int
    channels: Sequence[int] = (32, 64, 64)
    width: float = 1.0
    residual: bool = False
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if x.ndim != 4:
            raise ValueError(f"BNCNN expects NHWC input, got shape {x.shape}")
        for i, c in enumerate(_scaled(self.channels, self.width)):
            if x.shape[1] < 3 or x.shape[2] < 3:
                raise ValueError(f"BNCNN: input {x.shape[1]}x{x.shape[2]} at conv_{i} is smaller than the 3x3 window")
            h = nn.Conv(c, (3, 3), padding="VALID", use_bias=False, name=f"conv_{i}")(x)
            h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, name=f"bn_{i}")(h)
            if self.residual and i > 0 and x.shape[-1] == c:
                h = h + x[:, 1:-1, 1:-1, :]
            x = nn.relu(h)
        return nn.Dense(self.num_classes, name="head")(x.mean(axis=(1, 2)))
