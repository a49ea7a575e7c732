"""PDE data generators against closed forms: manufactured Darcy solution, exact single-shell
Navier-Stokes solutions, Cole-Hopf Burgers solution; plus reproducibility and the cache."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from generative.pde import (burgers_dataset, cache_path, cached, darcy_coefficient, darcy_dataset,
                            darcy_operator, fno_forcing, gaussian_random_field, navier_stokes_dataset,
                            solve_burgers, solve_darcy, solve_vorticity)


def _manufactured_darcy_error(n):
    x = jnp.linspace(0.0, 1.0, n)
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    a_fn = lambda x, y: 1.0 + 0.5 * jnp.sin(jnp.pi * x) * jnp.cos(jnp.pi * y)
    u_fn = lambda x, y: jnp.sin(jnp.pi * x) * jnp.sin(2 * jnp.pi * y)

    def f_fn(x, y):  # f = -div(a grad u) by automatic differentiation
        dx = jax.grad(lambda s: a_fn(s, y) * jax.grad(u_fn, 0)(s, y))(x)
        dy = jax.grad(lambda s: a_fn(x, s) * jax.grad(u_fn, 1)(x, s))(y)
        return -(dx + dy)

    f = jax.vmap(jax.vmap(f_fn))(xx, yy)
    u = solve_darcy(a_fn(xx, yy), f, tol=1e-7)
    return float(jnp.max(jnp.abs(u - u_fn(xx, yy))))


def test_darcy_manufactured_solution_second_order():
    e17, e33 = _manufactured_darcy_error(17), _manufactured_darcy_error(33)
    assert e33 < 5e-3
    assert 3.3 < e17 / e33 < 4.7  # O(h^2)


def _scipy_darcy_matrix(a):
    n = a.shape[0]
    m = n - 2
    kx = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])
    ky = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    idx = lambda i, j: (i - 1) * m + (j - 1)
    rows, cols, vals = [], [], []
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            faces = [(kx[i, j], i + 1, j), (kx[i - 1, j], i - 1, j), (ky[i, j], i, j + 1), (ky[i, j - 1], i, j - 1)]
            rows.append(idx(i, j)); cols.append(idx(i, j)); vals.append(sum(f[0] for f in faces))
            for k, ii, jj in faces:
                if 0 < ii < n - 1 and 0 < jj < n - 1:
                    rows.append(idx(i, j)); cols.append(idx(ii, jj)); vals.append(-k)
    return sp.csr_matrix((np.array(vals) * (n - 1) ** 2, (rows, cols)), shape=(m * m, m * m))


def test_darcy_cg_matches_scipy_sparse_direct_solve():
    a = np.asarray(darcy_coefficient(jax.random.PRNGKey(3), 12), np.float64)
    assert set(np.unique(a)) == {3.0, 12.0}
    ref = spla.spsolve(_scipy_darcy_matrix(a).tocsc(), np.ones(100))
    u = np.asarray(solve_darcy(jnp.asarray(a, jnp.float32), 1.0, tol=1e-7))
    np.testing.assert_allclose(u[1:-1, 1:-1].ravel(), ref, rtol=1e-4, atol=1e-7)
    assert np.all(u[0] == 0) and np.all(u[:, -1] == 0)


@jax.jit
def _quadratic_forms(key):
    k1, k2, k3 = jax.random.split(key, 3)
    a = darcy_coefficient(k1, 8)
    v, w = jax.random.normal(k2, (6, 6)), jax.random.normal(k3, (6, 6))
    return jnp.vdot(v, darcy_operator(a, w)), jnp.vdot(w, darcy_operator(a, v)), jnp.vdot(v, darcy_operator(a, v))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**30))
def test_darcy_operator_symmetric_positive(seed):
    vaw, wav, vav = _quadratic_forms(jax.random.PRNGKey(seed))
    assert abs(float(vaw - wav)) <= 1e-4 * (abs(float(vaw)) + 1.0)
    assert float(vav) > 0


@pytest.mark.parametrize("forced,mode", [(True, 1), (False, 2)])
def test_navier_stokes_single_shell_exact_solution(forced, mode):
    """Modes with one |k| make u . grad w vanish: w(t) = e^{-nu lam t} w0 + (1 - e^{-nu lam t}) f / (nu lam)."""
    n, nu = 32, 1e-2
    x = jnp.arange(n) / n
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    if forced:  # |k|^2 = 2 shell, the same shell as the FNO forcing
        w0, f = jnp.sin(2 * jnp.pi * (xx + yy)) + 0.5 * jnp.cos(2 * jnp.pi * (xx - yy)), fno_forcing(n)
    else:  # Taylor-Green vortex with wavenumber (mode, mode)
        w0, f = jnp.sin(2 * jnp.pi * mode * xx) * jnp.sin(2 * jnp.pi * mode * yy), jnp.zeros((n, n))
    lam = 4 * jnp.pi ** 2 * (2 if forced else 2 * mode ** 2)
    w = solve_vorticity(w0, f, nu, 1e-2, 2, 50)
    for i, t in enumerate((0.5, 1.0)):
        decay = jnp.exp(-nu * lam * t)
        exact = decay * w0 + (1 - decay) / (nu * lam) * f
        assert float(jnp.max(jnp.abs(w[..., i] - exact))) < 1e-4 * float(jnp.max(jnp.abs(w0)))


def test_burgers_cole_hopf_exact_solution():
    """phi = a0 + a1 e^{-4 pi^2 nu t} cos(2 pi x) solves the heat equation; u = -2 nu phi_x / phi."""
    n, nu, a0, a1 = 64, 0.1, 1.0, 0.8
    x = jnp.arange(n) / n

    def exact(t):
        e = jnp.exp(-4 * jnp.pi ** 2 * nu * t)
        return 4 * jnp.pi * nu * a1 * e * jnp.sin(2 * jnp.pi * x) / (a0 + a1 * e * jnp.cos(2 * jnp.pi * x))

    u = solve_burgers(exact(0.0), nu, 1e-3, 250)
    assert float(jnp.max(jnp.abs(u - exact(0.25)))) < 1e-4 * float(jnp.max(jnp.abs(exact(0.0))))


def test_burgers_dataset_conserves_mean_and_dissipates_energy():
    d = burgers_dataset(jax.random.PRNGKey(0), 4, 64, dt=1e-2)
    assert d["u0"].shape == d["u1"].shape == (4, 64)
    np.testing.assert_allclose(d["u1"].mean(1), d["u0"].mean(1), atol=1e-5)
    assert np.all(np.sum(d["u1"] ** 2, 1) < np.sum(d["u0"] ** 2, 1))


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_datasets_reproducible_and_prefix_consistent():
    key = jax.random.PRNGKey(7)
    small = burgers_dataset(key, 2, 16, dt=0.05)["u1"]
    big = burgers_dataset(key, 3, 16, dt=0.05)["u1"]
    np.testing.assert_allclose(big[:2], small, rtol=1e-5, atol=1e-6)
    d1, d2 = darcy_dataset(key, 2, 9), darcy_dataset(key, 2, 9)
    np.testing.assert_array_equal(d1["u"], d2["u"])
    assert not np.array_equal(d1["a"][0], d1["a"][1])


def test_grf_spectrum_and_errors():
    f = gaussian_random_field(jax.random.PRNGKey(0), (64,), 2.0, 5.0, 25.0)
    assert abs(float(f.mean())) < 1e-5  # zero mode removed
    with pytest.raises(ValueError):
        gaussian_random_field(jax.random.PRNGKey(0), (4, 4, 4), 2.0, 3.0)
    with pytest.raises(ValueError):
        solve_darcy(jnp.ones((4, 5)))
    with pytest.raises(ValueError):
        navier_stokes_dataset(jax.random.PRNGKey(0), 1, 8, record_every=0.15, dt=0.1)


def test_cache_roundtrip_and_filename(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(3.0)}

    params = {"resolution": 32, "visc": 1e-3, "seed": 0}
    path = cache_path("ns", params, tmp_path)
    assert path.name == "ns_resolution-32_seed-0_visc-0.001.npz"
    first = cached("ns", params, build, tmp_path)
    second = cached("ns", params, build, tmp_path)
    np.testing.assert_array_equal(first["x"], second["x"])
    assert len(calls) == 1 and path.exists()
    with pytest.raises(TypeError):
        cache_path("ns", {"shape": (1, 2)}, tmp_path)
