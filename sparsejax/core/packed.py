"""Packed bit masks: a bool mask stored as one bit per weight in ``uint8`` or ``uint32`` words
(8x / 32x less memory than a bool array, which takes a byte per entry).

Bit ``i`` of word ``j`` holds entry ``j * W + i`` of the row-major flattened mask (little-endian
within a word, ``W`` = 8 or 32); the tail of the last word is zero. :class:`PackedMask` is a pytree
(the words are its only child; the mask shape is static), so a packed mask lives in optimizer
state, goes through ``jit``/``vmap`` and is unpacked inside the step
(``sparsejax.keep_mask(..., packed=True)``). :func:`sparsejax.report` counts the bitmap layout
(values + packed bits) with :attr:`PackedMask.nbytes`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.tree import is_none
from sparsejax.core.validation import check_choice

WORDS = {"uint8": (jnp.uint8, 8), "uint32": (jnp.uint32, 32)}


@jax.tree_util.register_pytree_node_class
class PackedMask:
    """Bits of a bool mask of static ``shape``, packed into ``words`` (``uint8`` or ``uint32``)."""

    def __init__(self, words, shape):
        self.words = words
        self.shape = tuple(int(d) for d in shape)

    def tree_flatten(self):
        return (self.words,), self.shape

    @classmethod
    def tree_unflatten(cls, shape, children):
        return cls(children[0], shape)

    @property
    def size(self) -> int:
        """Number of mask entries."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes of the stored words."""
        return int(np.prod(np.shape(self.words), dtype=np.int64)) * jnp.dtype(self.words.dtype).itemsize

    def __repr__(self) -> str:
        return f"PackedMask(shape={self.shape}, words={jnp.dtype(self.words.dtype).name}[{np.shape(self.words)[0]}])"


def pack_mask(mask, word: str = "uint8") -> PackedMask:
    """Pack a bool (or 0/1) array into a :class:`PackedMask` of ``word``-sized words (jittable)."""
    check_choice("word", word, tuple(WORDS))
    dtype, bits = WORDS[word]
    mask = jnp.asarray(mask)
    flat = mask.reshape(-1).astype(bool)
    pad = (-flat.size) % bits
    flat = jnp.pad(flat, (0, pad)).reshape(-1, bits).astype(dtype)
    shifts = jnp.arange(bits, dtype=dtype)
    words = jnp.sum(flat << shifts, axis=1, dtype=dtype)  # disjoint bits: the sum is the bitwise or
    return PackedMask(words, mask.shape)


def unpack_mask(packed: PackedMask) -> jax.Array:
    """The bool array of ``packed`` (exact inverse of :func:`pack_mask`; jittable)."""
    if not isinstance(packed, PackedMask):
        raise TypeError(f"unpack_mask needs a PackedMask, got {type(packed).__name__}")
    words = jnp.asarray(packed.words)
    bits = jnp.dtype(words.dtype).itemsize * 8
    shifts = jnp.arange(bits, dtype=words.dtype)
    flat = ((words[:, None] >> shifts) & 1).astype(bool).reshape(-1)
    return flat[: packed.size].reshape(packed.shape)


def _is_mask_leaf(x) -> bool:
    return is_none(x) or isinstance(x, PackedMask)


def pack_masks(tree, word: str = "uint8"):
    """:func:`pack_mask` on every array leaf of a mask tree (``None`` leaves stay ``None``)."""
    return jax.tree_util.tree_map(lambda m: None if m is None else pack_mask(m, word), tree, is_leaf=is_none)


def unpack_masks(tree):
    """:func:`unpack_mask` on every :class:`PackedMask` of a tree (other leaves unchanged)."""
    return jax.tree_util.tree_map(lambda m: unpack_mask(m) if isinstance(m, PackedMask) else m, tree,
                                  is_leaf=_is_mask_leaf)
