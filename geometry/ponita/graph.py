"""Padded point-cloud batches and neighbour graphs built inside JAX (jit-compatible).

A batch of point clouds of different sizes is stored padded to ``N`` nodes with a boolean
``node_mask``. Neighbours are stored as a fixed-width list ``index (B, N, K)`` with an
``edge_mask (B, N, K)`` (receiver i, sender ``index[b, i, k]``), so every shape is static and a
whole batch is one jitted call. ``K = N`` gives the full (radius-limited) graph; a smaller
``max_neighbors`` keeps the ``K`` nearest nodes inside the radius.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_array, check_finite_array, check_int, check_index_range


class PointCloudBatch(NamedTuple):
    """Padded batch: ``pos (B, N, d)``, ``node_mask (B, N)`` bool, ``scalars (B, N, Cs)``,
    ``vectors (B, N, Cv, d)`` (either feature array may have 0 channels)."""

    pos: jax.Array
    node_mask: jax.Array
    scalars: jax.Array
    vectors: jax.Array


class Neighbours(NamedTuple):
    """Fixed-width neighbour lists: ``index (B, N, K)`` int32 senders, ``mask (B, N, K)`` bool."""

    index: jax.Array
    mask: jax.Array


def check_batch(pos: jax.Array, node_mask: jax.Array, scalars=None, vectors=None) -> None:
    """Raise ``ValueError``/``TypeError`` unless the arrays form a consistent padded batch.

    Shapes and dtypes are checked always; NaN/inf entries in ``pos``, ``scalars`` and ``vectors``
    only for concrete arrays (under ``jax.jit`` the inputs must be finite: a precondition).
    """
    check_array("pos", pos, dtype_kind="f")
    check_array("node_mask", node_mask, dtype_kind="biu")
    if pos.ndim != 3 or pos.shape[-1] not in (2, 3):
        raise ValueError(f"pos must be (B, N, 2|3), got shape {pos.shape}")
    if node_mask.shape != pos.shape[:2]:
        raise ValueError(f"node_mask must be {pos.shape[:2]}, got {node_mask.shape}")
    if scalars is not None and (scalars.ndim != 3 or scalars.shape[:2] != pos.shape[:2]):
        raise ValueError(f"scalars must be (B, N, Cs) with (B, N) = {pos.shape[:2]}, got {scalars.shape}")
    if vectors is not None and (
        vectors.ndim != 4 or vectors.shape[:2] != pos.shape[:2] or vectors.shape[-1] != pos.shape[-1]
    ):
        raise ValueError(f"vectors must be (B, N, Cv, {pos.shape[-1]}), got {vectors.shape}")
    for name, x in (("pos", pos), ("scalars", scalars), ("vectors", vectors)):
        if x is not None:
            check_finite_array(name, x)


def radius_graph(
    pos: jax.Array,
    node_mask: jax.Array,
    radius: Optional[float] = None,
    max_neighbors: Optional[int] = None,
    self_loops: bool = True,
) -> Neighbours:
    """Neighbours of each node: real nodes within ``radius`` (all if ``None``), nearest first.

    ``max_neighbors=None`` keeps every node (``K = N``, ordered by index); otherwise the ``K``
    nearest valid nodes (ties broken by index). Padded nodes have no edges. The PΘNITA n-body model
    uses the fully connected graph with self loops (``radius=None``).
    """
    check_batch(pos, node_mask)
    if radius is not None and radius <= 0:
        raise ValueError(f"radius must be > 0 or None, got {radius}")
    n = pos.shape[1]
    node_mask = node_mask.astype(bool)
    d2 = jnp.sum((pos[:, :, None] - pos[:, None]) ** 2, -1)
    valid = node_mask[:, :, None] & node_mask[:, None, :]
    if radius is not None:
        valid &= d2 <= radius**2
    if not self_loops:
        valid &= ~jnp.eye(n, dtype=bool)[None]
    if max_neighbors is None or max_neighbors >= n:
        index = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), valid.shape)
        return Neighbours(index, valid)
    if max_neighbors < 1:
        raise ValueError(f"max_neighbors must be >= 1, got {max_neighbors}")
    score = jnp.where(valid, -jax.lax.stop_gradient(d2), -jnp.inf)
    _, index = jax.lax.top_k(score, max_neighbors)
    mask = jnp.take_along_axis(valid, index, -1)
    return Neighbours(index.astype(jnp.int32), mask)


def gather_neighbours(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x[b, index[b, i, k]]`` for node arrays ``x (B, N, ...)`` -> ``(B, N, K, ...)``."""
    check_array("x", x, ndim=tuple(range(2, 8)))
    check_array("index", index, ndim=3, dtype_kind="iu")
    check_index_range("index", index, x.shape[1])
    return jax.vmap(lambda xb, ib: xb[ib])(x, index)


def relative_positions(pos: jax.Array, nbrs: Neighbours) -> jax.Array:
    """``x_j - x_i`` for every (receiver i, sender j) edge slot, ``(B, N, K, d)``."""
    check_array("pos", pos, ndim=3, dtype_kind="f")
    if pos.shape[-1] not in (2, 3):
        raise ValueError(f"pos must be (B, N, 2|3), got shape {pos.shape}")
    return gather_neighbours(pos, nbrs.index) - pos[:, :, None, :]


def degree(nbrs: Neighbours) -> jax.Array:
    """Number of valid edges into each node (at least 1 to keep padded rows finite), ``(B, N)``."""
    return jnp.maximum(jnp.sum(nbrs.mask, -1), 1).astype(jnp.float32)


def polynomial_cutoff(dist: jax.Array, r_max: float, p: int = 6) -> jax.Array:
    """Smooth envelope (Klicpera et al. 2020, Eq. 8) equal to 1 at 0 and 0 with p derivatives at ``r_max``."""
    if r_max <= 0:
        raise ValueError(f"r_max must be > 0, got {r_max}")
    check_int("p", p, minimum=1)
    u = dist / r_max
    env = 1.0 - (p + 1) * (p + 2) / 2 * u**p + p * (p + 2) * u ** (p + 1) - p * (p + 1) / 2 * u ** (p + 2)
    return jnp.where(u < 1.0, env, 0.0)


def masked_node_sum(x: jax.Array, node_mask: jax.Array) -> jax.Array:
    """Sum node features ``(B, N, ...)`` over real nodes -> graph features ``(B, ...)``."""
    check_array("node_mask", node_mask, shape=tuple(x.shape[:2]), dtype_kind="b")
    m = node_mask.reshape(node_mask.shape + (1,) * (x.ndim - 2)).astype(x.dtype)
    return jnp.sum(x * m, 1)


def pad_point_clouds(clouds: list, dtype=jnp.float32) -> tuple:
    """Stack variable-size arrays ``[(n_b, ...)]`` into ``(B, max n_b, ...)`` plus the node mask."""
    if not clouds:
        raise ValueError("clouds must hold at least one point cloud, got an empty list")
    for i, c in enumerate(clouds):
        check_array(f"clouds[{i}]", c, ndim=tuple(range(1, 8)))
    n = max(c.shape[0] for c in clouds)
    out = jnp.zeros((len(clouds), n) + tuple(clouds[0].shape[1:]), dtype)
    mask = jnp.zeros((len(clouds), n), bool)
    for b, c in enumerate(clouds):
        out = out.at[b, : c.shape[0]].set(jnp.asarray(c, dtype))
        mask = mask.at[b, : c.shape[0]].set(True)
    return out, mask
