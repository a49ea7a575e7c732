"""Radon transform / adjoint / FBP and the random phantoms (P30)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.reconstruction.metrics import psnr
from generative.reconstruction.phantoms import phantom_batch, random_cylinder_phantom, random_ellipsoid_phantom
from generative.reconstruction.tomography import ParallelBeam, fbp, radon, radon_adjoint, view_angles


def test_phantom_range_shape_and_determinism():
    v = random_ellipsoid_phantom(jax.random.PRNGKey(0), (8, 16, 16))
    assert v.shape == (8, 16, 16) and float(v.min()) >= 0 and float(v.max()) <= 1
    assert np.array_equal(v, random_ellipsoid_phantom(jax.random.PRNGKey(0), (8, 16, 16)))
    assert float(v.std()) > 0.1  # non-trivial structure
    c = random_cylinder_phantom(jax.random.PRNGKey(1), (8, 16, 16))
    assert c.shape == (8, 16, 16) and float(c.max()) <= 1
    assert phantom_batch(jax.random.PRNGKey(2), 3, (8, 16, 16)).shape == (3, 8, 16, 16)  # same shape: no new compile
    with pytest.raises(ValueError):
        phantom_batch(jax.random.PRNGKey(2), 1, (4, 8, 8), family="cube")


def test_adjoint_dot_product():
    op = ParallelBeam((3, 12, 12), n_views=5)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k1, (3, 12, 12))
    y = jax.random.normal(k2, (3, 5, op.n_det))
    lhs, rhs = float(jnp.vdot(op.A(x), y)), float(jnp.vdot(x, op.AT(y)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_radon_of_constant_disk_matches_chord_length():
    n = 33
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disk = (xx**2 + yy**2 <= 12.0**2).astype(np.float32)
    sino = np.asarray(radon(jnp.asarray(disk), view_angles(4)))
    centre = sino[:, sino.shape[1] // 2]
    np.testing.assert_allclose(centre, 25.0, atol=1.5)  # chord through the centre ~ diameter 2r + 1 pixels


def test_fbp_full_view_recovers_phantom():
    v = random_ellipsoid_phantom(jax.random.PRNGKey(3), (3, 32, 32))[1:2]
    op = ParallelBeam(v.shape, n_views=60)
    rec = op.fbp(op.A(v))
    assert psnr(rec, v, 1.0) > 21.0
    # fewer views are worse (sanity of the sparse-view setting)
    op4 = ParallelBeam(v.shape, n_views=4)
    assert psnr(op4.fbp(op4.A(v)), v, 1.0) < psnr(rec, v, 1.0) - 5


def test_bad_input():
    with pytest.raises(ValueError):
        radon(jnp.zeros(5), view_angles(2))
    with pytest.raises(ValueError):
        radon_adjoint(jnp.zeros((2, 7)), view_angles(3), (8, 8))
    with pytest.raises(ValueError):
        ParallelBeam((8, 8), 2)
    with pytest.raises(ValueError):
        fbp(jnp.zeros((2, 12)), jnp.zeros((2, 2)), (8, 8))
