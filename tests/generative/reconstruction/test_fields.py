import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.core import param_count
from generative.reconstruction import (
    PRIMES, apply_field, cube_vertices, encode, hash_grid_encode, hash_index, init_field, init_tables,
    level_resolutions, simplex_encode, simplex_vertices, skew, vertices_touched,
)

DIMS = range(2, 8)


def _points(seed, n, d, lo=-3.0, hi=9.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, d)).astype(np.float32)


def test_level_resolutions_grow_geometrically_from_min_to_max():
    res = level_resolutions(8, 16, 512)
    b = math.exp(math.log(512 / 16) / 7)
    assert res[0] == 16 and res[-1] == 512 and len(res) == 8
    assert res == tuple(int(math.floor(16 * b ** l + 1e-9)) for l in range(8))
    assert level_resolutions(1, 4, 9) == (4,)
    with pytest.raises(ValueError, match="max_resolution"):
        level_resolutions(4, 16, 8)


def test_hash_index_matches_a_python_reference_and_stays_in_range():
    rng = np.random.default_rng(0)
    for d in range(1, 8):
        v = rng.integers(-50, 10 ** 6, size=(64, d))
        got = np.asarray(hash_index(jnp.asarray(v, jnp.int32), 1000))
        want = []
        for row in v:
            h = 0
            for vi, pi in zip(row, PRIMES):
                h ^= (int(vi) % 2 ** 32) * pi % 2 ** 32
            want.append(h % 1000)
        np.testing.assert_array_equal(got, want)
        assert got.min() >= 0 and got.max() < 1000


@pytest.mark.parametrize("d", DIMS)
def test_simplex_weights_are_barycentric_and_reproduce_affine_functions(d):
    p = _points(d, 200, d)
    verts, w = simplex_vertices(p)
    verts, w = np.asarray(verts), np.asarray(w, np.float64)
    assert verts.shape == (200, d + 1, d) and w.shape == (200, d + 1)
    assert (w >= -1e-6).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose((w[..., None] * verts).sum(1), p, atol=2e-5)        # linear precision
    a, c = np.random.default_rng(1).normal(size=d), 0.7
    np.testing.assert_allclose((w * (verts @ a + c)).sum(-1), p @ a + c, atol=1e-4)
    # exactly d + 1 distinct vertices, a monotone path of unit steps inside the cell of floor(p)
    for row in verts[:20]:
        assert len({tuple(v) for v in row}) == d + 1
    steps = np.diff(verts, axis=1)
    assert ((steps == 0) | (steps == 1)).all() and (steps.sum(-1) == 1).all()
    np.testing.assert_array_equal(verts[:, 0], np.floor(p))
    # the path follows the descending sort of the fractional parts (stable argsort as the reference)
    order = np.argsort(-(p - np.floor(p)), axis=-1, kind="stable")
    np.testing.assert_array_equal(steps.argmax(-1), order)


@pytest.mark.parametrize("d", [2, 5])
def test_simplex_weights_equal_the_linear_solve_on_its_vertices(d):
    p = _points(10 + d, 30, d)
    verts, w = simplex_vertices(p)
    for pi, vi, wi in zip(p, np.asarray(verts, np.float64), np.asarray(w)):
        system = np.vstack([vi.T, np.ones(d + 1)])                                     # (d+1, d+1)
        np.testing.assert_allclose(np.linalg.solve(system, np.append(pi, 1.0)), wi, atol=2e-5)


@pytest.mark.parametrize("d", DIMS)
def test_cube_weights_reproduce_multilinear_functions(d):
    p = _points(20 + d, 100, d)
    verts, w = cube_vertices(p)
    verts, w = np.asarray(verts, np.float64), np.asarray(w, np.float64)
    assert verts.shape == (100, 2 ** d, d)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    rng = np.random.default_rng(d)
    a, c = rng.normal(size=d), rng.normal(size=d)

    def g(z):                                              # multilinear, not affine
        return np.prod(a + c * z, axis=-1) + z[..., 0] * z[..., -1]

    np.testing.assert_allclose((w * g(verts)).sum(-1), g(p.astype(np.float64)), rtol=1e-4, atol=1e-3)
    # at a lattice vertex all weight sits on that corner
    vc, wc = cube_vertices(jnp.asarray([[2.0] * d]))
    assert float(wc.max()) == 1.0 and tuple(np.asarray(vc)[0, int(wc.argmax())]) == (2,) * d


def _table_from_function(f, d, resolution, table_size, hi):
    """A one-level table holding f(v) at the hash of every lattice vertex in [0, hi]^d (collision-free)."""
    verts = np.array(list(itertools.product(range(hi + 1), repeat=d)), np.int32)
    idx = np.asarray(hash_index(jnp.asarray(verts), table_size))
    assert len(set(idx.tolist())) == len(idx), "hash collision: pick another table size"
    table = np.zeros((1, table_size, 1), np.float32)
    table[0, idx, 0] = f(verts.astype(np.float64))
    return jnp.asarray(table)


@pytest.mark.parametrize("d", [2, 3])
def test_encoders_reproduce_lattice_functions_end_to_end(d):
    n, T = 4, 2 ** 16
    x = np.random.default_rng(d).uniform(0.01, 0.99, size=(50, d)).astype(np.float32)
    a = np.arange(1, d + 1) / d

    def bilinear(z):
        return 1.0 + z @ a + 0.25 * z[..., 0] * z[..., 1]

    grid = hash_grid_encode(_table_from_function(bilinear, d, n, T, n + 1), x, [n])
    np.testing.assert_allclose(np.asarray(grid)[:, 0], bilinear(n * x.astype(np.float64)), rtol=1e-5)
    hi = int(np.ceil(n * (1 + d * (math.sqrt(d + 1) - 1) / d))) + 1
    simp = simplex_encode(_table_from_function(lambda z: 1.0 + z @ a, d, n, T, hi), x, [n])
    np.testing.assert_allclose(np.asarray(simp)[:, 0], 1.0 + np.asarray(skew(n * x)) @ a, rtol=1e-5)


@pytest.mark.parametrize("d", [3, 7])
def test_one_point_touches_exactly_the_expected_table_rows(d):
    tables = init_tables(jax.random.PRNGKey(d), n_levels=2, table_size=2 ** 16, n_features=1)
    x = jnp.asarray(np.random.default_rng(d).uniform(0.05, 0.95, size=(1, d)), jnp.float32)
    for lattice in ("grid", "simplex"):
        grad = jax.grad(lambda t: encode(t, x, [5.0, 9.0], lattice).sum())(tables)
        touched = (np.asarray(grad)[..., 0] != 0).sum(-1)
        np.testing.assert_array_equal(touched, [vertices_touched(d, lattice)] * 2)
    assert vertices_touched(d, "grid") == 2 ** d and vertices_touched(d, "simplex") == d + 1


def test_simplex_encoding_is_continuous_across_simplex_faces():
    tables = init_tables(jax.random.PRNGKey(0), n_levels=1, table_size=4096, n_features=1, scale=1.0)
    # in lattice units f_0 = f_1 +- eps crosses the Kuhn face f_0 = f_1; x = skew^-1 is found numerically
    d, eps = 3, 1e-4
    base = np.array([3.4, 3.4, 3.1])

    def unskew(p):
        return p - (1 - 1 / math.sqrt(d + 1)) / d * p.sum()

    pts = np.stack([unskew(base + [eps, -eps, 0]), unskew(base + [-eps, eps, 0])]).astype(np.float32)
    out = np.asarray(encode(tables, pts, [1.0], "simplex"))
    assert abs(out[0, 0] - out[1, 0]) < 1e-2
    np.testing.assert_allclose(np.asarray(skew(pts[:1])), [base + [eps, -eps, 0]], atol=1e-5)


def test_field_jits_once_and_counts_equal_parameters_for_both_lattices():
    params = init_field(jax.random.PRNGKey(0), 2, 3, n_levels=4, table_size=256, n_features=2, hidden=(16,))
    assert param_count(params) == 4 * 256 * 2 + (8 * 16 + 16) + (16 * 3 + 3)
    x = jax.random.uniform(jax.random.PRNGKey(1), (7, 2))
    f = jax.jit(apply_field, static_argnames="lattice")
    for lattice in ("grid", "simplex"):
        out = f(params, x, jnp.asarray([4.0, 8, 16, 32]), lattice=lattice)
        out2 = f(params, x, jnp.asarray([5.0, 9, 17, 33]), lattice=lattice)       # new levels, no recompile
        assert out.shape == (7, 3) and not np.allclose(out, out2)
    assert f._cache_size() == 2
    np.testing.assert_allclose(out, apply_field(params, x, [4, 8, 16, 32], "simplex"), rtol=1e-5, atol=1e-7)


def test_bad_inputs_raise_clear_errors():
    tables = init_tables(jax.random.PRNGKey(0), n_levels=2, table_size=64)
    x = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="lattice"):
        encode(tables, x, [2, 4], "hexagon")
    with pytest.raises(ValueError, match="x must have ndim 2"):
        encode(tables, jnp.zeros(3), [2, 4])
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        encode(tables, jnp.zeros((3, 2), jnp.int32), [2, 4])
    with pytest.raises(ValueError, match=r"x.shape\[1\] must be >= 1 and <= 7, got 8"):
        encode(tables, jnp.zeros((3, 8)), [2, 4])
    with pytest.raises(ValueError, match="resolutions must have shape"):
        encode(tables, x, [2, 4, 8])
    with pytest.raises(ValueError, match="resolutions must be > 0"):
        encode(tables, x, [2, 0])
    with pytest.raises(ValueError, match="tables must have ndim 3"):
        encode(tables[0], x, [2, 4])
    with pytest.raises(TypeError, match="vertices must have a signed int or unsigned int dtype"):
        hash_index(jnp.zeros((2, 2)), 16)
    with pytest.raises(ValueError, match="table_size"):
        hash_index(jnp.zeros((2, 2), jnp.int32), 0)
    with pytest.raises(ValueError, match=r"p.shape\[-1\] must be >= 1 and <= 7, got 8"):
        simplex_vertices(jnp.zeros((2, 8)))
    with pytest.raises(ValueError, match="dim"):
        vertices_touched(0, "grid")
    with pytest.raises(TypeError, match="params must be the dict of init_field"):
        apply_field({"tables": tables}, x, [2, 4])
    with pytest.raises(TypeError, match="key"):
        init_tables(0)
