"""Masks as pytrees: drawing them (random, magnitude), applying them and measuring sparsity.

A mask has the structure of the params: a boolean array (``True`` = kept) at every sparsified
leaf and ``None`` at leaves that stay dense. Every function works on concrete and traced values,
so masks can be recomputed inside a jitted update with a traced density and never recompile.
"""
from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.densities import uniform_densities
from sparsejax.core.tree import (
    Predicate,
    check_like,
    check_sparsity,
    is_none,
    is_scalar,
    leaves_with_paths,
    select,
)
from sparsejax.core.sparsity_types import Unstructured, parse_sparsity_type
from sparsejax.core.validation import check_array, check_choice, check_int, is_traced, check_key


def _exact_round(total_int, frac):
    """Round ``total_int + frac`` (``frac`` in ``[0, 4)``) half to even, as an int32."""
    fi = jnp.floor(frac)
    r = frac - fi
    base = total_int + fi.astype(jnp.int32)
    return base + (r > 0.5).astype(jnp.int32) + ((r == 0.5) & (base % 2 == 1)).astype(jnp.int32)


def _split(a):
    c = jnp.float32(4097.0) * a  # Veltkamp split of a float32 into two 12-bit halves
    hi = c - (c - a)
    return hi, a - hi


def _two_product(a, b):
    """``p + e == a * b`` exactly for float32 ``a``, ``b`` (Dekker 1971)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def keep_count(density, size: int) -> jax.Array:
    """Number of entries kept at ``density`` in a leaf of ``size`` entries: ``round(density * size)``
    computed exactly (half to even), for concrete and traced densities alike.

    A concrete density is multiplied as an exact rational; a traced one (float32) through an
    error-free product, so counts stay exact above 2^24 entries where a float32 product is not.
    """
    size = check_int("size", size, minimum=0, maximum=2**31 - 1)
    if not is_traced(density):
        d = float(np.asarray(density))
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"density must be in [0, 1], got {d!r}")
        return jnp.asarray(round(Fraction(d) * size), jnp.int32)
    d = jnp.asarray(density, jnp.float32)
    terms = []
    for part in (float((size >> 12) << 12), float(size & 4095)):
        terms += list(_two_product(d, jnp.float32(part)))
    ints = [jnp.floor(t) for t in terms]
    total = sum(i.astype(jnp.int32) for i in ints)
    frac = sum(t - i for t, i in zip(terms, ints))
    return _exact_round(total, frac)


def _order_keys(flat: jax.Array) -> jax.Array:
    """uint32 keys with the order of ``flat`` (floats up to 32 bits, with ``-0.0 == 0.0``; ints up to 32
    bits); wider dtypes are ranked through float32."""
    if jnp.issubdtype(flat.dtype, jnp.unsignedinteger) and flat.dtype.itemsize <= 4:
        return flat.astype(jnp.uint32)
    if jnp.issubdtype(flat.dtype, jnp.integer) and flat.dtype.itemsize <= 4:
        return jax.lax.bitcast_convert_type(flat.astype(jnp.int32), jnp.uint32) ^ jnp.uint32(0x80000000)
    bits = jax.lax.bitcast_convert_type(flat.astype(jnp.float32), jnp.uint32)
    bits = jnp.where(bits == jnp.uint32(0x80000000), jnp.uint32(0), bits)  # -0.0 ranks as 0.0 (bitwise: no FTZ)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def _kth_largest_key(keys: jax.Array, k: jax.Array) -> jax.Array:
    """The ``k``-th largest of ``keys`` (``1 <= k <= keys.size``), fixed bit by bit from the top.

    The 32 counting passes are unrolled (not a ``fori_loop``): on CPU the loop's per-iteration
    overhead cost more than the passes themselves."""
    prefix = jnp.uint32(0)
    for i in range(32):
        candidate = prefix | jnp.uint32(1 << (31 - i))
        prefix = jnp.where(jnp.sum(keys >= candidate, dtype=jnp.int32) >= k, candidate, prefix)
    return prefix


def _first_true(flags: jax.Array, count: jax.Array) -> jax.Array:
    """The first ``count`` ``True`` entries of the 1-D ``flags`` (``1 <= count <= sum(flags)``), in
    index order: the same mask as ``flags & (cumsum(flags) <= count)``, found by a bitwise search for
    the index of the ``count``-th ``True`` entry (``ceil(log2(size))`` counting passes; XLA's CPU
    cumsum costs more than all of them)."""
    n = flags.size
    idx = jnp.arange(n, dtype=jnp.int32)
    last = jnp.int32(0)  # the largest index with fewer than ``count`` True entries before it
    for b in reversed(range(max(int(n - 1).bit_length(), 1))):
        candidate = last | jnp.int32(1 << b)
        before = jnp.sum(flags & (idx < candidate), dtype=jnp.int32)
        last = jnp.where((candidate < n) & (before < count), candidate, last)
    return flags & (idx <= last)


def top_k_mask(scores: jax.Array, k) -> jax.Array:
    """Boolean mask of the ``k`` largest ``scores`` (exactly ``k``; ties broken by position).

    ``k`` is an int in ``[0, scores.size]`` or a 0-d integer array (traced: the caller keeps it in
    range; outside it the mask keeps ``clip(k, 0, size)``). Concrete ``scores`` must not hold NaN;
    ``-inf`` is allowed (it marks entries to rank last).
    """
    check_array("scores", scores)
    if is_traced(k) or isinstance(k, jax.Array):
        check_array("k", k, ndim=0, dtype_kind="iu")
        if not is_traced(k):
            check_int("k", int(k), minimum=0, maximum=int(np.size(scores)))
    else:
        check_int("k", k, minimum=0, maximum=int(np.size(scores)))
    if not is_traced(scores) and bool(jnp.isnan(scores).any()):
        raise ValueError(f"scores must not hold NaN, got {int(jnp.isnan(scores).sum())} NaN entries")
    flat = scores.reshape(-1)
    n = flat.size
    if n == 0:
        return jnp.zeros(scores.shape, bool)
    # the k-th largest score by a bitwise (radix) select on order-preserving integer keys: 32 counting
    # passes instead of a sort (XLA's CPU sort is slow); ties then kept in index order, the same mask
    # as a stable argsort ranking
    kk = jnp.clip(jnp.asarray(k, jnp.int32), 0, n)
    keys = _order_keys(flat)
    threshold = _kth_largest_key(keys, jnp.maximum(kk, 1))
    above = keys > threshold
    ties = keys == threshold
    room = kk - jnp.sum(above, dtype=jnp.int32)
    n_ties = jnp.sum(ties, dtype=jnp.int32)
    # every tie is kept unless more tie than there is room for (then the first ``room`` by index)
    tied = jax.lax.cond(n_ties <= room, lambda t, r: t, lambda t, r: _first_true(t, jnp.maximum(r, 1)), ties, room)
    keep = (above | tied) & (kk > 0)
    return keep.reshape(scores.shape)


def _check_densities(params, densities):
    check_like(params, densities, what="densities")
    for path, d in leaves_with_paths(densities):
        if d is None or isinstance(d, jax.core.Tracer):
            continue
        if not 0.0 <= float(d) <= 1.0:
            raise ValueError(f"density of leaf {path!r} must be in [0, 1], got {float(d)}")


def _leaf_masks(params, densities, score_fn, stype):
    """``stype.mask(score_fn(i, path, leaf), density)`` at every leaf with a density."""
    out = []
    pairs = zip(leaves_with_paths(params), jax.tree_util.tree_leaves(densities, is_leaf=is_none))
    for i, ((path, w), d) in enumerate(pairs):
        if d is None:
            out.append(None)
            continue
        stype.check(np.shape(w), where=f"params leaf {path!r}")
        out.append(stype.mask(score_fn(i, path, w), d))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), out)


def random_mask(key: jax.Array, params, densities, *, sparsity_type=None, predicate: Predicate | None = None):
    """Random mask keeping exactly ``round(density * size)`` entries of each leaf (not Bernoulli).

    ``densities`` is a tree from :func:`uniform_densities` / :func:`erk_densities` (``None`` leaves
    stay dense) or a float sparsity applied uniformly. ``sparsity_type``
    (:mod:`sparsejax.core.sparsity_types`, or a string such as ``"nm_2,4"``) draws whole random units
    instead of entries (exact unit counts).
    """
    check_key("key", key)
    stype = parse_sparsity_type(sparsity_type)
    if is_scalar(densities):
        densities = uniform_densities(params, densities, predicate=predicate)
    _check_densities(params, densities)
    keys = jax.random.split(key, max(len(jax.tree_util.tree_leaves(params)), 1))
    return _leaf_masks(params, densities, lambda i, path, w: jax.random.uniform(keys[i], np.shape(w)), stype)


def check_scores(params, selected, what: str = "params") -> None:
    """Raise ``ValueError`` naming the first selected leaf holding NaN or inf (magnitude scores
    must be finite: an inf weight would always be kept, a NaN one ranks arbitrarily)."""
    for (path, leaf), (_, sel) in zip(leaves_with_paths(params), leaves_with_paths(selected)):
        if sel is None or is_traced(leaf):
            continue
        bad = ~jnp.isfinite(leaf)
        if bool(bad.any()):
            kind = "NaN" if bool(jnp.isnan(leaf).any()) else "inf"
            raise ValueError(f"{what} leaf {path!r} contains {kind}; magnitude pruning needs finite weights")


def magnitude_mask(params, densities_or_sparsity, scope: str = "layer", *, predicate: Predicate | None = None,
                   sparsity_type=None, scores=None):
    """Keep the largest-magnitude weights (or the largest ``scores``, a tree like ``params``, e.g.
    from :mod:`sparsejax.pruning.scores`).

    ``scope="layer"``: each leaf keeps ``round(density * size)`` entries, densities given as a tree
    or as one float sparsity (uniform). ``scope="global"``: one magnitude threshold over all
    sparsifiable leaves, keeping ``round((1 - sparsity) * total)`` entries; needs a float sparsity
    and unstructured sparsity. ``sparsity_type`` keeps whole units (N:M groups, blocks, channels,
    groups) ranked by their L2 norm of ``|w|``.
    """
    check_choice("scope", scope, ("layer", "global"))
    stype = parse_sparsity_type(sparsity_type)
    score_tree = jax.tree_util.tree_map(jnp.abs, params) if scores is None else scores
    if scores is not None:
        check_like(params, scores, what="scores", allow_none=True)
    scalar = is_scalar(densities_or_sparsity)
    if scope == "global":
        if not scalar:
            raise TypeError("scope='global' takes one float sparsity, not a densities tree")
        if not isinstance(stype, Unstructured):
            raise ValueError(f"scope='global' ranks single weights; got sparsity_type {stype!r}")
        return _global_mask(params, score_tree, densities_or_sparsity, predicate,
                            "scores" if scores is not None else "params")
    densities = uniform_densities(params, densities_or_sparsity, predicate=predicate) if scalar \
        else densities_or_sparsity
    _check_densities(params, densities)
    check_scores(score_tree, densities, "scores" if scores is not None else "params")
    s_leaves = jax.tree_util.tree_leaves(score_tree)
    return _leaf_masks(params, densities, lambda i, path, w: s_leaves[i], stype)


def _global_mask(params, score_tree, sparsity, predicate, what="params"):
    check_sparsity(sparsity)
    selected = select(params, predicate)
    check_scores(score_tree, selected, what)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    scores = jax.tree_util.tree_leaves(score_tree)
    sel = jax.tree_util.tree_leaves(selected, is_leaf=is_none)
    chosen = [s for s, c in zip(scores, sel) if c is not None]
    if not chosen:
        raise ValueError("params have no sparsifiable leaves (check the predicate)")
    flat = jnp.concatenate([jnp.asarray(s, jnp.float32).reshape(-1) for s in chosen])
    dens = 1.0 - sparsity if is_traced(sparsity) else 1.0 - float(np.asarray(sparsity))
    keep = top_k_mask(flat, keep_count(dens, flat.size))
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
    for leaf in jax.tree_util.tree_leaves(mask_or_params):
        if not hasattr(leaf, "shape"):
            raise TypeError(f"mask_or_params must be a pytree of arrays, got a {type(leaf).__name__} leaf {leaf!r}")
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
