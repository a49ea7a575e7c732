"""Multi-resolution hash-grid and simplex-grid field encodings (P40; Instant-NGP as its baseline).

P40 (Wen & Yang, "Efficient Encoding of Graphics Primitives with Simplex-based Structures",
arXiv 2311.15439) keeps Instant-NGP's multi-resolution hash encoding (Müller et al. 2022) and
replaces the 2^d-corner cubic cell by a simplex of d + 1 vertices. Both lattices here share the
level layout, the spatial hash and the table gather; they differ only in which vertices a point
touches and their interpolation weights.

Shared pieces (Instant-NGP):

* levels ``N_l = floor(N_min * b**l)``, ``b = exp((ln N_max - ln N_min) / (L - 1))``
  (:func:`level_resolutions`);
* hash ``h(v) = (XOR_i v_i * pi_i) mod T`` on uint32 with the primes
  ``pi = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)`` of
  tiny-cuda-nn's ``grid.h`` (:func:`hash_index`, hence d <= 7);
* per level a table of ``T`` rows of ``F`` features, initialised U(-1e-4, 1e-4); the level features
  are concatenated (``L * F`` outputs) and fed to a small ReLU MLP (:func:`init_field`,
  :func:`apply_field`).

Cubic lattice (:func:`cube_vertices`): ``p = N_l x``, the 2^d corners of the cell of ``floor(p)``
with multilinear weights ``prod_i (f_i or 1 - f_i)``, ``f = p - floor(p)``.

Simplex lattice (:func:`skew`, :func:`simplex_vertices`), P40's steps: (1) skew
``p = N_l x + F_d * sum_i N_l x_i`` with ``F_d = (sqrt(d + 1) - 1) / d`` (the simplex-noise skew, so
that the Kuhn simplices of the integer lattice in ``p`` are regular simplices in ``x``); (2)
``b = floor(p)``, ``f = p - b``, sort ``f`` in descending order (permutation ``pi``); (3) vertices
``v_0 = b``, ``v_k = v_{k-1} + e_{pi(k)}`` (the Freudenthal/Kuhn triangulation); (4) barycentric
weights ``w_0 = 1 - f_pi(1)``, ``w_k = f_pi(k) - f_pi(k+1)``, ``w_d = f_pi(d)``. The weights are
nonnegative, sum to 1 and satisfy ``sum_k w_k v_k = p``, so affine vertex functions are
reproduced exactly; d + 1 table lookups instead of 2^d.

Defaults: ``L = 8`` levels, ``F = 2`` features, ``T = 2**16`` rows, ``N_min = 16``,
``N_max = 512``; MLP 2 x 64 ReLU.

Deviations / reconstructions (no official P40 code exists; the formulas come from an author's
project page, see the brief):

* the skew factor ``F_d`` is simplex noise's, which the paper's abstract says its transformation
  resembles; the project page prints an extra ``1/d`` factor, read here as a typo;
* every level is hashed, also the coarse levels whose dense grid would fit into ``T`` (Instant-NGP
  indexes those densely, 1:1); this keeps both lattices on exactly the same code path;
* positions are scaled as ``N_l x`` without Instant-NGP's ``+ 0.5`` offset and ``N_l - 1`` scale;
* the skew stretches the domain to ``N_l (1 + d F_d)`` lattice units along the diagonal; with the
  hash this needs no extra storage, so the simplex lattice here has the same parameter count as the
  cubic one (the paper's memory savings come from its CUDA kernel, not reproduced);
* the paper's sort of the fractional parts is computed as ranks from the d(d-1)/2 pairwise
  comparisons (equal to a stable descending argsort, tested), which is several times faster than
  ``jnp.argsort`` on CPU for d <= 7; no custom kernel.
"""
from __future__ import annotations

import itertools
import math
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.sparsity_types import ranks_last
from sparsejax.core.validation import check_array, check_choice, check_int, check_key, check_number, is_traced
from sparsejax.nn import MLP

__all__ = [
    "PRIMES", "LATTICES", "level_resolutions", "hash_index", "skew", "cube_vertices", "simplex_vertices",
    "vertices_touched", "init_tables", "encode", "hash_grid_encode", "simplex_encode", "init_field",
    "apply_field",
]

PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
LATTICES = ("grid", "simplex")
MAX_DIM = len(PRIMES)


def _check_dim(name: str, d: int) -> int:
    return check_int(name, d, minimum=1, maximum=MAX_DIM)


def _check_points(name: str, p) -> jnp.ndarray:
    p = check_array(name, jnp.asarray(p), dtype_kind="f")
    if p.ndim < 1:
        raise ValueError(f"{name} must have a trailing dimension axis, got shape {tuple(p.shape)}")
    _check_dim(f"{name}.shape[-1]", p.shape[-1])
    return p


def level_resolutions(n_levels: int = 8, base_resolution: int = 16, max_resolution: int = 512) -> tuple[int, ...]:
    """Instant-NGP level resolutions ``floor(N_min * b**l)``, ``l = 0..L-1`` (geometric growth b)."""
    check_int("n_levels", n_levels, minimum=1)
    check_int("base_resolution", base_resolution, minimum=1)
    check_int("max_resolution", max_resolution, minimum=base_resolution)
    if n_levels == 1:
        return (base_resolution,)
    b = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (n_levels - 1))
    # the small epsilon keeps floor(N_min * b**(L-1)) == N_max despite rounding of exp/log
    return tuple(int(math.floor(base_resolution * b ** l + 1e-9)) for l in range(n_levels))


def hash_index(vertices, table_size: int) -> jnp.ndarray:
    """Spatial hash ``(XOR_i v_i * pi_i) mod T`` of integer lattice vertices ``(..., d)``, in ``[0, T)``.

    Arithmetic is uint32 with wrap-around (negative coordinates wrap as in two's complement).
    """
    vertices = check_array("vertices", jnp.asarray(vertices), dtype_kind="iu")
    _check_dim("vertices.shape[-1]", vertices.shape[-1] if vertices.ndim else 0)
    check_int("table_size", table_size, minimum=1, maximum=2 ** 31 - 1)
    return _hash(vertices, table_size)


@partial(jax.jit, static_argnums=1)
def _hash(vertices, table_size: int):
    v = vertices.astype(jnp.uint32)
    h = v[..., 0] * jnp.uint32(PRIMES[0])
    for i in range(1, v.shape[-1]):
        h = h ^ (v[..., i] * jnp.uint32(PRIMES[i]))
    return (h % jnp.uint32(table_size)).astype(jnp.int32)


def skew(p) -> jnp.ndarray:
    """Simplex-noise skew ``p + F_d * sum_i p_i`` with ``F_d = (sqrt(d + 1) - 1) / d``."""
    return _skew(_check_points("p", p))


def _skew(p):
    d = p.shape[-1]
    return p + ((math.sqrt(d + 1) - 1) / d) * p.sum(-1, keepdims=True)


def cube_vertices(p) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The 2^d corners (int32, ``(..., 2^d, d)``) of the unit cell holding ``p`` and their multilinear weights."""
    return _cube_vertices(_check_points("p", p))


@jax.jit
def _cube_vertices(p):
    d = p.shape[-1]
    base = jnp.floor(p)
    f = p - base
    bits = np.array(list(itertools.product((0, 1), repeat=d)), dtype=np.int32)      # (2^d, d), static
    verts = base.astype(jnp.int32)[..., None, :] + bits
    weights = jnp.where(bits.astype(bool), f[..., None, :], 1.0 - f[..., None, :]).prod(-1)
    return verts, weights


def simplex_vertices(p) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The d + 1 vertices (int32, ``(..., d+1, d)``) of the Kuhn simplex holding ``p`` and its barycentric weights.

    ``p`` is in (already skewed) lattice coordinates. Sorting the fractional parts in descending order
    gives the path ``v_0 = floor(p)``, ``v_k = v_{k-1} + e_{pi(k)}``; ties give zero weights.
    """
    return _simplex_vertices(_check_points("p", p))


@jax.jit
def _simplex_vertices(p):
    d = p.shape[-1]
    base = jnp.floor(p)
    f = p - base
    axis = jnp.arange(d)
    # rank[i] = position of axis i when f is sorted in descending order (ties: lower axis first); pairwise
    # comparisons for d <= 7, the same permutation as a stable descending argsort
    rank = ranks_last(f)
    offsets = (rank[..., None, :] < jnp.arange(d + 1)[:, None]).astype(jnp.int32)     # v_k - v_0, (..., d+1, d)
    f_sorted = jnp.einsum("...i,...ik->...k", f, (rank[..., :, None] == axis).astype(f.dtype))
    weights = jnp.concatenate([1.0 - f_sorted[..., :1], f_sorted[..., :-1] - f_sorted[..., 1:], f_sorted[..., -1:]],
                              axis=-1)
    return base.astype(jnp.int32)[..., None, :] + offsets, weights


def vertices_touched(dim: int, lattice: str) -> int:
    """Table lookups per point and level: ``2**dim`` for the grid, ``dim + 1`` for the simplex."""
    _check_dim("dim", dim)
    check_choice("lattice", lattice, LATTICES)
    return 2 ** dim if lattice == "grid" else dim + 1


def init_tables(key, n_levels: int = 8, table_size: int = 2 ** 16, n_features: int = 2,
                scale: float = 1e-4) -> jnp.ndarray:
    """Feature tables ``(L, T, F)`` drawn from U(-scale, scale) (Instant-NGP's initialisation)."""
    check_key("key", key)
    check_int("n_levels", n_levels, minimum=1)
    check_int("table_size", table_size, minimum=1, maximum=2 ** 31 - 1)
    check_int("n_features", n_features, minimum=1)
    check_number("scale", scale, minimum=0.0)
    return jax.random.uniform(key, (n_levels, table_size, n_features), minval=-scale, maxval=scale)


def _encode_level(table, x, resolution, lattice: str):
    p = x * resolution
    if lattice == "simplex":
        verts, weights = _simplex_vertices(_skew(p))
    else:
        verts, weights = _cube_vertices(p)
    rows = table[_hash(verts, table.shape[0])]                                   # (N, K, F)
    return jnp.einsum("nk,nkf->nf", weights.astype(table.dtype), rows)


def encode(tables, x, resolutions, lattice: str = "simplex") -> jnp.ndarray:
    """Multi-resolution encoding of points ``x`` ``(N, d)`` (any real coordinates; ``[0, 1]^d`` is the design domain).

    ``tables`` is ``(L, T, F)``, ``resolutions`` the ``L`` level resolutions (a sequence or a float
    array, traced values allowed: changing them does not recompile). Returns ``(N, L * F)``, level-major.
    """
    check_choice("lattice", lattice, LATTICES)
    tables = check_array("tables", jnp.asarray(tables), ndim=3, dtype_kind="f")
    x = check_array("x", jnp.asarray(x), ndim=2, dtype_kind="f")
    _check_dim("x.shape[1]", x.shape[1])
    if not is_traced(resolutions):                                   # concrete: check values on the host
        resolutions = np.asarray(resolutions, dtype=np.float64)
        check_array("resolutions", resolutions, shape=(tables.shape[0],))
        if not (resolutions > 0).all():
            raise ValueError(f"resolutions must be > 0, got {resolutions.tolist()}")
    resolutions = check_array("resolutions", jnp.asarray(resolutions, dtype=x.dtype), shape=(tables.shape[0],))
    return _encode(tables, x, resolutions, lattice)


@partial(jax.jit, static_argnames="lattice")
def _encode(tables, x, resolutions, lattice: str):
    feats = jax.vmap(lambda t, r: _encode_level(t, x, r, lattice))(tables, resolutions)   # (L, N, F)
    return jnp.transpose(feats, (1, 0, 2)).reshape(x.shape[0], -1)


def hash_grid_encode(tables, x, resolutions) -> jnp.ndarray:
    """Instant-NGP hash-grid encoding (2^d corners, multilinear interpolation); see :func:`encode`."""
    return encode(tables, x, resolutions, "grid")


def simplex_encode(tables, x, resolutions) -> jnp.ndarray:
    """P40 simplex encoding (d + 1 vertices, barycentric interpolation); see :func:`encode`."""
    return encode(tables, x, resolutions, "simplex")


def init_field(key, dim: int, out_dim: int, *, n_levels: int = 8, table_size: int = 2 ** 16, n_features: int = 2,
               hidden: Sequence[int] = (64, 64)) -> dict:
    """Parameters ``{"tables", "mlp"}`` of an encoded neural field ``R^dim -> R^out_dim``.

    Both lattices use the same parameters (the lattice is chosen at :func:`apply_field`), so fields
    of the two encodings have exactly equal parameter counts.
    """
    _check_dim("dim", dim)
    check_int("out_dim", out_dim, minimum=1)
    k_tab, k_mlp = jax.random.split(check_key("key", key))
    tables = init_tables(k_tab, n_levels, table_size, n_features)
    mlp = MLP(num_classes=out_dim, hidden=tuple(hidden)).init(k_mlp, jnp.zeros((1, n_levels * n_features)))
    return {"tables": tables, "mlp": mlp}


def apply_field(params: dict, x, resolutions, lattice: str = "simplex") -> jnp.ndarray:
    """Field values ``(N, out_dim)``: encoding of ``x`` followed by the ReLU MLP of :func:`init_field`."""
    if not isinstance(params, dict) or set(params) != {"tables", "mlp"}:
        raise TypeError(f"params must be the dict of init_field with keys tables/mlp, got {type(params).__name__}")
    feats = encode(params["tables"], x, resolutions, lattice)
    head = params["mlp"]["params"]["head"]["kernel"]
    layers = params["mlp"]["params"]
    hidden = tuple(layers[f"dense_{i}"]["kernel"].shape[1] for i in range(len(layers) - 1))
    return MLP(num_classes=head.shape[1], hidden=hidden).apply(params["mlp"], feats)


