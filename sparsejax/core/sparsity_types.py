"""Sparsity types: the structure a mask must have, accepted by every mask-drawing function and
every sparse training algorithm (``magnitude_mask``, ``random_mask``, ``gradual_pruning``, SET,
RigL), so that e.g. N:M gradual pruning and block-sparse RigL are one argument away.

A type sees a weight as *units* (single entries, ``(r, c)`` blocks, output channels, groups of ``g``
consecutive inputs) that are kept or pruned together, ranked by the L2 norm of an element-wise
score over the unit (for single entries: the score itself). Units are ranked over the whole leaf
(``Unstructured``, ``Block``, ``Channel``, ``Group``) or within rows of fixed size (``NByM``: each
group of ``m`` keeps ``n``; ``Group(balanced=True)``: each output column keeps the same number of
groups). Counts are exact: a leaf at density ``d`` keeps ``round(d * units)`` units (per row for
row types), and a drop-and-grow update keeps every count unchanged.

Axes follow one rule for flax kernels (``Dense`` ``(in, out)``, ``Conv`` ``(*window, in, out)``): the
reduction (input) axis is ``-2`` and the output axis is ``-1``. N:M groups and SparseByteNN groups run
along ``-2`` (what 2:4 sparse tensor cores reduce over), channels are pruned along ``-1``, blocks
tile the trailing two axes.

String forms (jaxpruner's): ``"unstructured"``, ``"nm_2,4"``, ``"block_4,4"``, ``"channel_-1"``,
``"group_8"`` (``"group_8,balanced"``); see :func:`parse_sparsity_type`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_int, is_traced

__all__ = ["SparsityType", "Unstructured", "NByM", "Block", "Channel", "Group", "parse_sparsity_type"]


def ranks_last(x: jax.Array) -> jax.Array:
    """Rank of every entry along the last axis, largest first, ties by position.

    Short axes (<= 32, e.g. N:M groups) count pairwise wins instead of sorting: XLA's CPU sort costs far
    more than the O(m^2) comparisons there.
    """
    m = x.shape[-1]
    if m <= 32:
        xi, xj = x[..., :, None], x[..., None, :]
        earlier = jnp.arange(m)[None, :] < jnp.arange(m)[:, None]  # [i, j]: j before i
        return jnp.sum((xj > xi) | ((xj == xi) & earlier), axis=-1, dtype=jnp.int32)
    order = jnp.argsort(-x, axis=-1, stable=True)
    return jnp.argsort(order, axis=-1, stable=True)


def _ranks_along(x: jax.Array, axis: int) -> jax.Array:
    """:func:`ranks_last` (pairwise form) along a short ``axis`` without moving it last: the same ranks,
    with no transpose of the operand (a moved axis made XLA pick a transposed layout for the whole mask)."""
    m = x.shape[axis]
    xi, xj = jnp.expand_dims(x, axis + 1), jnp.expand_dims(x, axis)  # i on ``axis``, j on ``axis + 1``
    earlier = (jnp.arange(m)[None, :] < jnp.arange(m)[:, None]).reshape((m, m) + (1,) * (x.ndim - axis - 1))
    return jnp.sum((xj > xi) | ((xj == xi) & earlier), axis=axis + 1, dtype=jnp.int32)


def _top_k_rows(scores: jax.Array, k) -> jax.Array:
    """Top ``k`` (scalar or per-row, broadcast against ``scores[..., :1]``) along the last axis."""
    return ranks_last(scores) < jnp.asarray(k)[..., None] if jnp.ndim(k) else ranks_last(scores) < k


def _top_k_flat(scores: jax.Array, k) -> jax.Array:
    """Top ``k`` of all entries (ties by position): the radix select of :func:`~sparsejax.core.masks.top_k_mask`."""
    from sparsejax.core.masks import top_k_mask

    return top_k_mask(scores, k)


def _norm_last(x: jax.Array, axes) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)), axis=axes))


@dataclasses.dataclass(frozen=True)
class SparsityType:
    """Base class. Subclasses define the unit view (``units``/``expand``) and whether units are
    ranked per row (``per_row``); the drawing and updating logic below is shared."""

    per_row = False

    # --- unit view -------------------------------------------------------------------------
    def check(self, shape, where: str = "array") -> None:
        """Raise ``ValueError`` (naming ``where``) if a leaf of ``shape`` cannot take this type."""

    def units(self, score: jax.Array) -> jax.Array:
        """Unit scores: ``(rows..., units_per_row)`` for row types, any shape otherwise."""
        return score.astype(jnp.float32)

    def expand(self, unit_mask: jax.Array, shape) -> jax.Array:
        """Element mask of ``shape`` from a unit mask of the shape ``units`` returns."""
        return unit_mask.reshape(shape)

    def unit_mask(self, mask: jax.Array) -> jax.Array:
        """Unit view of an element mask that already has this structure (a unit is kept iff any entry is)."""
        return self.units(mask.astype(jnp.float32)) > 0

    def row_count(self, density, units_per_row: int):
        """Kept units per row at ``density`` (row types)."""
        from sparsejax.core.masks import keep_count

        return keep_count(density, units_per_row)

    # --- shared logic ------------------------------------------------------------------------
    def mask(self, score: jax.Array, density, current: jax.Array | None = None) -> jax.Array:
        """Keep the highest-scoring units at ``density`` (may be traced); with ``current`` only
        units kept in ``current`` can stay (monotone pruning)."""
        from sparsejax.core.masks import keep_count

        self.check(score.shape)
        u = self.units(score)
        if current is not None:
            u = jnp.where(self.unit_mask(current), u, -jnp.inf)
        if self.per_row:
            keep = _top_k_rows(u, self.row_count(density, u.shape[-1]))
        else:
            keep = _top_k_flat(u, keep_count(density, u.size))
        return self.expand(keep, score.shape)

    def drop_and_grow(self, mask: jax.Array, drop_score: jax.Array, grow_score: jax.Array, zeta) -> jax.Array:
        """One connectivity update: drop the ``floor(zeta * active)`` active units of lowest
        ``drop_score`` in the leaf, grow as many inactive ones of highest ``grow_score`` (row types:
        each row regrows as many as it lost, inside the row). Every count is unchanged and the
        structure is kept."""
        active = self.unit_mask(mask)
        d = self.units(drop_score)
        g = self.units(grow_score)
        k = jnp.floor(zeta * jnp.sum(active)).astype(jnp.int32)
        dropped = _top_k_flat(jnp.where(active, -d, -jnp.inf), k)
        kept = active & ~dropped
        if self.per_row:  # regrow inside the rows that lost units, so every row keeps its count
            grown = _top_k_rows(jnp.where(kept, -jnp.inf, g), jnp.sum(dropped, axis=-1))
        else:
            grown = _top_k_flat(jnp.where(kept, -jnp.inf, g), k)
        return self.expand(kept | grown, mask.shape)

    def holds(self, mask) -> bool:
        """True iff ``mask`` (concrete) has this structure: every unit all kept or all pruned, and
        for row types the same count in every row."""
        m = jnp.asarray(mask, bool)
        self.check(m.shape)
        any_ = self.units(m.astype(jnp.float32)) > 0
        whole = bool(jnp.array_equal(self.expand(any_, m.shape), m))
        if self.per_row:
            counts = np.asarray(jnp.sum(any_, axis=-1))
            return whole and counts.size > 0 and bool((counts == counts.reshape(-1)[0]).all())
        return whole

    def flops_fraction(self, density: float) -> float:
        """Fraction of the dense multiply-accumulates a kernel of this type at ``density`` needs
        (an ideal sparse kernel skips every pruned unit)."""
        return float(density)


@dataclasses.dataclass(frozen=True)
class Unstructured(SparsityType):
    """Element-wise sparsity: each leaf keeps its ``round(d * size)`` highest-scoring entries."""


def _axis(shape, axis: int, where: str) -> int:
    if len(shape) < 1 or not -len(shape) <= axis < len(shape):
        raise ValueError(f"{where}: axis {axis} is out of range for shape {tuple(shape)}")
    return axis % len(shape)


@dataclasses.dataclass(frozen=True)
class NByM(SparsityType):
    """N:M sparsity along ``axis`` (default ``-2``, the input axis of flax kernels): every group of
    ``m`` consecutive entries keeps ``n``. At a density above ``n/m`` (during gradual pruning) each
    group keeps ``clip(round(d * m), n, m)``, so the schedule goes from dense to exactly N:M."""

    n: int
    m: int
    axis: int = -2
    per_row = True

    def __post_init__(self):
        check_int("m", self.m, minimum=2)
        check_int("n", self.n, minimum=1, maximum=self.m - 1)
        check_int("axis", self.axis)

    def check(self, shape, where="array"):
        a = _axis(shape, self.axis, where)
        if shape[a] % self.m:
            raise ValueError(f"{where}: axis {a} has length {shape[a]}, not divisible by m={self.m} "
                             f"(shape {tuple(shape)})")

    def units(self, score):
        moved = jnp.moveaxis(score.astype(jnp.float32), self.axis, -1)
        return moved.reshape(*moved.shape[:-1], moved.shape[-1] // self.m, self.m)

    def expand(self, unit_mask, shape):
        moved = unit_mask.reshape(*unit_mask.shape[:-2], -1)
        return jnp.moveaxis(moved, -1, self.axis).reshape(shape)

    def row_count(self, density, units_per_row):
        from sparsejax.core.masks import keep_count

        return jnp.clip(keep_count(density, self.m), self.n, self.m)

    def mask(self, score, density, current=None):
        if self.m > 32:
            return super().mask(score, density, current)
        self.check(score.shape)  # groups ranked in place (no moveaxis): the same mask as the unit view
        shape = tuple(score.shape)
        a = self.axis % len(shape)
        s = score.astype(jnp.float32)
        if current is not None:
            s = jnp.where(current, s, -jnp.inf)
        groups = s.reshape(shape[:a] + (shape[a] // self.m, self.m) + shape[a + 1:])
        keep = _ranks_along(groups, a + 1) < self.row_count(density, self.m)
        return keep.reshape(shape)

    def holds(self, mask):
        m = jnp.asarray(mask, bool)
        self.check(m.shape)
        counts = np.asarray(jnp.sum(self.units(m.astype(jnp.float32)) > 0, axis=-1))
        return bool((counts == counts.reshape(-1)[0]).all()) and int(counts.reshape(-1)[0]) >= self.n

    def flops_fraction(self, density):
        return max(float(density), self.n / self.m)


@dataclasses.dataclass(frozen=True)
class Block(SparsityType):
    """Block sparsity: whole ``(r, c)`` tiles of the trailing two axes kept or pruned together,
    ranked by the tile's L2 norm of the score (:func:`sparsejax.structured.block.block_mask`)."""

    block_shape: tuple[int, int]

    def __post_init__(self):
        if not isinstance(self.block_shape, (tuple, list)) or len(self.block_shape) != 2:
            raise ValueError(f"block_shape must be a pair (r, c), got {self.block_shape!r}")
        object.__setattr__(self, "block_shape", tuple(check_int("block_shape", b, minimum=1) for b in self.block_shape))

    def check(self, shape, where="array"):
        r, c = self.block_shape
        if len(shape) < 2 or shape[-2] % r or shape[-1] % c:
            raise ValueError(f"{where}: block_shape {self.block_shape} must divide the trailing two axes of "
                             f"shape {tuple(shape)}")

    def units(self, score):
        from sparsejax.structured.block import block_norms

        return block_norms(score, self.block_shape)

    def expand(self, unit_mask, shape):
        r, c = self.block_shape
        return jnp.repeat(jnp.repeat(unit_mask, r, axis=-2), c, axis=-1).reshape(shape)

    def mask(self, score, density, current=None):
        from sparsejax.structured.block import block_mask

        self.check(score.shape)
        if current is not None:  # pruned blocks get norm 0: they rank after every kept block with score > 0
            score = jnp.where(current, score, 0.0)
        sparsity = 1.0 - (density if is_traced(density) else float(np.asarray(density)))
        return block_mask(score, self.block_shape, sparsity, score=score)


@dataclasses.dataclass(frozen=True)
class Channel(SparsityType):
    """Channel (neuron / filter) sparsity: whole slices along ``axis`` (default ``-1``, the output
    channels of flax kernels) kept or pruned together, ranked by their L2 norm."""

    axis: int = -1

    def __post_init__(self):
        check_int("axis", self.axis)

    def check(self, shape, where="array"):
        _axis(shape, self.axis, where)

    def units(self, score):
        a = self.axis % score.ndim
        return _norm_last(score, tuple(i for i in range(score.ndim) if i != a))

    def expand(self, unit_mask, shape):
        a = self.axis % len(shape)
        view = [1] * len(shape)
        view[a] = shape[a]
        return jnp.broadcast_to(unit_mask.reshape(view), shape)


@dataclasses.dataclass(frozen=True)
class Group(SparsityType):
    """Fine-grained group sparsity (SparseByteNN, P28): groups of ``g`` consecutive weights along
    ``axis`` (default ``-2``, the input axis) kept or pruned together, ranked by L2 norm. With
    ``balanced`` every output column (every slice over the other axes) keeps the same number."""

    g: int
    axis: int = -2
    balanced: bool = False

    def __post_init__(self):
        check_int("g", self.g, minimum=1)
        check_int("axis", self.axis)

    @property
    def per_row(self):  # noqa: D401 - a property overriding the class attribute
        return self.balanced

    def check(self, shape, where="array"):
        if len(shape) < 2:
            raise ValueError(f"{where}: group sparsity needs a weight with ndim >= 2, got shape {tuple(shape)}")
        a = _axis(shape, self.axis, where)
        if shape[a] % self.g:
            raise ValueError(f"{where}: axis {a} has length {shape[a]}, not divisible by group size g={self.g}")

    def units(self, score):
        moved = jnp.moveaxis(score.astype(jnp.float32), self.axis, -1)
        return _norm_last(moved.reshape(*moved.shape[:-1], moved.shape[-1] // self.g, self.g), -1)

    def expand(self, unit_mask, shape):
        full = jnp.repeat(unit_mask, self.g, axis=-1)
        return jnp.moveaxis(full, -1, self.axis).reshape(shape)


def parse_sparsity_type(spec) -> SparsityType:
    """A :class:`SparsityType` from itself, ``None`` (unstructured) or a string: ``"unstructured"``,
    ``"nm_2,4"`` (also ``"2:4"``), ``"block_4,4"`` (also ``"4x4"``), ``"channel_-1"``, ``"group_8"``,
    ``"group_8,balanced"`` (jaxpruner's spellings where it has them)."""
    if spec is None:
        return Unstructured()
    if isinstance(spec, SparsityType):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"sparsity_type must be a SparsityType, a string or None, got {type(spec).__name__}")
    text = spec.strip().lower()
    try:
        if text == "unstructured":
            return Unstructured()
        if ":" in text and not text.startswith(("nm", "block", "channel", "group")):
            n, m = text.split(":")
            return NByM(int(n), int(m))
        if "x" in text and not text.startswith(("nm", "block", "channel", "group")):
            r, c = text.split("x")
            return Block((int(r), int(c)))
        kind, _, arg = text.partition("_")
        parts = [p.strip() for p in arg.split(",") if p.strip()]
        if kind == "nm" and len(parts) == 2:
            return NByM(int(parts[0]), int(parts[1]))
        if kind == "block" and len(parts) == 2:
            return Block((int(parts[0]), int(parts[1])))
        if kind == "channel" and len(parts) <= 1:
            return Channel(int(parts[0]) if parts else -1)
        if kind == "group" and 1 <= len(parts) <= 2 and (len(parts) == 1 or parts[1] == "balanced"):
            return Group(int(parts[0]), balanced=len(parts) == 2)
    except ValueError as err:
        raise ValueError(f"cannot parse sparsity_type {spec!r}: {err}") from None
    raise ValueError(f"unknown sparsity_type {spec!r}; use 'unstructured', 'nm_N,M', 'block_R,C', "
                     f"'channel_AXIS' or 'group_G[,balanced]'")
