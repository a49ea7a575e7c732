"""Synthetic tasks for attention: needle retrieval at every depth (long range) and Match3 (triple-wise
correlations).

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

__all__ = ["RecallData", "needle_retrieval", "match3"]


class RecallData(NamedTuple):
    """``tokens (N, T)`` int32 inputs; ``targets (N, T)`` int32, the value at query positions and ``-1``
    elsewhere; ``depth (N, T)`` float32, the needle depth of each query (``-1`` elsewhere); ``vocab_size``."""

    tokens: np.ndarray
    targets: np.ndarray
    depth: np.ndarray
    vocab_size: int


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
