"""Latent Spectral Models (Wu et al., ICML 2023, P15) and the U-Net baseline, in flax.linen.

LSM = lifting (input + grid coordinates -> ``width`` channels), a multiscale U-Net encoder /
decoder (the "hierarchical projection network", Sec. 3.1) whose skip features at every scale pass
through a patchified :class:`NeuralSpectralBlock` (Sec. 3.2), and a two-layer projection.
The U-Net baseline is the same network without the spectral blocks. Every spatial size must be a
multiple of ``patch_size * 2^num_scales`` (``2^num_scales`` for the U-Net), so that each scale splits
into whole patches; otherwise a ``ValueError`` names the size and the multiple (e.g. 32^2 fits
``num_scales=2, patch_size=4`` or ``num_scales=3, patch_size=4``, not the official
``num_scales=4, patch_size=4``, which needs 64). ``pad_to_fit=True`` instead zero-pads on the right
to the next multiple and crops the output back; that can multiply the compute (32^2 -> 64^2 is 4x),
so it is opt-in.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from generative.pde.layers import DoubleConv, Down, Up, with_grid
from sparsejax.core.validation import check_array, check_int, check_finite_array


def patchify(x: jax.Array, patch: int) -> jax.Array:
    """Split every spatial axis into patches: ``(B, *S, C)`` becomes ``(B * prod(S / patch), patch**d, C)``."""
    b, *spatial, c = x.shape
    d = len(spatial)
    patch = check_int("patch", patch, minimum=1)
    if any(s % patch for s in spatial):
        raise ValueError(f"spatial shape {tuple(spatial)} is not divisible by patch size {patch}")
    shape = [b] + [v for s in spatial for v in (s // patch, patch)] + [c]
    x = x.reshape(shape)
    order = [0] + [1 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)] + [2 * d + 1]
    return x.transpose(order).reshape(-1, patch ** d, c)


def unpatchify(x: jax.Array, batch: int, spatial: tuple[int, ...], patch: int) -> jax.Array:
    """Inverse of :func:`patchify`."""
    patch = check_int("patch", patch, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    d = len(spatial)
    if any(s % patch for s in spatial):
        raise ValueError(f"spatial shape {tuple(spatial)} is not divisible by patch size {patch}")
    want = batch * math.prod(s // patch for s in spatial)
    if x.ndim != 3 or x.shape[0] != want or x.shape[1] != patch ** d:
        raise ValueError(f"x must have shape ({want}, {patch ** d}, C) for batch={batch}, spatial={tuple(spatial)}, "
                         f"patch={patch}, got {tuple(x.shape)}")
    c = x.shape[-1]
    x = x.reshape([batch] + [s // patch for s in spatial] + [patch] * d + [c])
    order = [0] + [v for i in range(d) for v in (1 + i, 1 + d + i)] + [2 * d + 1]
    return x.transpose(order).reshape((batch, *spatial, c))


def trigonometric_basis(z: jax.Array, num_basis: int) -> jax.Array:
    """``[sin(pi k z / K), cos(pi k z / K)]_{k=0..K-1}`` on a new last axis (size ``2K``), Sec. 3.2."""
    num_basis = check_int("num_basis", num_basis, minimum=1)
    check_array("z", z, dtype_kind="f")
    check_finite_array("z", z)
    freqs = jnp.arange(num_basis, dtype=z.dtype) / num_basis
    arg = jnp.pi * z[..., None] * freqs
    return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)


class NeuralSpectralBlock(nn.Module):
    """Patchified neural spectral block (LSM Sec. 3.2, Fig. 3).

    In every ``patch_size^d`` patch: (1) latent encoder: ``num_tokens`` learned latent tokens
    attend (multi-head, keys/values from a 1x1 projection of the patch) to the patch points and
    are added to the result -- cost linear in the number of grid points; (2) latent spectral
    transition: each latent channel is expanded in the trigonometric basis ``sin/cos(pi k z / K)``
    and recombined with learned per-channel weights (the learned basis operators), plus a
    residual; (3) latent decoder: patch points attend to the transformed tokens, plus a residual.
    """

    num_basis: int = 12
    patch_size: int = 4
    num_tokens: int = 4
    num_heads: int = 8

    def __post_init__(self):
        check_int("num_basis", self.num_basis, minimum=1)
        check_int("patch_size", self.patch_size, minimum=1)
        check_int("num_tokens", self.num_tokens, minimum=1)
        check_int("num_heads", self.num_heads, minimum=1)
        super().__post_init__()

    def encode(self, patches: jax.Array) -> jax.Array:
        """Latent encoder: (P, L, C) patch points -> (P, T, C) latent tokens."""
        c, h = patches.shape[-1], self.num_heads
        init = lambda key, shape: jax.random.uniform(key, shape) / c
        tokens = self.param("latent", init, (h, self.num_tokens, c // h))
        kv = nn.Dense(2 * c, name="encoder_proj")(patches).reshape(*patches.shape[:2], h, c // h, 2)
        attn = jax.nn.softmax(jnp.einsum("htc,plhc->phtl", tokens, kv[..., 0]), axis=-1)
        latent = jnp.einsum("phtl,plhc->phtc", attn, kv[..., 1]) + tokens
        return latent.transpose(0, 2, 1, 3).reshape(patches.shape[0], self.num_tokens, c)

    def transition(self, latent: jax.Array) -> jax.Array:
        """Latent spectral transition ``z + sum_k w_{c,k} basis_k(z)`` on (P, T, C) tokens."""
        c = latent.shape[-1]
        init = lambda key, shape: jax.random.uniform(key, shape) / c
        weights = self.param("basis_weights", init, (c, 2 * self.num_basis))
        return jnp.einsum("ptcm,cm->ptc", trigonometric_basis(latent, self.num_basis), weights) + latent

    def decode(self, patches: jax.Array, latent: jax.Array) -> jax.Array:
        """Latent decoder: patch points (P, L, C) attend to tokens (P, T, C), plus residual."""
        p, l, c = patches.shape
        h = self.num_heads
        q = nn.Dense(c, name="decoder_proj")(patches).reshape(p, l, h, c // h)
        kv = latent.reshape(p, self.num_tokens, h, c // h)
        attn = jax.nn.softmax(jnp.einsum("plhc,pthc->phlt", q, kv), axis=-1)
        return jnp.einsum("phlt,pthc->plhc", attn, kv).reshape(p, l, c) + patches

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """(B, *S, C) -> (B, *S, C); ``S`` divisible by ``patch_size``, ``C`` by ``num_heads``."""
        c = x.shape[-1]
        if c % self.num_heads:
            raise ValueError(f"channels {c} not divisible by num_heads {self.num_heads}")
        patches = patchify(x, self.patch_size)
        latent = self.encode(patches)
        self.sow("intermediates", "latent_tokens", latent)
        out = self.decode(patches, self.transition(latent))
        return unpatchify(out, x.shape[0], x.shape[1:-1], self.patch_size)


class _Multiscale(nn.Module):
    """Lift -> U-Net with optional spectral blocks on every skip -> project."""

    out_channels: int
    width: int = 32
    num_scales: int = 4
    spectral: bool = True
    num_basis: int = 12
    patch_size: int = 4
    num_tokens: int = 4
    num_heads: int = 8
    pad_to_fit: bool = False

    def __post_init__(self):
        check_int("out_channels", self.out_channels, minimum=1)
        check_int("width", self.width, minimum=1)
        check_int("num_scales", self.num_scales, minimum=1)
        check_int("num_basis", self.num_basis, minimum=1)
        check_int("patch_size", self.patch_size, minimum=1)
        check_int("num_tokens", self.num_tokens, minimum=1)
        check_int("num_heads", self.num_heads, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim not in (3, 4):
            raise ValueError(f"x must be (B, n, C) or (B, n, n, C), got shape {x.shape}")
        spatial = x.shape[1:-1]
        multiple = 2 ** self.num_scales * (self.patch_size if self.spectral else 1)
        if not self.pad_to_fit and any(s % multiple for s in spatial):
            what = f"patch_size * 2^num_scales = {self.patch_size} * 2^{self.num_scales}" if self.spectral \
                else f"2^num_scales = 2^{self.num_scales}"
            raise ValueError(f"spatial size {tuple(spatial)} must be a multiple of {what} = {multiple}; choose a "
                             f"smaller num_scales or patch_size, or pass pad_to_fit=True (pads to the next multiple)")
        x = nn.Dense(self.width, name="lift")(with_grid(x))
        pad = [(0, 0)] + [(0, -s % multiple) for s in spatial] + [(0, 0)]
        x = jnp.pad(x, pad)
        w, L = self.width, self.num_scales
        feats = [DoubleConv(w)(x)]
        for i in range(1, L + 1):
            feats.append(Down(w * 2 ** i if i < L else w * 2 ** (L - 1))(feats[-1]))
        if self.spectral:
            feats = [NeuralSpectralBlock(self.num_basis, self.patch_size, self.num_tokens, self.num_heads)(f)
                     for f in feats]
        y = feats[L]
        for i in range(L - 1, -1, -1):
            y = Up(w * 2 ** i // 2 if i > 0 else w)(y, feats[i])
        y = nn.Conv(w, (1,) * len(spatial))(y)
        y = y[(slice(None),) + tuple(slice(0, s) for s in spatial)]
        return nn.Dense(self.out_channels)(nn.gelu(nn.Dense(128)(y)))


class LSM(_Multiscale):
    """Latent Spectral Model (LSM Fig. 2): U-Net + :class:`NeuralSpectralBlock` at every scale.

    Official defaults: ``width=64, num_scales=4, num_basis=12, num_tokens=4, num_heads=8`` and
    ``patch_size`` 4 (Navier-Stokes) or 6 (Darcy).
    """

    spectral: bool = True


class UNet(_Multiscale):
    """U-Net baseline: the LSM backbone without spectral blocks (same lifting and projection)."""

    spectral: bool = False


