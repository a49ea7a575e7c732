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
import numpy as np

from sparsejax.core.validation import (
    check_array, check_finite_array, check_index_range, check_int, is_traced, check_type,
)
from sparsejax.quant.packing import SUPPORTED_BITS, pack_codes, unpack_codes, _check_bits


def _check(w, bits: int, g: int):
    bits = check_int("bits", bits)
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    if getattr(w, "ndim", None) != 2:
        raise ValueError(f"group quantization needs a 2-D (K, N) weight, got shape {getattr(w, 'shape', None)}")
    g = check_int("g", g, minimum=1)
    if w.shape[0] % g:
        raise ValueError(f"group size g={g!r} must be a positive int dividing K={w.shape[0]}")


def _check_params(w_shape, scale, zero, bits: int, g: int, *, zero_integer: bool = False):
    """``scale`` and ``zero`` of shape ``(K/g, N)``; a concrete scale must be finite and > 0, a concrete
    zero point finite and (``zero_integer``) an integer in ``[0, 2**bits)``."""
    want = (w_shape[0] // g, w_shape[1])
    check_array("scale", scale, shape=want, dtype_kind="f")
    check_array("zero", zero, shape=want, dtype_kind="fiu")
    check_finite_array("scale", scale)
    check_finite_array("zero", zero)
    if not is_traced(scale) and scale.size and float(jnp.min(scale)) <= 0:
        raise ValueError(f"scale must be > 0, got min {float(jnp.min(scale))}")
    if zero_integer and not is_traced(zero):
        z = jnp.asarray(zero)
        if bool(jnp.any(z != jnp.round(z))):
            raise ValueError("zero must hold integer zero points, got non-integer values")
        check_index_range("zero", z.astype(jnp.int32), 2**bits)


def _expand(p: jax.Array, g: int) -> jax.Array:
    """Per-group ``(G, N)`` parameter -> per-weight ``(G*g, N)``."""
    return jnp.repeat(p, g, axis=0)


def minmax_params(w: jax.Array, bits: int, g: int) -> tuple[jax.Array, jax.Array]:
    """Scale and integer zero point ``(G, N)`` from each group's min and max (GQSA Eq. 1)."""
    w = jnp.asarray(w)
    _check(w, bits, g)
    check_finite_array("w", w)
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
    _check_params(w.shape, scale, zero, bits, g, zero_integer=True)
    q = jnp.round(w / _expand(scale, g)) + _expand(jnp.clip(jnp.round(zero), 0, 2**bits - 1), g)
    return jnp.clip(q, 0, 2**bits - 1).astype(jnp.uint8)


def dequantize(codes: jax.Array, scale: jax.Array, zero: jax.Array, g: int) -> jax.Array:
    """``(q - z) * s`` per group, float32."""
    check_array("codes", codes, ndim=2, dtype_kind="iu")
    g = check_int("g", g, minimum=1)
    if codes.shape[0] % g:
        raise ValueError(f"group size g={g} must divide K={codes.shape[0]}")
    _check_params(codes.shape, scale, zero, 8, g)
    return (codes.astype(jnp.float32) - _expand(jnp.round(zero), g)) * _expand(scale, g)


@jax.custom_jvp
def _round_ste(x):
    return jnp.round(x)


_round_ste.defjvp(lambda primals, tangents: (jnp.round(primals[0]), tangents[0]))


def round_ste(x):
    """``round`` with a straight-through (identity) gradient."""
    if not (hasattr(x, "dtype") or isinstance(x, (int, float, np.number))) or isinstance(x, bool):
        raise TypeError(f"x must be an array or a number, got {type(x).__name__}")
    return _round_ste(x)


def fake_quantize(w: jax.Array, scale: jax.Array, zero: jax.Array, bits: int, g: int) -> jax.Array:
    """Quantize-dequantize with straight-through rounding: differentiable in ``w``, ``scale`` and
    ``zero`` (the learnable quantization parameters of GQSA's BQPO / E2E-OQP stages). ``scale`` must
    be > 0 (checked when concrete; a traced scale is a precondition, as in training)."""
    w = jnp.asarray(w)
    _check(w, bits, g)
    _check_params(w.shape, scale, zero, bits, g)
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
    """Pack ``w`` with min/max parameters, or with the given ``scale`` and integer ``zero`` (both or
    neither). ``scale_dtype`` must be a floating dtype (an integer one would truncate the scales)."""
    if (scale is None) != (zero is None):
        raise ValueError("pass both scale and zero, or neither (min/max parameters); got only "
                         f"{'scale' if zero is None else 'zero'}")
    if not jnp.issubdtype(scale_dtype, jnp.floating):
        raise TypeError(f"scale_dtype must be a floating dtype, got {jnp.dtype(scale_dtype)}")
    if scale is None:
        scale, zero = minmax_params(w, bits, g)
    codes = quantize(w, scale, zero, bits, g)
    return GroupQuantized(pack_codes(codes, bits, axis=0), scale.astype(scale_dtype),
                          jnp.clip(jnp.round(zero), 0, 2**bits - 1).astype(jnp.uint8), bits, g)


def _check_group_quantized(c) -> GroupQuantized:
    """Type, bits and the packed / scales / zeros shapes of a `GroupQuantized` agree."""
    check_type("c", c, GroupQuantized)
    per_byte = _check_bits(c.bits)
    check_int("c.g", c.g, minimum=1)
    check_array("c.packed", c.packed, ndim=2, dtype_kind="u")
    check_array("c.scales", c.scales, ndim=2, dtype_kind="f")
    check_array("c.zeros", c.zeros, shape=tuple(c.scales.shape), dtype_kind="iu")
    k = c.packed.shape[0] * per_byte
    if (k, c.packed.shape[1]) != (c.scales.shape[0] * c.g, c.scales.shape[1]):
        raise ValueError(f"c.packed holds a ({k}, {c.packed.shape[1]}) weight at {c.bits} bits, but c.scales "
                         f"{tuple(c.scales.shape)} with g={c.g} describe ({c.scales.shape[0] * c.g}, "
                         f"{c.scales.shape[1]})")
    return c


def group_dequantize(c: GroupQuantized) -> jax.Array:
    """Dense float32 weight from a `GroupQuantized`."""
    _check_group_quantized(c)
    return dequantize(unpack_codes(c.packed, c.bits, axis=0), c.scales.astype(jnp.float32),
                      c.zeros.astype(jnp.float32), c.g)


def group_quant_nbytes(c: GroupQuantized) -> int:
    """Exact bytes of the stored arrays (codes + scales + zero points)."""
    _check_group_quantized(c)
    return int(c.packed.nbytes + c.scales.nbytes + c.zeros.nbytes)
