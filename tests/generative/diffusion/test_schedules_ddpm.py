import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from generative.diffusion import UNet, cosine_schedule, ddpm_loss, linear_schedule, make_ddpm_train_step, make_schedule, q_sample
from sparsejax.train import TrainState


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [50, 1000])
def test_alpha_bar_monotone_with_correct_endpoints(kind, steps):
    s = make_schedule(kind, steps)
    ab = np.asarray(s.alpha_bars)
    assert ab.shape == (steps,)
    assert np.all(np.diff(ab) < 0)
    assert 0.99 < ab[0] < 1.0
    assert ab[-1] < 1e-2
    np.testing.assert_allclose(ab, np.cumprod(1.0 - np.asarray(s.betas)), rtol=1e-5)


def test_linear_schedule_matches_ho_et_al_at_T1000():
    s = linear_schedule(1000)
    np.testing.assert_allclose(np.asarray(s.betas)[[0, -1]], [1e-4, 2e-2], rtol=1e-6)


def test_cosine_schedule_closed_form():
    T, s_ = 100, 0.008
    f = lambda t: np.cos((t / T + s_) / (1 + s_) * np.pi / 2) ** 2  # noqa: E731
    expected = f(np.arange(1, T + 1)) / f(0)
    got = np.asarray(cosine_schedule(T, s_).alpha_bars)
    np.testing.assert_allclose(got[:-1], expected[:-1], rtol=1e-4, atol=1e-6)  # last beta is clipped


def test_schedule_errors():
    with pytest.raises(ValueError):
        make_schedule("quadratic", 10)
    with pytest.raises(ValueError):
        linear_schedule(1)
    with pytest.raises(ValueError):
        linear_schedule(10, beta_start=0.1, beta_end=0.01)


def test_q_sample_closed_form_and_errors():
    s = linear_schedule(10)
    x0 = jnp.ones((2, 3))
    noise = jnp.full((2, 3), 2.0)
    t = jnp.array([0, 9])
    ab = np.asarray(s.alpha_bars)[[0, 9]][:, None]
    np.testing.assert_allclose(q_sample(s, x0, t, noise), np.broadcast_to(np.sqrt(ab) + 2 * np.sqrt(1 - ab), (2, 3)), rtol=1e-6)
    with pytest.raises(ValueError):
        q_sample(s, x0, jnp.array([0]), noise)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_training_decreases_loss():
    sched = make_schedule("cosine", 50)
    model = UNet(channels=(8,), time_dim=8)
    xs = jnp.where(jnp.arange(64).reshape(1, 8, 8, 1) % 3 == 0, 1.0, -1.0) * jnp.ones((16, 1, 1, 1))
    params = model.init(jax.random.PRNGKey(0), xs[:1], jnp.zeros(1, jnp.int32))
    tx = optax.adam(3e-3)
    state = TrainState.create(params, tx)
    step = make_ddpm_train_step(model.apply, tx, sched)
    eval_keys = jax.random.split(jax.random.PRNGKey(1), 8)
    loss_at = jax.jit(lambda p: jnp.mean(jax.vmap(lambda k: ddpm_loss(lambda x, t, d: model.apply(p, x, t, d), sched, xs, k))(eval_keys)))
    before = float(loss_at(state.params))
    for i in range(40):
        state, _ = step(state, xs, jax.random.PRNGKey(100 + i))
    after = float(loss_at(state.params))
    assert int(state.step) == 40
    assert after < 0.7 * before
