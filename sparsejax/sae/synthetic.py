"""Synthetic superposition data with ground-truth features for SAE experiments (P37).

``n_true`` random unit directions in ``R^d``; feature ``i`` has Zipf weight ``(i + 1) ** -alpha``.
Each token draws its number of active features from a Poisson with mean ``mean_active`` (clipped to
``[1, n_true]``: the token-dependent sparsity that adaptive allocation should exploit), picks that
many distinct features with probability proportional to the Zipf weights (Gumbel top-k), and gives
them Exponential(1) magnitudes; ``x = codes @ directions``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int, check_number


def random_directions(key: jax.Array, n_true: int, d: int) -> jax.Array:
    """``n_true`` random unit vectors in ``R^d`` (rows)."""
    check_int("n_true", n_true, minimum=1)
    check_int("d", d, minimum=1)
    v = jax.random.normal(key, (n_true, d))
    return v / jnp.linalg.norm(v, axis=1, keepdims=True)


def sample_superposition(key: jax.Array, directions: jax.Array, n_tokens: int, mean_active: float,
                         alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """``(x, codes)``: ``n_tokens`` activations (n_tokens, d) and their sparse ground-truth codes."""
    check_int("n_tokens", n_tokens, minimum=1)
    check_number("mean_active", mean_active, minimum=0.0, min_inclusive=False)
    check_number("alpha", alpha, minimum=0.0)
    n_true = directions.shape[0]
    k_count, k_pick, k_mag = jax.random.split(key, 3)
    counts = jnp.clip(jax.random.poisson(k_count, mean_active, (n_tokens,)), 1, n_true)
    logits = -alpha * jnp.log(jnp.arange(1, n_true + 1, dtype=jnp.float32))
    scores = logits + jax.random.gumbel(k_pick, (n_tokens, n_true))
    level = jnp.take_along_axis(-jnp.sort(-scores, axis=1), (counts - 1)[:, None], axis=1)
    codes = jnp.where(scores >= level, jax.random.exponential(k_mag, (n_tokens, n_true)), 0.0)
    return codes @ directions, codes


def mean_max_cosine(true_directions: jax.Array, decoder: jax.Array) -> jax.Array:
    """Ground-truth recovery: mean over true directions (rows) of the max cosine with a decoder column."""
    t = true_directions / jnp.linalg.norm(true_directions, axis=1, keepdims=True)
    w = decoder / jnp.maximum(jnp.linalg.norm(decoder, axis=0, keepdims=True), 1e-12)
    return jnp.max(t @ w, axis=1).mean()
