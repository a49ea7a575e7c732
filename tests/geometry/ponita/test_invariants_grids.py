"""Bi-invariant attributes (Eqs. 8-9), orientation grids and neighbour graphs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.ponita import (
    circle_grid,
    distance_invariant,
    fiber_bundle_attributes,
    fibonacci_sphere,
    icosahedral_rotations,
    icosahedron,
    orientation_grid,
    polynomial_cutoff,
    polynomial_features,
    position_orientation_invariants,
    radius_graph,
    random_rotation,
    repulsion_sphere,
)


def _unit(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def _random_pairs(seed, dim, n=16):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    xi, xj = jax.random.normal(k[0], (2, n, dim))
    oi, oj = _unit(jax.random.normal(k[1], (2, n, dim)))
    return xi, oi, xj, oj


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.sampled_from([2, 3]), complete=st.booleans())
def test_invariants_unchanged_by_rotation_and_translation(seed, dim, complete):
    xi, oi, xj, oj = _random_pairs(seed, dim)
    rot = random_rotation(jax.random.PRNGKey(seed + 1), dim)
    t = jax.random.normal(jax.random.PRNGKey(seed + 2), (dim,))
    a = position_orientation_invariants(xj - xi, oi, oj, complete)
    g = lambda x: x @ rot.T + t
    b = position_orientation_invariants(g(xj) - g(xi), oi @ rot.T, oj @ rot.T, complete)
    np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(distance_invariant(xj - xi), distance_invariant(g(xj) - g(xi)), atol=2e-5)


def test_invariants_closed_form_3d():
    rel = jnp.array([3.0, 4.0, 2.0])
    oi, oj = jnp.array([0.0, 0.0, 1.0]), jnp.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(position_orientation_invariants(rel, oi, oj), [2.0, 5.0, 0.0], atol=1e-6)
    full = position_orientation_invariants(rel, oi, oj, complete=True)
    # o_j·x_ij = 3, det[o_i, x_ij, o_j] = e_z·(x_ij x e_x) = e_z·(0, 2, -4) = -4
    np.testing.assert_allclose(full[3:], [3.0, -4.0], atol=1e-6)
    np.testing.assert_allclose(distance_invariant(rel), [np.sqrt(29.0)], rtol=1e-6)


def test_separation_of_inequivalent_pairs_3d():
    xi, oi, xj, oj = _random_pairs(0, 3, n=64)
    rel = xj - xi
    # random, generically inequivalent pairs: all pairwise attribute vectors differ
    a = position_orientation_invariants(rel, oi, oj, complete=True)
    gaps = jnp.linalg.norm(a[:, None] - a[None], axis=-1) + jnp.eye(64) * 1e3
    assert float(gaps.min()) > 1e-3
    # twisting o_j about o_i (x_ij fixed) changes the SE(3) class: the paper's 3-tuple is blind to
    # it, the complete attributes separate it
    axis = oi[0]
    ang = 1.0
    k = jnp.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    twist = jnp.eye(3) + jnp.sin(ang) * k + (1 - jnp.cos(ang)) * k @ k
    oj_twist = twist @ oj[0]
    paper = position_orientation_invariants(rel[0], oi[0], oj[0])
    paper_t = position_orientation_invariants(rel[0], oi[0], oj_twist)
    np.testing.assert_allclose(paper, paper_t, atol=1e-5)
    full = position_orientation_invariants(rel[0], oi[0], oj[0], complete=True)
    full_t = position_orientation_invariants(rel[0], oi[0], oj_twist, complete=True)
    assert float(jnp.abs(full - full_t).max()) > 1e-2
    # the mirror image (not in SE(3)) differs only in the sign of the triple product
    mirror = jnp.diag(jnp.array([1.0, 1.0, -1.0]))
    full_m = position_orientation_invariants(rel[0] @ mirror, oi[0] @ mirror, oj[0] @ mirror, complete=True)
    np.testing.assert_allclose(full_m[:4], full[:4], atol=1e-5)
    np.testing.assert_allclose(full_m[4], -full[4], atol=1e-5)
    assert abs(float(full[4])) > 1e-3


def test_separation_2d_sees_orientation_of_the_pair():
    rel = jnp.array([1.0, 0.5])
    oi = jnp.array([1.0, 0.0])
    mirrored = position_orientation_invariants(rel * jnp.array([1.0, -1.0]), oi, oi)
    plain = position_orientation_invariants(rel, oi, oi)
    assert float(jnp.abs(plain - mirrored).max()) > 0.9  # signed o^⊥·x_ij separates reflections
    c = position_orientation_invariants(rel, oi, jnp.array([0.0, 1.0]), complete=True)
    c_m = position_orientation_invariants(rel, oi, jnp.array([0.0, -1.0]), complete=True)
    assert float(jnp.abs(c[3] - c_m[3])) == pytest.approx(2.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_fiber_bundle_attributes_match_pairwise_and_are_invariant(dim):
    xi, _, xj, _ = _random_pairs(3, dim, n=8)
    grid = jnp.asarray(orientation_grid(6, dim, "fibonacci"))
    spatial, fiber = fiber_bundle_attributes(xj - xi, grid)
    assert spatial.shape == (8, 6, 2) and fiber.shape == (6, 6, 1 if dim == 3 else 2)
    ref = position_orientation_invariants((xj - xi)[:, None], grid[None], grid[None])
    np.testing.assert_allclose(spatial, ref[..., :2], atol=1e-5)
    rot = random_rotation(jax.random.PRNGKey(1), dim)
    spatial_r, fiber_r = fiber_bundle_attributes((xj - xi) @ rot.T, grid @ rot.T)
    np.testing.assert_allclose(spatial, spatial_r, atol=2e-5)
    np.testing.assert_allclose(fiber, fiber_r, atol=2e-5)


def test_invariant_errors():
    with pytest.raises(ValueError):
        position_orientation_invariants(jnp.ones(4), jnp.ones(4), jnp.ones(4))
    with pytest.raises(ValueError):
        position_orientation_invariants(jnp.ones(3), jnp.ones(2), jnp.ones(3))
    with pytest.raises(ValueError):
        fiber_bundle_attributes(jnp.ones((5, 3)), jnp.ones((4, 2)))
    with pytest.raises(ValueError):
        polynomial_features(jnp.ones(2), 0)


def test_polynomial_features_closed_form():
    x = jnp.array([2.0, 3.0])
    np.testing.assert_allclose(polynomial_features(x, 2), [2, 3, 4, 6, 6, 9])
    assert polynomial_features(x, 3).shape == (2 + 4 + 8,)


def _coulomb(x):
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return np.sum(1 / d[np.triu_indices(len(x), 1)])


@pytest.mark.parametrize("n", [7, 20, 50])
def test_sphere_grids_are_unit_and_near_uniform(n):
    fib, rep = fibonacci_sphere(n), repulsion_sphere(n, steps=100)
    for g in (fib, rep):
        np.testing.assert_allclose(np.linalg.norm(g, axis=-1), 1.0, atol=1e-5)
        d = np.linalg.norm(g[:, None] - g[None], axis=-1) + 10 * np.eye(n)
        assert d.min() > 1.5 / np.sqrt(n)  # no clumping (area per point ~ 4π/n)
    assert _coulomb(rep.astype(np.float64)) <= _coulomb(fib.astype(np.float64)) + 1e-6


def test_icosahedral_rotations_permute_grid():
    grid, rots = icosahedron(), icosahedral_rotations()
    assert rots.shape == (60, 3, 3)
    np.testing.assert_allclose(np.linalg.det(rots), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.einsum("rij,rkj->rik", rots, rots), np.broadcast_to(np.eye(3), (60, 3, 3)), atol=1e-5)
    assert len({tuple(np.round(r, 4).ravel()) for r in rots}) == 60
    moved = np.einsum("rij,nj->rni", rots, grid)
    match = np.linalg.norm(moved[:, :, None] - grid[None, None], axis=-1)
    assert match.min(-1).max() < 1e-5
    for r in range(60):  # a bijection of the vertex set
        assert len(set(match[r].argmin(-1))) == 12


def test_circle_grid_and_random_rotation():
    g = circle_grid(4)
    np.testing.assert_allclose(g, [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-6)
    for dim in (2, 3):
        r = random_rotation(jax.random.PRNGKey(dim), dim)
        np.testing.assert_allclose(r @ r.T, np.eye(dim), atol=1e-5)
        assert float(jnp.linalg.det(r)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        orientation_grid(10, 3, "icosahedron")
    with pytest.raises(ValueError):
        orientation_grid(0, 3)
    with pytest.raises(ValueError):
        orientation_grid(8, 3, "healpix")


def test_radius_graph_matches_brute_force():
    pos = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 3))
    mask = jnp.array([[True] * 7, [True] * 5 + [False] * 2])
    full = radius_graph(pos, mask, radius=1.2)
    d = np.linalg.norm(np.asarray(pos)[:, :, None] - np.asarray(pos)[:, None], axis=-1)
    m = np.asarray(mask)
    expect = (d <= 1.2) & m[:, :, None] & m[:, None, :]
    np.testing.assert_array_equal(np.asarray(full.mask), expect)
    knn = radius_graph(pos, mask, radius=None, max_neighbors=3, self_loops=False)
    for b in range(2):
        for i in range(7):
            if not m[b, i]:
                assert not np.asarray(knn.mask[b, i]).any()
                continue
            cand = [j for j in range(7) if m[b, j] and j != i]
            nearest = sorted(cand, key=lambda j: d[b, i, j])[:3]
            assert set(np.asarray(knn.index[b, i])) == set(nearest)
    with pytest.raises(ValueError):
        radius_graph(pos, mask[:, :3])


def test_polynomial_cutoff_is_smooth_window():
    r = jnp.array([0.0, 0.5, 1.0, 1.5])
    w = polynomial_cutoff(r, 1.0)
    np.testing.assert_allclose(np.asarray(w)[[0, 2, 3]], [1.0, 0.0, 0.0], atol=1e-6)
    assert 0 < float(w[1]) < 1
    dw = jax.grad(lambda x: polynomial_cutoff(x, 1.0))(0.999)
    assert abs(float(dw)) < 1e-3
