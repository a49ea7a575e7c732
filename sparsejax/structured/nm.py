"""N:M fine-grained structured sparsity masks: in every group of ``m`` consecutive entries along an
axis keep the ``n`` of largest magnitude (Zhou et al. 2021, "Learning N:M fine-grained structured
sparse neural networks from scratch", and P7).

One axis rule everywhere (:func:`nm_mask`, :func:`is_nm_sparse`, ``nm_compress``, ``sr_ste``,
``nm_recipe``, :class:`sparsejax.NByM`): groups run along the input (reduction) axis of the kernel,
``axis=-2``, for flax ``Dense`` ``(in, out)`` and ``Conv`` ``(*window, in, out)`` kernels alike. That is
the axis hardware N:M (2:4 sparse tensor cores) reduces over.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.sparsity_types import ranks_last
from sparsejax.core.tree import Predicate, is_none, path_str, select
from sparsejax.core.validation import is_traced, check_int


def _check_nm_args(n, m) -> None:
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool):
        raise TypeError(f"m must be a Python int, got {type(m).__name__}")
    if isinstance(n, jax.Array):  # a scheduled N (possibly traced): 0 <= n <= m, n = m is dense
        if n.ndim or not jnp.issubdtype(n.dtype, jnp.integer):
            raise TypeError(f"an array n must be a 0-d integer array, got shape {n.shape} dtype {n.dtype}")
        if not isinstance(n, jax.core.Tracer) and not 0 <= int(n) <= m:
            raise ValueError(f"scheduled n must be in [0, m={m}], got {int(n)}")
        return
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 1 <= n < m:
        raise ValueError(f"N:M sparsity needs 1 <= n < m, got n={n}, m={m}")


def _check_axis(shape, m: int, axis: int, where: str = "array") -> int:
    if len(shape) == 0:
        raise ValueError(f"{where}: cannot take N:M groups of a scalar")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{where}: axis {axis} is out of range for shape {tuple(shape)}")
    axis %= len(shape)
    if shape[axis] % m:
        raise ValueError(f"{where}: axis {axis} has length {shape[axis]}, not divisible by m={m} "
                         f"(shape {tuple(shape)})")
    return axis


def nm_keep(x: jax.Array, n, m: int, axis: int) -> jax.Array:
    """Boolean N:M mask of one array without shape checks; ``n`` may be a traced int in
    ``[0, m]`` (``n = m`` keeps everything), so a schedule over ``n`` never recompiles. A traced
    ``n`` cannot be checked without a host round trip in the hot loop (4x slower on CPU), so it is
    *clamped* to ``[0, m]`` (documented and tested: ``n > m`` keeps every entry, ``n < 0`` none); a
    concrete ``n`` is checked by :func:`nm_mask`. Exactly ``n`` entries per group; ties keep the
    earlier position."""
    if not is_traced(n) and not isinstance(n, jax.Array):
        m = check_int("m", m, minimum=1)
        check_int("n", n, minimum=0, maximum=m)
        _check_axis(np.shape(x), m, axis, "x")
    n = jnp.clip(n, 0, m)
    mag = jnp.moveaxis(jnp.abs(x), axis, -1)
    shape = mag.shape
    groups = mag.reshape(shape[:-1] + (shape[-1] // m, m))
    return jnp.moveaxis((ranks_last(groups) < n).reshape(shape), -1, axis)


def nm_mask(x, n, m: int, axis: int = -2, *, predicate: Predicate | None = None):
    """Keep the ``n`` largest-magnitude entries in every group of ``m`` consecutive entries along
    ``axis`` (default ``-2``: the input axis of flax ``Dense`` and ``Conv`` kernels).

    ``x`` an array: returns a bool array shaped like ``x``. ``x`` a params pytree: returns a mask
    pytree (bool arrays at the leaves selected by ``predicate``, default: ndim >= 2 and not an
    embedding table; ``None`` elsewhere) that composes with :func:`sparsejax.masked` and
    :func:`sparsejax.apply_mask`. Raises ``ValueError`` unless ``1 <= n < m`` and ``m`` divides the
    axis length (naming the offending leaf). ``n`` may also be a 0-d integer jax array, e.g. a
    traced schedule value (then ``0 <= n <= m``; ``n = m`` is dense) so changing it never recompiles.
    """
    _check_nm_args(n, m)
    if isinstance(x, (jax.Array, np.ndarray)):
        _check_axis(x.shape, m, axis)
        return nm_keep(x, n, m, axis)
    selected = select(x, predicate)

    def leaf_mask(path, sel, w):
        if sel is None:
            return None
        return nm_keep(w, n, m, _check_axis(np.shape(w), m, axis, where=f"params leaf {path_str(path)!r}"))

    return jax.tree_util.tree_map_with_path(leaf_mask, selected, x, is_leaf=is_none)


def is_nm_sparse(x: jax.Array, n: int, m: int, axis: int = -2) -> bool:
    """True iff every group of ``m`` consecutive entries along ``axis`` has at most ``n`` non-zeros."""
    m = check_int("m", m, minimum=1)
    check_int("n", n, minimum=0, maximum=m)
    axis = _check_axis(np.shape(x), m, axis)
    nz = np.moveaxis(np.asarray(x) != 0, axis, -1)
    return bool((nz.reshape(nz.shape[:-1] + (-1, m)).sum(-1) <= n).all())
