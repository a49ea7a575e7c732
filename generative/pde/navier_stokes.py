"""2-D incompressible Navier-Stokes in vorticity form on the periodic unit torus.

``dw/dt + u . grad w = nu Lap w + f``, ``u = (d psi/dy, -d psi/dx)``, ``-Lap psi = w``: the
benchmark of Li et al. (FNO) used by LSM (Table 2, "Navier-Stokes"), with the forcing
``f = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))`` and initial vorticity from a GRF
(``alpha=2.5, tau=7``); the task is to predict the next ``T_out`` snapshots from ``T_in`` past ones.

Pseudo-spectral solver as in the FNO data generator: Crank-Nicolson for the viscous term,
explicit (forward Euler) advection evaluated in physical space with 2/3-rule dealiasing.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from generative.pde.grf import gaussian_random_field
from sparsejax.core.validation import check_finite_array, check_int, check_number


def fno_forcing(resolution: int) -> jax.Array:
    """``0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))`` on the ``(n, n)`` grid ``x_i = i / n``."""
    resolution = check_int("resolution", resolution, minimum=1)
    x = jnp.arange(resolution) / resolution
    s = x[:, None] + x[None, :]
    return (0.1 * (jnp.sin(2 * jnp.pi * s) + jnp.cos(2 * jnp.pi * s))).astype(jnp.float32)


def solve_vorticity(w0: jax.Array, forcing: jax.Array, visc: float, dt: float, num_records: int,
                    steps_per_record: int) -> jax.Array:
    """Integrate from ``w0`` (n, n); return snapshots at ``t = dt * steps_per_record * (1..T)``, (n, n, T).

    ``w0`` and ``forcing`` finite, ``visc >= 0``, ``dt > 0``, ``num_records >= 1`` and
    ``steps_per_record >= 1``. Value checks of traced arrays are skipped.
    """
    w0, forcing = jnp.asarray(w0), jnp.asarray(forcing)
    if w0.ndim != 2 or w0.shape[0] != w0.shape[1] or forcing.shape != w0.shape:
        raise ValueError(f"w0 and forcing must be equal square grids, got {w0.shape}, {forcing.shape}")
    check_finite_array("w0", w0)
    check_finite_array("forcing", forcing)
    visc = check_number("visc", visc, minimum=0.0, allow_traced=True)
    dt = check_number("dt", dt, minimum=0.0, min_inclusive=False, allow_traced=True)
    num_records = check_int("num_records", num_records, minimum=1)
    steps_per_record = check_int("steps_per_record", steps_per_record, minimum=1)
    return _solve_vorticity(w0, forcing, visc, dt, num_records, steps_per_record)


@partial(jax.jit, static_argnames=("num_records", "steps_per_record"))
def _solve_vorticity(w0, forcing, visc, dt, num_records: int, steps_per_record: int) -> jax.Array:
    if w0.ndim != 2 or w0.shape[0] != w0.shape[1] or forcing.shape != w0.shape:
        raise ValueError(f"w0 and forcing must be equal square grids, got {w0.shape}, {forcing.shape}")
    n = w0.shape[0]
    kx = jnp.fft.fftfreq(n, 1.0 / n)[:, None]
    ky = jnp.fft.rfftfreq(n, 1.0 / n)[None, :]
    lap = 4.0 * jnp.pi ** 2 * (kx ** 2 + ky ** 2)
    inv_lap = jnp.where(lap == 0, 0.0, 1.0 / jnp.where(lap == 0, 1.0, lap))
    dealias = (jnp.abs(kx) <= (2.0 / 3.0) * (n // 2)) & (jnp.abs(ky) <= (2.0 / 3.0) * (n // 2))
    f_h = jnp.fft.rfft2(forcing)
    cn_plus = 1.0 + 0.5 * dt * visc * lap
    cn_minus = 1.0 - 0.5 * dt * visc * lap

    def step(w_h, _):
        psi_h = w_h * inv_lap
        u = jnp.fft.irfft2(2j * jnp.pi * ky * psi_h, s=(n, n))
        v = jnp.fft.irfft2(-2j * jnp.pi * kx * psi_h, s=(n, n))
        w_x = jnp.fft.irfft2(2j * jnp.pi * kx * w_h, s=(n, n))
        w_y = jnp.fft.irfft2(2j * jnp.pi * ky * w_h, s=(n, n))
        adv_h = jnp.fft.rfft2(u * w_x + v * w_y) * dealias
        return (cn_minus * w_h + dt * (f_h - adv_h)) / cn_plus, None

    def record(w_h, _):
        w_h, _ = jax.lax.scan(step, w_h, None, length=steps_per_record)
        return w_h, jnp.fft.irfft2(w_h, s=(n, n))

    _, snaps = jax.lax.scan(record, jnp.fft.rfft2(w0), None, length=num_records)
    return jnp.moveaxis(snaps, 0, -1).astype(jnp.float32)


def navier_stokes_dataset(key: jax.Array, num_samples: int, resolution: int, visc: float = 1e-3,
                          num_records: int = 20, record_every: float = 1.0, dt: float = 1e-3,
                          alpha: float = 2.5, tau: float = 7.0, chunk: int = 32) -> dict[str, jax.Array]:
    """``{"w": (N, n, n, T)}`` vorticity snapshots every ``record_every`` time units from a GRF start."""
    if num_samples < 1 or resolution < 4 or num_records < 1:
        raise ValueError(f"need num_samples >= 1, resolution >= 4, num_records >= 1; got "
                         f"{num_samples}, {resolution}, {num_records}")
    check_number("visc", visc, minimum=0.0)
    check_number("dt", dt, minimum=0.0, min_inclusive=False)
    check_number("record_every", record_every, minimum=0.0, min_inclusive=False)
    steps = round(record_every / dt)
    if steps < 1 or abs(steps * dt - record_every) > 1e-6 * record_every:
        raise ValueError(f"record_every={record_every} must be a positive multiple of dt={dt}")
    forcing = fno_forcing(resolution)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_samples))
    w0 = jax.vmap(lambda k: gaussian_random_field(k, (resolution, resolution), alpha, tau))(keys)
    w = jax.lax.map(lambda w: _solve_vorticity(w, forcing, visc, dt, num_records, steps), w0,
                    batch_size=min(chunk, num_samples))
    return {"w": w}
