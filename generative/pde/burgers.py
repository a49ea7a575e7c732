"""1-D viscous Burgers ``u_t + (u^2 / 2)_x = nu u_xx`` on the periodic unit interval.

The benchmark of Li et al. (FNO): ``u0 ~ N(0, 625 (-Lap + 25 I)^-2)``, ``nu = 0.1``, task
``u0 -> u(t = 1)``. Fourier pseudo-spectral solver with the integrating-factor fourth-order
Runge-Kutta scheme (diffusion integrated exactly) and 2/3-rule dealiasing.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from generative.pde.grf import gaussian_random_field
from sparsejax.core.validation import check_finite_array, check_int, check_number


def solve_burgers(u0: jax.Array, visc: float, dt: float, num_steps: int) -> jax.Array:
    """Integrate ``num_steps`` IF-RK4 steps of size ``dt`` from ``u0`` (n,); return ``u`` (n,).

    ``u0`` finite, ``visc >= 0`` (a negative viscosity makes the integrating factor blow up),
    ``dt > 0`` and ``num_steps >= 0`` (0 returns ``u0``). Value checks of traced ``u0`` are skipped.
    """
    u0 = jnp.asarray(u0)
    if u0.ndim != 1 or u0.shape[0] < 4:
        raise ValueError(f"u0 must be a 1-D grid with >= 4 points, got shape {u0.shape}")
    check_finite_array("u0", u0)
    visc = check_number("visc", visc, minimum=0.0, allow_traced=True)
    dt = check_number("dt", dt, minimum=0.0, min_inclusive=False, allow_traced=True)
    num_steps = check_int("num_steps", num_steps, minimum=0)
    return _solve_burgers(u0, visc, dt, num_steps)


@partial(jax.jit, static_argnames=("num_steps",))
def _solve_burgers(u0: jax.Array, visc: float, dt: float, num_steps: int) -> jax.Array:
    if u0.ndim != 1 or u0.shape[0] < 4:
        raise ValueError(f"u0 must be a 1-D grid with >= 4 points, got shape {u0.shape}")
    n = u0.shape[0]
    k = jnp.fft.rfftfreq(n, 1.0 / n)
    ik = 2j * jnp.pi * k
    dealias = jnp.abs(k) <= (2.0 / 3.0) * (n // 2)
    e_half = jnp.exp(-visc * (2 * jnp.pi * k) ** 2 * dt / 2)
    e_full = e_half ** 2

    def nonlinear(u_h):
        u = jnp.fft.irfft(u_h, n=n)
        return -0.5 * ik * jnp.fft.rfft(u * u) * dealias

    def step(u_h, _):
        a = dt * nonlinear(u_h)
        b = dt * nonlinear(e_half * (u_h + a / 2))
        c = dt * nonlinear(e_half * u_h + b / 2)
        d = dt * nonlinear(e_full * u_h + e_half * c)
        return e_full * u_h + (e_full * a + 2 * e_half * (b + c) + d) / 6, None

    u_h, _ = jax.lax.scan(step, jnp.fft.rfft(u0), None, length=num_steps)
    return jnp.fft.irfft(u_h, n=n).astype(jnp.float32)


def burgers_dataset(key: jax.Array, num_samples: int, resolution: int, visc: float = 0.1,
                    t_final: float = 1.0, dt: float = 1e-3, alpha: float = 2.0, tau: float = 5.0,
                    sigma: float = 25.0, solve_factor: int = 1) -> dict[str, jax.Array]:
    """``{"u0": (N, n), "u1": (N, n)}`` with ``u1 = u(t_final)``; sample ``i`` from ``fold_in(key, i)``.

    The field is sampled and solved on a grid ``solve_factor`` times finer and then subsampled,
    so that steep fronts (small ``visc``) are resolved by the solver.
    """
    if num_samples < 1 or resolution < 4 or solve_factor < 1:
        raise ValueError(f"need num_samples >= 1, resolution >= 4, solve_factor >= 1; got {num_samples}, "
                         f"{resolution}, {solve_factor}")
    check_number("visc", visc, minimum=0.0)
    check_number("dt", dt, minimum=0.0, min_inclusive=False)
    check_number("t_final", t_final, minimum=0.0, min_inclusive=False)
    steps = round(t_final / dt)
    if steps < 1 or abs(steps * dt - t_final) > 1e-6 * t_final:
        raise ValueError(f"t_final={t_final} must be a positive multiple of dt={dt}")
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_samples))
    fine = resolution * solve_factor
    u0 = jax.vmap(lambda k: gaussian_random_field(k, (fine,), alpha, tau, sigma))(keys)
    u1 = jax.vmap(lambda u: _solve_burgers(u, visc, dt, steps))(u0)
    return {"u0": u0[:, ::solve_factor], "u1": u1[:, ::solve_factor]}
