"""Dense message-passing building blocks shared by the PE networks and the GIN regressor.

A node tensor has shape ``(N, ..., F)``: axis 0 indexes nodes, the middle axes are independent
channels that share weights (e.g. the N columns of SPE's ``(N, N, m)`` tensor or the k
eigenvectors in SignNet), the last axis holds features.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from sparsejax.core.validation import check_int


class MLP(nn.Module):
    """ReLU MLP ``hidden -> ... -> features`` on the last axis (no activation on the output).

    ``layer_norm`` normalizes every hidden layer before its ReLU (the official SPE code uses layer
    norm inside rho and batch norm elsewhere; batch norm is left out to keep the modules stateless).
    """

    features: int
    hidden: int
    num_layers: int = 2
    layer_norm: bool = False

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num_layers - 1):
            x = nn.Dense(self.hidden, name=f"dense_{i}")(x)
            if self.layer_norm:
                x = nn.LayerNorm(name=f"norm_{i}")(x)
            x = nn.relu(x)
        return nn.Dense(self.features, name="out")(x)


class GINLayer(nn.Module):
    """Graph isomorphism layer (Xu et al. 2019): ``MLP((1 + eps) h_i + sum_{j in N(i)} h_j)``.

    ``h`` is ``(N, ..., F)``; aggregation runs along axis 0 with the dense adjacency ``(N, N)``.
    """

    features: int
    hidden: int
    mlp_layers: int = 2
    layer_norm: bool = False

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("mlp_layers", self.mlp_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, h: jax.Array, adj: jax.Array) -> jax.Array:
        eps = self.param("eps", nn.initializers.zeros, ())
        agg = jnp.tensordot(adj, h, axes=(1, 0))
        return MLP(self.features, self.hidden, self.mlp_layers, self.layer_norm)((1.0 + eps) * h + agg)


class GIN(nn.Module):
    """``num_layers`` GIN layers (ReLU between them); ``h (N, ..., F_in) -> (N, ..., features)``."""

    features: int
    hidden: int
    num_layers: int = 2
    layer_norm: bool = False

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, h: jax.Array, adj: jax.Array) -> jax.Array:
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            features = self.features if last else self.hidden
            h = GINLayer(features, self.hidden, layer_norm=self.layer_norm)(h, adj)
            if not last:
                h = nn.relu(h)
        return h
