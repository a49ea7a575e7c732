"""The relative L2 error, the loss and metric of the FNO/LSM benchmarks (LSM Sec. 4, "Metric")."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_number


def relative_l2(pred: jax.Array, target: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Mean over the batch (axis 0) of ``||pred_i - target_i||_2 / ||target_i||_2``."""
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(f"pred and target must have one equal shape (batch, ...), got {pred.shape}, "
                         f"{target.shape}")
    check_number("eps", eps, minimum=0.0, allow_traced=True)
    diff = jnp.sqrt(jnp.sum((pred - target).reshape(pred.shape[0], -1) ** 2, axis=1))
    norm = jnp.sqrt(jnp.sum(target.reshape(target.shape[0], -1) ** 2, axis=1))
    return jnp.mean(diff / (norm + eps))
