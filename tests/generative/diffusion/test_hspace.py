import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generative.diffusion import (
    UNet,
    ddim_sample,
    denoiser_jacobian_directions,
    edit_along_direction,
    extreme_scores_direction,
    global_direction_at,
    jacobian_svd,
    make_schedule,
    mean_difference_direction,
    pca_directions,
    project_out,
    scale_to_h_std,
    unet_eps_fn,
)

SCHED = make_schedule("linear", 100)


@pytest.fixture(scope="module")
def tiny():
    model = UNet(channels=(4, 8), time_dim=8)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)), jnp.zeros(1, jnp.int32))
    return unet_eps_fn(model, params)


def _abs_cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.mark.slow  # minutes on 2 CPUs; the default run checks jacobian_svd on linear maps and on the UNet below
def test_jacobian_svd_equals_exact_svd_on_tiny_unet(tiny):
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 4, 4, 1))
    t = jnp.array([30])
    _, h = tiny(x, t, None)
    f = lambda dh: tiny(x, t, dh[None])[0][0]  # noqa: E731
    h0 = jnp.zeros(h.shape[1:])
    jac = jax.jacobian(f)(h0).reshape(16, -1)  # (out, h) = (16, 2*2*8)
    u, s, vt = np.linalg.svd(np.asarray(jac, np.float64))
    res = jacobian_svd(f, h0, 3, jax.random.PRNGKey(2), num_iters=200)
    np.testing.assert_allclose(res.s, s[:3], rtol=1e-3)
    for i in range(3):
        assert _abs_cos(res.v[i], vt[i]) > 0.999
        assert _abs_cos(res.u[i], u[:, i]) > 0.999
        # a singular pair: J v = s u with the returned signs
        np.testing.assert_allclose(jac @ np.ravel(res.v[i]), res.s[i] * np.ravel(res.u[i]), atol=1e-3 * s[0])


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 10_000))
def test_jacobian_svd_of_linear_map(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(12, 9)) * np.geomspace(3.0, 0.1, 9)  # distinct singular values
    res = jacobian_svd(lambda h: jnp.asarray(a, jnp.float32) @ h.reshape(-1), jnp.zeros((3, 3)), 2, jax.random.PRNGKey(seed), num_iters=300)
    s = np.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(res.s, s[:2], rtol=1e-3)
    assert res.v.shape == (2, 3, 3) and res.u.shape == (2, 12)


@pytest.mark.slow
def test_denoiser_jacobian_directions_shapes_and_alignment(tiny):
    x_T = jax.random.normal(jax.random.PRNGKey(3), (2, 4, 4, 1))
    traj = ddim_sample(tiny, SCHED, x_T, 3)
    v, s = denoiser_jacobian_directions(tiny, traj, 1, 2, jax.random.PRNGKey(4), num_iters=50)
    assert v.shape == (2, 3) + traj.hs.shape[2:] and s.shape == (2, 3)
    assert np.all(np.asarray(s[0]) >= np.asarray(s[1]) - 1e-5)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(v).reshape(2, 3, -1), axis=-1), 1.0, rtol=1e-4)
    flat = np.asarray(v).reshape(2, 3, -1)
    assert np.all(np.einsum("ksd,kd->ks", flat, flat[:, 0]) >= 0)  # signs aligned with step 0
    with pytest.raises(ValueError):
        denoiser_jacobian_directions(tiny, traj, 5, 2, jax.random.PRNGKey(4))


def test_pca_recovers_planted_direction_and_matches_numpy():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, 2, 2))
    d /= np.linalg.norm(d)
    hs = rng.normal(size=(200, 1, 1, 1)) * 5.0 * d[None] + 0.1 * rng.normal(size=(200, 3, 2, 2))
    res = pca_directions(jnp.asarray(hs, jnp.float32), 2, per_timestep=False)
    assert res.vectors.shape == (2, 3, 2, 2)
    assert _abs_cos(res.vectors[0], d) > 0.99
    x = hs.reshape(200, -1) - hs.reshape(200, -1).mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(res.stds, s[:2] / np.sqrt(199), rtol=1e-3)
    assert _abs_cos(res.vectors[1], vt[1]) > 0.999
    np.testing.assert_allclose(res.mean, hs.mean(0), atol=1e-5)


def test_pca_per_timestep_is_pca_of_each_step():
    rng = np.random.default_rng(1)
    hs = rng.normal(size=(50, 3, 4)) * np.array([3.0, 1.0, 0.5, 0.2])
    res = pca_directions(jnp.asarray(hs, jnp.float32), 2)  # per timestep is the default (paper)
    assert res.vectors.shape == (2, 3, 4) and res.stds.shape == (2, 3)
    for step in range(3):
        x = hs[:, step] - hs[:, step].mean(0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        np.testing.assert_allclose(res.stds[:, step], s[:2] / np.sqrt(49), rtol=1e-3)
        assert _abs_cos(res.vectors[0, step], vt[0]) > 0.999
    assert np.all(np.einsum("ksd,kd->ks", np.asarray(res.vectors), np.asarray(res.vectors[:, 0])) > 0)
    with pytest.raises(ValueError):
        pca_directions(jnp.asarray(hs), 0)


def test_supervised_directions_closed_form():
    hs = np.arange(24.0).reshape(6, 2, 2)
    labels = np.array([True, False, True, False, False, True])
    np.testing.assert_allclose(mean_difference_direction(hs, labels), hs[labels].mean(0) - hs[~labels].mean(0))
    scores = np.array([0.1, 0.9, 0.5, 0.3, 0.8, 0.0])
    np.testing.assert_allclose(extreme_scores_direction(hs, scores, 2), hs[[1, 4]].mean(0) - hs[[5, 0]].mean(0))
    with pytest.raises(ValueError):
        mean_difference_direction(hs, np.ones(6, bool))
    with pytest.raises(ValueError):
        extreme_scores_direction(hs, scores, 4)
    with pytest.raises(ValueError):
        extreme_scores_direction(hs, scores[:3], 1)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_project_out_is_orthogonal_projection(seed, m):
    rng = np.random.default_rng(seed)
    n = jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)
    others = jnp.asarray(rng.normal(size=(m, 2, 5)), jnp.float32)
    p = project_out(n, others)
    np.testing.assert_allclose(np.asarray(others).reshape(m, -1) @ np.ravel(p), 0.0, atol=1e-4)
    np.testing.assert_allclose(project_out(p, others), p, atol=1e-4)  # idempotent
    # the removed part lies in the span of others
    removed = np.ravel(n - p)
    coef, *_ = np.linalg.lstsq(np.asarray(others).reshape(m, -1).T, removed, rcond=None)
    np.testing.assert_allclose(np.asarray(others).reshape(m, -1).T @ coef, removed, atol=1e-4)
    with pytest.raises(ValueError):
        project_out(n, others[:, :1])


def test_scale_to_h_std():
    rng = np.random.default_rng(2)
    hs = jnp.asarray(rng.normal(size=(100, 3, 4)) * 2.0, jnp.float32)
    d = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
    g = scale_to_h_std(d, hs)
    unit = np.ravel(g) / np.linalg.norm(g)
    assert _abs_cos(g, d) > 0.9999
    np.testing.assert_allclose(np.linalg.norm(g), np.std(np.asarray(hs).reshape(100, -1) @ unit, ddof=1), rtol=1e-4)
    p = scale_to_h_std(d, hs, per_timestep=True)
    for s in range(3):
        u = np.asarray(p[s]) / np.linalg.norm(p[s])
        np.testing.assert_allclose(np.linalg.norm(p[s]), np.std(np.asarray(hs[:, s]) @ u, ddof=1), rtol=1e-4)


@pytest.mark.slow
def test_edit_alpha_zero_is_unedited(tiny):
    x_T = jax.random.normal(jax.random.PRNGKey(6), (2, 4, 4, 1))
    base = ddim_sample(tiny, SCHED, x_T, 3, eta=0.5, key=jax.random.PRNGKey(1))
    direction = jnp.ones((3,) + base.hs.shape[2:])
    out = edit_along_direction(tiny, SCHED, x_T, direction, [0.0, 2.0], 3, eta=0.5, key=jax.random.PRNGKey(1))
    assert out.shape == (2,) + x_T.shape
    np.testing.assert_array_equal(out[0], base.x0)
    assert float(jnp.abs(out[1] - base.x0).max()) > 1e-3
    masked = edit_along_direction(tiny, SCHED, x_T, direction, [2.0], 3, step_mask=[0, 0, 0], eta=0.5, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(masked[0], base.x0)
    with pytest.raises(ValueError):
        edit_along_direction(tiny, SCHED, x_T, direction[:2], [1.0], 3)


def _gaussian_toy(schedule, dim=16):
    """Exact denoiser of x0 = s * 1 (s ~ N(0, 1)) with the sufficient statistic h = mean(x_t) as its
    bottleneck: x0_pred = E[s | h + dh] * 1, so a positive shift of h raises the image's mean."""
    def eps_fn(x, t, dh):
        a = schedule.alpha_bars[t].reshape(-1, 1)
        h = x.mean(axis=1, keepdims=True)
        m = h if dh is None else h + dh
        x0 = jnp.sqrt(a) * m / (a + (1.0 - a) / dim)
        return (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a), h

    return eps_fn


def test_supervised_edit_has_the_sign_of_its_attribute():
    """Top-minus-bottom direction of the attribute 'image mean', added with alpha > 0, raises it."""
    sched = make_schedule("linear", 50)
    eps_fn = _gaussian_toy(sched)
    x_T = jax.random.normal(jax.random.PRNGKey(0), (64, 16))
    traj = ddim_sample(eps_fn, sched, x_T, 8)
    hs = jnp.swapaxes(traj.hs, 0, 1)
    scores = np.asarray(traj.x0.mean(axis=1))
    d = extreme_scores_direction(hs, scores, 16)
    assert float(jnp.sum(d)) > 0
    out = edit_along_direction(eps_fn, sched, x_T[:8], d, jnp.array([-1.0, 0.0, 1.0]), 8)
    means = np.asarray(out.mean(axis=-1))  # (alpha, batch)
    np.testing.assert_allclose(out[1], traj.x0[:8], atol=1e-5)
    assert np.all(means[2] > means[1]) and np.all(means[1] > means[0])


def test_global_direction_at_repeats_one_step():
    v = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4)
    g = global_direction_at(v, 1)
    assert g.shape == v.shape
    np.testing.assert_array_equal(g[:, 0], v[:, 1])
    np.testing.assert_array_equal(g[:, 2], v[:, 1])
    with pytest.raises(ValueError, match="step"):
        global_direction_at(v, 3)


def test_masked_jacobian_ignores_pixels_outside_the_mask():
    """eps depends on h only through pixel 0 and pixel 1 with different gains: masking pixel 0 out
    leaves the pixel-1 direction, eq. 9-10."""
    sched = make_schedule("linear", 20)
    w0, w1 = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0])

    def eps_fn(x, t, dh):
        h = jnp.zeros((x.shape[0], 3))
        hh = h if dh is None else h + dh
        out = x.at[:, 0].add(5.0 * hh @ w0).at[:, 1].add(hh @ w1)
        return out, h

    traj = ddim_sample(eps_fn, sched, jax.random.normal(jax.random.PRNGKey(0), (1, 4)), 3)
    v, _ = denoiser_jacobian_directions(eps_fn, traj, 0, 1, jax.random.PRNGKey(1), num_iters=20)
    assert _abs_cos(v[0, 0], w0) > 0.99
    mask = jnp.array([0.0, 1.0, 1.0, 1.0])
    v, _ = denoiser_jacobian_directions(eps_fn, traj, 0, 1, jax.random.PRNGKey(1), num_iters=20, output_mask=mask)
    assert _abs_cos(v[0, 0], w1) > 0.99
