"""Bad input to the public API of ``generative`` (issue #12): each case raises ValueError/TypeError naming the problem.

One row per case: (id, thunk, exception type, ``match`` regex). The thunks build tiny inputs, so the
whole table runs in seconds; cases that would need a compile are avoided or kept shape-only.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ott.geometry import pointcloud
from ott.problems.linear import linear_problem

from generative import lightsb
from generative.diffusion import (cosine_schedule, ddim_sample, edit_along_direction, extreme_scores_direction,
                                  global_direction_at, linear_schedule, pca_directions, q_sample, render_shapes)
from generative.ot import SinkhornNewtonSparse, num_kept
from generative.pde import (LSM, cache_path, darcy_coefficient, darcy_dataset, navier_stokes_dataset,
                            solve_burgers, solve_darcy, solve_vorticity, burgers_dataset)

NAN2 = np.array([[0.0, np.nan], [1.0, 2.0]], np.float32)
X2 = np.zeros((4, 2), np.float32)
PARAMS = lightsb.init(jax.random.key(0), np.ones((3, 2), np.float32), epsilon=0.1, n_components=3)
SCHED = linear_schedule(20)


def _eps_fn(x, t, dh):
    return jnp.zeros_like(x), None


def _prob(a=None, b=None, x=None, eps=0.1):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 2)) if x is None else x
    geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(rng.uniform(size=(5, 2))), epsilon=eps)
    return linear_problem.LinearProblem(geom, a=None if a is None else jnp.asarray(a),
                                        b=None if b is None else jnp.asarray(b))


def _darcy_nan():
    a = np.full((6, 6), 2.0, np.float32)
    a[2, 3] = np.nan
    return solve_darcy(jnp.asarray(a))


CASES = [
    # ---- LightSB: solver settings and NaN/inf inputs
    ("lightsb.fit eps=0", lambda: lightsb.fit(jax.random.key(0), X2, X2, epsilon=0.0, n_components=2, steps=1),
     ValueError, "epsilon"),
    ("lightsb.fit eps=inf", lambda: lightsb.fit(jax.random.key(0), X2, X2, epsilon=np.inf, n_components=2, steps=1),
     ValueError, "epsilon must be finite"),
    ("lightsb.fit lr<0", lambda: lightsb.fit(jax.random.key(0), X2, X2, epsilon=0.1, n_components=2, steps=1,
                                             learning_rate=-1.0), ValueError, "learning_rate"),
    ("lightsb.fit steps float", lambda: lightsb.fit(jax.random.key(0), X2, X2, epsilon=0.1, n_components=2,
                                                    steps=1.5), TypeError, "steps must be an int"),
    ("lightsb.fit NaN x0", lambda: lightsb.fit(jax.random.key(0), NAN2, X2, epsilon=0.1, n_components=2, steps=1),
     ValueError, "x0 must be finite"),
    ("lightsb.fit inf x1", lambda: lightsb.fit(jax.random.key(0), X2, np.full((4, 2), np.inf), epsilon=0.1,
                                               n_components=2, steps=1), ValueError, "x1 must be finite"),
    ("lightsb.init NaN", lambda: lightsb.init(jax.random.key(0), NAN2, epsilon=0.1, n_components=2),
     ValueError, "x1_init must be finite"),
    ("lightsb.init s_init<=0", lambda: lightsb.init(jax.random.key(0), X2, epsilon=0.1, n_components=2, s_init=0.0),
     ValueError, "s_init"),
    ("lightsb.sample_plan NaN x", lambda: lightsb.sample_plan(jax.random.key(0), PARAMS, NAN2, 2),
     ValueError, "x must be finite"),
    ("lightsb.sample_plan num_samples float", lambda: lightsb.sample_plan(jax.random.key(0), PARAMS, X2, 2.7),
     TypeError, "num_samples must be an int"),
    ("lightsb.sample_sde NaN x", lambda: lightsb.sample_sde(jax.random.key(0), PARAMS, NAN2, 3),
     ValueError, "x must be finite"),
    ("lightsb.sample_sde n_steps=0", lambda: lightsb.sample_sde(jax.random.key(0), PARAMS, X2, 0),
     ValueError, "n_steps"),
    ("lightsb.drift t=1", lambda: lightsb.drift(PARAMS, X2, 1.0), ValueError, "t must be"),
    ("lightsb.drift t=nan", lambda: lightsb.drift(PARAMS, X2, float("nan")), ValueError, "t must be finite"),
    ("lightsb.sample_at_time t>1", lambda: lightsb.sample_at_time(jax.random.key(0), PARAMS, X2, 1.5),
     ValueError, "t must be"),
    ("lightsb.bw shape mismatch", lambda: lightsb.bures_wasserstein_sq(np.zeros(2), np.eye(2), np.zeros(3),
                                                                       np.eye(3)), ValueError, "same shape"),
    ("lightsb.bw NaN cov", lambda: lightsb.bures_wasserstein_sq(np.zeros(2), NAN2, np.zeros(2), np.eye(2)),
     ValueError, "cov1 must be finite"),
    ("lightsb.cbw2_uvp var<=0", lambda: lightsb.cbw2_uvp(X2, np.broadcast_to(np.eye(2), (4, 2, 2)), X2,
                                                        np.broadcast_to(np.eye(2), (4, 2, 2)), 0.0),
     ValueError, "var_p1"),
    ("lightsb.gaussian_eot eps NaN", lambda: lightsb.gaussian_eot_conditional(np.zeros(2), np.eye(2), np.zeros(2),
                                                                              np.eye(2), float("nan")),
     ValueError, "epsilon must be finite"),
    ("lightsb.benchmark dim=0", lambda: lightsb.gaussian_mixture_benchmark(0, 0, 1.0), ValueError, "dim"),
    # ---- SNS: solver settings and NaN inputs
    ("sns sparsity=0", lambda: SinkhornNewtonSparse(sparsity=0.0), ValueError, "sparsity"),
    ("sns cg_tol<0", lambda: SinkhornNewtonSparse(cg_tol=-1.0), ValueError, "cg_tol"),
    ("sns threshold NaN", lambda: SinkhornNewtonSparse(threshold=float("nan")), ValueError, "threshold must be finite"),
    ("sns inner_iterations=0", lambda: SinkhornNewtonSparse(inner_iterations=0), ValueError, "inner_iterations"),
    ("sns warm-up shorter than inner", lambda: SinkhornNewtonSparse(max_sinkhorn_iterations=5), ValueError,
     "max_sinkhorn_iterations"),
    ("sns mass_tol=1", lambda: SinkhornNewtonSparse(mass_tol=1.0), ValueError, "mass_tol"),
    ("sns matvec name", lambda: SinkhornNewtonSparse(matvec="csr"), ValueError, "matvec"),
    ("sns NaN a", lambda: SinkhornNewtonSparse()(_prob(a=[0.2, 0.2, np.nan, 0.2, 0.2], b=np.full(5, 0.2))),
     ValueError, "a must be finite"),
    ("sns NaN points", lambda: SinkhornNewtonSparse()(_prob(x=np.full((5, 2), np.nan))), ValueError,
     "geom.x must be finite"),
    ("sns epsilon<0", lambda: SinkhornNewtonSparse()(_prob(eps=-0.1)), ValueError, "epsilon"),
    ("sns init shape", lambda: SinkhornNewtonSparse()(_prob(), init=(jnp.zeros(3), jnp.zeros(5))), ValueError,
     "init must be"),
    ("sns num_kept rho>1", lambda: num_kept((10, 10), 1.5), ValueError, "sparsity"),
    # ---- h-space directions and diffusion timesteps
    ("pca NaN hs", lambda: pca_directions(jnp.full((4, 2, 3), jnp.nan), 1), ValueError, "hs must be finite"),
    ("pca k float", lambda: pca_directions(jnp.ones((4, 2, 3)), 1.5), TypeError, "num_components must be an int"),
    ("extreme_scores NaN hs", lambda: extreme_scores_direction(jnp.full((4, 2, 3), jnp.nan), np.arange(4.0), 1),
     ValueError, "hs must be finite"),
    ("edit NaN direction", lambda: edit_along_direction(_eps_fn, SCHED, jnp.zeros((1, 4, 4, 1)),
                                                        jnp.full((2, 3), jnp.nan), [1.0], 2), ValueError,
     "direction must be finite"),
    ("global_direction_at step", lambda: global_direction_at(jnp.ones((2, 3, 4)), -1), ValueError, "step"),
    ("q_sample t >= T", lambda: q_sample(SCHED, jnp.zeros((2, 3)), jnp.array([0, 20]), jnp.zeros((2, 3))),
     ValueError, r"t must lie in \[0, 20\)"),
    ("q_sample t < 0", lambda: q_sample(SCHED, jnp.zeros((2, 3)), jnp.array([-1, 0]), jnp.zeros((2, 3))),
     ValueError, "t must lie"),
    ("q_sample float t", lambda: q_sample(SCHED, jnp.zeros((2, 3)), jnp.array([0.5, 1.0]), jnp.zeros((2, 3))),
     TypeError, "t must have a"),
    ("ddim num_steps > T", lambda: ddim_sample(_eps_fn, SCHED, jnp.zeros((1, 4)), 21), ValueError, "num_steps"),
    ("ddim eta NaN", lambda: ddim_sample(_eps_fn, SCHED, jnp.zeros((1, 4)), 2, eta=float("nan")), ValueError,
     "eta must be finite"),
    ("ddim NaN x_T", lambda: ddim_sample(_eps_fn, SCHED, jnp.full((1, 4), jnp.nan), 2), ValueError,
     "x_T must be finite"),
    ("linear_schedule T=1", lambda: linear_schedule(1), ValueError, "num_timesteps"),
    ("cosine_schedule s NaN", lambda: cosine_schedule(10, s=float("nan")), ValueError, "s must be finite"),
    ("render_shapes NaN", lambda: render_shapes(jnp.full((1, 5), jnp.nan)), ValueError, "factors must be finite"),
    # ---- PDE solvers: settings, NaN inputs, cache paths
    ("solve_darcy NaN a", _darcy_nan, ValueError, "a must be finite"),
    ("solve_darcy maxiter=0", lambda: solve_darcy(jnp.full((6, 6), 2.0), maxiter=0), ValueError, "maxiter"),
    ("solve_darcy a<=0", lambda: solve_darcy(jnp.full((6, 6), -1.0)), ValueError, "must be positive"),
    ("solve_darcy tol=0", lambda: solve_darcy(jnp.full((6, 6), 2.0), tol=0.0), ValueError, "tol"),
    ("darcy_coefficient low<0", lambda: darcy_coefficient(jax.random.key(0), 8, low=-1.0), ValueError, "low"),
    ("darcy_dataset n=0", lambda: darcy_dataset(jax.random.key(0), 0, 8), ValueError, "num_samples"),
    ("solve_burgers visc<0", lambda: solve_burgers(jnp.zeros(8), -0.1, 1e-3, 2), ValueError, "visc"),
    ("solve_burgers dt=0", lambda: solve_burgers(jnp.zeros(8), 0.1, 0.0, 2), ValueError, "dt"),
    ("solve_burgers steps<0", lambda: solve_burgers(jnp.zeros(8), 0.1, 1e-3, -1), ValueError, "num_steps"),
    ("solve_burgers NaN u0", lambda: solve_burgers(jnp.full(8, jnp.nan), 0.1, 1e-3, 2), ValueError,
     "u0 must be finite"),
    ("burgers_dataset visc NaN", lambda: burgers_dataset(jax.random.key(0), 2, 8, visc=float("nan")), ValueError,
     "visc must be finite"),
    ("solve_vorticity visc<0", lambda: solve_vorticity(jnp.zeros((8, 8)), jnp.zeros((8, 8)), -1e-3, 1e-3, 1, 1),
     ValueError, "visc"),
    ("solve_vorticity dt<0", lambda: solve_vorticity(jnp.zeros((8, 8)), jnp.zeros((8, 8)), 1e-3, -1e-3, 1, 1),
     ValueError, "dt"),
    ("solve_vorticity records=0", lambda: solve_vorticity(jnp.zeros((8, 8)), jnp.zeros((8, 8)), 1e-3, 1e-3, 0, 1),
     ValueError, "num_records"),
    ("solve_vorticity NaN w0", lambda: solve_vorticity(jnp.full((8, 8), jnp.nan), jnp.zeros((8, 8)), 1e-3, 1e-3,
                                                       1, 1), ValueError, "w0 must be finite"),
    ("ns_dataset dt=0", lambda: navier_stokes_dataset(jax.random.key(0), 1, 8, dt=0.0), ValueError, "dt"),
    ("cache_path ../ tag", lambda: cache_path("darcy", {"tag": "../../../tmp/evil"}), ValueError,
     "no path separators"),
    ("cache_path slash tag", lambda: cache_path("darcy", {"tag": "a/b"}), ValueError, "no path separators"),
    ("cache_path .. tag", lambda: cache_path("darcy", {"tag": ".."}), ValueError, r"'\.\.'"),
    ("cache_path bad key", lambda: cache_path("darcy", {"../k": 1}), ValueError, "parameter key"),
    ("cache_path name", lambda: cache_path("../darcy", {"n": 1}), ValueError, "name must be"),
    ("LSM size does not fit", lambda: jax.eval_shape(LSM(1, 8, 4, patch_size=4).init, jax.random.key(0),
                                                     jax.ShapeDtypeStruct((1, 32, 32, 1), jnp.float32)),
     ValueError, "multiple of patch_size"),
]


@pytest.mark.parametrize("thunk,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clear_error(thunk, exc, match):
    with pytest.raises(exc, match=match):
        thunk()


def test_cache_path_stays_inside_the_cache_directory(tmp_path):
    p = cache_path("darcy", {"n": 3, "res": 16, "tag": "v1.2-b"}, tmp_path)
    assert p.parent == tmp_path and p.name == "darcy_n-3_res-16_tag-v1.2-b.npz"
