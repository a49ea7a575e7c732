"""DiffusionMBIR pieces (P30): D_z adjoint, CG, ADMM-TV decrease, Kaczmarz, sampler smoke."""
import jax
import jax.numpy as jnp
import numpy as np

from generative.diffusion.mbir import (
    admm_tv_reconstruct, admm_tv_step, conjugate_gradient, diffusion_mbir, finite_diff, finite_diff_adjoint,
    init_admm_state, kaczmarz_step, shrink, slicewise_cg_step, tv_objective,
)
from generative.diffusion.schedules import linear_schedule
from generative.reconstruction.phantoms import random_ellipsoid_phantom
from generative.reconstruction.tomography import ParallelBeam

SHAPE = (4, 16, 16)


def _problem(n_views=4):
    v = random_ellipsoid_phantom(jax.random.PRNGKey(0), SHAPE)
    op = ParallelBeam(SHAPE, n_views)
    return v, op, op.A(v)


def test_finite_diff_adjoint_and_shrink():
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(k1, SHAPE)
    d = jax.random.normal(k2, (3,) + SHAPE)
    lhs = float(jnp.vdot(finite_diff(x, (0, 1, 2)), d))
    assert abs(lhs - float(jnp.vdot(x, finite_diff_adjoint(d, (0, 1, 2))))) < 1e-4 * abs(lhs)
    np.testing.assert_allclose(shrink(jnp.array([-2.0, 0.3, 1.5]), 0.5), [-1.5, 0.0, 1.0])


def test_cg_solves_spd_system():
    m = jax.random.normal(jax.random.PRNGKey(2), (6, 6))
    a = m @ m.T + 6 * jnp.eye(6)
    b = jnp.arange(6.0)
    x = conjugate_gradient(lambda v: a @ v, b, jnp.zeros(6), num_iters=12)
    np.testing.assert_allclose(x, jnp.linalg.solve(a, b), rtol=1e-4, atol=1e-4)


def test_admm_tv_step_decreases_objective():
    v, op, y = _problem()
    x, st = jnp.zeros(SHAPE), init_admm_state(SHAPE)
    aty = op.AT(y)
    objs = [float(tv_objective(x, y, op.A, 0.04))]
    step = jax.jit(lambda x, st: admm_tv_step(x, st, aty, op.A, op.AT, lam=0.04, rho=10.0))
    for _ in range(6):
        x, st = step(x, st)
        objs.append(float(tv_objective(x, y, op.A, 0.04)))
    assert all(b < a for a, b in zip(objs, objs[1:]))
    rec = admm_tv_reconstruct(y, op.A, op.AT, SHAPE, outer_iters=5, cg_iters=5)
    assert float(tv_objective(rec, y, op.A, 0.04, (0, 1, 2))) < float(tv_objective(jnp.zeros(SHAPE), y, op.A, 0.04, (0, 1, 2)))


def test_kaczmarz_and_slicewise_cg_reduce_residual():
    v, op, y = _problem()
    x = 0.5 * jnp.ones(SHAPE)
    r0 = float(jnp.sum((op.A(x) - y) ** 2))
    assert float(jnp.sum((op.A(kaczmarz_step(x, y, op.A, op.AT)) - y) ** 2)) < r0
    xs = slicewise_cg_step(x, op.AT(y), op.A, op.AT, 1)
    for i in range(SHAPE[0]):  # each slice's residual drops on its own
        assert float(jnp.sum((op.A(xs)[i] - y[i]) ** 2)) < float(jnp.sum((op.A(x)[i] - y[i]) ** 2))


def _toy_eps(x, t, dh):
    return 0.1 * x, None


def test_sampler_finite_and_shaped():
    v, op, y = _problem()
    sched = linear_schedule(20)
    for use_tv in (True, False):
        res = diffusion_mbir(_toy_eps, sched, y, op.A, op.AT, SHAPE, jax.random.PRNGKey(0), num_steps=4,
                             use_tv=use_tv, slice_batch=3)
        assert res.x.shape == SHAPE and bool(jnp.all(jnp.isfinite(res.x)))
    assert res.admm.z.shape == (1,) + SHAPE
