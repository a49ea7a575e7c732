"""Shared checks for the Pallas kernels: interpret-mode selection and block-size validation."""
from __future__ import annotations

import jax


def resolve_interpret(interpret: bool | None) -> bool:
    """``interpret=None`` means: interpret on CPU (no Pallas lowering there), compile elsewhere."""
    return jax.default_backend() == "cpu" if interpret is None else bool(interpret)


def pick_block(name: str, dim: int, block: int | None, default: int) -> int:
    """Block size for an axis of length ``dim``: ``block`` or ``min(dim, default)``; it must divide
    ``dim`` (ragged tails are not padded silently)."""
    b = min(dim, default) if block is None else block
    if not isinstance(b, int) or b < 1:
        raise ValueError(f"{name} must be a positive int, got {b!r}")
    if dim % b:
        raise ValueError(f"{name}={b} does not divide the axis of length {dim}; pad the operand or pass "
                         f"a {name} that divides {dim}")
    return b


def check_matrix(name: str, a, ndim: int) -> None:
    """Raise ``ValueError`` unless ``a`` is an array with ``ndim`` dimensions."""
    if getattr(a, "ndim", None) != ndim:
        raise ValueError(f"{name} must have ndim {ndim}, got shape {getattr(a, 'shape', None)}")
