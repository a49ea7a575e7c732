"""N:M sparse matmul ``y = x @ W`` read straight from the compressed format (values + positions).

``W`` is ``(K, N)`` and N:M sparse along ``K`` (see `sparsejax.structured.nm_format`): ``values`` and
``indices`` are ``(K * n // m, N)``, row ``G*n + s`` holding slot ``s`` of group ``G``.

Kernel layout (Pallas, Triton lowering on GPU): the grid tiles the output into ``(block_m, block_n)``
tiles; each program streams ``block_groups`` groups of the reduction axis at a time. For every
in-group position ``j < m`` it rebuilds the ``(block_groups, block_n)`` slab of ``W`` rows ``G*m + j``
from the ``n`` stored slots (a select on the position) and multiplies it with the matching strided
columns ``x[:, G*m + j]``. On a GPU ``block_groups``, ``block_m`` and ``block_n`` must be powers of two
and at least 16 (``tl.dot`` constraint).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from sparsejax.kernels._util import check_matrix, pick_block, resolve_interpret


def _check(x, values, indices, n, m):
    check_matrix("x", x, 2)
    check_matrix("values", values, 2)
    if indices.shape != values.shape:
        raise ValueError(f"indices shape {indices.shape} != values shape {values.shape}")
    if not 0 < n < m:
        raise ValueError(f"need 0 < n < m, got n={n}, m={m}")
    k = x.shape[1]
    if k % m:
        raise ValueError(f"reduction length K={k} is not divisible by m={m}")
    if values.shape[0] != k // m * n:
        raise ValueError(f"values have {values.shape[0]} rows; K={k} with {n}:{m} needs {k // m * n}")


def nm_matmul_reference(x, values, indices, *, n: int, m: int, block_m: int | None = None,
                        block_n: int | None = None, block_groups: int | None = None,
                        interpret: bool | None = None) -> jax.Array:
    """Plain-jnp ``x @ W`` for N:M compressed ``W`` (decompress, then ``jnp.dot``). Block/interpret
    arguments are accepted for signature parity with `nm_matmul` and ignored."""
    _check(x, values, indices, n, m)
    vals = values.reshape(-1, n, values.shape[1])
    pos = indices.astype(jnp.int32).reshape(vals.shape)
    dense = jnp.sum(jnp.where(pos[:, :, None, :] == jnp.arange(m)[None, None, :, None],
                              vals[:, :, None, :], 0), axis=1)  # (G, m, N)
    w = dense.reshape(x.shape[1], values.shape[1]).astype(x.dtype)
    return jnp.dot(x, w, preferred_element_type=jnp.float32,
                   precision=jax.lax.Precision.HIGHEST).astype(x.dtype)


def _nm_kernel(x_ref, v_ref, i_ref, o_ref, *, n, m, bg, num_chunks):
    bm, bn = o_ref.shape

    def chunk(c, acc):
        g0 = c * bg
        vals = [v_ref[pl.ds(g0, bg), s, :] for s in range(n)]
        pos = [i_ref[pl.ds(g0, bg), s, :].astype(jnp.int32) for s in range(n)]
        for j in range(m):
            w_j = jnp.zeros((bg, bn), jnp.float32)
            for s in range(n):
                w_j = w_j + jnp.where(pos[s] == j, vals[s].astype(jnp.float32), 0.0)
            x_j = x_ref[:, pl.ds(g0 * m + j, bg, stride=m)].astype(jnp.float32)
            acc = acc + jnp.dot(x_j, w_j, preferred_element_type=jnp.float32)
        return acc

    acc = jax.lax.fori_loop(0, num_chunks, chunk, jnp.zeros((bm, bn), jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


@functools.partial(jax.jit, static_argnames=("n", "m", "block_m", "block_n", "block_groups", "interpret"))
def nm_matmul(x, values, indices, *, n: int, m: int, block_m: int | None = None,
              block_n: int | None = None, block_groups: int | None = None,
              interpret: bool | None = None) -> jax.Array:
    """Pallas ``x @ W`` for N:M compressed ``W``; ``x``: ``(M, K)``, ``values``/``indices``:
    ``(K*n/m, N)``. Block sizes must divide ``M``, ``N`` and ``K/m`` (``ValueError`` otherwise);
    ``interpret=None`` interprets on CPU."""
    _check(x, values, indices, n, m)
    (mm, k), nn = x.shape, values.shape[1]
    groups = k // m
    bm = pick_block("block_m", mm, block_m, 64)
    bn = pick_block("block_n", nn, block_n, 64)
    bg = pick_block("block_groups", groups, block_groups, 32)
    vals = values.reshape(groups, n, nn)
    pos = indices.reshape(groups, n, nn)
    kernel = functools.partial(_nm_kernel, n=n, m=m, bg=bg, num_chunks=groups // bg)
    return pl.pallas_call(
        kernel,
        grid=(mm // bm, nn // bn),
        in_specs=[
            pl.BlockSpec((bm, k), lambda i, j: (i, 0)),
            pl.BlockSpec((groups, n, bn), lambda i, j: (0, 0, j)),
            pl.BlockSpec((groups, n, bn), lambda i, j: (0, 0, j)),
        ],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        out_shape=jax.ShapeDtypeStruct((mm, nn), x.dtype),
        interpret=resolve_interpret(interpret),
    )(x, vals, pos)
