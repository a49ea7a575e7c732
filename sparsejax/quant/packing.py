"""Bit packing of unsigned integer codes (2/4/8 bits) into uint8 bytes along one axis.

Code ``r`` of a run lives in byte ``r // (8 // bits)`` at bit offset ``(r % (8 // bits)) * bits``
(little-endian inside the byte): for 4 bits the even code is the low nibble, the odd one the high nibble.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_array, check_index_range, check_int

SUPPORTED_BITS = (2, 4, 8)


def _check_bits(bits: int) -> int:
    bits = check_int("bits", bits)
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    return 8 // bits


def pack_codes(codes: jax.Array, bits: int, axis: int = -2) -> jax.Array:
    """Pack integer codes in ``[0, 2**bits)`` into uint8 along ``axis`` (length divisible by
    ``8 // bits``); the packed axis is ``8 // bits`` times shorter. Codes outside the range raise
    ``ValueError`` (checked when concrete; under ``jit`` the range is a documented precondition)."""
    per_byte = _check_bits(bits)
    check_array("codes", codes, dtype_kind="iu")
    check_index_range("codes", codes, 2**bits)
    codes = jnp.asarray(codes)
    check_int("axis", axis, minimum=-max(codes.ndim, 1), maximum=max(codes.ndim, 1) - 1)
    axis = axis % codes.ndim
    if codes.shape[axis] % per_byte:
        raise ValueError(f"axis length {codes.shape[axis]} not divisible by {per_byte} codes per byte")
    moved = jnp.moveaxis(codes.astype(jnp.uint8), axis, -1)
    moved = moved.reshape(*moved.shape[:-1], -1, per_byte)
    shifts = (jnp.arange(per_byte, dtype=jnp.uint8) * bits)
    packed = jnp.sum(jnp.left_shift(moved & (2**bits - 1), shifts).astype(jnp.uint32), axis=-1)
    return jnp.moveaxis(packed.astype(jnp.uint8), -1, axis)


def unpack_codes(packed: jax.Array, bits: int, axis: int = -2) -> jax.Array:
    """Inverse of ``pack_codes``: uint8 codes, ``axis`` ``8 // bits`` times longer."""
    per_byte = _check_bits(bits)
    packed = jnp.asarray(packed)
    if packed.dtype != jnp.uint8:
        raise TypeError(f"packed codes must be uint8, got {packed.dtype}")
    check_int("axis", axis, minimum=-max(packed.ndim, 1), maximum=max(packed.ndim, 1) - 1)
    axis = axis % packed.ndim
    moved = jnp.moveaxis(packed, axis, -1)
    shifts = jnp.arange(per_byte, dtype=jnp.uint8) * bits
    codes = jnp.right_shift(moved[..., None], shifts) & jnp.uint8(2**bits - 1)
    codes = codes.reshape(*moved.shape[:-1], -1)
    return jnp.moveaxis(codes, -1, axis)
