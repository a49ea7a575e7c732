"""Stateless minibatching: batch ``step`` is a pure function of (key, step), so resumed runs
see exactly the batches an uninterrupted run would."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_array, check_int, is_traced


def num_batches(n: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped)."""
    n = check_int("n", n, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n)
    return n // batch_size


def batch_indices(key: jax.Array, step: int | jax.Array, n: int, batch_size: int) -> jax.Array:
    """Indices of minibatch ``step``: epoch ``step // nb`` is a fresh permutation of ``range(n)``.
    ``step`` may be traced (an integer array); a concrete one must be a non-negative int."""
    if not is_traced(step):
        if isinstance(step, jax.Array):
            check_array("step", step, ndim=0, dtype_kind="iu")
            step = int(step)
        check_int("step", step, minimum=0)
    nb = num_batches(n, batch_size)
    epoch, within = jnp.divmod(step, nb)
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    return jax.lax.dynamic_slice_in_dim(perm, within * batch_size, batch_size)
