"""Building blocks shared by the PDE models: grid coordinates and the U-Net double convolution,
max-pool down and linear-upsample up blocks (channels-last, any number of spatial dims 1-2)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def grid_coordinates(spatial: tuple[int, ...]) -> jax.Array:
    """Coordinates ``linspace(0, 1)`` per axis, shape ``(*spatial, len(spatial))``."""
    axes = [jnp.linspace(0.0, 1.0, s) for s in spatial]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1)


def with_grid(x: jax.Array) -> jax.Array:
    """Append grid coordinates to the channels of ``x`` (B, *spatial, C)."""
    grid = grid_coordinates(x.shape[1:-1])
    return jnp.concatenate([x, jnp.broadcast_to(grid, x.shape[:-1] + grid.shape[-1:])], axis=-1)


def _groups(features: int) -> int:
    for g in (8, 4, 2):
        if features % g == 0:
            return g
    return 1


class DoubleConv(nn.Module):
    """(3-conv, GroupNorm, ReLU) x 2. The official code uses BatchNorm; GroupNorm keeps ``apply`` pure."""

    features: int
    mid_features: int | None = None

    @nn.compact
    def __call__(self, x):
        d = x.ndim - 2
        for f in (self.mid_features or self.features, self.features):
            x = nn.Conv(f, (3,) * d, padding="SAME", use_bias=False)(x)
            x = nn.relu(nn.GroupNorm(num_groups=_groups(f))(x))
        return x


class Down(nn.Module):
    """2x max-pool, then :class:`DoubleConv`."""

    features: int

    @nn.compact
    def __call__(self, x):
        d = x.ndim - 2
        return DoubleConv(self.features)(nn.max_pool(x, (2,) * d, strides=(2,) * d))


class Up(nn.Module):
    """2x linear upsampling of ``x``, concatenation with the skip ``skip``, :class:`DoubleConv`."""

    features: int

    @nn.compact
    def __call__(self, x, skip):
        x = jax.image.resize(x, skip.shape[:-1] + x.shape[-1:], method="linear")
        x = jnp.concatenate([skip, x], axis=-1)
        return DoubleConv(self.features, x.shape[-1] // 2)(x)
