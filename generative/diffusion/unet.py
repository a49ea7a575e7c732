"""A small flax.linen U-Net denoiser that exposes its bottleneck activation ``h``.

``h`` is the output of the middle block (the deepest feature map), the "h-space" of Kwon et al.
2023 (Asyrp) and Haas et al. 2024 (P17). A caller may add a shift ``delta_h`` to it before the
decoder runs; ``UNet.apply(params, x_t, t, delta_h) -> (eps, h)`` returns the noise prediction
and the *unshifted* bottleneck, so the same model serves plain training/sampling
(``delta_h=None``) and h-space editing.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from sparsejax.core.validation import check_int, check_number, check_type


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
    """Sinusoidal embedding of (integer or real) timesteps ``t`` of shape ``(B,)`` -> ``(B, dim)``
    (Vaswani et al. 2017, as used by Ho et al. 2020)."""
    dim = check_int("dim", dim, minimum=2)
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    check_number("max_period", max_period, minimum=0.0, min_inclusive=False)
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv residual block with an additive timestep embedding."""

    channels: int

    @nn.compact
    def __call__(self, x, temb):
        y = nn.Conv(self.channels, (3, 3))(nn.silu(nn.GroupNorm(_groups(x.shape[-1]))(x)))
        y = y + nn.Dense(self.channels)(nn.silu(temb))[:, None, None, :]
        y = nn.Conv(self.channels, (3, 3))(nn.silu(nn.GroupNorm(_groups(self.channels))(y)))
        if x.shape[-1] != self.channels:
            x = nn.Conv(self.channels, (1, 1))(x)
        return x + y


class UNet(nn.Module):
    """U-Net ``(x_t, t, delta_h) -> (eps, h)`` for NHWC images.

    ``channels[i]`` is the width at resolution level ``i`` (each further level halves H and W, so
    H and W must be divisible by ``2**(len(channels)-1)``); ``h`` has shape
    ``(B, H / 2**(L-1), W / 2**(L-1), channels[-1])``.
    """

    channels: Sequence[int] = (32, 64, 64)
    num_res_blocks: int = 1
    time_dim: int = 64
    out_channels: int | None = None

    def __post_init__(self):
        if not self.channels:
            raise ValueError("channels must list at least one level width, got ()")
        for c in self.channels:
            check_int("channels", c, minimum=1)
        check_int("num_res_blocks", self.num_res_blocks, minimum=1)
        check_int("time_dim", self.time_dim, minimum=2)
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even, got {self.time_dim}")
        if self.out_channels is not None:
            check_int("out_channels", self.out_channels, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, delta_h: jax.Array | None = None):
        if x.ndim != 4:
            raise ValueError(f"x must be NHWC, got shape {x.shape}")
        factor = 2 ** (len(self.channels) - 1)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"H, W = {x.shape[1:3]} must be divisible by {factor}")
        t = jnp.broadcast_to(jnp.asarray(t), (x.shape[0],))
        temb = timestep_embedding(t, self.time_dim)
        temb = nn.Dense(4 * self.time_dim)(nn.silu(nn.Dense(4 * self.time_dim)(temb)))

        y = nn.Conv(self.channels[0], (3, 3))(x)
        skips = []
        for level, ch in enumerate(self.channels):
            for _ in range(self.num_res_blocks):
                y = ResBlock(ch)(y, temb)
            skips.append(y)
            if level < len(self.channels) - 1:
                y = nn.Conv(ch, (3, 3), strides=(2, 2))(y)

        h = ResBlock(self.channels[-1])(y, temb)  # bottleneck: the h-space
        y = h if delta_h is None else h + delta_h

        for level in reversed(range(len(self.channels))):
            y = jnp.concatenate([y, skips[level]], axis=-1)
            for _ in range(self.num_res_blocks):
                y = ResBlock(self.channels[level])(y, temb)
            if level > 0:
                b, hh, ww, c = y.shape
                y = jax.image.resize(y, (b, 2 * hh, 2 * ww, c), "nearest")
                y = nn.Conv(self.channels[level - 1], (3, 3))(y)

        y = nn.silu(nn.GroupNorm(_groups(self.channels[0]))(y))
        eps = nn.Conv(self.out_channels or x.shape[-1], (3, 3))(y)
        return eps, h


def unet_eps_fn(model: UNet, params) -> Callable:
    """Close over ``params``: ``eps_fn(x_t, t, delta_h) -> (eps, h)`` for the samplers."""
    check_type("model", model, UNet)

    def eps_fn(x, t, delta_h=None):
        return model.apply(params, x, t, delta_h)

    return eps_fn
