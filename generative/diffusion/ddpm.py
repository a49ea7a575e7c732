"""DDPM forward process and the epsilon-prediction training loss (Ho et al. 2020).

The denoiser is any function ``eps_fn(x_t, t, delta_h) -> (eps, h)`` (see
:mod:`generative.diffusion.unet`); training uses ``delta_h=None``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from generative.diffusion.schedules import NoiseSchedule
from sparsejax.core.validation import check_finite_array, check_index_range, check_callable, check_array, check_type
from sparsejax.train import TrainState


def q_sample(schedule: NoiseSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """Sample ``x_t ~ q(x_t | x_0) = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise`` (Ho et al. eq. 4).

    ``t`` holds one 0-based timestep per batch element (shape ``(B,)``).
    """
    if x0.shape != noise.shape:
        raise ValueError(f"x0 and noise shapes differ: {x0.shape} vs {noise.shape}")
    if t.shape != x0.shape[:1]:
        raise ValueError(f"t must have shape ({x0.shape[0]},), got {t.shape}")
    check_index_range("t", t, schedule.num_timesteps)  # JAX would clamp t >= T and wrap t < 0 silently
    check_finite_array("x0", x0)
    ab = schedule.alpha_bars[t].reshape((-1,) + (1,) * (x0.ndim - 1))
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise


def ddpm_loss(eps_fn: Callable, schedule: NoiseSchedule, x0: jax.Array, key: jax.Array) -> jax.Array:
    """Simplified DDPM objective ``E_{t, eps} ||eps - eps_theta(x_t, t)||^2`` (Ho et al. eq. 14),
    with ``t`` uniform over the ``T`` steps and the squared error averaged over pixels and batch."""
    check_callable("eps_fn", eps_fn)
    check_array("x0", x0, ndim=tuple(range(1, 8)), dtype_kind="f")
    check_finite_array("x0", x0)
    t_key, n_key = jax.random.split(key)
    t = jax.random.randint(t_key, (x0.shape[0],), 0, schedule.num_timesteps)
    noise = jax.random.normal(n_key, x0.shape, x0.dtype)
    eps, _ = eps_fn(q_sample(schedule, x0, t, noise), t, None)
    return jnp.mean((eps - noise) ** 2)


def make_ddpm_train_step(apply_fn: Callable, tx: optax.GradientTransformation, schedule: NoiseSchedule) -> Callable:
    """Jitted ``step(state, x0, key) -> (state, loss)`` minimising :func:`ddpm_loss`.

    ``apply_fn(params, x_t, t, delta_h) -> (eps, h)`` is e.g. ``UNet(...).apply``.
    """
    check_callable("apply_fn", apply_fn)
    check_type("schedule", schedule, NoiseSchedule)

    def step(state: TrainState, x0: jax.Array, key: jax.Array) -> tuple[TrainState, jax.Array]:
        def loss_fn(params: Any) -> jax.Array:
            return ddpm_loss(lambda x, t, dh: apply_fn(params, x, t, dh), schedule, x0, key)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss

    return jax.jit(step)
