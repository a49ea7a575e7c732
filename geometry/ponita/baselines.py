"""Baselines in PΘNITA's interface: EGNN and an e3nn-jax tensor-product message-passing network.

Both take ``(pos (B,N,d), node_mask (B,N), scalars (B,N,Cs)|None, vectors (B,N,Cv,d)|None)`` and
return node-level ``(scalars (B,N,S), vectors (B,N,V,d))`` like :class:`geometry.ponita.Ponita`, so
the experiments train all three with the same code.
"""
from __future__ import annotations

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.ponita.graph import check_batch, degree, gather_neighbours, radius_graph, relative_positions
from geometry.ponita.model import default_features
from sparsejax.core.validation import check_int, check_number


class EGNN(nn.Module):
    """E(n)-equivariant GNN (Satorras et al. 2021, Eqs. 3-6, with the velocity variant Eq. 7 for n-body).

    Per layer: ``m_ij = φ_e(h_i, h_j, |x_i - x_j|^2)``, ``x_i += (1/deg) sum_j (x_i - x_j) φ_x(m_ij)
    + φ_v(h_i) v_i`` (the velocity term only when vector inputs are given: the first channel is v),
    ``h_i += φ_h(h_i, (1/deg) sum_j m_ij)``. Scalar outputs are a linear readout of ``h``; the single
    vector output is the total displacement ``x_L - x_0``. Self loops are excluded.
    """

    hidden_dim: int = 64
    num_layers: int = 4
    out_scalars: int = 1
    out_vectors: int = 0
    radius: float | None = None
    max_neighbors: int | None = None

    def __post_init__(self):
        check_int("hidden_dim", self.hidden_dim, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        if self.radius is not None:
            check_number("radius", self.radius, minimum=0.0, min_inclusive=False)
        super().__post_init__()

    @nn.compact
    def __call__(self, pos, node_mask, scalars=None, vectors=None, grid_rotation=None):
        check_batch(pos, node_mask, scalars, vectors)
        if self.out_vectors > 1:
            raise ValueError(f"EGNN predicts at most one vector per node, got out_vectors={self.out_vectors}")
        scalars, vectors = default_features(pos, scalars, vectors)
        nbrs = radius_graph(pos, node_mask, self.radius, self.max_neighbors, self_loops=False)
        emask = nbrs.mask[..., None].astype(pos.dtype)
        deg = degree(nbrs)[..., None]
        vel = vectors[:, :, 0] if vectors.shape[-2] > 0 else None
        h_in = [scalars] + ([safe_speed(vectors)] if vectors.shape[-2] > 0 else [])
        h = nn.Dense(self.hidden_dim, name="embed")(jnp.concatenate(h_in, -1))
        x = pos
        act = nn.silu
        for layer in range(self.num_layers):
            rel = -relative_positions(x, nbrs)  # x_i - x_j
            d2 = jnp.sum(rel**2, -1, keepdims=True)
            h_j = gather_neighbours(h, nbrs.index)
            h_i = jnp.broadcast_to(h[:, :, None], h_j.shape)
            m = jnp.concatenate([h_i, h_j, d2], -1)
            m = act(nn.Dense(self.hidden_dim, name=f"edge_{layer}_0")(m))
            m = act(nn.Dense(self.hidden_dim, name=f"edge_{layer}_1")(m)) * emask
            w = act(nn.Dense(self.hidden_dim, name=f"coord_{layer}_0")(m))
            w = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.variance_scaling(1e-6, "fan_avg", "uniform"),
                         name=f"coord_{layer}_1")(w)
            x = x + jnp.sum(rel * w * emask, 2) / deg
            if vel is not None:
                x = x + nn.Dense(1, name=f"vel_{layer}")(act(nn.Dense(self.hidden_dim, name=f"vel_{layer}_h")(h))) * vel
            agg = jnp.sum(m, 2) / deg
            u = act(nn.Dense(self.hidden_dim, name=f"node_{layer}_0")(jnp.concatenate([h, agg], -1)))
            h = h + nn.Dense(self.hidden_dim, name=f"node_{layer}_1")(u)
        mask = node_mask[..., None].astype(pos.dtype)
        out_s = nn.Dense(self.out_scalars, name="readout")(h) * mask if self.out_scalars else jnp.zeros(h.shape[:2] + (0,))
        out_v = ((x - pos) * mask)[:, :, None, :][:, :, : self.out_vectors]
        return out_s, out_v


def safe_speed(vectors: jax.Array) -> jax.Array:
    """Norms of the vector channels ``(B,N,Cv,d)`` -> ``(B,N,Cv)`` (zero gradient at 0)."""
    sq = jnp.sum(vectors**2, -1)
    return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)


class TensorProductNet(nn.Module):
    """NequIP-style steerable message passing with e3nn-jax (3D only): one tensor product per message.

    Not SEGNN: SEGNN's steerable node attributes and steerable MLPs are not implemented. Node
    features are irreps ``C x0e + C x1o + C x2e + ...`` up to ``l_max`` (1 to 3). Per layer the message is the
    tensor product ``h_j ⊗ Y(x̂_ij)`` (spherical harmonics up to ``l_max``) weighted per output irrep by
    an MLP of a Bessel embedding of ``|x_ij|`` (NequIP's radial weights), averaged over neighbours,
    mixed with ``h_i`` by an equivariant linear map, passed through a gated nonlinearity and added
    residually. Readout: ``out_scalars x0e + out_vectors x1o``.
    """

    hidden_dim: int = 32
    num_layers: int = 3
    l_max: int = 1
    out_scalars: int = 1
    out_vectors: int = 0
    num_radial: int = 8
    r_max: float = 10.0
    radius: float | None = None
    max_neighbors: int | None = None

    def __post_init__(self):
        check_int("hidden_dim", self.hidden_dim, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        check_int("num_radial", self.num_radial, minimum=1)
        check_int("l_max", self.l_max, minimum=0)
        check_number("r_max", self.r_max, minimum=0.0, min_inclusive=False)
        super().__post_init__()

    @nn.compact
    def __call__(self, pos, node_mask, scalars=None, vectors=None, grid_rotation=None):
        check_batch(pos, node_mask, scalars, vectors)
        if pos.shape[-1] != 3:
            raise ValueError(f"TensorProductNet is 3D only, got pos of shape {pos.shape}")
        if self.l_max not in (1, 2, 3):
            raise ValueError(f"l_max must be 1, 2 or 3, got {self.l_max}")
        scalars, vectors = default_features(pos, scalars, vectors)
        c = self.hidden_dim
        hidden = e3nn.Irreps(" + ".join(f"{c}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(self.l_max + 1)))
        sh_irreps = e3nn.Irreps.spherical_harmonics(self.l_max)
        gated = e3nn.Irreps(f"{c + (hidden.num_irreps - c)}x0e") + hidden.filter(drop="0e")

        b, n = pos.shape[:2]
        inputs = e3nn.IrrepsArray(
            f"{scalars.shape[-1]}x0e + {vectors.shape[-2]}x1o",
            jnp.concatenate([scalars, vectors.reshape(b, n, -1)], -1),
        )
        h = e3nn.flax.Linear(hidden, force_irreps_out=True, name="embed")(inputs)
        nbrs = radius_graph(pos, node_mask, self.radius, self.max_neighbors, self_loops=False)
        emask = nbrs.mask[..., None].astype(pos.dtype)
        rel = relative_positions(pos, nbrs)
        dist = jnp.sqrt(jnp.sum(rel**2, -1) + 1e-12)
        safe_rel = jnp.where(nbrs.mask[..., None], rel, jnp.array([1.0, 0.0, 0.0], rel.dtype))
        sh = e3nn.spherical_harmonics(sh_irreps, safe_rel, normalize=True, normalization="component")
        radial = e3nn.bessel(dist, self.num_radial, self.r_max) * e3nn.poly_envelope(5, 2)(dist / self.r_max)[..., None]
        deg = degree(nbrs)[..., None]
        for layer in range(self.num_layers):
            h_j = jax.tree_util.tree_map(lambda a: gather_neighbours(a, nbrs.index), h)
            tp = e3nn.tensor_product(h_j, sh, filter_ir_out=hidden)
            w = nn.silu(nn.Dense(32, name=f"radial_{layer}_0")(radial))
            w = nn.Dense(tp.irreps.num_irreps, name=f"radial_{layer}_1")(w)
            msg = e3nn.IrrepsArray(tp.irreps, (tp * w).array * emask)
            agg = e3nn.IrrepsArray(msg.irreps, jnp.sum(msg.array, 2) / deg)
            upd = e3nn.flax.Linear(gated, name=f"update_{layer}")(e3nn.concatenate([h, agg]).regroup())
            h = h + e3nn.flax.Linear(hidden, name=f"mix_{layer}")(e3nn.gate(upd))
        out = e3nn.flax.Linear(f"{self.out_scalars}x0e + {self.out_vectors}x1o", name="readout")(h)
        mask = node_mask[..., None].astype(pos.dtype)
        out_s = out.filter(keep="0e").array * mask
        out_v = out.filter(keep="1o").array.reshape(b, n, self.out_vectors, 3) * mask[..., None]
        return out_s, out_v
