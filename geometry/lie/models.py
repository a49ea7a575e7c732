"""Affine-equivariant classifier built from lifting and group convolutions (P19, Sec. 5-6).

Follows the official code's GResNet at small scale: lifting layer (evaluated with
stride ``lift_stride``, then ``lift_pool`` 2x2 spatial max pools), group convolutions with SIREN kernels on ``(h^{-1} u, xi^{-1}(h^{-1} g))``,
each followed by the official ``layernorm3d`` (whole-map LayerNorm, :func:`group_layer_norm`) + GELU and separated by 2x2 spatial max pools, global max projection over space and group samples (an invariant), head
``Dense -> LayerNorm -> GELU -> Dense`` (the official ``build_classifier`` without dropout).
Every layer draws fresh group samples (the output samples of layer l are the input samples of
layer l + 1), as the official ``SamplingWrapper`` does; samples come from ``key`` so ``apply``
stays pure: ``logits = model.apply(params, images, key)``. The official wrapper resamples on every
forward pass, inference included (``sample_inference=True, deterministic=False``): pass a fresh
key per call for that; reusing one key gives the fixed-sample variant.

Kernel masks follow the official code: GL+(2) and SE(2) use the smooth mask on ``|g^{-1} u|``
(lifting) and on the whole ``(h^{-1} u, xi^{-1}(h^{-1} g))`` coordinate vector (group
convolutions); SL(2) uses the hard circular mask on the spatial part. Deviations: the lifting
kernel is a bilinear grid (official: a SIREN); the lifting layer has stride 2 and there are no
residual blocks (official ``GSimpleBlock``); the SIREN input divides the Lie coordinates by π;
the Haar importance weights are not used (uniform 1/N, as in the official code).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.lie.haar import sample_group
from geometry.lie.layers import GroupConv, LiftingConv, group_layer_norm, invariant_pool, spatial_max_pool
from sparsejax.core.validation import check_int, check_number, check_choice

GROUPS = ("gl2", "sl2", "se2")


def sample_layer_elements(
    key: jax.Array, num: int, group: str, spd_scale: float, rotations: str = "grid"
) -> jax.Array:
    """Group samples for one layer: ``exp(Y) r`` for GL+(2) / SL(2) (traceless Y), ``r`` for SE(2).

    Rotations default to the fixed equidistant grid (the official code's default SO(2) sampler),
    the SPD factor is log-normal with scale ``spd_scale`` and redrawn at every call (Sec. 6).
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    scale = 0.0 if group == "se2" else spd_scale
    return sample_group(key, num, 2, spd_scale=scale, traceless=group == "sl2", rotations=rotations).g


class AffineGCNN(nn.Module):
    """Classifier equivariant to R^2 x| H (H = GL+(2), SL(2) or SO(2)) up to Monte-Carlo error."""

    num_classes: int
    channels: Sequence[int] = (8, 8, 8)
    num_samples: int = 8
    group: str = "gl2"
    spd_scale: float = 0.3
    kernel_size: int = 5
    kernel_hidden: int = 32
    head: int = 64
    rotations: str = "grid"
    lift_stride: int = 2
    lift_pool: int = 1

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=1)
        check_int("num_samples", self.num_samples, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("kernel_hidden", self.kernel_hidden, minimum=1)
        check_int("head", self.head, minimum=1)
        for c in self.channels:
            check_int("channels", c, minimum=1)
        check_choice("group", self.group, GROUPS)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, key: jax.Array) -> jax.Array:
        if images.ndim != 4:
            raise ValueError(f"AffineGCNN expects NHWC images, got shape {images.shape}")
        if len(self.channels) < 1:
            raise ValueError("channels must have at least one entry")
        keys = jax.random.split(key, len(self.channels))
        g = sample_layer_elements(keys[0], self.num_samples, self.group, self.spd_scale, self.rotations)
        mask = "hard" if self.group == "sl2" else "smooth"
        mask_coords = "spatial" if self.group == "sl2" else "full"
        x = LiftingConv(self.channels[0], self.kernel_size, stride=self.lift_stride, mask=mask, name="lift")(images, g)
        x = nn.gelu(group_layer_norm(x))
        for _ in range(self.lift_pool):
            x = spatial_max_pool(x)
        weights = jnp.full((self.num_samples,), 1.0 / self.num_samples)
        for i, c in enumerate(self.channels):
            if i == 0:
                continue
            if i > 1:
                x = spatial_max_pool(x)
            g_out = sample_layer_elements(keys[i], self.num_samples, self.group, self.spd_scale, self.rotations)
            x = GroupConv(c, self.kernel_size, self.kernel_hidden, mask=mask, mask_coords=mask_coords,
                          name=f"gconv_{i}")(x, g, g_out, weights)
            x = nn.gelu(group_layer_norm(x))
            g = g_out
        x = invariant_pool(x, "max")
        x = nn.gelu(nn.LayerNorm(name="head_norm")(nn.Dense(self.head, use_bias=False, name="dense")(x)))
        return nn.Dense(self.num_classes, name="out")(x)
