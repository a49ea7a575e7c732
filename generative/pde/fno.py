"""Fourier Neural Operator baseline (Li et al., ICLR 2021) in flax.linen, 1-D and 2-D."""
from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp

from generative.pde.layers import with_grid
from sparsejax.core.validation import check_int


class SpectralConv(nn.Module):
    """``x -> irfft(W_k . rfft(x)_k)`` keeping the lowest ``modes`` frequencies on every axis."""

    features: int
    modes: int

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("modes", self.modes, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        spatial = x.shape[1:-1]
        d, cin, m = len(spatial), x.shape[-1], self.modes
        if any(m > s // 2 for s in spatial[:-1]) or m > spatial[-1] // 2 + 1:
            raise ValueError(f"modes={m} too large for spatial shape {spatial}")
        axes = tuple(range(1, d + 1))
        x_ft = jnp.fft.rfftn(x, axes=axes)
        out = jnp.zeros(x_ft.shape[:-1] + (self.features,), x_ft.dtype)
        scale = 1.0 / (cin * self.features)
        letters = "xyz"[:d]
        # the non-last axes keep their lowest positive and lowest negative frequencies
        for n, corner in enumerate(itertools.product((0, 1), repeat=d - 1)):
            shape = (cin, self.features) + (m,) * d
            w = (self.param(f"w{n}_re", lambda k, s: scale * jax.random.uniform(k, s), shape)
                 + 1j * self.param(f"w{n}_im", lambda k, s: scale * jax.random.uniform(k, s), shape))
            idx = tuple(slice(0, m) if c == 0 else slice(-m, None) for c in corner) + (slice(0, m),)
            block = jnp.einsum(f"b{letters}i,io{letters}->b{letters}o", x_ft[(slice(None),) + idx], w)
            out = out.at[(slice(None),) + idx].set(block)
        return jnp.fft.irfftn(out, s=spatial, axes=axes).astype(x.dtype)


class FNO(nn.Module):
    """Lift (input + grid), ``depth`` layers ``gelu(SpectralConv(x) + W x)``, project (Dense-128-gelu-Dense).

    ``padding`` zero-pads the right of every axis before the Fourier layers (the FNO trick for
    non-periodic problems such as Darcy) and crops it afterwards.
    """

    out_channels: int
    width: int = 32
    modes: int = 12
    depth: int = 4
    padding: int = 0

    def __post_init__(self):
        check_int("out_channels", self.out_channels, minimum=1)
        check_int("width", self.width, minimum=1)
        check_int("modes", self.modes, minimum=1)
        check_int("depth", self.depth, minimum=1)
        check_int("padding", self.padding, minimum=0)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim not in (3, 4):
            raise ValueError(f"x must be (B, n, C) or (B, n, n, C), got shape {x.shape}")
        spatial = x.shape[1:-1]
        d = len(spatial)
        x = nn.Dense(self.width)(with_grid(x))
        x = jnp.pad(x, [(0, 0)] + [(0, self.padding)] * d + [(0, 0)])
        for i in range(self.depth):
            y = SpectralConv(self.width, self.modes)(x) + nn.Conv(self.width, (1,) * d)(x)
            x = nn.gelu(y) if i < self.depth - 1 else y
        x = x[(slice(None),) + tuple(slice(0, s) for s in spatial)]
        return nn.Dense(self.out_channels)(nn.gelu(nn.Dense(128)(x)))
