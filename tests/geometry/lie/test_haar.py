"""Decomposed Haar measure of GL+(n): density, SO(n) sampler and left-invariance (P19)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from geometry.lie import (
    equidistant_so2,
    gl_hat,
    haar_integral,
    haar_so,
    polar_decomposition,
    pos_log_density,
    rotation_2d,
    sample_group,
    spd_exp,
    spd_log,
)
from geometry.lie.haar import _sym_basis



@pytest.fixture(autouse=True, scope="module")
def _float64():
    """Exact-arithmetic checks run in float64 without changing the global default."""
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("n", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_decomposed_density_matches_haar_density_of_gl(n):
    """|det g|^{-n} |d g / d(Y, K)| = const * rho(Y) * (SO(n) density in exponential coordinates)."""
    basis = _sym_basis(n, False)
    m = basis.shape[0]

    def coords_to_g(c):
        y = jnp.einsum("d,dij->ij", c[:m], basis)
        skew = gl_hat(jnp.concatenate([jnp.zeros(m), c[m:]]), n)
        return (spd_exp(y) @ jax.scipy.linalg.expm(skew)).ravel()

    ratios = []
    for seed in range(4):
        c = jnp.asarray(np.random.default_rng(seed).normal(size=n * n)) * 0.8
        g = coords_to_g(c).reshape(n, n)
        jac = jnp.abs(jnp.linalg.det(jax.jacfwd(coords_to_g)(c)))
        theta = jnp.linalg.norm(c[m:]) / jnp.sqrt(2.0)
        so_density = 1.0 if n == 2 else 2 * (1 - jnp.cos(theta)) / theta**2
        y = jnp.einsum("d,dij->ij", c[:m], basis)
        ratios.append(float(jnp.linalg.det(g) ** (-n) * jac / (jnp.exp(pos_log_density(y)) * so_density)))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-8)


@pytest.mark.parametrize("n", [2, 3])
def test_haar_so_samples_are_rotations_and_left_invariant(n):
    r = haar_so(jax.random.PRNGKey(0), 4000, n)
    np.testing.assert_allclose(jnp.swapaxes(r, 1, 2) @ r, np.broadcast_to(np.eye(n), r.shape), atol=1e-9)
    np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=1e-9)
    r0 = jnp.asarray(polar_decomposition(jnp.asarray(np.random.default_rng(1).normal(size=(n, n)) + 2 * np.eye(n)))[1])
    moved = r0 @ haar_so(jax.random.PRNGKey(1), 4000, n)
    if n == 2:  # angles of R0 R must be uniform on the circle
        ang = np.arctan2(moved[:, 1, 0], moved[:, 0, 0])
        assert stats.kstest(ang, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3
    # distribution of a class function and of a non-class function match the unmoved sample
    for stat in (lambda q: jnp.trace(q, axis1=1, axis2=2), lambda q: q[:, 0, 0]):
        assert stats.ks_2samp(np.asarray(stat(r)), np.asarray(stat(moved))).pvalue > 1e-3


def test_equidistant_so2_is_a_shifted_grid():
    r = equidistant_so2(jax.random.PRNGKey(3), 8)
    ang = np.sort(np.mod(np.arctan2(r[:, 1, 0], r[:, 0, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(ang), 2 * np.pi / 8, atol=1e-9)


def test_weighted_sampler_is_left_invariant():
    """MC estimates of int f(h g) dmu(g) agree with int f(g) dmu(g) within 5 standard errors."""

    def f(g):
        p, r = polar_decomposition(g)
        y = spd_log(p)
        return jnp.exp(-jnp.sum(y**2, (1, 2)) / 0.5) * (1.5 + jnp.cos(jnp.arctan2(r[:, 1, 0], r[:, 0, 0]) - 0.4))

    base = haar_integral(f, sample_group(jax.random.PRNGKey(0), 20000, 2, spd_scale=0.8))
    for i, h in enumerate([rotation_2d(0.9) @ jnp.diag(jnp.array([1.3, 0.8])), jnp.array([[1.0, 0.3], [0.0, 1.2]])]):
        moved = haar_integral(lambda g: f(h @ g), sample_group(jax.random.PRNGKey(10 + i), 20000, 2, spd_scale=0.8))
        gap = abs(float(moved[0] - base[0]))
        assert gap < 5 * float(jnp.hypot(moved[1], base[1])), (moved, base)
    # the un-weighted proposal is NOT invariant: without weights the same check fails badly
    smp = sample_group(jax.random.PRNGKey(0), 20000, 2, spd_scale=0.8)
    h = jnp.diag(jnp.array([2.0, 2.0]))
    assert abs(float(f(h @ smp.g).mean() / f(smp.g).mean()) - 1) > 0.3


def test_sl_samples_and_pure_rotations():
    smp = sample_group(jax.random.PRNGKey(0), 64, 3, spd_scale=0.5, traceless=True)
    np.testing.assert_allclose(jnp.linalg.det(smp.g), 1.0, atol=1e-9)
    rot = sample_group(jax.random.PRNGKey(0), 16, 2, spd_scale=0.0, rotations="equidistant")
    np.testing.assert_allclose(jnp.linalg.det(rot.g), 1.0, atol=1e-9)
    np.testing.assert_allclose(rot.log_weight, 0.0)
    grid = sample_group(jax.random.PRNGKey(5), 4, 2, spd_scale=0.0, rotations="grid").g
    np.testing.assert_allclose(grid, rotation_2d(jnp.arange(4) * np.pi / 2), atol=1e-12)


def test_sampler_errors():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError):
        sample_group(key, 4, 2, spd_scale=-1.0)
    with pytest.raises(ValueError):
        sample_group(key, 4, 2, rotations="sobol")
    with pytest.raises(ValueError):
        sample_group(key, 4, 3, rotations="equidistant")
    with pytest.raises(ValueError):
        haar_so(key, 0, 2)
    with pytest.raises(ValueError):
        haar_integral(lambda g: g, sample_group(key, 4, 2))
