"""Stateless minibatching: batch ``step`` is a pure function of (key, step), so resumed runs
see exactly the batches an uninterrupted run would."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def num_batches(n: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped)."""
    if batch_size < 1 or batch_size > n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    return n // batch_size


def batch_indices(key: jax.Array, step: int | jax.Array, n: int, batch_size: int) -> jax.Array:
    """Indices of minibatch ``step``: epoch ``step // nb`` is a fresh permutation of ``range(n)``."""
    nb = num_batches(n, batch_size)
    epoch, within = jnp.divmod(step, nb)
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    return jax.lax.dynamic_slice_in_dim(perm, within * batch_size, batch_size)
