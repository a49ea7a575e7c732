"""PΘNITA building blocks: lifting, kernel bases, separable group convolution, ConvNeXt block, readouts.

Feature maps live on the fibre bundle ``R^n x grid``: arrays ``(B, N, O, C)`` (node, grid
orientation, channel). References are to Bekkers et al., "Fast, Expressive SE(n) Equivariant
Networks through Weight-Sharing in Position-Orientation Space", ICLR 2024.
"""
from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.ponita.graph import Neighbours, degree, gather_neighbours
from sparsejax.core.validation import check_array, check_finite_array, check_int


def polynomial_features(x: jax.Array, degree: int) -> jax.Array:
    """All monomials of the trailing attributes up to ``degree`` (repeated outer products), the
    embedding in front of the kernel MLP (Sec. 4.3); ``(..., a)`` -> ``(..., a + a^2 + ... + a^degree)``."""
    degree = check_int("degree", degree, minimum=1)
    feats, last = [x], x
    for _ in range(degree - 1):
        last = (last[..., :, None] * x[..., None, :]).reshape(x.shape[:-1] + (-1,))
        feats.append(last)
    return jnp.concatenate(feats, -1)


class KernelBasis(nn.Module):
    """Invariant attributes -> kernel basis: polynomial features, Dense-GELU-Dense-GELU (Sec. 4.3)."""

    hidden_dim: int
    basis_dim: int
    degree: int = 3

    def __post_init__(self):
        check_int("hidden_dim", self.hidden_dim, minimum=1)
        check_int("basis_dim", self.basis_dim, minimum=1)
        check_int("degree", self.degree, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, attr: jax.Array) -> jax.Array:
        h = polynomial_features(attr, self.degree)
        h = nn.gelu(nn.Dense(self.hidden_dim, name="dense_0")(h))
        return nn.gelu(nn.Dense(self.basis_dim, name="dense_1")(h))


def lift_to_grid(scalars: jax.Array, vectors: jax.Array, grid: jax.Array) -> jax.Array:
    """Lift node features to the fibre: scalars are copied to every orientation, vectors ``v``
    become the signals ``o -> v·o`` (Sec. 4.4). ``(B,N,Cs)``, ``(B,N,Cv,d)`` -> ``(B,N,O,Cs+Cv)``."""
    check_array("scalars", scalars, ndim=3, dtype_kind="f")
    check_finite_array("scalars", scalars)
    check_array("grid", grid, ndim=2)
    check_array("vectors", vectors, shape=tuple(scalars.shape[:2]) + (None, grid.shape[-1]))
    check_finite_array("vectors", vectors)
    o = grid.shape[0]
    lifted_s = jnp.broadcast_to(scalars[:, :, None, :], scalars.shape[:2] + (o, scalars.shape[-1]))
    lifted_v = jnp.einsum("bncd,od->bnoc", vectors, grid)
    return jnp.concatenate([lifted_s, lifted_v], -1)


def sphere_to_scalar(x: jax.Array) -> jax.Array:
    """Invariant readout: mean over the orientation axis, ``(B,N,O,C)`` -> ``(B,N,C)``."""
    check_array("x", x, ndim=4)
    return jnp.mean(x, axis=-2)


def sphere_to_vector(x: jax.Array, grid: jax.Array) -> jax.Array:
    """Equivariant readout ``v = (1/O) sum_o f(o) o``, ``(B,N,O,C)`` -> ``(B,N,C,d)``."""
    check_array("x", x, ndim=4)
    check_array("grid", grid, shape=(x.shape[2], None))
    if grid.shape[-1] not in (2, 3):
        raise ValueError(f"grid must be (O, 2|3), got shape {tuple(grid.shape)}")
    return jnp.einsum("bnoc,od->bncd", x, grid) / grid.shape[0]


def _masked_std(a: jax.Array, real: jax.Array) -> jax.Array:
    """Standard deviation of ``a (B,N,O,C)`` over the entries of real nodes (``real (B,N,1,1)``)."""
    weight = jnp.broadcast_to(real, a.shape).astype(a.dtype)
    count = jnp.maximum(jnp.sum(weight), 1.0)
    mean = jnp.sum(a * weight) / count
    return jnp.sqrt(jnp.sum(((a - mean) * weight) ** 2) / count)


class SeparableFiberConv(nn.Module):
    """Depth-wise separable group convolution on R^n x S^{n-1} (Sec. 4.2, Eq. 13).

    1. spatial: ``y[i,o,c] = sum_j k_s(a_ij(o))[c] x[j,o,c]`` (same grid index o for
       sender and receiver, kernel from the spatial attributes of ``fiber_bundle_attributes``),
    2. fibre:   ``z[i,p,c] = (1/O) sum_o k_f(o·p)[c] y[i,o,c]`` (mixing over the sphere),

    then a bias. Channel mixing is left to the ConvNeXt MLP. The spatial aggregation is a plain sum,
    as in the official code (``aggr="add"``); ``degree_norm=True`` divides it by the number of
    neighbours instead (mean aggregation, an option). The standard deviations of ``x``, ``y`` and ``z`` over real nodes
    are sown into the ``intermediates`` collection for :func:`geometry.ponita.calibrate`, the
    official code's one-off rescaling of the kernels on the first training batch.
    """

    channels: int
    degree_norm: bool = False

    def __post_init__(self):
        check_int("channels", self.channels, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, nbrs: Neighbours, spatial_basis, fiber_basis):
        k_s = nn.Dense(self.channels, use_bias=False, name="spatial_kernel")(spatial_basis)
        x_j = gather_neighbours(x, nbrs.index)
        y = jnp.sum(k_s * x_j * nbrs.mask[..., None, None].astype(x.dtype), axis=2)
        if self.degree_norm:
            y = y / degree(nbrs)[..., None, None]
        k_f = nn.Dense(self.channels, use_bias=False, name="fiber_kernel")(fiber_basis)
        z = jnp.einsum("bnoc,opc->bnpc", y, k_f) / fiber_basis.shape[0]
        real = jnp.any(nbrs.mask, -1)[..., None, None]
        self.sow("intermediates", "calibration", jnp.stack([_masked_std(a, real) for a in (x, y, z)]))
        return z + self.param("bias", nn.initializers.zeros, (self.channels,))


class ConvNextBlock(nn.Module):
    """PΘNITA's ConvNeXt block (Sec. 4.3, Fig. 3):
    ``x + γ ⊙ W2 GELU(W1 LayerNorm(conv(x)))`` with widening factor 4 and layer scale γ."""

    channels: int
    widening_factor: int = 4
    layer_scale: Optional[float] = 1e-6
    degree_norm: bool = False

    def __post_init__(self):
        check_int("channels", self.channels, minimum=1)
        check_int("widening_factor", self.widening_factor, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, nbrs: Neighbours, spatial_basis, fiber_basis):
        h = SeparableFiberConv(self.channels, self.degree_norm, name="conv")(x, nbrs, spatial_basis, fiber_basis)
        h = nn.LayerNorm(name="norm")(h)
        h = nn.gelu(nn.Dense(self.widening_factor * self.channels, name="linear_1")(h))
        h = nn.Dense(self.channels, name="linear_2")(h)
        if self.layer_scale is not None:
            gamma = self.param("layer_scale", nn.initializers.constant(self.layer_scale), (self.channels,))
            h = gamma * h
        return x + h
