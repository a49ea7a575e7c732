"""Decompositions, global parametrisation, products and actions of GL+(n) / SL(n) (P19)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.lie import (
    act,
    affine_act,
    affine_inverse,
    affine_product,
    compose_polar,
    gl_hat,
    gl_vee,
    group_inverse,
    polar_decomposition,
    rotation_2d,
    sl_scale_decomposition,
    so_log,
    spd_exp,
    spd_log,
    xi,
    xi_inv,
)



@pytest.fixture(autouse=True, scope="module")
def _float64():
    """Exact-arithmetic checks run in float64 without changing the global default."""
    with jax.enable_x64(True):
        yield


def gl_plus(seed: int, n: int, spread: float = 1.0) -> np.ndarray:
    """A random matrix with positive determinant and bounded condition number."""
    rng = np.random.default_rng(seed)
    g = np.eye(n) + spread * rng.normal(size=(n, n)) / np.sqrt(n)
    if np.linalg.det(g) < 0:
        g[:, 0] *= -1
    return g


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([2, 3]))
def test_polar_round_trip_and_factor_sets(seed, n):
    g = jnp.asarray(gl_plus(seed, n))
    p, r = polar_decomposition(g)
    np.testing.assert_allclose(compose_polar(p, r), g, atol=1e-9)
    np.testing.assert_allclose(r.T @ r, np.eye(n), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(p, p.T, atol=1e-12)
    assert np.linalg.eigvalsh(p).min() > 0


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([2, 3]))
def test_sl_scale_and_sl_polar_factors(seed, n):
    g = jnp.asarray(gl_plus(seed, n))
    s, u = sl_scale_decomposition(g)
    np.testing.assert_allclose(s * u, g, atol=1e-12)
    assert float(s) > 0 and np.linalg.det(u) == pytest.approx(1.0, abs=1e-9)
    p, r = polar_decomposition(u)  # SL(n) = SPos(n) x SO(n): unit-determinant SPD factor
    assert np.linalg.det(p) == pytest.approx(1.0, abs=1e-9)
    assert np.trace(spd_log(p)) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([2, 3]))
def test_global_parametrisation_round_trip(seed, n):
    g = jnp.asarray(gl_plus(seed, n, spread=0.6))
    x = xi_inv(g)
    np.testing.assert_allclose(xi(x), g, atol=1e-9)
    # the symmetric part is log of the SPD factor, the skew part log of the rotation
    p, r = polar_decomposition(g)
    np.testing.assert_allclose(0.5 * (x + x.T), spd_log(p), atol=1e-9)
    np.testing.assert_allclose(jax.scipy.linalg.expm(0.5 * (x - x.T)), r, atol=1e-9)
    np.testing.assert_allclose(gl_hat(gl_vee(x), n), x, atol=1e-12)


def test_gl_coordinates_are_orthonormal():
    for n in (2, 3):
        basis = gl_hat(jnp.eye(n * n), n)
        gram = jnp.einsum("aij,bij->ab", basis, basis)
        np.testing.assert_allclose(gram, np.eye(n * n), atol=1e-12)


def test_so2_log_and_rotation():
    theta = jnp.linspace(-3.0, 3.0, 7)
    log = so_log(rotation_2d(theta))
    np.testing.assert_allclose(log[:, 1, 0], theta, atol=1e-12)
    np.testing.assert_allclose(spd_exp(spd_log(spd_exp(jnp.diag(jnp.array([0.3, -1.0]))))),
                               np.diag(np.exp([0.3, -1.0])), atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6))
def test_products_inverses_and_actions(seed):
    rng = np.random.default_rng(seed)
    a, b = jnp.asarray(gl_plus(seed, 2)), jnp.asarray(gl_plus(seed + 1, 2))
    ta, tb, x = (jnp.asarray(rng.normal(size=2)) for _ in range(3))
    np.testing.assert_allclose(group_inverse(a) @ a, np.eye(2), atol=1e-9)
    t, m = affine_product(ta, a, tb, b)
    # action is compatible with the product: (ta, a).((tb, b).x) = ((ta, a)(tb, b)).x
    np.testing.assert_allclose(affine_act(t, m, x), affine_act(ta, a, affine_act(tb, b, x)), atol=1e-9)
    ti, ai = affine_inverse(ta, a)
    np.testing.assert_allclose(affine_act(ti, ai, affine_act(ta, a, x)), x, atol=1e-9)
    np.testing.assert_allclose(act(a, x), a @ x, atol=1e-12)


def test_input_validation():
    with pytest.raises(ValueError):
        polar_decomposition(jnp.zeros((2, 3)))
    with pytest.raises(TypeError):
        polar_decomposition(jnp.eye(2, dtype=jnp.int32))
    with pytest.raises(ValueError):
        gl_hat(jnp.zeros(5), 2)
    with pytest.raises(ValueError):
        act(jnp.eye(2), jnp.zeros(3))
    with pytest.raises(NotImplementedError):
        so_log(jnp.eye(4))
