"""LightSB (P25): closed forms, conditional plan, SDE endpoints, training and input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generative import lightsb


def _random_spd(rng, d, floor=0.3):
    m = rng.normal(size=(d, d))
    return m @ m.T / d + floor * np.eye(d)


def _random_params(seed, d, k, eps, diagonal):
    rng = np.random.default_rng(seed)
    params = lightsb.init(jax.random.key(seed), rng.normal(size=(k, d)).astype(np.float32),
                          epsilon=eps, n_components=k, diagonal=diagonal, s_init=0.5)
    lower = None if diagonal else jnp.asarray(0.3 * rng.normal(size=(k, d, d)), jnp.float32)
    return params.replace(
        log_alpha_raw=jnp.asarray(eps * rng.normal(size=k), jnp.float32),
        log_s=jnp.asarray(rng.normal(scale=0.3, size=(k, d)), jnp.float32) + jnp.log(0.5),
        lower=lower,
    )


@settings(max_examples=15, deadline=None)
@given(d=st.integers(1, 5), eps=st.floats(0.01, 5.0), seed=st.integers(0, 10_000))
def test_gaussian_closed_form_is_an_entropic_plan(d, eps, seed):
    """The regression slope of the closed-form plan equals Cov(y|x)/eps (pi ∝ exp(<x,y>/eps) v(y))."""
    rng = np.random.default_rng(seed)
    a, b = _random_spd(rng, d), _random_spd(rng, d)
    slope, _, cond = lightsb.gaussian_eot_conditional(np.zeros(d), a, rng.normal(size=d), b, eps)
    np.testing.assert_allclose(slope, cond / eps, rtol=1e-3, atol=1e-4)
    assert np.all(np.linalg.eigvalsh(cond) > 0)


def test_closed_form_limits():
    """eps -> infinity gives independence (slope 0, cond cov B); the OT map is recovered as eps -> 0."""
    rng = np.random.default_rng(1)
    a, b = _random_spd(rng, 3), _random_spd(rng, 3)
    slope, _, cond = lightsb.gaussian_eot_conditional(np.zeros(3), a, np.zeros(3), b, 1e5)
    np.testing.assert_allclose(cond, b, atol=1e-3)
    slope, _, cond = lightsb.gaussian_eot_conditional(np.zeros(3), a, np.zeros(3), b, 1e-6)
    a_half = np.real(__import__("scipy").linalg.sqrtm(a))
    a_half_inv = np.linalg.inv(a_half)
    monge = a_half_inv @ np.real(__import__("scipy").linalg.sqrtm(a_half @ b @ a_half)) @ a_half_inv
    np.testing.assert_allclose(slope, monge, atol=1e-4)
    assert np.abs(cond).max() < 1e-4


@pytest.mark.parametrize("diagonal", [True, False])
def test_conditional_plan_matches_quadrature_in_1d(diagonal):
    """In 1-D, pi(y|x) = exp(xy/eps) v(y) / c(x): log c and the moments agree with quadrature."""
    params = _random_params(3, 1, 4, 0.4, diagonal)
    y = jnp.linspace(-15, 15, 20001)[:, None]
    log_v = lightsb.log_potential(params, y)
    x = jnp.array([[-0.7], [0.0], [1.1]])
    log_dens = x[:, :1] * y[:, 0][None] / params.epsilon + log_v[None]
    dy = float(y[1, 0] - y[0, 0])
    log_c_num = jax.nn.logsumexp(log_dens, axis=1) + np.log(dy)
    np.testing.assert_allclose(lightsb.log_c(params, x), log_c_num, rtol=1e-4, atol=1e-4)
    w = jnp.exp(log_dens - log_c_num[:, None]) * dy
    mean_num = w @ y[:, 0]
    var_num = w @ y[:, 0] ** 2 - mean_num**2
    mean, cov = lightsb.conditional_moments(params, x)
    np.testing.assert_allclose(mean[:, 0], mean_num, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(cov[:, 0, 0], var_num, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("diagonal", [True, False])
def test_sample_plan_and_sde_endpoints_match_conditional_moments(diagonal):
    params = _random_params(5, 2, 3, 0.5, diagonal)
    x = jnp.array([[0.3, -0.2], [-1.0, 0.5]])
    mean, cov = lightsb.conditional_moments(params, x)
    ys = lightsb.sample_plan(jax.random.key(1), params, x, 4000)
    assert ys.shape == (2, 4000, 2)
    paths = lightsb.sample_sde(jax.random.key(2), params, jnp.repeat(x, 2000, axis=0), 100)
    assert paths.shape == (4000, 101, 2)
    np.testing.assert_allclose(paths[:, 0], jnp.repeat(x, 2000, axis=0))
    ends = paths[:, -1].reshape(2, 2000, 2)
    for samples, tol in ((ys, 0.08), (ends, 0.12)):
        np.testing.assert_allclose(samples.mean(1), mean, atol=tol)
        emp = jnp.einsum("nmi,nmj->nij", samples - samples.mean(1, keepdims=True),
                         samples - samples.mean(1, keepdims=True)) / samples.shape[1]
        np.testing.assert_allclose(emp, cov, atol=tol * np.abs(cov).max() + 0.02)


def _gaussian_sampler(mean, cov):
    chol = jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32))
    mean = jnp.asarray(mean, jnp.float32)
    return lambda key, n: mean + jax.random.normal(key, (n, mean.shape[0])) @ chol.T


@pytest.mark.parametrize("eps", [0.1, pytest.param(1.0, marks=pytest.mark.slow)])
def test_fit_recovers_gaussian_entropic_plan(eps):
    """K=1 with full S contains the exact plan; the fitted mean/covariance of y|x match the closed form."""
    rng = np.random.default_rng(0)
    a, b, mb = _random_spd(rng, 2), _random_spd(rng, 2), np.array([1.0, -1.0])
    schedule = optax.cosine_decay_schedule(2e-2, 1500, alpha=0.02)
    params, losses = lightsb.fit(
        jax.random.key(0), _gaussian_sampler(np.zeros(2), a), _gaussian_sampler(mb, b),
        epsilon=eps, n_components=1, diagonal=False, steps=1500, batch_size=256,
        learning_rate=schedule, chunk=500, return_losses=True,
    )
    slope, offset, cond = lightsb.gaussian_eot_conditional(np.zeros(2), a, mb, b, eps)
    x = jnp.asarray(rng.multivariate_normal(np.zeros(2), a, size=20), jnp.float32)
    mean, cov = lightsb.conditional_moments(params, x)
    np.testing.assert_allclose(mean, x @ slope.T + offset, atol=0.1)
    np.testing.assert_allclose(cov[0], cond, atol=0.05 * np.abs(cond).max() + 0.01)
    assert losses[-200:].mean() < losses[:20].mean() - 0.5


def test_fit_from_arrays_decreases_loss_and_shapes():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(300, 2)).astype(np.float32)
    x1 = (rng.normal(size=(300, 2)) * 0.3 + 2.0).astype(np.float32)
    params, losses = lightsb.fit(jax.random.key(0), x0, x1, epsilon=0.5, n_components=4, steps=150,
                                 batch_size=64, chunk=50, return_losses=True)
    assert losses.shape == (150,)
    assert float(lightsb.loss(params, x0, x1)) < float(losses[:10].mean()) - 0.2
    assert params.r.shape == (4, 2) and params.diagonal
    assert lightsb.sample_plan(jax.random.key(1), params, x0[:3], 5).shape == (3, 5, 2)


def test_bad_input_raises():
    x0, x1 = np.zeros((10, 2)), np.zeros((10, 3))
    with pytest.raises(ValueError, match="same dimension"):
        lightsb.fit(jax.random.key(0), x0, x1, epsilon=0.1, n_components=2, steps=1)
    with pytest.raises(ValueError, match="epsilon"):
        lightsb.fit(jax.random.key(0), x0, x0, epsilon=0.0, n_components=2, steps=1)
    with pytest.raises(ValueError, match="epsilon"):
        lightsb.fit(jax.random.key(0), x0, x0, epsilon=-1.0, n_components=2, steps=1)
    with pytest.raises(ValueError, match="n_components"):
        lightsb.fit(jax.random.key(0), x0, x0, epsilon=0.1, n_components=0, steps=1)
    params = lightsb.init(jax.random.key(0), x0, epsilon=0.1, n_components=2)
    with pytest.raises(ValueError, match="shape"):
        lightsb.sample_plan(jax.random.key(0), params, np.zeros((4, 3)), 2)
    with pytest.raises(ValueError, match="shape"):
        lightsb.sample_sde(jax.random.key(0), params, np.zeros(2), 2)
    with pytest.raises(ValueError, match="n_steps"):
        lightsb.sample_sde(jax.random.key(0), params, np.zeros((1, 2)), 0)


def test_cbw2_uvp_zero_on_truth_and_matches_hand_computation():
    """Official definition: BW = 1/2|dm|^2 + 1/2 tr S1 + 1/2 tr S2 - tr sqrt(S1^1/2 S2 S1^1/2), / (1/2 Var p1)."""
    rng = np.random.default_rng(2)
    m = rng.normal(size=(4, 3))
    c = np.stack([_random_spd(rng, 3) for _ in range(4)])
    assert abs(float(lightsb.cbw2_uvp(m, c, m, c, 3.0))) < 1e-3
    # 1-D by hand: N(0, 1) vs N(1, 4): BW_half = 0.5 + 0.5 + 2 - 2 = 1; Var(p1) = 4 -> 100 * 1 / 2 = 50 %
    assert float(lightsb.cbw2_uvp(np.zeros((1, 1)), np.ones((1, 1, 1)), np.ones((1, 1)), np.full((1, 1, 1), 4.0),
                                  4.0)) == pytest.approx(50.0, rel=1e-5)
    assert float(lightsb.bures_wasserstein_sq(np.zeros(1), np.ones((1, 1)), np.ones(1), np.full((1, 1), 4.0))) \
        == pytest.approx(2.0, rel=1e-5)
    # a mean shift of 0.1 in 3 dims: BW_half = 0.015, / (0.5 * 3) -> 1 %
    assert float(lightsb.cbw2_uvp(m + 0.1, c, m, c, 3.0)) == pytest.approx(100 * 0.015 / 1.5, rel=1e-3)


def test_sample_plan_memory_is_bounded_at_paper_protocol_size():
    """1000 inputs x 1000 samples at d=64, K=50 (diagonal): compiled temporaries well under 1 GB."""
    from generative.lightsb.potential import _sample_plan_jit, plan_chunk_rows

    params = lightsb.init(jax.random.key(0), jnp.zeros((50, 64)), epsilon=0.1, n_components=50)
    x = jax.ShapeDtypeStruct((1000, 64), jnp.float32)
    chunk = plan_chunk_rows(params, 1000, 1000)
    assert chunk < 1000
    mem = _sample_plan_jit.lower(jax.random.key(0), params, x, 1000, chunk).compile().memory_analysis()
    assert mem.output_size_in_bytes == 1000 * 1000 * 64 * 4
    assert mem.temp_size_in_bytes + mem.output_size_in_bytes < 600 * 2**20, mem.temp_size_in_bytes


def test_sample_plan_chunked_matches_moments():
    params = _random_params(4, 2, 3, 0.5, True)
    x = jnp.array([[0.3, -0.2], [-1.0, 0.5], [0.1, 0.9]])
    from generative.lightsb.potential import _sample_plan_jit

    ys = _sample_plan_jit(jax.random.key(3), params, x, 3000, 1)  # one row per chunk
    mean, cov = lightsb.conditional_moments(params, x)
    np.testing.assert_allclose(ys.mean(1), mean, atol=0.08)


def test_sample_at_time_endpoints():
    params = _random_params(6, 2, 3, 0.4, False)
    x = jnp.array([[0.3, -0.2], [-1.0, 0.5]])
    key = jax.random.key(7)
    np.testing.assert_allclose(lightsb.sample_at_time(key, params, x, 0.0, 5), jnp.repeat(x[:, None], 5, 1), atol=1e-6)
    np.testing.assert_allclose(lightsb.sample_at_time(key, params, x, 1.0, 5),
                               lightsb.sample_plan(jax.random.split(key)[0], params, x, 5),
                               atol=1e-6)
    # the midpoint marginal: mean (x + E[y|x]) / 2, covariance Cov(y|x)/4 + eps/4 I
    xt = lightsb.sample_at_time(key, params, x, 0.5, 6000)
    mean, cov = lightsb.conditional_moments(params, x)
    np.testing.assert_allclose(xt.mean(1), 0.5 * (x + mean), atol=0.06)
    emp = jnp.einsum("nmi,nmj->nij", xt - xt.mean(1, keepdims=True), xt - xt.mean(1, keepdims=True)) / 6000
    np.testing.assert_allclose(emp, cov / 4 + 0.1 * jnp.eye(2), atol=0.04)


def test_fit_trains_exactly_steps():
    """steps=7 with chunk=5 makes 7 Adam updates, not 10: equal to steps=7 with chunk=7."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(64, 2)).astype(np.float32)
    x1 = (rng.normal(size=(64, 2)) + 1.0).astype(np.float32)
    kw = dict(epsilon=0.5, n_components=3, steps=7, batch_size=16)
    a = lightsb.fit(jax.random.key(0), x0, x1, chunk=5, **kw)
    b = lightsb.fit(jax.random.key(0), x0, x1, chunk=7, **kw)
    c = lightsb.fit(jax.random.key(0), x0, x1, chunk=5, **{**kw, "steps": 10})
    np.testing.assert_allclose(a.r, b.r, rtol=1e-6)
    assert not np.allclose(a.r, c.r)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_mixture_benchmark_plan_moments_match_its_sampler():
    bench = lightsb.gaussian_mixture_benchmark(0, 3, 1.0)
    x = jnp.array([[0.5, -1.0, 0.2], [2.0, 0.0, -1.0]])
    xs = jnp.repeat(x, 20000, axis=0)
    y = lightsb.sample_true_plan(jax.random.key(1), bench, xs).reshape(2, 20000, 3)
    mean, cov = lightsb.plan_moments(bench, x)
    np.testing.assert_allclose(y.mean(1), mean, atol=0.05)
    emp = jnp.einsum("nmi,nmj->nij", y - y.mean(1, keepdims=True), y - y.mean(1, keepdims=True)) / 20000
    np.testing.assert_allclose(emp, cov, atol=0.08)
    # it is an entropic plan: slope of E[y|x] is Cov(y|x)/eps (finite differences, eps = 1)
    h = 1e-3
    e0 = jnp.eye(3)[0] * h
    m_plus, _ = lightsb.plan_moments(bench, x[:1] + e0)
    m_minus, _ = lightsb.plan_moments(bench, x[:1] - e0)
    np.testing.assert_allclose((m_plus - m_minus)[0] / (2 * h), cov[0, :, 0], atol=2e-2)
