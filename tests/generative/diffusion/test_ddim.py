import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.diffusion import UNet, ddim_invert, ddim_sample, ddim_timesteps, make_schedule, unet_eps_fn

SCHED = make_schedule("linear", 100)


@pytest.fixture(scope="module")
def tiny():
    model = UNet(channels=(4,), time_dim=4)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)), jnp.zeros(1, jnp.int32))
    return unet_eps_fn(model, params)


def point_mass_eps(x_star):
    """Exact eps-prediction for data concentrated at x_star: eps = (x_t - sqrt(ab) x*) / sqrt(1 - ab)."""

    def eps_fn(x, t, delta_h):
        ab = SCHED.alpha_bars[t].reshape(-1, 1, 1, 1)
        return (x - jnp.sqrt(ab) * x_star) / jnp.sqrt(1 - ab), None

    return eps_fn


def test_timesteps_descending_and_cover_range():
    ts = np.asarray(ddim_timesteps(100, 10))
    assert ts[0] == 99 and ts[-1] == 0 and np.all(np.diff(ts) < 0)
    with pytest.raises(ValueError):
        ddim_timesteps(100, 0)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_recovers_point_mass_with_exact_denoiser(eta):
    x_star = jax.random.uniform(jax.random.PRNGKey(1), (1, 8, 8, 1), minval=-1, maxval=1)
    x_T = jax.random.normal(jax.random.PRNGKey(2), (3, 8, 8, 1))
    out = ddim_sample(point_mass_eps(x_star), SCHED, x_T, 7, eta=eta, key=jax.random.PRNGKey(3))
    np.testing.assert_allclose(out.x0, jnp.broadcast_to(x_star, x_T.shape), atol=1e-4)
    assert out.hs is None and out.xs.shape == (7,) + x_T.shape


def test_ddim_invert_then_sample_reconstructs():
    x_star = jax.random.uniform(jax.random.PRNGKey(1), (2, 8, 8, 1), minval=-1, maxval=1)
    eps_fn = point_mass_eps(x_star)
    x_T = ddim_invert(eps_fn, SCHED, x_star, 10)
    assert float(jnp.abs(x_T - x_star).max()) > 0.1  # moved away from the data
    np.testing.assert_allclose(ddim_sample(eps_fn, SCHED, x_T, 10).x0, x_star, atol=1e-4)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_ddim_deterministic_with_fixed_noise(tiny):
    x_T = jax.random.normal(jax.random.PRNGKey(4), (2, 8, 8, 1))
    a = ddim_sample(tiny, SCHED, x_T, 5)
    b = ddim_sample(tiny, SCHED, x_T, 5)
    np.testing.assert_array_equal(a.x0, b.x0)
    c = ddim_sample(tiny, SCHED, x_T, 5, eta=0.5, key=jax.random.PRNGKey(7))
    d = ddim_sample(tiny, SCHED, x_T, 5, eta=0.5, key=jax.random.PRNGKey(7))
    e = ddim_sample(tiny, SCHED, x_T, 5, eta=0.5, key=jax.random.PRNGKey(8))
    np.testing.assert_array_equal(c.x0, d.x0)
    assert float(jnp.abs(c.x0 - e.x0).max()) > 1e-3
    assert float(jnp.abs(a.x0 - c.x0).max()) > 1e-3


def test_zero_shift_leaves_samples_unchanged_and_shift_changes_them(tiny):
    x_T = jax.random.normal(jax.random.PRNGKey(5), (2, 8, 8, 1))
    base = ddim_sample(tiny, SCHED, x_T, 4, eta=0.3, key=jax.random.PRNGKey(0))
    h_shape = base.hs.shape[2:]
    zero = ddim_sample(tiny, SCHED, x_T, 4, eta=0.3, key=jax.random.PRNGKey(0), delta_hs=jnp.zeros((4,) + h_shape))
    np.testing.assert_array_equal(base.x0, zero.x0)
    np.testing.assert_array_equal(base.hs, zero.hs)
    shift = 3.0 * jax.random.normal(jax.random.PRNGKey(9), (4,) + h_shape)
    shifted = ddim_sample(tiny, SCHED, x_T, 4, delta_hs=shift)
    plain = ddim_sample(tiny, SCHED, x_T, 4)
    assert float(jnp.abs(shifted.x0 - plain.x0).max()) > 1e-3 * float(jnp.abs(plain.x0).max())
    asym = ddim_sample(tiny, SCHED, x_T, 4, delta_hs=shift, asymmetric=True)
    assert float(jnp.abs(asym.x0 - shifted.x0).max()) > 1e-4 * float(jnp.abs(plain.x0).max())


def test_ddim_errors(tiny):
    x_T = jnp.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError):
        ddim_sample(tiny, SCHED, x_T, 3, eta=1.0)  # no key
    with pytest.raises(ValueError):
        ddim_sample(tiny, SCHED, x_T, 3, delta_hs=jnp.zeros((2, 4, 4, 8)))
    with pytest.raises(TypeError):
        ddim_sample(tiny, (1, 2), x_T, 3)
