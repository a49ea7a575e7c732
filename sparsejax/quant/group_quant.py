"""Group-wise asymmetric uniform weight quantization (the quantizer of GQSA, P3, Eq. 1).

A ``(K, N)`` weight is split along its input axis ``K`` into groups of ``g`` consecutive weights per
output column; group ``(j, c)`` has a scale ``s`` and an integer zero point ``z`` and stores codes
``q = clip(round(w / s) + z, 0, 2**bits - 1)``; it dequantizes to ``(q - z) * s``. Min/max
initialisation over the group range extended to contain 0, ``s = (max - min) / (2**bits - 1)``,
``z = round(-min / s)``, makes every weight of the
group round-trip within ``s / 2``. ``fake_quantize`` is the differentiable version (straight-through
rounding) used by the GQSA optimisation stages.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sparsejax.quant.packing import SUPPORTED_BITS, pack_codes, unpack_codes


def _check(w, bits: int, g: int):
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    if getattr(w, "ndim", None) != 2:
        raise ValueError(f"group quantization needs a 2-D (K, N) weight, got shape {getattr(w, 'shape', None)}")
    if not isinstance(g, int) or g < 1 or w.shape[0] % g:
        raise ValueError(f"group size g={g!r} must be a positive int dividing K={w.shape[0]}")


def _expand(p: jax.Array, g: int) -> jax.Array:
    """Per-group ``(G, N)`` parameter -> per-weight ``(G*g, N)``."""
    return jnp.repeat(p, g, axis=0)


def minmax_params(w: jax.Array, bits: int, g: int) -> tuple[jax.Array, jax.Array]:
    """Scale and integer zero point ``(G, N)`` from each group's min and max (GQSA Eq. 1)."""
    w = jnp.asarray(w)
    _check(w, bits, g)
    grouped = w.reshape(w.shape[0] // g, g, w.shape[1]).astype(jnp.float32)
    # the range always contains 0 (as in GPTQ) so the zero point is an integer in [0, 2**bits - 1]
    lo, hi = jnp.minimum(grouped.min(axis=1), 0.0), jnp.maximum(grouped.max(axis=1), 0.0)
    scale = jnp.maximum(hi - lo, 1e-8) / (2**bits - 1)
    zero = jnp.round(-lo / scale)
    return scale, zero


def quantize(w: jax.Array, scale: jax.Array, zero: jax.Array, bits: int, g: int) -> jax.Array:
    """Integer codes ``clip(round(w / s) + z, 0, 2**bits - 1)`` as uint8, shape of ``w``."""
    w = jnp.asarray(w)
    _check(w, bits, g)
    q = jnp.round(w / _expand(scale, g)) + _expand(jnp.clip(jnp.round(zero), 0, 2**bits - 1), g)
    return jnp.clip(q, 0, 2**bits - 1).astype(jnp.uint8)


def dequantize(codes: jax.Array, scale: jax.Array, zero: jax.Array, g: int) -> jax.Array:
    """``(q - z) * s`` per group, float32."""
    return (codes.astype(jnp.float32) - _expand(jnp.round(zero), g)) * _expand(scale, g)


@jax.custom_jvp
def round_ste(x):
    """``round`` with a straight-through (identity) gradient."""
    return jnp.round(x)


round_ste.defjvp(lambda primals, tangents: (jnp.round(primals[0]), tangents[0]))


def fake_quantize(w: jax.Array, scale: jax.Array, zero: jax.Array, bits: int, g: int) -> jax.Array:
    """Quantize-dequantize with straight-through rounding: differentiable in ``w``, ``scale`` and
    ``zero`` (the learnable quantization parameters of GQSA's BQPO / E2E-OQP stages)."""
    s = _expand(scale, g)
    z = _expand(jnp.clip(round_ste(zero), 0, 2**bits - 1), g)
    q = jnp.clip(round_ste(w / s) + z, 0, 2**bits - 1)
    return (q - z) * s


class GroupQuantized(NamedTuple):
    """Dense group-quantized ``(K, N)`` weight: ``packed (K*bits/8, N)`` uint8 codes, ``scales (G, N)``
    (float16 by default) and integer ``zeros (G, N)`` stored as uint8."""

    packed: jax.Array
    scales: jax.Array
    zeros: jax.Array
    bits: int
    g: int


def group_quantize(w: jax.Array, bits: int, g: int, scale=None, zero=None,
                   scale_dtype=jnp.float16) -> GroupQuantized:
    """Pack ``w`` (min/max parameters unless ``scale``/``zero`` are given)."""
    if scale is None or zero is None:
        scale, zero = minmax_params(w, bits, g)
    codes = quantize(w, scale, zero, bits, g)
    return GroupQuantized(pack_codes(codes, bits, axis=0), scale.astype(scale_dtype),
                          jnp.clip(jnp.round(zero), 0, 2**bits - 1).astype(jnp.uint8), bits, g)


def group_dequantize(c: GroupQuantized) -> jax.Array:
    """Dense float32 weight from a `GroupQuantized`."""
    return dequantize(unpack_codes(c.packed, c.bits, axis=0), c.scales.astype(jnp.float32),
                      c.zeros.astype(jnp.float32), c.g)


def group_quant_nbytes(c: GroupQuantized) -> int:
    """Exact bytes of the stored arrays (codes + scales + zero points)."""
    return int(c.packed.nbytes + c.scales.nbytes + c.zeros.nbytes)
