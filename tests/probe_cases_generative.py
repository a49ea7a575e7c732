"""Bad-input cases for the public API of ``generative`` (table of tests/test_api_probe.py).

Row: ``(entry, label, thunk, names[, heavy])`` as in probe_cases_sparsejax.py.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import pointcloud
from ott.problems.linear import linear_problem

from generative import diffusion, lightsb, ot, pde

NAN = float("nan")
KEY = jax.random.PRNGKey(0)
X2 = np.zeros((4, 2), np.float32)
X3 = np.zeros((4, 3), np.float32)
NAN_X2 = np.array([[0.0, np.nan], [1.0, 2.0]], np.float32)
HS = jax.random.normal(KEY, (6, 3, 4))          # (examples, timesteps, features)
SCHED = diffusion.linear_schedule(20)
EYE2 = np.eye(2, dtype=np.float32)
SPARSE_PLAN = ot.SparsePlan(jnp.arange(5), jnp.arange(5), jnp.full(5, 0.2))


def lazy(f):
    return functools.cache(f)


def _eps_fn(x, t, dh):
    return jnp.zeros_like(x), None


@lazy
def lsb():
    return lightsb.init(KEY, np.ones((3, 2), np.float32), epsilon=0.1, n_components=3)


@lazy
def bench():
    return lightsb.gaussian_mixture_benchmark(0, 2, 0.1, n_modes=2)


def _prob(a=None, b=None, eps=0.1, n=5):
    rng = np.random.default_rng(0)
    geom = pointcloud.PointCloud(jnp.asarray(rng.uniform(size=(n, 2))), jnp.asarray(rng.uniform(size=(n, 2))),
                                 epsilon=eps)
    return linear_problem.LinearProblem(geom, a=None if a is None else jnp.asarray(a),
                                        b=None if b is None else jnp.asarray(b))


@lazy
def geom():
    return _prob().geom


@lazy
def plan():
    return jnp.full((5, 5), 1 / 25)


def _eps_h(x, t, dh):
    """A denoiser with an h-code (the first two features), shifted by ``dh``."""
    h = jnp.tanh(x[..., :2]) + (0.0 if dh is None else dh)
    return jnp.zeros_like(x) + h.sum(-1, keepdims=True), h


@lazy
def trajectory():
    return diffusion.ddim_sample(_eps_h, SCHED, jnp.ones((1, 4)), 2)


def _init(module, *args):
    return module.init(KEY, *args)


CASES = [
    # ---- generative.diffusion
    ("generative.diffusion.linear_schedule", "beta_end > 1", lambda: diffusion.linear_schedule(10, beta_end=2.0),
     "beta_end"),
    ("generative.diffusion.linear_schedule", "beta_start > beta_end", lambda: diffusion.linear_schedule(
        10, beta_start=0.5, beta_end=0.1), "beta_start"),
    ("generative.diffusion.cosine_schedule", "T 0", lambda: diffusion.cosine_schedule(0), "num_timesteps"),
    ("generative.diffusion.cosine_schedule", "max_beta > 1", lambda: diffusion.cosine_schedule(10, max_beta=1.5),
     "max_beta"),
    ("generative.diffusion.make_schedule", "unknown kind", lambda: diffusion.make_schedule("bogus", 10), "kind"),
    ("generative.diffusion.make_schedule", "float T", lambda: diffusion.make_schedule("linear", 10.5),
     "num_timesteps"),
    ("generative.diffusion.q_sample", "noise wrong shape", lambda: diffusion.q_sample(
        SCHED, jnp.zeros((2, 3)), jnp.array([0, 1]), jnp.zeros((2, 4))), "noise"),
    ("generative.diffusion.q_sample", "t wrong length", lambda: diffusion.q_sample(
        SCHED, jnp.zeros((2, 3)), jnp.array([0, 1, 2]), jnp.zeros((2, 3))), r"\bt\b"),
    ("generative.diffusion.ddpm_loss", "NaN x0", lambda: diffusion.ddpm_loss(
        lambda x, t: jnp.zeros_like(x), SCHED, jnp.full((2, 3), NAN), KEY), "x0"),
    ("generative.diffusion.ddpm_loss", "scalar x0", lambda: diffusion.ddpm_loss(
        lambda x, t: jnp.zeros_like(x), SCHED, jnp.float32(1.0), KEY), "x0"),
    ("generative.diffusion.make_ddpm_train_step", "apply_fn not callable", lambda: diffusion.make_ddpm_train_step(
        "unet", None, SCHED), "apply_fn"),
    ("generative.diffusion.make_ddpm_train_step", "schedule not a schedule", lambda: diffusion.make_ddpm_train_step(
        lambda p, x, t: x, None, "linear"), "schedule"),
    ("generative.diffusion.UNet", "channels empty", lambda: _init(diffusion.UNet(channels=(), time_dim=4),
                                                                 jnp.zeros((1, 8, 8, 1)), jnp.zeros(1, int)),
     "channels", True),
    ("generative.diffusion.UNet", "time_dim odd", lambda: _init(diffusion.UNet(channels=(4,), time_dim=3),
                                                               jnp.zeros((1, 8, 8, 1)), jnp.zeros(1, int)),
     "time_dim|dim", True),
    ("generative.diffusion.timestep_embedding", "dim odd", lambda: diffusion.timestep_embedding(jnp.arange(3), 5),
     "dim"),
    ("generative.diffusion.timestep_embedding", "max_period 0", lambda: diffusion.timestep_embedding(
        jnp.arange(3), 4, max_period=0.0), "max_period"),
    ("generative.diffusion.unet_eps_fn", "model not a UNet", lambda: diffusion.unet_eps_fn("unet", {}), "model"),
    ("generative.diffusion.ddim_sample", "num_steps 0", lambda: diffusion.ddim_sample(
        _eps_fn, SCHED, jnp.zeros((1, 4)), 0), "num_steps"),
    ("generative.diffusion.ddim_sample", "eta < 0", lambda: diffusion.ddim_sample(
        _eps_fn, SCHED, jnp.zeros((1, 4)), 2, eta=-1.0), "eta"),
    ("generative.diffusion.ddim_invert", "num_steps 0", lambda: diffusion.ddim_invert(
        _eps_fn, SCHED, jnp.zeros((1, 4)), 0), "num_steps"),
    ("generative.diffusion.ddim_invert", "NaN x0", lambda: diffusion.ddim_invert(
        _eps_fn, SCHED, jnp.full((1, 4), NAN), 2), "x0"),
    ("generative.diffusion.ddim_sigma", "alpha_bar > 1", lambda: diffusion.ddim_sigma(
        jnp.float32(1.5), jnp.float32(0.5), 0.0), "alpha_bar"),
    ("generative.diffusion.ddim_sigma", "eta < 0", lambda: diffusion.ddim_sigma(
        jnp.float32(0.5), jnp.float32(0.6), -1.0), "eta"),
    ("generative.diffusion.ddim_timesteps", "num_steps > T", lambda: diffusion.ddim_timesteps(10, 20), "num_steps"),
    ("generative.diffusion.ddim_timesteps", "num_steps 0", lambda: diffusion.ddim_timesteps(10, 0), "num_steps"),
    ("generative.diffusion.pca_directions", "num_components 0", lambda: diffusion.pca_directions(HS, 0),
     "num_components"),
    ("generative.diffusion.pca_directions", "hs rank 1", lambda: diffusion.pca_directions(jnp.ones(4), 1), "hs"),
    ("generative.diffusion.jacobian_svd", "num_vectors 0", lambda: diffusion.jacobian_svd(
        lambda h: h, jnp.ones(4), 0, KEY), "num_vectors"),
    ("generative.diffusion.jacobian_svd", "num_iters 0", lambda: diffusion.jacobian_svd(
        lambda h: h, jnp.ones(4), 1, KEY, num_iters=0), "num_iters"),
    ("generative.diffusion.denoiser_jacobian_directions", "index out of range",
     lambda: diffusion.denoiser_jacobian_directions(_eps_h, trajectory(), 99, 1, KEY), "index"),
    ("generative.diffusion.denoiser_jacobian_directions", "num_vectors 0",
     lambda: diffusion.denoiser_jacobian_directions(_eps_h, trajectory(), 0, 0, KEY), "num_vectors"),
    ("generative.diffusion.global_direction_at", "step past end", lambda: diffusion.global_direction_at(
        jnp.ones((2, 3, 4)), 99), "step"),
    ("generative.diffusion.global_direction_at", "vectors rank 1", lambda: diffusion.global_direction_at(
        jnp.ones(4), 0), "vectors"),
    ("generative.diffusion.mean_difference_direction", "labels wrong length",
     lambda: diffusion.mean_difference_direction(HS, np.array([0, 1, 0])), "labels"),
    ("generative.diffusion.mean_difference_direction", "one class only",
     lambda: diffusion.mean_difference_direction(HS, np.zeros(6, int)), "labels"),
    ("generative.diffusion.extreme_scores_direction", "num_examples 0", lambda: diffusion.extreme_scores_direction(
        HS, np.arange(6.0), 0), "num_examples"),
    ("generative.diffusion.extreme_scores_direction", "scores wrong length",
     lambda: diffusion.extreme_scores_direction(HS, np.arange(4.0), 1), "scores"),
    ("generative.diffusion.project_out", "others wrong dim", lambda: diffusion.project_out(
        jnp.ones((3, 4)), jnp.ones((2, 3, 5))), "others"),
    ("generative.diffusion.project_out", "NaN direction", lambda: diffusion.project_out(
        jnp.full((3, 4), NAN), jnp.ones((1, 3, 4))), "direction"),
    ("generative.diffusion.scale_to_h_std", "hs mismatch", lambda: diffusion.scale_to_h_std(
        jnp.ones((3, 4)), jnp.ones((6, 3, 5))), "hs|direction"),
    ("generative.diffusion.scale_to_h_std", "zero direction", lambda: diffusion.scale_to_h_std(
        jnp.zeros((3, 4)), HS), "direction"),
    ("generative.diffusion.edit_along_direction", "num_steps 0", lambda: diffusion.edit_along_direction(
        _eps_fn, SCHED, jnp.zeros((1, 4, 4, 1)), jnp.ones((2, 3)), [1.0], 0), "num_steps"),
    ("generative.diffusion.edit_along_direction", "NaN alpha", lambda: diffusion.edit_along_direction(
        _eps_fn, SCHED, jnp.zeros((1, 4, 4, 1)), jnp.ones((2, 3)), [NAN], 2), "alphas"),
    ("generative.diffusion.factor_ranges", "image_size 0", lambda: diffusion.factor_ranges(0), "image_size"),
    ("generative.diffusion.factor_ranges", "float image_size", lambda: diffusion.factor_ranges(8.5), "image_size"),
    ("generative.diffusion.sample_factors", "n 0", lambda: diffusion.sample_factors(KEY, 0), r"\bn\b"),
    ("generative.diffusion.sample_factors", "corr > 1", lambda: diffusion.sample_factors(
        KEY, 4, size_brightness_corr=2.0), "size_brightness_corr"),
    ("generative.diffusion.render_shapes", "factors wrong dim", lambda: diffusion.render_shapes(jnp.ones((2, 3))),
     "factors"),
    ("generative.diffusion.render_shapes", "image_size 0", lambda: diffusion.render_shapes(
        diffusion.sample_factors(KEY, 2), 0), "image_size"),
    ("generative.diffusion.make_shapes_dataset", "n 0", lambda: diffusion.make_shapes_dataset(KEY, 0), r"\bn\b"),
    ("generative.diffusion.make_shapes_dataset", "float n", lambda: diffusion.make_shapes_dataset(KEY, 2.5),
     r"\bn\b"),
    ("generative.diffusion.estimate_factors", "images rank 2", lambda: diffusion.estimate_factors(
        jnp.ones((4, 4))), "images"),
    ("generative.diffusion.estimate_factors", "floor < 0", lambda: diffusion.estimate_factors(
        jnp.ones((2, 8, 8, 1)), floor=-1.0), "floor"),
    # ---- generative.lightsb
    ("generative.lightsb.gaussian_mixture_benchmark", "epsilon 0", lambda: lightsb.gaussian_mixture_benchmark(
        0, 2, 0.0), "epsilon"),
    ("generative.lightsb.gaussian_mixture_benchmark", "n_modes 0", lambda: lightsb.gaussian_mixture_benchmark(
        0, 2, 0.1, n_modes=0), "n_modes"),
    ("generative.lightsb.plan_moments", "x wrong dim", lambda: lightsb.plan_moments(bench(), X3), r"\bx\b"),
    ("generative.lightsb.plan_moments", "NaN x", lambda: lightsb.plan_moments(bench(), NAN_X2), r"\bx\b"),
    ("generative.lightsb.sample_true_plan", "x wrong dim", lambda: lightsb.sample_true_plan(KEY, bench(), X3),
     r"\bx\b"),
    ("generative.lightsb.sample_true_plan", "NaN x", lambda: lightsb.sample_true_plan(KEY, bench(), NAN_X2),
     r"\bx\b"),
    ("generative.lightsb.source_sampler", "not a benchmark", lambda: lightsb.source_sampler("bench"), "bench"),
    ("generative.lightsb.target_sampler", "not a benchmark", lambda: lightsb.target_sampler(None), "bench"),
    ("generative.lightsb.target_variance", "num_samples 0", lambda: lightsb.target_variance(bench(), KEY, 0),
     "num_samples"),
    ("generative.lightsb.target_variance", "float num_samples", lambda: lightsb.target_variance(
        bench(), KEY, 10.5), "num_samples"),
    ("generative.lightsb.bures_wasserstein_sq", "cov not square", lambda: lightsb.bures_wasserstein_sq(
        np.zeros(2), np.ones((2, 3)), np.zeros(2), EYE2), "cov1"),
    ("generative.lightsb.bures_wasserstein_sq", "cov not PSD", lambda: lightsb.bures_wasserstein_sq(
        np.zeros(2), -EYE2, np.zeros(2), EYE2), "cov1"),
    ("generative.lightsb.cbw2_uvp", "NaN mean", lambda: lightsb.cbw2_uvp(
        NAN_X2, np.broadcast_to(EYE2, (2, 2, 2)), NAN_X2 * 0, np.broadcast_to(EYE2, (2, 2, 2)), 1.0), "mean_hat"),
    ("generative.lightsb.cbw2_uvp", "shapes differ", lambda: lightsb.cbw2_uvp(
        X2, np.broadcast_to(EYE2, (4, 2, 2)), X3, np.broadcast_to(np.eye(3), (4, 3, 3)), 1.0), "mean|cov"),
    ("generative.lightsb.conditional_components", "x wrong dim", lambda: lightsb.conditional_components(lsb(), X3),
     r"\bx\b"),
    ("generative.lightsb.conditional_components", "NaN x", lambda: lightsb.conditional_components(lsb(), NAN_X2),
     r"\bx\b"),
    ("generative.lightsb.conditional_moments", "x wrong dim", lambda: lightsb.conditional_moments(lsb(), X3),
     r"\bx\b"),
    ("generative.lightsb.conditional_moments", "NaN x", lambda: lightsb.conditional_moments(lsb(), NAN_X2),
     r"\bx\b"),
    ("generative.lightsb.covariance_factors", "not params", lambda: lightsb.covariance_factors("p"), "params"),
    ("generative.lightsb.drift", "x wrong dim", lambda: lightsb.drift(lsb(), X3, 0.5), r"\bx\b"),
    ("generative.lightsb.fit", "n_components 0", lambda: lightsb.fit(KEY, X2, X2, epsilon=0.1, n_components=0,
                                                                    steps=1), "n_components"),
    ("generative.lightsb.fit", "batch_size 0", lambda: lightsb.fit(KEY, X2, X2, epsilon=0.1, n_components=2,
                                                                  steps=1, batch_size=0), "batch_size"),
    ("generative.lightsb.fit", "x0 x1 dims differ", lambda: lightsb.fit(KEY, X2, X3, epsilon=0.1, n_components=2,
                                                                       steps=1), "x1|x0"),
    ("generative.lightsb.gaussian_eot_conditional", "epsilon 0", lambda: lightsb.gaussian_eot_conditional(
        np.zeros(2), EYE2, np.zeros(2), EYE2, 0.0), "epsilon"),
    ("generative.lightsb.gaussian_eot_conditional", "cov wrong shape", lambda: lightsb.gaussian_eot_conditional(
        np.zeros(2), np.eye(3), np.zeros(2), EYE2, 0.1), "cov_a"),
    ("generative.lightsb.init", "n_components 0", lambda: lightsb.init(KEY, X2, epsilon=0.1, n_components=0),
     "n_components"),
    ("generative.lightsb.init", "x1_init rank 1", lambda: lightsb.init(KEY, np.ones(3), epsilon=0.1,
                                                                      n_components=2), "x1_init"),
    ("generative.lightsb.log_c", "x wrong dim", lambda: lightsb.log_c(lsb(), X3), r"\bx\b"),
    ("generative.lightsb.log_c", "NaN x", lambda: lightsb.log_c(lsb(), NAN_X2), r"\bx\b"),
    ("generative.lightsb.log_potential", "y wrong dim", lambda: lightsb.log_potential(lsb(), X3), r"\by\b"),
    ("generative.lightsb.log_potential", "NaN y", lambda: lightsb.log_potential(lsb(), NAN_X2), r"\by\b"),
    ("generative.lightsb.loss", "x1 wrong dim", lambda: lightsb.loss(lsb(), X2, X3), "x1"),
    ("generative.lightsb.loss", "NaN x0", lambda: lightsb.loss(lsb(), NAN_X2, X2[:2]), "x0"),
    ("generative.lightsb.plan_chunk_rows", "num_samples 0", lambda: lightsb.plan_chunk_rows(lsb(), 0, 4),
     "num_samples"),
    ("generative.lightsb.plan_chunk_rows", "budget 0", lambda: lightsb.plan_chunk_rows(lsb(), 2, 4, budget=0),
     "budget"),
    ("generative.lightsb.sample_at_time", "num_samples 0", lambda: lightsb.sample_at_time(
        KEY, lsb(), X2, 0.5, num_samples=0), "num_samples"),
    ("generative.lightsb.sample_at_time", "x wrong dim", lambda: lightsb.sample_at_time(KEY, lsb(), X3, 0.5),
     r"\bx\b"),
    ("generative.lightsb.sample_plan", "num_samples 0", lambda: lightsb.sample_plan(KEY, lsb(), X2, 0),
     "num_samples"),
    ("generative.lightsb.sample_plan", "x wrong dim", lambda: lightsb.sample_plan(KEY, lsb(), X3, 2), r"\bx\b"),
    ("generative.lightsb.sample_sde", "float n_steps", lambda: lightsb.sample_sde(KEY, lsb(), X2, 2.5), "n_steps"),
    ("generative.lightsb.sample_sde", "x wrong dim", lambda: lightsb.sample_sde(KEY, lsb(), X3, 2), r"\bx\b"),
    # ---- generative.ot
    ("generative.ot.SinkhornNewtonSparse", "threshold < 0", lambda: ot.SinkhornNewtonSparse(threshold=-1.0),
     "threshold"),
    ("generative.ot.SinkhornNewtonSparse", "sparsity > 1", lambda: ot.SinkhornNewtonSparse(sparsity=1.5),
     "sparsity"),
    ("generative.ot.SinkhornNewtonSparse", "negative marginal", lambda: ot.SinkhornNewtonSparse()(
        _prob(a=[0.4, 0.4, -0.2, 0.2, 0.2], b=np.full(5, 0.2))), r"\ba\b"),
    ("generative.ot.check_balanced", "unbalanced", lambda: ot.check_balanced(
        _prob(a=np.full(5, 0.3), b=np.full(5, 0.2))), r"\ba\b|\bb\b|mass"),
    ("generative.ot.check_balanced", "rtol < 0", lambda: ot.check_balanced(_prob(), rtol=-1.0), "rtol"),
    ("generative.ot.compare_with_sinkhorn", "max_iterations 0", lambda: ot.compare_with_sinkhorn(
        _prob(), ot.SinkhornNewtonSparse(), max_iterations=0), "max_iterations"),
    ("generative.ot.compare_with_sinkhorn", "repeats 0", lambda: ot.compare_with_sinkhorn(
        _prob(), ot.SinkhornNewtonSparse(), repeats=0), "repeats"),
    ("generative.ot.lyapunov", "a wrong length", lambda: ot.lyapunov(
        geom(), jnp.full(4, 0.25), jnp.full(5, 0.2), jnp.zeros(5), jnp.zeros(5)), r"\ba\b"),
    ("generative.ot.lyapunov", "NaN f", lambda: ot.lyapunov(
        geom(), jnp.full(5, 0.2), jnp.full(5, 0.2), jnp.full(5, NAN), jnp.zeros(5)), r"\bf\b"),
    ("generative.ot.marginal_error", "f wrong length", lambda: ot.marginal_error(
        geom(), jnp.full(5, 0.2), jnp.full(5, 0.2), jnp.zeros(4), jnp.zeros(5)), r"\bf\b"),
    ("generative.ot.marginal_error", "NaN g", lambda: ot.marginal_error(
        geom(), jnp.full(5, 0.2), jnp.full(5, 0.2), jnp.zeros(5), jnp.full(5, NAN)), r"\bg\b"),
    ("generative.ot.num_kept", "empty shape", lambda: ot.num_kept((0, 10), 0.5), "shape"),
    ("generative.ot.num_kept", "float shape", lambda: ot.num_kept((2.5, 10), 0.5), "shape"),
    ("generative.ot.sparse_hessian_matvec", "row_sums wrong length", lambda: ot.sparse_hessian_matvec(
        SPARSE_PLAN, jnp.ones(4), jnp.ones(5), 0.1, (jnp.ones(5), jnp.ones(5))), "row_sums"),
    ("generative.ot.sparse_hessian_matvec", "epsilon 0", lambda: ot.sparse_hessian_matvec(
        SPARSE_PLAN, jnp.ones(5), jnp.ones(5), 0.0, (jnp.ones(5), jnp.ones(5))), "epsilon"),
    ("generative.ot.sparsify", "k 0", lambda: ot.sparsify(plan(), 0), r"\bk\b"),
    ("generative.ot.sparsify", "NaN plan", lambda: ot.sparsify(plan().at[0, 0].set(NAN), 5), "plan"),
    ("generative.ot.sparsify_level", "k > size", lambda: ot.sparsify_level(plan(), 30), r"\bk\b"),
    ("generative.ot.sparsify_level", "mass_tol > 1", lambda: ot.sparsify_level(plan(), 5, mass_tol=1.5),
     "mass_tol"),
    # ---- generative.pde
    ("generative.pde.gaussian_random_field", "alpha < 0", lambda: pde.gaussian_random_field(KEY, (8, 8), -1.0, 3.0),
     "alpha"),
    ("generative.pde.gaussian_random_field", "empty shape", lambda: pde.gaussian_random_field(KEY, (0, 8), 2.0, 3.0),
     "shape"),
    ("generative.pde.fno_sigma", "tau < 0", lambda: pde.fno_sigma(2.0, -1.0, 2), "tau"),
    ("generative.pde.fno_sigma", "dim 0", lambda: pde.fno_sigma(2.0, 3.0, 0), "dim"),
    ("generative.pde.darcy_coefficient", "resolution 0", lambda: pde.darcy_coefficient(KEY, 0), "resolution"),
    ("generative.pde.darcy_coefficient", "NaN high", lambda: pde.darcy_coefficient(KEY, 8, high=NAN), "high"),
    ("generative.pde.darcy_operator", "u wrong shape", lambda: pde.darcy_operator(
        jnp.ones((6, 6)), jnp.ones((3, 3))), "u_interior"),
    ("generative.pde.darcy_operator", "NaN a", lambda: pde.darcy_operator(
        jnp.ones((6, 6)).at[0, 0].set(NAN), jnp.ones((4, 4))), r"\ba\b"),
    ("generative.pde.face_coefficients", "a rank 1", lambda: pde.face_coefficients(jnp.ones(6)), r"\ba\b"),
    ("generative.pde.face_coefficients", "NaN a", lambda: pde.face_coefficients(jnp.ones((6, 6)).at[1, 1].set(NAN)),
     r"\ba\b"),
    ("generative.pde.solve_darcy", "f wrong shape", lambda: pde.solve_darcy(jnp.full((6, 6), 2.0), jnp.ones((3, 3))),
     r"\bf\b"),
    ("generative.pde.solve_darcy", "float maxiter", lambda: pde.solve_darcy(jnp.full((6, 6), 2.0), maxiter=2.5),
     "maxiter"),
    ("generative.pde.darcy_dataset", "num_samples 0", lambda: pde.darcy_dataset(KEY, 0, 8), "num_samples"),
    ("generative.pde.darcy_dataset", "chunk 0", lambda: pde.darcy_dataset(KEY, 2, 8, chunk=0), "chunk"),
    ("generative.pde.fno_forcing", "resolution 0", lambda: pde.fno_forcing(0), "resolution"),
    ("generative.pde.fno_forcing", "float resolution", lambda: pde.fno_forcing(8.5), "resolution"),
    ("generative.pde.solve_vorticity", "forcing wrong shape", lambda: pde.solve_vorticity(
        jnp.zeros((8, 8)), jnp.zeros((4, 4)), 1e-3, 1e-3, 1, 1), "forcing"),
    ("generative.pde.solve_vorticity", "NaN w0", lambda: pde.solve_vorticity(
        jnp.full((8, 8), NAN), jnp.zeros((8, 8)), 1e-3, 1e-3, 1, 1), "w0"),
    ("generative.pde.navier_stokes_dataset", "num_samples 0", lambda: pde.navier_stokes_dataset(KEY, 0, 8),
     "num_samples"),
    ("generative.pde.navier_stokes_dataset", "visc < 0", lambda: pde.navier_stokes_dataset(KEY, 1, 8, visc=-1.0),
     "visc"),
    ("generative.pde.solve_burgers", "NaN u0", lambda: pde.solve_burgers(jnp.full(8, NAN), 0.1, 1e-3, 2), "u0"),
    ("generative.pde.solve_burgers", "u0 rank 2", lambda: pde.solve_burgers(jnp.zeros((2, 2, 8)), 0.1, 1e-3, 2),
     "u0"),
    ("generative.pde.burgers_dataset", "dt < 0", lambda: pde.burgers_dataset(KEY, 1, 8, dt=-1.0), "dt"),
    ("generative.pde.burgers_dataset", "resolution 0", lambda: pde.burgers_dataset(KEY, 1, 0), "resolution"),
    ("generative.pde.cache_path", "name with ..", lambda: pde.cache_path("../evil", {}), "name"),
    ("generative.pde.cache_path", "params not a dict", lambda: pde.cache_path("darcy", [1, 2]), "params"),
    ("generative.pde.cached", "build not callable", lambda: pde.cached("darcy", {"n": 1}, "build",
                                                                     data_dir="/tmp/probe_cache"), "build"),
    ("generative.pde.cached", "build returns non-dict", lambda: pde.cached(
        "probe", {"n": 2}, lambda: [1, 2], data_dir="/tmp/probe_cache"), "build"),
    ("generative.pde.relative_l2", "shapes differ", lambda: pde.relative_l2(jnp.ones((2, 4)), jnp.ones((2, 5))),
     "target|pred"),
    ("generative.pde.relative_l2", "eps < 0", lambda: pde.relative_l2(jnp.ones((2, 4)), jnp.ones((2, 4)), eps=-1.0),
     "eps"),
    ("generative.pde.LSM", "width 0", lambda: _init(pde.LSM(out_channels=1, width=0, num_scales=1, num_basis=2,
                                                            patch_size=2, num_tokens=2, num_heads=1),
                                                    jnp.ones((1, 8, 8, 1))), "width", True),
    ("generative.pde.LSM", "grid not divisible", lambda: _init(pde.LSM(out_channels=1, width=4, num_scales=2,
                                                                       num_basis=2, patch_size=2, num_tokens=2,
                                                                       num_heads=1), jnp.ones((1, 7, 7, 1))),
     "x|pad_to_fit|divisible", True),
    ("generative.pde.UNet", "out_channels 0", lambda: _init(pde.UNet(out_channels=0, width=4, num_scales=1),
                                                           jnp.ones((1, 8, 8, 1))), "out_channels", True),
    ("generative.pde.UNet", "num_scales 0", lambda: _init(pde.UNet(out_channels=1, width=4, num_scales=0),
                                                         jnp.ones((1, 8, 8, 1))), "num_scales", True),
    ("generative.pde.NeuralSpectralBlock", "num_basis 0", lambda: _init(pde.NeuralSpectralBlock(
        num_basis=0, patch_size=2, num_tokens=2, num_heads=1), jnp.ones((1, 4, 4, 4))), "num_basis", True),
    ("generative.pde.NeuralSpectralBlock", "patch not dividing", lambda: _init(pde.NeuralSpectralBlock(
        num_basis=2, patch_size=3, num_tokens=2, num_heads=1), jnp.ones((1, 4, 4, 4))), "patch", True),
    ("generative.pde.patchify", "patch not dividing", lambda: pde.patchify(jnp.ones((1, 4, 4, 2)), 3), "patch"),
    ("generative.pde.patchify", "patch 0", lambda: pde.patchify(jnp.ones((1, 4, 4, 2)), 0), "patch"),
    ("generative.pde.unpatchify", "batch mismatch", lambda: pde.unpatchify(
        pde.patchify(jnp.ones((1, 4, 4, 2)), 2), 3, (4, 4), 2), "batch|x"),
    ("generative.pde.unpatchify", "patch 0", lambda: pde.unpatchify(jnp.ones((4, 4, 2)), 1, (4, 4), 0), "patch"),
    ("generative.pde.trigonometric_basis", "num_basis 0", lambda: pde.trigonometric_basis(jnp.ones((2, 3)), 0),
     "num_basis"),
    ("generative.pde.trigonometric_basis", "NaN z", lambda: pde.trigonometric_basis(jnp.full((2, 3), NAN), 2),
     r"\bz\b"),
    ("generative.pde.FNO", "modes 0", lambda: _init(pde.FNO(out_channels=1, width=4, modes=0, depth=1),
                                                    jnp.ones((1, 8, 8, 1))), "modes", True),
    ("generative.pde.FNO", "modes > grid/2", lambda: _init(pde.FNO(out_channels=1, width=4, modes=9, depth=1),
                                                           jnp.ones((1, 8, 8, 1))), "modes", True),
    ("generative.pde.SpectralConv", "features 0", lambda: _init(pde.SpectralConv(features=0, modes=2),
                                                                jnp.ones((1, 8, 8, 2))), "features", True),
    ("generative.pde.SpectralConv", "modes 0", lambda: _init(pde.SpectralConv(features=2, modes=0),
                                                             jnp.ones((1, 8, 8, 2))), "modes", True),
]
