"""Offline data for the PΘNITA benchmarks: charged N-body, Lennard-Jones clusters, digit point clouds.

* :func:`simulate_charged_nbody` re-implements the charged-particle generator of Kipf et al. (2018)
  as used by EGNN / SEGNN / PΘNITA (``nbody_small``): 5 particles with charges ±1, Coulomb forces
  ``F_i = sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3`` clipped to ±0.1/dt, step ``dt = 0.001``,
  frames saved every 100 steps; the task maps frame 30 (positions, velocities, charges) to the
  positions at frame 40 (1000 steps later).
* :func:`lennard_jones_dataset`: MD17-like conformations of an LJ cluster from Langevin dynamics,
  with analytic energies and forces.
* :func:`digits_point_clouds`: scikit-learn 8x8 digits as 2D point clouds of lit pixels.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from geometry.ponita.grids import icosahedron


def _coulomb_forces(loc: np.ndarray, charges: np.ndarray, max_force: float) -> np.ndarray:
    rel = loc[:, :, None, :] - loc[:, None, :, :]  # x_i - x_j, (S, n, n, 3)
    d2 = np.sum(rel**2, -1)
    n = loc.shape[1]
    d2[:, np.arange(n), np.arange(n)] = 1.0
    size = charges[:, :, None] * charges[:, None, :] / d2**1.5
    size[:, np.arange(n), np.arange(n)] = 0.0
    force = np.sum(size[..., None] * rel, 2)
    return np.clip(force, -max_force, max_force)


def simulate_charged_nbody(
    num_sims: int,
    seed: int,
    n_particles: int = 5,
    frame_in: int = 30,
    frame_out: int = 40,
    sample_every: int = 100,
    dt: float = 1e-3,
    loc_std: float = 1.0,
    vel_norm: float = 0.5,
    box_size: float = 5.0,
) -> dict:
    """Simulate ``num_sims`` charged systems (vectorised, float64) and return the prediction task.

    Returns ``{"pos", "vel", "charges", "target"}`` with shapes ``(S,n,3)``, ``(S,n,3)``, ``(S,n,1)``,
    ``(S,n,3)``: state at frame ``frame_in`` and positions at ``frame_out``; frame k is the state
    after ``(k+1) * sample_every`` steps, as in the original generator.
    """
    if num_sims < 1 or n_particles < 2:
        raise ValueError(f"need num_sims >= 1 and n_particles >= 2, got {num_sims}, {n_particles}")
    if not 0 <= frame_in < frame_out:
        raise ValueError(f"need 0 <= frame_in < frame_out, got {frame_in}, {frame_out}")
    rng = np.random.default_rng(seed)
    charges = rng.choice([-1.0, 1.0], size=(num_sims, n_particles))
    loc = rng.standard_normal((num_sims, n_particles, 3)) * loc_std * (n_particles / 5.0) ** (1 / 3)
    vel = rng.standard_normal((num_sims, n_particles, 3))
    vel *= vel_norm / np.linalg.norm(vel, axis=-1, keepdims=True)
    over, under = loc > box_size, loc < -box_size  # the generator's one-off wall reflection
    loc = np.where(over, 2 * box_size - loc, np.where(under, -2 * box_size - loc, loc))
    vel = np.where(over, -np.abs(vel), np.where(under, np.abs(vel), vel))
    max_force = 0.1 / dt
    vel = vel + dt * _coulomb_forces(loc, charges, max_force)
    out = {}
    last = (frame_out + 1) * sample_every
    for step in range(1, last + 1):
        loc = loc + dt * vel
        if step == (frame_in + 1) * sample_every:
            out["pos"], out["vel"] = loc.copy(), vel.copy()
        if step == last:
            out["target"] = loc.copy()
            break
        vel = vel + dt * _coulomb_forces(loc, charges, max_force)
    out["charges"] = charges[..., None]
    return {k: v.astype(np.float32) for k, v in out.items()}


def lennard_jones_energy(pos: jax.Array, epsilon: float = 1.0, sigma: float = 1.0) -> jax.Array:
    """Total LJ energy ``sum_{i<j} 4ε((σ/r)^12 - (σ/r)^6)`` of configurations ``(..., N, d)``."""
    n = pos.shape[-2]
    d2 = jnp.sum((pos[..., :, None, :] - pos[..., None, :, :]) ** 2, -1)
    off = ~jnp.eye(n, dtype=bool)
    inv6 = jnp.where(off, (sigma**2 / jnp.where(off, d2, 1.0)) ** 3, 0.0)
    return 2.0 * epsilon * jnp.sum(inv6**2 - inv6, (-1, -2))


def lennard_jones_dataset(
    num_samples: int,
    seed: int,
    n_atoms: int = 13,
    temperature: float = 0.25,
    replicas: int = 32,
    dt: float = 0.005,
    friction: float = 1.0,
    equilibrate: int = 2000,
    sample_every: int = 100,
) -> dict:
    """MD17-like LJ-cluster data: Langevin (BAOAB) trajectories of ``replicas`` clusters started
    from the icosahedral LJ13 motif (extra atoms on an outer shell), sampled every
    ``sample_every`` steps after ``equilibrate`` steps (rounded up to whole intervals); float64 energies and forces ``-dE/dx``.
    Returns ``{"pos" (S,N,3), "energy" (S,), "forces" (S,N,3)}`` as float32.
    """
    if num_samples < 1 or n_atoms < 2 or temperature <= 0:
        raise ValueError(f"bad LJ settings: num_samples={num_samples}, n_atoms={n_atoms}, T={temperature}")
    frames = -(-num_samples // replicas)
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(seed)
        shell = np.concatenate([np.zeros((1, 3)), icosahedron().astype(np.float64) * 1.1])
        extra = max(0, n_atoms - 13)
        outer = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (extra, 3)))
        outer = 2.1 * outer / np.linalg.norm(outer, axis=-1, keepdims=True) if extra else outer
        base = np.concatenate([shell, outer])[:n_atoms]
        key, sub = jax.random.split(key)
        x = jnp.asarray(base)[None] + 0.05 * jax.random.normal(sub, (replicas, n_atoms, 3), jnp.float64)
        force_fn = jax.vmap(jax.grad(lambda p: -lennard_jones_energy(p)))
        c1 = np.exp(-friction * dt)
        c2 = np.sqrt((1 - c1**2) * temperature)

        def step(carry, k):
            x, v = carry
            v = v + 0.5 * dt * force_fn(x)
            x = x + 0.5 * dt * v
            v = c1 * v + c2 * jax.random.normal(k, v.shape, v.dtype)
            x = x + 0.5 * dt * v
            v = v + 0.5 * dt * force_fn(x)
            v = v - jnp.mean(v, 1, keepdims=True)  # no drift of the centre of mass
            return (x, v), None

        @jax.jit
        def run(carry, key):  # one sampling interval
            return jax.lax.scan(step, carry, jax.random.split(key, sample_every))[0]

        carry = (x, jnp.zeros_like(x))
        samples = []
        for i in range(-(-equilibrate // sample_every) + frames):
            key, sub = jax.random.split(key)
            carry = run(carry, sub)
            if i * sample_every >= equilibrate:
                samples.append(carry[0])
        pos = jnp.concatenate(samples)[:num_samples]
        pos = pos - jnp.mean(pos, 1, keepdims=True)
        energy = jax.vmap(lennard_jones_energy)(pos)
        forces = force_fn(pos)
        return {"pos": np.asarray(pos, np.float32), "energy": np.asarray(energy, np.float32),
                "forces": np.asarray(forces, np.float32)}


def digits_point_clouds(images: np.ndarray, threshold: float = 0.0) -> dict:
    """8x8 digit images ``(M, 8, 8[, 1])`` -> 2D point clouds of pixels brighter than ``threshold``.

    Pixel (row r, col c) sits at ``(c - 3.5, 3.5 - r)`` (centred at the image centre, y up); lit
    pixels come first, padded to the largest count. Returns ``{"pos" (M,N,2), "mask" (M,N),
    "intensity" (M,N,1)}``.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must be (M, 8, 8[, 1]), got {images.shape}")
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    grid = np.stack([cols - 3.5, 3.5 - rows], -1).reshape(64, 2)
    flat = images.reshape(len(images), 64)
    lit = flat > threshold
    order = np.argsort(~lit, axis=1, kind="stable")
    n = int(lit.sum(1).max())
    idx = order[:, :n]
    return {
        "pos": grid[idx].astype(np.float32),
        "mask": np.take_along_axis(lit, idx, 1),
        "intensity": np.take_along_axis(flat, idx, 1)[..., None].astype(np.float32),
    }


def rotate_2d(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate per-sample 2D point sets ``(M, N, 2)`` by ``angles (M,)`` radians (counter-clockwise)."""
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    return np.einsum("mij,mnj->mni", rot, points).astype(np.float32)
