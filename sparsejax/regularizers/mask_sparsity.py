"""MaskSparsity (P33: Jiang et al., "Pruning-aware Sparse Regularization for Network Pruning"), with
network slimming (Liu et al. 2017) and L1-norm filter pruning (Li et al. 2017) as its baselines.

Checked against the official code (``CASIA-IVA-Lab/MaskSparsity``, ``netslim/sparse.py``
``update_bn_by_names_dict``): after backprop, the gradient of each BatchNorm scale gets
``s * sign(gamma) * mask`` (``regular_method='L1'``), with ``mask`` 1 on the channels meant to be
pruned and 0 on the others; network slimming is the same with the mask all ones
(``update_bn``). The recipe (``mask_sparsity.sh``): train a baseline, get the mask (global slimming
threshold, or a uniform per-layer rule), restart from the **baseline** weights, train with the masked
L1 subgradient, prune channels with ``|gamma| < 0.01`` (``css_thresholding`` ``'th'``), fine-tune.

:func:`masked_l1` is the gradient transform (chain it *before* the base optimizer, as the official
code adds to ``.grad`` before ``optimizer.step()``); the ``*_keep`` functions give the channel keep
vectors in the ``bn_cnn_groups`` naming (``conv_<i>`` groups hold ``bn_<i>/scale``).
Deviation: the slimming mask takes a global *fraction* of channels with the smallest ``|gamma|``
(Liu et al.'s percentile rule) instead of the fixed 0.01 threshold, so the compared methods remove
the same number of channels.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.tree import leaves_with_paths, path_str
from sparsejax.core.validation import check_number
from sparsejax.structured.coupled import GroupSpec


def _bn_of(spec: GroupSpec) -> str:
    """Path of the (first) BatchNorm scale member of a filter group."""
    for m in spec.members:
        if m.path.endswith("/scale"):
            return m.path
    raise ValueError(f"GroupSpec {spec.name!r} has no BatchNorm scale member")


def bn_scale_mask(params, specs: Sequence[GroupSpec], regularize: dict):
    """Float tree like ``params``: ``1`` on the BN scale entries of the channels with
    ``regularize[spec.name][j] == True``, ``0`` everywhere else."""
    paths = {}
    for spec in specs:
        r = np.asarray(regularize[spec.name], bool)
        if r.shape != (spec.size,):
            raise ValueError(f"regularize[{spec.name!r}] must have shape ({spec.size},), got {r.shape}")
        paths[_bn_of(spec)] = r.astype(np.float32)

    def leaf(path, p):
        p_str = path_str(path)
        return jnp.asarray(paths[p_str]) if p_str in paths else jnp.zeros_like(p)

    return jax.tree_util.tree_map_with_path(leaf, params)


def masked_l1(mask, strength: float) -> optax.GradientTransformation:
    """Adds ``strength * sign(params) * mask`` to the gradients (MaskSparsity; an all-ones mask on every
    BN scale is network slimming). Needs ``params`` in ``update``."""
    check_number("strength", strength, minimum=0.0)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("masked_l1 needs params: call tx.update(grads, state, params)")
        out = jax.tree_util.tree_map(lambda g, p, m: g + strength * jnp.sign(p) * m, updates, params, mask)
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _count(total: int, ratio: float) -> int:
    return int(round(check_number("prune_ratio", ratio, minimum=0.0, maximum=1.0, max_inclusive=False) * total))


def bn_gammas(params, specs: Sequence[GroupSpec]) -> dict[str, np.ndarray]:
    """``|gamma|`` of every filter group (``spec.name -> (size,)``)."""
    flat = dict(leaves_with_paths(params))
    return {s.name: np.abs(np.asarray(flat[_bn_of(s)])) for s in specs}


def _keep_lowest(scores: dict[str, np.ndarray], n_prune: dict[str, int]) -> dict[str, np.ndarray]:
    keep = {}
    for name, sc in scores.items():
        order = np.argsort(sc, kind="stable")
        k = np.ones(sc.size, bool)
        k[order[: min(n_prune[name], sc.size - 1)]] = False  # never remove a whole layer
        keep[name] = k
    return keep


def slimming_keep(params, specs: Sequence[GroupSpec], prune_ratio: float) -> dict[str, np.ndarray]:
    """Network-slimming channel selection: the globally smallest ``prune_ratio`` fraction of ``|gamma|``
    is pruned (at least one channel per layer survives)."""
    g = bn_gammas(params, specs)
    allg = np.concatenate(list(g.values()))
    n = _count(allg.size, prune_ratio)
    if n == 0:
        return {k: np.ones(v.size, bool) for k, v in g.items()}
    order = np.argsort(allg, kind="stable")
    pruned = np.zeros(allg.size, bool)
    pruned[order[:n]] = True
    keep, start = {}, 0
    for name, v in g.items():
        k = ~pruned[start : start + v.size]
        if not k.any():
            k[np.argmax(v)] = True
        keep[name] = k
        start += v.size
    return keep


def uniform_keep(params, specs: Sequence[GroupSpec], prune_ratio: float) -> dict[str, np.ndarray]:
    """Uniform rule: every layer prunes ``round(prune_ratio * width)`` channels with the smallest ``|gamma|``."""
    g = bn_gammas(params, specs)
    return _keep_lowest(g, {k: _count(v.size, prune_ratio) for k, v in g.items()})


def l1_filter_keep(params, specs: Sequence[GroupSpec], prune_ratio: float) -> dict[str, np.ndarray]:
    """L1-norm filter pruning (Li et al. 2017): every layer prunes the ``round(prune_ratio * width)``
    filters with the smallest L1 norm of their conv kernel (the first ``out`` member of the group)."""
    flat = dict(leaves_with_paths(params))
    scores = {}
    for s in specs:
        kern = next(m for m in s.members if m.role == "out" and m.path.endswith("kernel"))
        w = np.moveaxis(np.asarray(flat[kern.path]), kern.axis, 0)
        scores[s.name] = np.abs(w).reshape(s.size, -1).sum(axis=1)
    return _keep_lowest(scores, {k: _count(v.size, prune_ratio) for k, v in scores.items()})


def threshold_keep(params, specs: Sequence[GroupSpec], threshold: float = 0.01) -> dict[str, np.ndarray]:
    """MaskSparsity's pruning rule: keep channels with ``|gamma| >= threshold`` (official default 0.01);
    a layer where every channel falls below keeps its largest one."""
    keep = {}
    for k, v in bn_gammas(params, specs).items():
        keep[k] = v >= threshold
        if not keep[k].any():
            keep[k][np.argmax(v)] = True
    return keep
