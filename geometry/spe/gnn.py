"""A small GIN graph regressor that takes any positional encoding, and its batched apply.

Node features: one learned embedding (the graphs are unlabelled) plus a linear map of the PE
("add" aggregation as in the official SPE code); then residual GIN layers, a masked sum readout
and an MLP head.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.spe.layers import MLP, GINLayer
from geometry.spe.spectral import GraphSpectrum
from sparsejax.core.validation import check_type, check_int


class GINRegressor(nn.Module):
    """``(GraphSpectrum, train) -> (out_dim,)`` for ONE graph; ``pe`` is any encoder of encoders.py."""

    pe: nn.Module
    out_dim: int
    hidden: int = 64
    num_layers: int = 4
    layer_norm: bool = True

    def __post_init__(self):
        check_int("out_dim", self.out_dim, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, g: GraphSpectrum, train: bool = False) -> jax.Array:
        mask = g.node_mask.astype(jnp.float32)[:, None]
        emb = self.param("node_embedding", nn.initializers.normal(1.0), (self.hidden,))
        x = jnp.broadcast_to(emb, (mask.shape[0], self.hidden))
        pe = self.pe(g, train=train)
        if pe.shape[-1] > 0:
            x = x + nn.Dense(self.hidden, name="pe_embedding")(pe)
        x = x * mask
        for _ in range(self.num_layers):
            x = x + nn.relu(GINLayer(self.hidden, self.hidden, layer_norm=self.layer_norm)(x, g.adj)) * mask
        return MLP(self.out_dim, self.hidden, 2, name="head")((x * mask).sum(axis=0))


def _check_batch(batch: GraphSpectrum) -> None:
    check_type("batch", batch, GraphSpectrum, "GraphSpectrum (from batch_spectra)")
    if batch.adj.ndim != 3:
        raise ValueError(f"expected a batched GraphSpectrum with adj (B, N, N), got {batch.adj.shape}")


def init_params(model: nn.Module, key: jax.Array, batch: GraphSpectrum):
    """Parameters of ``model`` (a per-graph module) initialised on the first graph of ``batch``."""
    check_type("model", model, nn.Module, "flax.linen Module")
    _check_batch(batch)
    first = jax.tree_util.tree_map(lambda a: a[0], batch)
    return model.init({"params": key, "sign_flip": key}, first, train=False)["params"]


def batched_apply(model: nn.Module) -> Callable:
    """``apply(params, batch, key=None) -> (B, ...)``: ``model.apply`` vmapped over graphs.

    With a ``key`` the model runs in training mode and every graph gets its own rng (LapPE's sign
    flips); without one it runs in evaluation mode.
    """
    check_type("model", model, nn.Module, "flax.linen Module")

    def apply(params, batch: GraphSpectrum, key: jax.Array | None = None):
        _check_batch(batch)
        if key is None:
            return jax.vmap(lambda g: model.apply({"params": params}, g, train=False))(batch)
        keys = jax.random.split(key, batch.adj.shape[0])
        return jax.vmap(
            lambda g, k: model.apply({"params": params}, g, train=True, rngs={"sign_flip": k})
        )(batch, keys)

    return apply
