"""Diffusion repair prior of LM-Gaussian stage 2 (P46), with the project's tiny DDPM as the stand-in.

Stand-in (named): the official code repairs renders at virtual poses with a LoRA-tuned ControlNet
(DDIM 50 steps, denoise strength 0.2); here a tiny :class:`~generative.diffusion.unet.UNet` DDPM is
trained on the (augmented) training views of the scene and repairs a render by SDEdit: noise it to
step ``t0 = strength * T`` with :func:`~generative.diffusion.ddpm.q_sample` and run deterministic DDIM
back to 0. The repaired virtual views are pseudo ground truth with L1 weight ``min(1, 16 d / d_max)``
(d: distance of the virtual camera to the nearest training camera), as in ``stage2_360.py``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from generative.diffusion.ddpm import make_ddpm_train_step, q_sample
from generative.diffusion.schedules import make_schedule
from generative.diffusion.unet import UNet
from sparsejax.train import TrainState


def augment(images: np.ndarray, n: int, rng: np.random.Generator, max_shift: int = 3) -> np.ndarray:
    """``n`` random flips / rolls of the ``(V, H, W, 3)`` training images."""
    out = []
    for _ in range(n):
        im = images[rng.integers(len(images))]
        if rng.random() < 0.5:
            im = im[:, ::-1]
        im = np.roll(im, tuple(rng.integers(-max_shift, max_shift + 1, 2)), (0, 1))
        out.append(im)
    return np.stack(out)


def train_repair_model(images: np.ndarray, key, *, steps: int = 300, batch: int = 16, channels=(16, 32),
                       timesteps: int = 200, lr: float = 2e-3, seed: int = 0) -> dict:
    """Fit a tiny DDPM (eps-prediction, cosine schedule) to the augmented ``images`` in [0, 1]."""
    if images.ndim != 4:
        raise ValueError(f"images must be (V, H, W, C), got {images.shape}")
    model = UNet(channels=tuple(channels), time_dim=32)
    schedule = make_schedule("cosine", timesteps)
    k_init, k_train = jax.random.split(key)
    params = model.init(k_init, jnp.zeros((1,) + images.shape[1:]), jnp.zeros((1,), jnp.int32))
    tx = optax.adam(lr)
    state = TrainState(params, tx.init(params), 0)
    step = make_ddpm_train_step(model.apply, tx, schedule)
    rng = np.random.default_rng(seed)
    losses = []
    for i in range(steps):
        x0 = jnp.asarray(augment(images, batch, rng) * 2 - 1, jnp.float32)
        state, loss = step(state, x0, jax.random.fold_in(k_train, i))
        losses.append(float(loss))
    return {"model": model, "params": state.params, "schedule": schedule, "losses": losses}


def repair(repairer: dict, images, key, *, strength: float = 0.2, num_steps: int = 10) -> jax.Array:
    """SDEdit repair of ``(B, H, W, 3)`` renders in [0, 1]: noise to ``strength * T``, DDIM back to 0."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength must lie in (0, 1], got {strength}")
    sched, model, params = repairer["schedule"], repairer["model"], repairer["params"]
    T = sched.num_timesteps
    t0 = max(int(round(strength * T)) - 1, 0)
    ts = np.unique(np.linspace(0, t0, num_steps).round().astype(int))[::-1]
    x0 = jnp.asarray(images, jnp.float32) * 2 - 1
    B = x0.shape[0]
    x = q_sample(sched, x0, jnp.full((B,), t0), jax.random.normal(key, x0.shape))
    ab = sched.alpha_bars
    apply = jax.jit(model.apply)
    for i, t in enumerate(ts):
        eps, _ = apply(params, x, jnp.full((B,), int(t)))
        x0p = jnp.clip((x - jnp.sqrt(1 - ab[t]) * eps) / jnp.sqrt(ab[t]), -1, 1)
        ap = ab[ts[i + 1]] if i + 1 < len(ts) else 1.0
        x = jnp.sqrt(ap) * x0p + jnp.sqrt(1 - ap) * eps
    return jnp.clip((x + 1) / 2, 0, 1)


def pseudo_view_weights(virtual_centers, train_centers) -> np.ndarray:
    """LM-Gaussian pseudo-GT weights ``min(1, 16 d / d_max)`` with d the distance to the nearest training camera."""
    v, tr = np.asarray(virtual_centers), np.asarray(train_centers)
    d = np.linalg.norm(v[:, None] - tr[None], axis=-1).min(1)
    return np.minimum(1.0, 16 * d / max(d.max(), 1e-12))
