"""Pytree helpers shared by the masking transforms: leaf paths, the sparsifiable-leaf rule and
structure checks that name the offending leaf."""
from __future__ import annotations

from typing import Any, Callable

import math

import jax
import jax.numpy as jnp
import numpy as np

Predicate = Callable[[str, Any], bool]


def is_none(x: Any) -> bool:
    """``is_leaf`` for trees that hold ``None`` at leaves that are not sparsified."""
    return x is None


def path_str(path) -> str:
    """``('params', 'Dense_0', 'kernel')``-style key path as ``'params/Dense_0/kernel'``."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def default_predicate(path: str, leaf: Any) -> bool:
    """Kernels (ndim >= 2) are sparsified; biases, norm scales and embedding tables are not."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a str (a leaf path such as 'params/Dense_0/kernel'), got {type(path).__name__}")
    return getattr(leaf, "ndim", 0) >= 2 and "embedding" not in path.rsplit("/", 1)[-1]


def leaves_with_paths(tree) -> list[tuple[str, Any]]:
    """``[(path, leaf)]`` in flatten order, keeping ``None`` leaves."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_none)
    return [(path_str(p), leaf) for p, leaf in flat]


def select(params, predicate: Predicate | None = None):
    """Tree shaped like ``params`` with ``True`` at sparsifiable leaves and ``None`` elsewhere."""
    predicate = predicate or default_predicate
    return jax.tree_util.tree_map_with_path(
        lambda p, leaf: True if predicate(path_str(p), leaf) else None, params
    )


def check_like(params, tree, what: str = "mask", *, allow_none: bool = True) -> None:
    """Raise if ``tree`` (with ``None`` leaves) does not have the structure and shapes of ``params``."""
    p_def = jax.tree_util.tree_structure(params)
    t_def = jax.tree_util.tree_structure(tree, is_leaf=is_none)
    if p_def != t_def:
        raise ValueError(f"{what} structure {t_def} does not match the params structure {p_def}")
    for (path, leaf), (_, other) in zip(leaves_with_paths(params), leaves_with_paths(tree)):
        if other is None:
            if not allow_none:
                raise ValueError(f"{what} leaf {path!r} is None")
            continue
        shape = getattr(other, "shape", None)
        if what == "mask":
            if shape is None or jnp.asarray(other).dtype != jnp.bool_:
                raise TypeError(f"mask leaf {path!r} must be a boolean array, got {type(other).__name__} "
                                f"of dtype {getattr(other, 'dtype', None)}")
            if shape != leaf.shape:
                raise ValueError(f"mask leaf {path!r} has shape {shape}, params leaf has {leaf.shape}")


def check_sparsity(sparsity, name: str = "sparsity") -> None:
    """Raise ``ValueError`` unless ``0 <= sparsity < 1`` (skipped for traced values)."""
    if isinstance(sparsity, jax.core.Tracer):
        return
    from sparsejax.core.validation import check_number

    value = check_number(name, sparsity)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def check_finite(params, selected) -> None:
    """Raise ``ValueError`` naming the first selected leaf holding NaN (skipped when traced)."""
    for (path, leaf), (_, sel) in zip(leaves_with_paths(params), leaves_with_paths(selected)):
        if sel is None or isinstance(leaf, jax.core.Tracer):
            continue
        if bool(jnp.isnan(leaf).any()):
            raise ValueError(f"params leaf {path!r} contains NaN; magnitude pruning needs finite weights")


def is_scalar(x: Any) -> bool:
    """True for a Python/NumPy number or a 0-d array (a sparsity), False for a tree of densities."""
    return isinstance(x, (int, float, np.number)) or (hasattr(x, "ndim") and not isinstance(x, dict) and x.ndim == 0)


def param_count(params) -> int:
    """Number of scalars in a pytree of arrays (or of ``jax.ShapeDtypeStruct`` from ``jax.eval_shape``)."""
    leaves = leaves_with_paths(params)
    for path, leaf in leaves:
        if leaf is not None and not hasattr(leaf, "shape"):
            raise TypeError(f"params must be a pytree of arrays; leaf {path or '<root>'!r} is a {type(leaf).__name__}")
    return int(sum(math.prod(leaf.shape) for _, leaf in leaves if leaf is not None))
