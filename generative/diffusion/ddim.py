"""DDIM sampling and inversion (Song et al. 2021) with optional h-space shifts.

The denoiser is any ``eps_fn(x_t, t, delta_h) -> (eps, h)`` where ``t`` has shape ``(B,)``;
``h`` may be ``None`` for models without a bottleneck. ``delta_hs[i]`` is added to ``h`` at
sampling step ``i`` (steps run from the noisiest timestep down), which is how h-space edits
(Kwon et al. 2023; Haas et al. 2024, P17) are applied along the trajectory.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from generative.diffusion.schedules import NoiseSchedule
from sparsejax.core.validation import check_finite_array, check_int, check_number, is_traced


class DDIMTrajectory(NamedTuple):
    """Result of :func:`ddim_sample`: the sample ``x0``, the inputs ``xs[i] = x_{t_i}`` of every step
    (shape ``(S, B, ...)``), the bottleneck activations ``hs[i]`` (``(S, B, ...)`` or ``None``) and
    the timesteps ``t_i`` (descending)."""

    x0: jax.Array
    xs: jax.Array
    hs: Any
    timesteps: jax.Array


def ddim_timesteps(num_train_steps: int, num_steps: int) -> jax.Array:
    """``num_steps`` evenly spaced timesteps from ``T - 1`` down to 0 (int32, descending)."""
    num_steps = check_int("num_steps", num_steps)
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"num_steps must be in [1, {num_train_steps}], got {num_steps}")
    return jnp.round(jnp.linspace(num_train_steps - 1, 0, num_steps)).astype(jnp.int32)


def _prev_alpha_bars(schedule: NoiseSchedule, ts: jax.Array) -> jax.Array:
    """alpha_bar of the step after each t_i (1.0 after the last step, i.e. x_0 is noise free)."""
    return jnp.concatenate([schedule.alpha_bars[ts[1:]], jnp.ones((1,), jnp.float32)])


def ddim_sigma(alpha_bar_t: jax.Array, alpha_bar_prev: jax.Array, eta: float) -> jax.Array:
    """``sigma_t(eta) = eta sqrt((1 - a_prev)/(1 - a_t)) sqrt(1 - a_t / a_prev)`` (Song et al. eq. 16).

    Concrete ``alpha_bar`` values must lie in ``(0, 1]`` (a precondition under jit)."""
    check_number("eta", eta, minimum=0.0, allow_traced=True)
    for name, a in (("alpha_bar_t", alpha_bar_t), ("alpha_bar_prev", alpha_bar_prev)):
        if not is_traced(a):
            arr = np.asarray(a)
            if not np.all((arr > 0) & (arr <= 1)):
                raise ValueError(f"{name} must lie in (0, 1], got {arr.min():.3g} .. {arr.max():.3g}")
    return eta * jnp.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)) * jnp.sqrt(1.0 - alpha_bar_t / alpha_bar_prev)


def _check_common(x: jax.Array, schedule: NoiseSchedule, num_steps: int) -> jax.Array:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more, got shape {x.shape}")
    return ddim_timesteps(schedule.num_timesteps, num_steps)


def ddim_sample(
    eps_fn: Callable,
    schedule: NoiseSchedule,
    x_T: jax.Array,
    num_steps: int,
    *,
    eta: float = 0.0,
    key: jax.Array | None = None,
    delta_hs: jax.Array | None = None,
    asymmetric: bool = False,
    clip_x0: float | None = None,
) -> DDIMTrajectory:
    """Generalised DDIM reverse process (Song et al. 2021, eq. 12) from ``x_T``.

    ``x_{t-1} = sqrt(a_prev) x0_pred + sqrt(1 - a_prev - sigma^2) eps + sigma z`` with
    ``x0_pred = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``; ``eta = 0`` is the deterministic DDIM ODE
    and ``eta = 1`` ancestral DDPM sampling. The noises ``z_i`` are drawn from
    ``fold_in(key, i)`` so that a fixed ``key`` gives a fixed trajectory (needed to compare an
    edit with its source). ``delta_hs`` (shape ``(num_steps, ...)`` broadcastable to ``h``) shifts
    the bottleneck at each step; with ``asymmetric=True`` the shifted ``eps`` only enters
    ``x0_pred`` and the unshifted one the direction term (Asyrp, Kwon et al. 2023, eq. 4).
    ``clip_x0`` clips ``x0_pred`` to ``[-clip_x0, clip_x0]`` when given.
    """
    ts = _check_common(x_T, schedule, num_steps)
    eta = check_number("eta", eta, minimum=0.0)
    check_finite_array("x_T", x_T)
    if clip_x0 is not None:
        clip_x0 = check_number("clip_x0", clip_x0, minimum=0.0, min_inclusive=False)
    if eta > 0 and key is None:
        raise ValueError("eta > 0 needs a PRNG key")
    if delta_hs is not None and delta_hs.shape[0] != num_steps:
        raise ValueError(f"delta_hs must have leading axis num_steps={num_steps}, got shape {delta_hs.shape}")
    key = jax.random.PRNGKey(0) if key is None else key
    a_t = schedule.alpha_bars[ts]
    a_prev = _prev_alpha_bars(schedule, ts)
    batch = x_T.shape[0]

    def step(x, inputs):
        i, t, at, ap, dh = inputs
        tb = jnp.full((batch,), t)
        eps, h = eps_fn(x, tb, dh)
        eps_dir = eps_fn(x, tb, None)[0] if (asymmetric and dh is not None) else eps
        x0_pred = (x - jnp.sqrt(1.0 - at) * eps) / jnp.sqrt(at)
        if clip_x0 is not None:
            x0_pred = jnp.clip(x0_pred, -clip_x0, clip_x0)
        sigma = ddim_sigma(at, ap, eta)
        x_prev = jnp.sqrt(ap) * x0_pred + jnp.sqrt(jnp.maximum(1.0 - ap - sigma**2, 0.0)) * eps_dir
        if eta > 0:
            x_prev = x_prev + sigma * jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        return x_prev, (x, h)

    idx = jnp.arange(num_steps)
    x0, (xs, hs) = jax.lax.scan(step, x_T, (idx, ts, a_t, a_prev, delta_hs))
    return DDIMTrajectory(x0, xs, hs, ts)


def ddim_invert(eps_fn: Callable, schedule: NoiseSchedule, x0: jax.Array, num_steps: int) -> jax.Array:
    """Deterministic DDIM inversion: run the eta=0 ODE of :func:`ddim_sample` forwards from ``x0``
    to ``x_T`` (Song et al. 2021, Sec. 4.3), evaluating ``eps`` at the current (less noisy) point.

    Sampling from the returned ``x_T`` with ``eta=0`` and the same ``num_steps`` approximately
    reconstructs ``x0``; its trajectory gives h-space codes of real images.
    """
    ts = _check_common(x0, schedule, num_steps)[::-1]
    check_finite_array("x0", x0)
    a_next = schedule.alpha_bars[ts]
    a_cur = jnp.concatenate([jnp.ones((1,), jnp.float32), a_next[:-1]])
    batch = x0.shape[0]

    def step(x, inputs):
        t, ac, an = inputs
        eps, _ = eps_fn(x, jnp.full((batch,), t), None)
        x0_pred = (x - jnp.sqrt(1.0 - ac) * eps) / jnp.sqrt(ac)
        return jnp.sqrt(an) * x0_pred + jnp.sqrt(1.0 - an) * eps, None

    x_T, _ = jax.lax.scan(step, x0, (ts, a_cur, a_next))
    return x_T
