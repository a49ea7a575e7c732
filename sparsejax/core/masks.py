"""Masks as pytrees: drawing them (random, magnitude), applying them and measuring sparsity.

A mask has the structure of the params: a boolean array (``True`` = kept) at every sparsified
leaf and ``None`` at leaves that stay dense. Every function works on concrete and traced values,
so masks can be recomputed inside a jitted update with a traced density and never recompile.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.densities import uniform_densities
from sparsejax.core.tree import (
    Predicate,
    check_finite,
    check_like,
    check_sparsity,
    is_none,
    is_scalar,
    leaves_with_paths,
    select,
)


def keep_count(density, size: int) -> jax.Array:
    """Number of entries kept at ``density`` in a leaf of ``size`` entries (rounded to nearest)."""
    return jnp.round(jnp.asarray(density, jnp.float32) * size).astype(jnp.int32)


def top_k_mask(scores: jax.Array, k) -> jax.Array:
    """Boolean mask of the ``k`` largest ``scores`` (exactly ``k``; ties broken by position)."""
    flat = scores.reshape(-1)
    order = jnp.argsort(-flat, stable=True)
    ranks = jnp.zeros(flat.shape, jnp.int32).at[order].set(jnp.arange(flat.size, dtype=jnp.int32))
    return (ranks < k).reshape(scores.shape)


def _check_densities(params, densities):
    check_like(params, densities, what="densities")
    for path, d in leaves_with_paths(densities):
        if d is None or isinstance(d, jax.core.Tracer):
            continue
        if not 0.0 <= float(d) <= 1.0:
            raise ValueError(f"density of leaf {path!r} must be in [0, 1], got {float(d)}")


def random_mask(key: jax.Array, params, densities):
    """Random mask keeping exactly ``round(density * size)`` entries of each leaf (not Bernoulli).

    ``densities`` is a tree from :func:`uniform_densities` / :func:`erk_densities` (``None`` leaves
    stay dense) or a float sparsity applied uniformly.
    """
    if is_scalar(densities):
        densities = uniform_densities(params, densities)
    _check_densities(params, densities)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    d_leaves = jax.tree_util.tree_leaves(densities, is_leaf=is_none)
    keys = jax.random.split(key, len(leaves))
    out = [
        None if d is None else top_k_mask(jax.random.uniform(k, leaf.shape), keep_count(d, leaf.size))
        for leaf, d, k in zip(leaves, d_leaves, keys)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


def magnitude_mask(params, densities_or_sparsity, scope: str = "layer", *, predicate: Predicate | None = None):
    """Keep the largest-magnitude weights.

    ``scope="layer"``: each leaf keeps ``round(density * size)`` entries, densities given as a tree
    or as one float sparsity (uniform). ``scope="global"``: one magnitude threshold over all
    sparsifiable leaves, keeping ``round((1 - sparsity) * total)`` entries; needs a float sparsity.
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    scalar = is_scalar(densities_or_sparsity)
    if scope == "global":
        if not scalar:
            raise TypeError("scope='global' takes one float sparsity, not a densities tree")
        return _global_magnitude_mask(params, densities_or_sparsity, predicate)
    densities = uniform_densities(params, densities_or_sparsity, predicate=predicate) if scalar \
        else densities_or_sparsity
    _check_densities(params, densities)
    check_finite(params, densities)
    return jax.tree_util.tree_map(
        lambda d, w: None if d is None else top_k_mask(jnp.abs(w), keep_count(d, w.size)),
        densities, params, is_leaf=is_none,
    )


def _global_magnitude_mask(params, sparsity, predicate):
    check_sparsity(sparsity)
    selected = select(params, predicate)
    check_finite(params, selected)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    sel = jax.tree_util.tree_leaves(selected, is_leaf=is_none)
    chosen = [w for w, s in zip(leaves, sel) if s is not None]
    if not chosen:
        raise ValueError("params have no sparsifiable leaves (check the predicate)")
    flat = jnp.concatenate([jnp.abs(w).reshape(-1) for w in chosen])
    keep = top_k_mask(flat, keep_count(1.0 - jnp.asarray(sparsity), flat.size))
    out, offset = [], 0
    for w, s in zip(leaves, sel):
        if s is None:
            out.append(None)
            continue
        out.append(keep[offset : offset + w.size].reshape(w.shape))
        offset += w.size
    return jax.tree_util.tree_unflatten(treedef, out)


def apply_mask(params, mask):
    """Zero the pruned entries: ``where(mask, params, 0)`` at masked leaves, others unchanged."""
    check_like(params, mask)
    return jax.tree_util.tree_map(
        lambda m, w: w if m is None else jnp.where(m, w, jnp.zeros_like(w)), mask, params, is_leaf=is_none
    )


def _is_mask(tree) -> bool:
    leaves = [x for x in jax.tree_util.tree_leaves(tree, is_leaf=is_none) if x is not None]
    return bool(leaves) and all(jnp.asarray(x).dtype == jnp.bool_ for x in leaves)


def sparsity(mask_or_params, *, predicate: Predicate | None = None) -> float:
    """Fraction of zeros: of ``False`` entries over a mask's non-``None`` leaves, or of zero
    weights over the sparsifiable leaves of a params tree."""
    if _is_mask(mask_or_params):
        leaves = [x for x in jax.tree_util.tree_leaves(mask_or_params, is_leaf=is_none) if x is not None]
        total = sum(int(np.size(x)) for x in leaves)
        kept = sum(int(np.count_nonzero(np.asarray(x))) for x in leaves)
    else:
        selected = select(mask_or_params, predicate)
        pairs = zip(jax.tree_util.tree_leaves(mask_or_params), jax.tree_util.tree_leaves(selected, is_leaf=is_none))
        leaves = [w for w, s in pairs if s is not None]
        if not leaves:
            raise ValueError("no sparsifiable leaves to measure (check the predicate)")
        total = sum(int(np.size(w)) for w in leaves)
        kept = sum(int(np.count_nonzero(np.asarray(w))) for w in leaves)
    return 1.0 - kept / total
