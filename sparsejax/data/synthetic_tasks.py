"""Synthetic long-range tasks for attention: multi-query associative recall (needles at every depth)
and Match3 (triple-wise correlations).

* `associative_recall` (MQAR, as in Zoology, Arora et al. 2023): ``n_pairs`` key-value pairs (distinct
  keys) fill the context, then ``n_queries`` of those keys come back each followed by its value. The
  model must predict the value at every query-key position; the *needle depth* of a query is the
  position of its pair's key divided by the sequence length.
* `needle_retrieval`: filler tokens ``[0, n_filler)`` with one needle, a marker token followed by a
  value token from ``[n_filler + 1, n_filler + 1 + n_values)``, at a uniformly drawn depth; the last
  token is the marker again and the target there is the needle's value (loss only at that position).
  A single attention layer solves it if (and only if) the last query can attend the needle's block,
  which is what a sparse pattern decides.
* `match3` (Sanford, Hsu and Telgarsky 2023): tokens ``x_i`` in ``[0, M)``; label ``y_i = 1`` iff there
  are ``j, k`` (any positions, repeats allowed) with ``x_i + x_j + x_k = 0 (mod M)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparsejax.core.validation import check_int

__all__ = ["RecallData", "associative_recall", "needle_retrieval", "match3"]


class RecallData(NamedTuple):
    """``tokens (N, T)`` int32 inputs; ``targets (N, T)`` int32, the value at query-key positions and
    ``-1`` elsewhere; ``depth (N, T)`` float32, the needle depth of each query (``-1`` elsewhere);
    ``vocab_size`` = keys + values (keys ``[0, n_keys)``, values ``[n_keys, n_keys + n_values)``)."""

    tokens: np.ndarray
    targets: np.ndarray
    depth: np.ndarray
    vocab_size: int


def associative_recall(n: int, n_pairs: int, n_queries: int, *, n_keys: int, n_values: int,
                       seed: int = 0) -> RecallData:
    """``n`` MQAR sequences of length ``2 * (n_pairs + n_queries)`` (module doc); the queried keys are
    distinct pairs drawn uniformly, so depths are uniform over the context."""
    n = check_int("n", n, minimum=1)
    n_pairs = check_int("n_pairs", n_pairs, minimum=1)
    n_queries = check_int("n_queries", n_queries, minimum=1, maximum=n_pairs)
    n_keys = check_int("n_keys", n_keys, minimum=n_pairs)
    n_values = check_int("n_values", n_values, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    t = 2 * (n_pairs + n_queries)
    tokens = np.zeros((n, t), np.int32)
    targets = np.full((n, t), -1, np.int32)
    depth = np.full((n, t), -1.0, np.float32)
    q_pos = 2 * n_pairs + 2 * np.arange(n_queries)
    for s in range(n):
        keys = rng.choice(n_keys, n_pairs, replace=False)
        values = n_keys + rng.integers(0, n_values, n_pairs)
        tokens[s, 0: 2 * n_pairs: 2], tokens[s, 1: 2 * n_pairs: 2] = keys, values
        which = rng.choice(n_pairs, n_queries, replace=False)
        tokens[s, q_pos], tokens[s, q_pos + 1] = keys[which], values[which]
        targets[s, q_pos] = values[which]
        depth[s, q_pos] = 2 * which / t
    return RecallData(tokens, targets, depth, n_keys + n_values)


def needle_retrieval(n: int, seq_len: int, *, n_filler: int, n_values: int, seed: int = 0) -> RecallData:
    """``n`` needle sequences of length ``seq_len`` (module doc); the marker is token ``n_filler``; the
    needle (marker at position ``p``, value at ``p + 1``) has depth ``p / seq_len``, ``p`` uniform in
    ``[0, seq_len - 3]``. ``RecallData.targets`` is ``-1`` except at the last position."""
    n = check_int("n", n, minimum=1)
    seq_len = check_int("seq_len", seq_len, minimum=4)
    n_filler = check_int("n_filler", n_filler, minimum=1)
    n_values = check_int("n_values", n_values, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    marker = n_filler
    tokens = rng.integers(0, n_filler, (n, seq_len)).astype(np.int32)
    pos = rng.integers(0, seq_len - 2, n)
    values = (n_filler + 1 + rng.integers(0, n_values, n)).astype(np.int32)
    rows = np.arange(n)
    tokens[rows, pos], tokens[rows, pos + 1], tokens[:, -1] = marker, values, marker
    targets = np.full((n, seq_len), -1, np.int32)
    targets[:, -1] = values
    depth = np.full((n, seq_len), -1.0, np.float32)
    depth[:, -1] = pos / seq_len
    return RecallData(tokens, targets, depth, n_filler + 1 + n_values)


def match3(n: int, seq_len: int, modulus: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Match3 sequences: tokens ``(n, seq_len)`` uniform in ``[0, modulus)`` and labels
    ``(n, seq_len)`` in {0, 1} (module doc; brute force over all pairs, O(n T^2))."""
    n = check_int("n", n, minimum=1)
    seq_len = check_int("seq_len", seq_len, minimum=1)
    modulus = check_int("modulus", modulus, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    x = rng.integers(0, modulus, (n, seq_len)).astype(np.int32)
    present = np.zeros((n, modulus), bool)  # residues r = x_j + x_k (mod M) that some pair reaches
    pair_sums = (x[:, :, None] + x[:, None, :]) % modulus
    np.put_along_axis(present, pair_sums.reshape(n, -1), True, axis=1)
    need = (-x) % modulus
    y = np.take_along_axis(present, need, axis=1).astype(np.int32)
    return x, y
