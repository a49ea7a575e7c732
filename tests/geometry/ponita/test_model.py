"""Equivariance, invariance, batching and force properties of PΘNITA and its baselines."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import enable_x64

from geometry.ponita import (
    Ponita,
    energy_and_forces,
    icosahedral_rotations,
    make_model,
    pad_point_clouds,
    random_rotation,
)

KEY = jax.random.PRNGKey(0)


def _cloud(b=1, n=6, dim=3, cs=1, cv=1, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    pos = jax.random.normal(k[0], (b, n, dim))
    scal = jax.random.normal(k[1], (b, n, cs))
    vec = jax.random.normal(k[2], (b, n, cv, dim))
    return pos, jnp.ones((b, n), bool), scal, vec


def _rotate(r, pos, vec):
    return pos @ r.T, vec @ r.T


def test_exact_equivariance_under_icosahedral_group_and_forces():
    model = Ponita(hidden_dim=8, num_layers=2, out_scalars=2, out_vectors=2, num_ori=12,
                   grid_method="icosahedron", layer_scale=None)
    pos, mask, scal, vec = _cloud()
    params = jax.jit(model.init)(KEY, pos, mask, scal, vec)
    rots = jnp.asarray(icosahedral_rotations()[::6])  # 10 of the 60 group elements

    @jax.jit
    def rotated_outputs(r):
        p, v = _rotate(r, pos, vec)
        s_out, v_out = model.apply(params, p, mask, scal, v)
        energy, forces = energy_and_forces(model.apply, params, p, mask, scal, v)
        return s_out, v_out, energy, forces

    s0, v0, e0, f0 = rotated_outputs(jnp.eye(3))
    assert float(jnp.abs(v0).max()) > 1e-2 and float(jnp.abs(f0).max()) > 1e-3  # not trivially zero
    for r in rots:
        s, v, e, f = rotated_outputs(r)
        np.testing.assert_allclose(s, s0, atol=1e-5)
        np.testing.assert_allclose(v, v0 @ r.T, atol=1e-5)
        np.testing.assert_allclose(e, e0, atol=1e-5)
        np.testing.assert_allclose(f, f0 @ r.T, atol=1e-5)


def test_translation_permutation_and_batching():
    model = Ponita(hidden_dim=8, num_layers=2, out_scalars=1, out_vectors=1, num_ori=6,
                   grid_method="fibonacci", radius=2.5, max_neighbors=4, layer_scale=0.5)
    pos, mask, scal, vec = _cloud(b=1, n=7, seed=2)
    params = jax.jit(model.init)(KEY, pos, mask, scal, vec)
    apply = jax.jit(model.apply)
    s0, v0 = apply(params, pos, mask, scal, vec)
    s_t, v_t = apply(params, pos + jnp.array([3.0, -1.0, 2.0]), mask, scal, vec)
    np.testing.assert_allclose(s_t, s0, atol=1e-5)
    np.testing.assert_allclose(v_t, v0, atol=1e-5)
    perm = jnp.array([3, 0, 6, 1, 5, 2, 4])
    s_p, v_p = apply(params, pos[:, perm], mask, scal[:, perm], vec[:, perm])
    np.testing.assert_allclose(s_p, s0[:, perm], atol=1e-5)
    np.testing.assert_allclose(v_p, v0[:, perm], atol=1e-5)
    # batched (padded to 7 nodes) equals each cloud alone
    small = [x[0, :5] for x in (pos, scal, vec)]
    big = [x[0] for x in (pos, scal, vec)]
    bpos, bmask = pad_point_clouds([small[0], big[0]])
    bscal, _ = pad_point_clouds([small[1], big[1]])
    bvec, _ = pad_point_clouds([small[2], big[2]])
    s_b, v_b = apply(params, bpos, bmask, bscal, bvec)
    s_small, v_small = apply(params, small[0][None], jnp.ones((1, 5), bool), small[1][None], small[2][None])
    np.testing.assert_allclose(s_b[0, :5], s_small[0], atol=1e-5)
    np.testing.assert_allclose(v_b[0, :5], v_small[0], atol=1e-5)
    np.testing.assert_allclose(s_b[1], s0[0], atol=1e-5)
    np.testing.assert_allclose(v_b[1], v0[0], atol=1e-5)
    assert float(jnp.abs(s_b[0, 5:]).max()) == 0.0  # padded nodes output zeros


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_forces_equal_finite_differences_of_energy():
    with enable_x64():
        model = Ponita(hidden_dim=8, num_layers=2, out_scalars=1, num_ori=6, grid_method="fibonacci",
                       layer_scale=None)
        pos, mask, scal, _ = _cloud(n=4, seed=3)
        pos, scal = pos.astype(jnp.float64), scal.astype(jnp.float64)
        params = jax.jit(model.init)(KEY, pos, mask, scal)
        params = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), params)
        ef = jax.jit(lambda p: energy_and_forces(model.apply, params, p, mask, scal))
        energy, forces = ef(pos)
        assert energy.dtype == jnp.float64
        eps = 1e-6
        for seed in range(3):  # directional derivatives: dE/du = -F·u
            u = jax.random.normal(jax.random.PRNGKey(seed), pos.shape, jnp.float64)
            fd = (float(ef(pos + eps * u)[0][0]) - float(ef(pos - eps * u)[0][0])) / (2 * eps)
            np.testing.assert_allclose(fd, -float(jnp.sum(forces * u)), rtol=1e-6)


@pytest.mark.parametrize("name", ["egnn", "e3nn"])
def test_baselines_are_exactly_equivariant(name):
    model = make_model(name, hidden_dim=8, num_layers=2, out_scalars=1, out_vectors=1)
    pos, mask, scal, vec = _cloud(b=2, n=5, seed=4)
    mask = mask.at[1, 4].set(False)
    params = jax.jit(model.init)(KEY, pos, mask, scal, vec)
    apply = jax.jit(model.apply)
    r = random_rotation(jax.random.PRNGKey(5))
    s0, v0 = apply(params, pos, mask, scal, vec)
    p, v = _rotate(r, pos, vec)
    s, vo = apply(params, p + 1.5, mask, scal, v)
    np.testing.assert_allclose(s, s0, atol=1e-4)
    np.testing.assert_allclose(vo, v0 @ r.T, atol=1e-4)
    assert float(jnp.abs(v0[:, :4]).max()) > 0


def test_input_errors():
    pos, mask, scal, vec = _cloud()
    with pytest.raises(ValueError):
        Ponita(out_scalars=0, out_vectors=0).init(KEY, pos, mask, scal, vec)
    with pytest.raises(ValueError):
        Ponita().init(KEY, pos[0], mask, scal, vec)
    with pytest.raises(ValueError):
        Ponita().init(KEY, pos, mask, scal, vec[..., :2])
    with pytest.raises(ValueError):
        make_model("segnn")
    with pytest.raises(ValueError):
        make_model("egnn", num_ori=4)
    with pytest.raises(ValueError):
        make_model("egnn", out_vectors=2).init(KEY, pos, mask, scal, vec)
    with pytest.raises(ValueError):
        make_model("e3nn").init(KEY, pos[..., :2], mask, scal, vec[..., :2])
