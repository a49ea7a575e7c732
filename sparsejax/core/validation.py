"""Input validation shared by every package (``sparsejax``, ``geometry``, ``generative``).

Each checker raises ``ValueError`` (bad value) or ``TypeError`` (bad type) with a message that names
the argument (``name``) and the offending value, and returns the checked value so calls can be
inlined: ``steps = check_int("steps", steps, minimum=1)``.

Under ``jax.jit`` only what is static can be checked at trace time: shapes, ranks, dtypes and Python
scalars. The value checks (:func:`check_finite_array`, :func:`check_index_range`, traced scalars in
:func:`check_number`) are skipped for tracers; the functions that accept traced values document the
precondition instead.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "is_traced", "check_int", "check_number", "check_choice", "check_array", "check_finite_array",
    "check_index_range", "check_same_length", "check_finite_tree", "check_type", "check_callable", "check_key",
]


def is_traced(x: Any) -> bool:
    """True when ``x`` is a jax tracer (its value is unknown at trace time)."""
    return isinstance(x, jax.core.Tracer)


def _bounds_text(minimum, maximum, min_inclusive, max_inclusive) -> str:
    lo = "" if minimum is None else f"{'>=' if min_inclusive else '>'} {minimum}"
    hi = "" if maximum is None else f"{'<=' if max_inclusive else '<'} {maximum}"
    return " and ".join(t for t in (lo, hi) if t)


def _check_bounds(name, value, minimum, maximum, min_inclusive, max_inclusive) -> None:
    too_low = minimum is not None and (value < minimum if min_inclusive else value <= minimum)
    too_high = maximum is not None and (value > maximum if max_inclusive else value >= maximum)
    if too_low or too_high:
        raise ValueError(f"{name} must be {_bounds_text(minimum, maximum, min_inclusive, max_inclusive)}, "
                         f"got {value!r}")


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python/NumPy integer (not a bool, not a float) in ``[minimum, maximum]``; returns ``int(value)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    _check_bounds(name, value, minimum, maximum, True, True)
    return value


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 min_inclusive: bool = True, max_inclusive: bool = True, allow_traced: bool = False):
    """A finite real number within the given bounds; returns it as ``float``.

    A 0-d array counts as a number. With ``allow_traced`` a tracer passes through unchecked (the
    caller documents the precondition); otherwise a tracer raises ``TypeError``.
    """
    if is_traced(value):
        if allow_traced:
            return value
        raise TypeError(f"{name} must be a concrete number, got a traced value; pass it as a static argument")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got bool {value!r}")
    if hasattr(value, "ndim") and getattr(value, "ndim") == 0:
        value = np.asarray(value).item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    _check_bounds(name, value, minimum, maximum, min_inclusive, max_inclusive)
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` must be one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _dtype_kind(dtype) -> str:
    """NumPy kind code, with the ml_dtypes floats (bfloat16, float8_*) counted as ``"f"`` (NumPy says ``"V"``)."""
    kind = np.dtype(dtype).kind
    return "f" if kind == "V" and jnp.issubdtype(dtype, jnp.floating) else kind


def check_array(name: str, x: Any, *, ndim: int | Sequence[int] | None = None,
                shape: Sequence[int | None] | None = None, dtype_kind: str | None = None) -> Any:
    """An array (anything with ``shape``/``dtype``) of the given rank, shape and dtype kind.

    ``shape`` entries that are ``None`` match any length. ``dtype_kind`` is a string of NumPy kind
    codes: ``"f"`` floating, ``"i"``/``"u"`` integer, ``"b"`` bool, ``"c"`` complex (e.g. ``"iu"``).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = allowed[0] if len(allowed) == 1 else f"one of {allowed}"
            raise ValueError(f"{name} must have ndim {want}, got shape {tuple(x.shape)}")
    if shape is not None:
        if len(shape) != x.ndim or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            want = ", ".join("*" if s is None else str(s) for s in shape)
            raise ValueError(f"{name} must have shape ({want}), got {tuple(x.shape)}")
    if dtype_kind is not None and _dtype_kind(x.dtype) not in dtype_kind:
        kinds = {"f": "floating", "i": "signed int", "u": "unsigned int", "b": "bool", "c": "complex"}
        want = " or ".join(kinds.get(k, k) for k in dtype_kind)
        raise TypeError(f"{name} must have a {want} dtype, got {x.dtype}")
    return x


def check_finite_array(name: str, x: Any) -> Any:
    """Raise ``ValueError`` if ``x`` holds NaN or inf (skipped when traced)."""
    if is_traced(x):
        return x
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        raise ValueError(f"{name} must be finite, got {n_nan} NaN and {n_inf} inf entries "
                         f"(shape {arr.shape})")
    return x


def check_index_range(name: str, idx: Any, size: int, *, lower: int = 0) -> Any:
    """Integer index array with every entry in ``[lower, size)``; JAX would otherwise clamp or drop
    out-of-range gathers silently. Skipped (dtype only) when traced."""
    check_array(name, idx, dtype_kind="iu")
    if is_traced(idx):
        return idx
    arr = np.asarray(idx)
    if arr.size and (arr.min() < lower or arr.max() >= size):
        raise ValueError(f"{name} must lie in [{lower}, {size}), got values in [{arr.min()}, {arr.max()}]")
    return idx


def check_same_length(**arrays: Any) -> int:
    """All arrays share their leading axis length; returns it. Names come from the keywords."""
    lengths = {k: int(np.shape(v)[0]) if np.ndim(v) else None for k, v in arrays.items()}
    if any(n is None for n in lengths.values()):
        scalars = [k for k, n in lengths.items() if n is None]
        raise ValueError(f"{', '.join(scalars)} must have a leading axis, got a scalar")
    if len(set(lengths.values())) > 1:
        raise ValueError("leading lengths differ: " + ", ".join(f"{k}={n}" for k, n in lengths.items()))
    return next(iter(lengths.values())) if lengths else 0


def check_finite_tree(name: str, tree: Any) -> Any:
    """Raise ``ValueError`` naming the first leaf path of ``tree`` holding NaN/inf (tracers skipped)."""
    from sparsejax.core.tree import leaves_with_paths

    for path, leaf in leaves_with_paths(tree):
        if leaf is None or is_traced(leaf) or not hasattr(leaf, "dtype"):
            continue
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(jnp.isfinite(leaf).all()):
            raise ValueError(f"{name} leaf {path!r} holds NaN or inf")
    return tree


def check_type(name: str, value: Any, types, what: str | None = None) -> Any:
    """``value`` must be an instance of ``types`` (a class or tuple of classes); ``what`` names the
    expected kind in the message (default: the class names)."""
    if not isinstance(value, types):
        if what is None:
            classes = types if isinstance(types, tuple) else (types,)
            what = " or ".join(c.__name__ for c in classes)
        raise TypeError(f"{name} must be a {what}, got {type(value).__name__} {_short(value)}")
    return value


def check_callable(name: str, value: Any) -> Any:
    """``value`` must be callable (a function, a jitted function, a module's ``apply``)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {_short(value)}")
    return value


def check_key(name: str, key: Any) -> Any:
    """A jax PRNG key: a typed key array or a legacy ``uint32`` key of shape ``(2,)``."""
    if hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if not (hasattr(key, "dtype") and hasattr(key, "shape") and key.dtype == jnp.uint32 and key.shape[-1:] == (2,)):
        raise TypeError(f"{name} must be a jax PRNG key (jax.random.key / PRNGKey), got {type(key).__name__} "
                        f"{_short(key)}")
    return key


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
