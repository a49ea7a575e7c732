"""Token-feature allocation rules for sparse autoencoders (P37, Ayonrinde 2024, arXiv 2411.02124).

All three rules take the batch pre-activation matrix ``pre`` of shape ``(N, F)`` (N tokens, F
features) and return a boolean mask of the selected token-feature matches; ties are broken by
position. Selections use ``jax.lax.top_k`` (a partial sort) rather than the full argsort of
:func:`sparsejax.core.masks.top_k_mask`: every SAE step calls them on an (N, F) matrix.

* :func:`topk_mask` - TopK: each token (row) takes its ``k`` largest pre-activations.
* :func:`feature_choice_mask` - Feature Choice: each feature (column) takes its top ``m_i`` tokens,
  uniform ``m_i = kN/F`` or the Zipf-shaped capacities of :func:`zipf_capacities`.
* :func:`mutual_choice_mask` - Mutual Choice: the global top ``kN`` entries of the matrix (the same
  selection as BatchTopK).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_choice, check_int, check_number

METHODS = ("topk", "feature_choice", "mutual_choice")


def _check_pre(pre):
    check_array("pre", pre, ndim=2)


def row_top_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """Boolean mask of the ``k`` largest entries of every row of ``scores`` (exactly ``k`` per row)."""
    idx = jax.lax.top_k(scores, k)[1]
    rows = jnp.arange(scores.shape[0])[:, None]
    return jnp.zeros(scores.shape, bool).at[rows, idx].set(True)


def topk_mask(pre: jax.Array, k: int) -> jax.Array:
    """TopK allocation: exactly ``k`` selected features in every row of ``pre`` (N, F)."""
    _check_pre(pre)
    check_int("k", k, minimum=1, maximum=pre.shape[1])
    return row_top_k_mask(pre, k)


def mutual_choice_mask(pre: jax.Array, k: int) -> jax.Array:
    """Mutual Choice allocation: the ``k * N`` largest entries of ``pre`` (N, F) over the whole batch."""
    _check_pre(pre)
    check_int("k", k, minimum=1, maximum=pre.shape[1])
    return row_top_k_mask(pre.reshape(1, -1), k * pre.shape[0]).reshape(pre.shape)


def uniform_capacities(n_tokens: int, n_features: int, k: int) -> np.ndarray:
    """Per-feature capacities summing to ``k * n_tokens``, as equal as integers allow (m = kN/F)."""
    return zipf_capacities(n_tokens, n_features, k, exponent=0.0)


def zipf_capacities(n_tokens: int, n_features: int, k: int, exponent: float = 1.0) -> np.ndarray:
    """Integer capacities ``m_i`` proportional to ``(i + 1) ** -exponent``, summing to ``k * n_tokens``.

    Largest-remainder rounding; each capacity is capped at ``n_tokens`` (a feature cannot take a
    token twice) and the excess is handed to the next features in order. ``exponent = 0`` gives the
    uniform ``m = kN/F``. Raises when ``k * n_tokens`` exceeds ``n_features * n_tokens``.
    """
    check_int("n_tokens", n_tokens, minimum=1)
    check_int("n_features", n_features, minimum=1)
    check_int("k", k, minimum=1, maximum=n_features)
    check_number("exponent", exponent, minimum=0.0)
    total = k * n_tokens
    weights = (np.arange(1, n_features + 1, dtype=np.float64)) ** (-float(exponent))
    caps = np.zeros(n_features, np.int64)
    remaining, free = total, np.ones(n_features, bool)
    while remaining > 0:
        share = remaining * weights * free / (weights * free).sum()
        add = np.floor(share).astype(np.int64)
        order = np.argsort(-(share - add), kind="stable")
        add[order[: remaining - add.sum()]] += 1
        caps += add
        over = np.maximum(caps - n_tokens, 0)
        caps -= over
        free &= caps < n_tokens
        remaining = int(over.sum())
    return caps


def feature_choice_mask(pre: jax.Array, capacities) -> jax.Array:
    """Feature Choice allocation: column ``i`` of ``pre`` (N, F) selects its top ``capacities[i]`` tokens."""
    _check_pre(pre)
    caps = np.asarray(capacities)
    check_array("capacities", caps, shape=(pre.shape[1],), dtype_kind="iu")
    if caps.min() < 0 or caps.max() > pre.shape[0]:
        raise ValueError(f"capacities must lie in [0, N={pre.shape[0]}], got range [{caps.min()}, {caps.max()}]")
    m_max = int(caps.max())
    if m_max == 0:
        return jnp.zeros(pre.shape, bool)
    idx = jax.lax.top_k(pre.T, m_max)[1]  # (F, m_max) token indices, best first
    keep = jnp.arange(m_max)[None, :] < jnp.asarray(caps)[:, None]
    cols = jnp.broadcast_to(jnp.arange(pre.shape[1])[:, None], idx.shape)
    return jnp.zeros(pre.shape, bool).at[idx, cols].max(keep)


def allocate(pre: jax.Array, method: str, k: int, zipf_exponent: float = 0.0) -> jax.Array:
    """The training-time mask of ``method`` (one of ``METHODS``) at average sparsity ``k`` per token."""
    check_choice("method", method, METHODS)
    if method == "topk":
        return topk_mask(pre, k)
    if method == "mutual_choice":
        return mutual_choice_mask(pre, k)
    return feature_choice_mask(pre, zipf_capacities(pre.shape[0], pre.shape[1], k, zipf_exponent))
