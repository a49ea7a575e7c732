"""DiffusionMBIR (Chung, Ryu, McCann, Klasky, Ye, CVPR 2023, P30): a 2D slice diffusion prior plus
ADMM-TV along z for 3D inverse problems, and the TV / data-consistency pieces it is built from.

Official code: HJ-harry/DiffusionMBIR, ``controllable_generation_TV.get_pc_radon_ADMM_TV_vol``. There,
after every predictor-corrector step on all axial slices (VE-SDE, batches of 12), one ADMM iteration
on the whole volume solves ``min_x 1/2 ||A x - y||^2 + lambda ||D_z x||_1`` (paper eq. 10-13):

* ``x <- CG(A^T A + rho D_z^T D_z, A^T y + rho D_z^T (z - u))``, **one** CG iteration warm-started at
  the current ``x``;
* ``z <- shrink(D_z x + u, lambda / rho)``; ``u <- u + D_z x - z``; ``(z, u)`` persist across
  diffusion steps (initialised to 0);
* after the last step one Kaczmarz/SIRT step ``x <- x + A^T (y - A x) / (A^T A 1)``;
* ``D_z`` is the forward difference along z with circular boundary; ``lambda = 0.04``, ``rho = 10`` in
  the driver scripts (the function default is ``lamb_1 = 5``).

Deviations (named):

* **VP/DDIM instead of VE/PC.** The project's prior is a VP DDPM (:mod:`generative.diffusion.ddpm`)
  sampled with DDIM. For VE, ``x_t = x_0 + sigma z`` so applying ADMM to ``x_t`` is sensible; for VP it
  is not (``x_t`` is scaled by ``sqrt(alpha_bar)``). We therefore apply the ADMM-TV/CG update to the
  Tweedie estimate ``x0_hat`` at every DDIM step (clipped to the prior's [-1, 1], mapped to
  attenuation units ``(x0_hat + 1) / 2``), then re-noise with the DDIM update (eta > 0). This is a
  DDS-style (Chung et al. 2024, "decomposed diffusion sampling") variant of DiffusionMBIR.
* The "slice-wise prior without z-TV" arm (``use_tv=False``) replaces the ADMM step by one CG
  iteration on ``A^T A x = A^T y`` per axial slice (each slice its own CG step sizes), so the arm is
  exactly the 2D solver applied slice by slice.
* TV-regularised least squares (:func:`admm_tv_reconstruct`) follows the official ``get_ADMM_TV``
  (anisotropic TV over the chosen axes, outer 30 / inner CG 20 by default, x initialised at 0).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from generative.diffusion.ddim import ddim_sigma, ddim_timesteps
from generative.diffusion.schedules import NoiseSchedule
from sparsejax.core.validation import check_callable, check_int, check_key, check_number, check_type

LinearOp = Callable[[jax.Array], jax.Array]


def finite_diff(x: jax.Array, axes: Sequence[int] = (0,)) -> jax.Array:
    """Stacked circular forward differences ``D x = [roll(x, -1, a) - x for a in axes]``."""
    axes = tuple(axes)
    if not axes:
        raise ValueError("axes must name at least one axis")
    return jnp.stack([jnp.roll(x, -1, axis=a) - x for a in axes])


def finite_diff_adjoint(d: jax.Array, axes: Sequence[int] = (0,)) -> jax.Array:
    """Adjoint of :func:`finite_diff`: ``sum_a roll(d_a, 1, a) - d_a``."""
    axes = tuple(axes)
    if d.shape[0] != len(axes):
        raise ValueError(f"leading axis {d.shape[0]} must equal the number of axes {len(axes)}")
    return sum(jnp.roll(d[i], 1, axis=a) - d[i] for i, a in enumerate(axes))


def shrink(v: jax.Array, threshold) -> jax.Array:
    """Soft threshold ``sign(v) max(abs(v) - threshold, 0)``, the prox of ``threshold * l1``."""
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - threshold, 0.0)


def conjugate_gradient(op: LinearOp, b: jax.Array, x0: jax.Array, num_iters: int = 1,
                       tol: float = 1e-10, per_slice: bool = False) -> jax.Array:
    """``num_iters`` CG iterations on ``op(x) = b`` (``op`` symmetric PSD) warm-started at ``x0``,
    freezing once ``norm(r) < tol`` as in the official loop. With ``per_slice=True`` the inner
    products are taken per leading index (independent CG runs on a block-diagonal ``op``)."""
    num_iters = check_int("num_iters", num_iters, minimum=0)
    if per_slice:
        axes = tuple(range(1, b.ndim))

        def dot(a, c):
            return jnp.sum(a * c, axis=axes, keepdims=True)
    else:
        def dot(a, c):
            return jnp.vdot(a, c)

    r = b - op(x0)
    rs = dot(r, r)

    def body(_, carry):
        x, r, p, rs = carry
        ap = op(p)
        pap = dot(p, ap)
        active = (jnp.sqrt(rs) >= tol) & (pap > 0)
        alpha = jnp.where(active, rs / jnp.where(pap > 0, pap, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = dot(r, r)
        beta = jnp.where(active & (rs > 0), rs_new / jnp.where(rs > 0, rs, 1.0), 0.0)
        return x, r, r + beta * p, rs_new

    x, *_ = jax.lax.fori_loop(0, num_iters, body, (x0, r, r, rs))
    return x


class ADMMState(NamedTuple):
    """Split variable ``z ~ D x`` and scaled dual ``u`` of the TV-ADMM, shape ``(len(axes), D, H, W)``."""

    z: jax.Array
    u: jax.Array


def init_admm_state(volume_shape, axes: Sequence[int] = (0,)) -> ADMMState:
    """Zero ``(z, u)``, as the official ``del_z = udel_z = 0``."""
    shape = (len(tuple(axes)),) + tuple(volume_shape)
    return ADMMState(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32))


def tv_objective(x: jax.Array, y: jax.Array, A: LinearOp, lam: float, axes: Sequence[int] = (0,)) -> jax.Array:
    """``1/2 ||A x - y||^2 + lam ||D x||_1`` (paper eq. 10 with TV along ``axes``; z only by default)."""
    return 0.5 * jnp.sum((A(x) - y) ** 2) + lam * jnp.sum(jnp.abs(finite_diff(x, axes)))


def admm_tv_step(x: jax.Array, state: ADMMState, aty: jax.Array, A: LinearOp, AT: LinearOp, *,
                 lam: float = 0.04, rho: float = 10.0, axes: Sequence[int] = (0,),
                 cg_iters: int = 1) -> tuple[jax.Array, ADMMState]:
    """One ADMM-TV iteration (paper eq. 11-13; official ``CS_routine`` with ``niter=1``):
    CG on ``(A^T A + rho D^T D) x = A^T y + rho D^T (z - u)`` from ``x``, then shrink and dual update.
    ``aty = A^T y`` is passed precomputed."""
    axes = tuple(axes)

    def normal_op(v):
        return AT(A(v)) + rho * finite_diff_adjoint(finite_diff(v, axes), axes)

    b = aty + rho * finite_diff_adjoint(state.z - state.u, axes)
    x = conjugate_gradient(normal_op, b, x, cg_iters)
    dx = finite_diff(x, axes)
    z = shrink(dx + state.u, lam / rho)
    return x, ADMMState(z, state.u + dx - z)


def admm_tv_reconstruct(y: jax.Array, A: LinearOp, AT: LinearOp, volume_shape, *, lam: float = 0.04,
                        rho: float = 10.0, axes: Sequence[int] = (0, 1, 2), outer_iters: int = 30,
                        cg_iters: int = 20) -> jax.Array:
    """TV-regularised least squares by ADMM from ``x = 0`` (official ``get_ADMM_TV``: anisotropic
    TV over ``axes``, 30 outer iterations of 20 CG steps); the no-prior baseline."""
    outer_iters = check_int("outer_iters", outer_iters, minimum=1)
    aty = AT(y)
    state = init_admm_state(volume_shape, axes)

    def body(_, carry):
        x, st = carry
        return admm_tv_step(x, st, aty, A, AT, lam=lam, rho=rho, axes=axes, cg_iters=cg_iters)

    x, _ = jax.lax.fori_loop(0, outer_iters, body, (jnp.zeros(volume_shape, jnp.float32), state))
    return x


def kaczmarz_step(x: jax.Array, y: jax.Array, A: LinearOp, AT: LinearOp) -> jax.Array:
    """Final consistency step ``x + A^T (y - A x) / (A^T A 1)`` (official ``kaczmarz``, lamb = 1);
    pixels no ray reaches (``A^T A 1 = 0``) are left unchanged."""
    norm = AT(A(jnp.ones_like(x)))
    return x + jnp.where(norm > 0, AT(y - A(x)) / jnp.where(norm > 0, norm, 1.0), 0.0)


def slicewise_cg_step(x: jax.Array, aty: jax.Array, A: LinearOp, AT: LinearOp, cg_iters: int = 1) -> jax.Array:
    """Data consistency of the slice-wise baseline: ``cg_iters`` CG steps on ``A^T A x = A^T y`` for
    each axial slice separately (its own step sizes; ``A^T A`` is block diagonal over z for the
    per-slice Radon transform)."""
    return conjugate_gradient(lambda v: AT(A(v)), aty, x, cg_iters, per_slice=True)


class MBIRResult(NamedTuple):
    """Reconstruction ``x`` (attenuation units, ``(D, H, W)``) and the final ADMM state."""

    x: jax.Array
    admm: ADMMState


def diffusion_mbir(eps_fn: Callable, schedule: NoiseSchedule, y: jax.Array, A: LinearOp, AT: LinearOp,
                   volume_shape, key: jax.Array, *, num_steps: int = 50, eta: float = 0.85, lam: float = 0.04,
                   rho: float = 10.0, use_tv: bool = True, cg_iters: int = 1, final_consistency: bool = True,
                   slice_batch: int | None = None) -> MBIRResult:
    """DiffusionMBIR (DDS-style VP/DDIM variant, see module docstring) for ``y = A x``.

    ``eps_fn(x_t, t, delta_h) -> (eps, h)`` is a 2D denoiser on NHWC slices trained on images in
    ``[-1, 1]`` (attenuation ``v = (x + 1) / 2``). Each of ``num_steps`` DDIM steps: predict ``eps`` for
    all axial slices (in batches of ``slice_batch``), form ``x0_hat``, apply one ADMM-TV(z) iteration
    (``use_tv=True``; persistent ``(z, u)``) or one slice-wise CG step (``use_tv=False``) to
    ``v = (x0_hat + 1)/2``, and take the DDIM step ``x_prev = sqrt(a_prev) x0' + sqrt(1 - a_prev -
    sigma^2) eps + sigma noise`` (Song et al. eq. 12). ``final_consistency`` adds the Kaczmarz step.
    Returns the volume in attenuation units.
    """
    check_callable("eps_fn", eps_fn)
    check_type("schedule", schedule, NoiseSchedule)
    check_key("key", key)
    volume_shape = tuple(int(s) for s in volume_shape)
    if len(volume_shape) != 3:
        raise ValueError(f"volume_shape must be (D, H, W), got {volume_shape}")
    eta = check_number("eta", eta, minimum=0.0)
    lam = check_number("lam", lam, minimum=0.0)
    rho = check_number("rho", rho, minimum=0.0, min_inclusive=False)
    d = volume_shape[0]
    slice_batch = d if slice_batch is None else check_int("slice_batch", slice_batch, minimum=1)
    ts = ddim_timesteps(schedule.num_timesteps, num_steps)
    a_t = schedule.alpha_bars[ts]
    a_prev = jnp.concatenate([schedule.alpha_bars[ts[1:]], jnp.ones((1,), jnp.float32)])
    aty = AT(y)

    def predict(x, t):
        chunks = [eps_fn(x[i:i + slice_batch, ..., None], jnp.full((x[i:i + slice_batch].shape[0],), t), None)[0][..., 0]
                  for i in range(0, d, slice_batch)]
        return jnp.concatenate(chunks, axis=0)

    def step(carry, inputs):
        x, state = carry
        i, t, at, ap = inputs
        eps = predict(x, t)
        x0 = jnp.clip((x - jnp.sqrt(1.0 - at) * eps) / jnp.sqrt(at), -1.0, 1.0)
        v = (x0 + 1.0) / 2.0
        if use_tv:
            v, state = admm_tv_step(v, state, aty, A, AT, lam=lam, rho=rho, axes=(0,), cg_iters=cg_iters)
        else:
            v = slicewise_cg_step(v, aty, A, AT, cg_iters)
        x0 = 2.0 * v - 1.0
        sigma = ddim_sigma(at, ap, eta)
        noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        x_prev = jnp.sqrt(ap) * x0 + jnp.sqrt(jnp.maximum(1.0 - ap - sigma**2, 0.0)) * eps + sigma * noise
        return (x_prev, state), None

    x_T = jax.random.normal(jax.random.fold_in(key, -1 % (2**31)), volume_shape, jnp.float32)
    (x, state), _ = jax.lax.scan(step, (x_T, init_admm_state(volume_shape, (0,))),
                                 (jnp.arange(num_steps), ts, a_t, a_prev))
    v = (x + 1.0) / 2.0  # the last DDIM step has a_prev = 1, so x is the corrected x0
    if final_consistency:
        v = kaczmarz_step(v, y, A, AT)
    return MBIRResult(v, state)
