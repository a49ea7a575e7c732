"""Whole-network channel rearrangement for group sparsity (SparseByteNN, P28).

Permuting the hidden channels of a network -- the output channels of one layer (its kernel's last
axis and its bias) together with the input channels of the next layer (its kernel's axis ``-2``)
-- leaves the function unchanged, because the activations in between act channel by channel. It
does change which weights fall into the same group of ``g`` consecutive weights, so a permutation
can cluster the important weights into whole groups and raise the weight energy that group pruning
keeps at a given sparsity. P28 names this "whole network rearrangement"; its method text is not
available here, so the search below is a reconstruction (in the spirit of channel permutations for
N:M sparsity, Pool & Yu 2021):

* the objective of a hidden boundary is the kept energy ``sum of ||group||^2 over kept groups``
  of the kernel whose grouping the permutation changes: the *next* kernel for groups along the
  input axis (``axis=-2``), the *current* kernel for groups along the output axis (``axis=-1``);
  each boundary has its own permutation, so the network's boundaries are searched one by one;
* start: the better of the identity and a greedy clustering (highest-energy unassigned channel as
  seed, joined by the ``g - 1`` unassigned channels whose squared-magnitude patterns have the
  largest cosine similarity with it);
* refine: random swaps of two channels in different groups, kept when the objective grows.

The result never keeps less energy than the identity. Network inputs and outputs are not permuted.
A kernel whose input is a flatten of ``P`` positions times ``C`` channels (NHWC, channel fastest,
as a conv feeding a dense layer) gets the same channel permutation at every position. All of this
is host-side NumPy (a one-time step before pruning).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from sparsejax.core.masks import keep_count
from sparsejax.core.validation import check_choice, check_int, check_number


class Rearrangement(NamedTuple):
    """Per hidden boundary ``chain[i] -> chain[i+1]``: the permutation and the kept-energy fraction
    before and after it."""

    perms: list
    kept_before: list
    kept_after: list


def _module(params, path: str) -> dict:
    node = params
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"chain entry {path!r}: no module {part!r} in params")
        node = node[part]
    if "kernel" not in node:
        raise ValueError(f"chain entry {path!r} has no 'kernel' leaf")
    return node


def _replace(params, path: str, module: dict) -> dict:
    parts = path.split("/")
    if len(parts) == 1:
        return {**params, parts[0]: module}
    return {**params, parts[0]: _replace(params[parts[0]], "/".join(parts[1:]), module)}


def _row_perm(perm: np.ndarray, rows: int) -> np.ndarray:
    """Permutation of a kernel's input rows for a channel permutation (repeated per position)."""
    c = perm.size
    if rows % c:
        raise ValueError(f"next kernel has {rows} input rows, not a multiple of the {c} channels")
    return (np.arange(rows // c)[:, None] * c + perm[None, :]).reshape(-1)


def permute_channels(params, chain: Sequence[str], perms: Sequence) -> dict:
    """``params`` with the hidden channels between ``chain[i]`` and ``chain[i + 1]`` permuted by
    ``perms[i]``: kernel ``chain[i]``'s output axis (and its ``bias``), kernel ``chain[i + 1]``'s
    input axis ``-2``. ``chain`` lists module paths (``"dense_0"``, ``"block/conv"``) in network
    order; the permuted network computes the same function."""
    if len(perms) != len(chain) - 1:
        raise ValueError(f"need len(chain) - 1 = {len(chain) - 1} permutations, got {len(perms)}")
    out = params
    for i, perm in enumerate(perms):
        perm = np.asarray(perm)
        cur, nxt = _module(out, chain[i]), _module(out, chain[i + 1])
        c = cur["kernel"].shape[-1]
        if sorted(perm.tolist()) != list(range(c)):
            raise ValueError(f"perms[{i}] is not a permutation of the {c} output channels of {chain[i]!r}")
        cur = {k: (v[..., perm] if k == "kernel" or np.shape(v) == (c,) else v) for k, v in cur.items()}
        k_next = nxt["kernel"]
        rows = _row_perm(perm, k_next.shape[-2])
        nxt = {**nxt, "kernel": k_next[..., rows, :]}
        out = _replace(_replace(out, chain[i], cur), chain[i + 1], nxt)
    return out


def _group_energy(w: np.ndarray, g: int, axis: int) -> np.ndarray:
    """Squared L2 norm of every group of ``g`` consecutive entries along ``axis``: ``(..., G)``."""
    moved = np.moveaxis(np.asarray(w, np.float64), axis, -1)
    return np.square(moved.reshape(*moved.shape[:-1], moved.shape[-1] // g, g)).sum(-1)


def kept_energy(w, g: int, sparsity: float, axis: int = -2, balanced: bool = False) -> float:
    """Fraction of ``||w||^2`` that group pruning keeps (the top groups by L2 norm, layer-wise or,
    with ``balanced``, per output column as :func:`sparsejax.structured.group_mask`)."""
    e = _group_energy(w, g, axis)
    total = e.sum()
    if total == 0:
        return 1.0
    if balanced:
        k = int(keep_count(1.0 - sparsity, e.shape[-1]))
        kept = np.sort(e, axis=-1)[..., ::-1][..., :k].sum()
    else:
        k = int(keep_count(1.0 - sparsity, e.size))
        kept = np.sort(e.reshape(-1))[::-1][:k].sum()
    return float(kept / total)


def _objective(kernel, perm, g, sparsity, axis, balanced, next_rows: bool) -> float:
    w = kernel[..., _row_perm(perm, kernel.shape[-2]), :] if next_rows else kernel[..., perm]
    return kept_energy(w, g, sparsity, axis, balanced)


def _greedy(features: np.ndarray, g: int) -> np.ndarray:
    """Channels grouped by similarity of their squared-magnitude patterns (rows of ``features``)."""
    energy = features.sum(1)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-30)
    free = list(np.argsort(-energy, kind="stable"))
    order = []
    while free:
        seed = free.pop(0)
        sims = unit[free] @ unit[seed] if free else np.zeros(0)
        take = [free[j] for j in np.argsort(-sims, kind="stable")[: g - 1]]
        order += [seed] + take
        free = [f for f in free if f not in take]
    return np.asarray(order)


def rearrange_channels(params, chain: Sequence[str], g: int, sparsity: float, *, axis: int = -2,
                       balanced: bool = False, swaps: int = 2000, seed: int = 0):
    """Search one channel permutation per hidden boundary of ``chain`` (module paths in network
    order) that raises the energy kept by group pruning (``g``, ``sparsity``, groups along the
    input axis ``-2`` or the output axis ``-1``); see the module docstring. Returns
    ``(permuted params, Rearrangement)``; the permuted network computes the same function."""
    g = check_int("g", g, minimum=1)
    sparsity = check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    check_choice("axis", axis, (-2, -1))
    swaps = check_int("swaps", swaps, minimum=0)
    if len(chain) < 2:
        raise ValueError(f"chain needs >= 2 modules (one hidden boundary), got {list(chain)}")
    rng = np.random.default_rng(seed)
    perms, before, after = [], [], []
    for i in range(len(chain) - 1):
        cur = np.asarray(_module(params, chain[i])["kernel"])
        nxt = np.asarray(_module(params, chain[i + 1])["kernel"])
        c = cur.shape[-1]
        next_rows = axis == -2
        kernel = nxt if next_rows else cur
        if c % g:
            raise ValueError(f"{chain[i]!r} has {c} output channels, not divisible by g={g}")
        if next_rows:  # channel c's weights in the next kernel: rows c, c + C, c + 2C, ...
            moved = np.moveaxis(nxt, -2, 0)
            feats = np.square(moved.reshape(moved.shape[0] // c, c, -1).transpose(1, 0, 2).reshape(c, -1))
        else:
            feats = np.square(np.moveaxis(cur, -1, 0).reshape(c, -1))
        ident = np.arange(c)
        f = lambda p: _objective(kernel, p, g, sparsity, axis, balanced, next_rows)  # noqa: E731
        base = f(ident)
        greedy = _greedy(feats, g)
        best, score = (greedy, f(greedy)) if f(greedy) > base else (ident, base)
        for _ in range(swaps if c > g else 0):
            a, b = rng.choice(c, 2, replace=False)
            if a // g == b // g:
                continue
            trial = best.copy()
            trial[[a, b]] = trial[[b, a]]
            s = f(trial)
            if s > score:
                best, score = trial, s
        perms.append(best)
        before.append(base)
        after.append(score)
    return permute_channels(params, chain, perms), Rearrangement(perms, before, after)
