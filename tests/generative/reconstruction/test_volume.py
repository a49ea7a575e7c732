"""Volume rendering (NeRF eq. 3 quadrature), ray-box clipping, the analytic scene and density+RGB fields (P40)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from generative.reconstruction import (
    LATTICES, camera_rays, composite, init_radiance_field, level_resolutions, radiance, ray_box,
    render_in_chunks, render_rays, sample_along_rays, sphere_scene,
)
from generative.reconstruction.cameras import orbit_cameras
from sparsejax.core import param_count


def _rays(seed, n, radius=3.0):
    """Rays from random points on a sphere of ``radius`` aimed at random points of [-0.5, 0.5]^3."""
    rng = np.random.default_rng(seed)
    o = rng.normal(size=(n, 3))
    o = radius * o / np.linalg.norm(o, axis=1, keepdims=True)
    d = rng.uniform(-0.5, 0.5, size=(n, 3)) - o
    return jnp.asarray(o, jnp.float32), jnp.asarray(d / np.linalg.norm(d, axis=1, keepdims=True), jnp.float32)


def test_ray_box_matches_axis_aligned_rays_and_misses():
    o = jnp.asarray([[0.0, 0.0, -3.0], [0.2, 0.3, 0.0], [0.0, 5.0, -3.0]])
    d = jnp.asarray([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    near, far = ray_box(o, d, 1.0)
    np.testing.assert_allclose(near[:2], [2.0, 0.0], atol=1e-6)          # the second origin is inside the box
    np.testing.assert_allclose(far[:2], [4.0, 0.8], atol=1e-6)
    assert float(far[2]) == float(near[2])                                # the third ray misses: no length
    o, d = _rays(0, 64)
    near, far = ray_box(o, d, 1.0)
    for t in (near, far):                                                   # both ends lie on the box surface
        np.testing.assert_allclose(np.abs(np.asarray(o + t[:, None] * d)).max(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="bound"):
        ray_box(o, d, 0.0)


def test_stratified_samples_stay_in_their_bins_and_deltas_sum_to_the_length():
    near, far = jnp.asarray([0.0, 1.0, 2.0]), jnp.asarray([1.0, 3.0, 2.5])
    t, delta = sample_along_rays(near, far, 16, jax.random.PRNGKey(0))
    width = (far - near)[:, None] / 16
    lo = near[:, None] + jnp.arange(16) * width
    assert t.shape == delta.shape == (3, 16)
    assert bool(((t >= lo) & (t <= lo + width)).all())
    np.testing.assert_allclose(delta.sum(1), far - near, rtol=1e-6)
    t_mid, _ = sample_along_rays(near, far, 16)
    np.testing.assert_allclose(t_mid, lo + width / 2, rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.3, 2.0, 15.0])
def test_constant_density_composites_to_the_closed_form_opacity(sigma):
    """A constant density over a ray segment of length L gives opacity 1 - exp(-sigma L) for any sampling."""
    o, d = _rays(1, 128)
    near, far = ray_box(o, d, 1.0)
    colour, bg = jnp.asarray([0.2, 0.5, 0.9]), jnp.asarray([1.0, 0.0, 0.3])

    def field(x):
        return jnp.full(x.shape[:1], sigma), jnp.broadcast_to(colour, x.shape)

    want = 1.0 - np.exp(-sigma * np.asarray(far - near))
    for key in (None, jax.random.PRNGKey(3)):
        out = render_rays(field, o, d, near, far, 7, key, background=bg)
        np.testing.assert_allclose(out["opacity"], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["rgb"], want[:, None] * colour + (1 - want[:, None]) * bg, rtol=1e-5,
                                   atol=1e-6)


def test_a_slab_inside_the_box_converges_to_the_closed_form():
    """Density sigma on |z| < h (zero elsewhere), rays at angle theta to z: opacity 1 - exp(-sigma 2h / cos theta)."""
    sigma, h = 3.0, 0.25
    theta = np.deg2rad(np.array([0.0, 20.0, 40.0]))
    d = jnp.asarray(np.stack([np.sin(theta), np.zeros(3), np.cos(theta)], 1), jnp.float32)
    o = -2.0 * d
    near, far = ray_box(o, d, 1.0)

    def field(x):
        return jnp.where(jnp.abs(x[:, 2]) < h, sigma, 0.0), jnp.ones((x.shape[0], 3))

    out = render_rays(field, o, d, near, far, 4096)
    np.testing.assert_allclose(out["opacity"], 1 - np.exp(-sigma * 2 * h / np.cos(theta)), atol=2e-3)
    depth = out["depth"] / out["opacity"]                        # expected hit distance lies inside the slab
    assert bool(((depth > 2.0 - h / np.cos(theta)) & (depth < 2.0 + h / np.cos(theta))).all())


def test_composite_weights_are_transmittance_times_alpha_and_validate_shapes():
    sigma = jnp.asarray([[0.0, 1.0, 2.0, 0.5]])
    delta = jnp.full((1, 4), 0.25)
    out = composite(sigma, jnp.ones((1, 4, 3)), delta)
    alpha = 1 - np.exp(-np.asarray(sigma * delta))[0]
    trans = np.cumprod(np.concatenate([[1.0], 1 - alpha[:-1]]))
    np.testing.assert_allclose(out["weights"][0], trans * alpha, rtol=1e-6)
    with pytest.raises(ValueError, match="rgb"):
        composite(sigma, jnp.ones((2, 4, 3)), delta)


def test_render_in_chunks_equals_one_call():
    x = jnp.arange(23.0)[:, None] * jnp.ones((1, 3))
    fn = jax.jit(lambda a: a.sum(1) ** 2)
    np.testing.assert_allclose(render_in_chunks(fn, x, chunk=5), np.asarray(fn(x)))
    with pytest.raises(ValueError, match="leading axis"):
        render_in_chunks(fn, x, x[:3])


def test_sphere_scene_is_dense_inside_and_empty_outside():
    scene = sphere_scene(sigma_max=40.0, eps=0.02)
    sigma, rgb = scene(jnp.asarray([[0.0, 0.0, 0.0], [1.2, -1.2, 1.2], [0.75, 0.35, -0.15]]))
    np.testing.assert_allclose(sigma, [40.0, 0.0, 40.0], atol=1e-3)
    assert rgb.shape == (3, 3) and bool(((rgb >= 0) & (rgb <= 1)).all())


def test_radiance_fields_of_both_lattices_have_equal_parameters_and_valid_outputs():
    res = level_resolutions(4, 4, 32)
    params = init_radiance_field(jax.random.PRNGKey(0), n_levels=4, table_size=2 ** 8, hidden=(16,))
    params = jax.tree_util.tree_map(lambda a: a * 1e3 if a.ndim == 3 else a, params)   # make tables matter
    x = jax.random.uniform(jax.random.PRNGKey(1), (50, 3), minval=-1.0, maxval=1.0)
    outs = {}
    for lat in LATTICES:
        sigma, rgb = jax.jit(lambda p, x, lat=lat: radiance(p, x, res, lat, bound=1.0))(params, x)
        assert sigma.shape == (50,) and rgb.shape == (50, 3)
        assert bool((sigma >= 0).all()) and bool(((rgb > 0) & (rgb < 1)).all())
        outs[lat] = np.asarray(sigma)
    # one parameter pytree serves both lattices: 4 levels x 256 rows x 2 features + MLP 8 -> 16 -> 4
    assert param_count(params) == 4 * 256 * 2 + (8 * 16 + 16) + (16 * 4 + 4)
    assert not np.allclose(outs["grid"], outs["simplex"])                # they read different table rows
    with pytest.raises(ValueError, match="4 outputs"):
        from generative.reconstruction import init_field
        radiance(init_field(jax.random.PRNGKey(0), 3, 2, n_levels=4, table_size=64, hidden=(8,)), x, res)


@pytest.fixture(scope="module")
def tiny_views():
    """Rays of three 8x8 orbit views and their ground-truth colours (64 samples per ray)."""
    o, d = (jnp.asarray(a) for a in camera_rays(orbit_cameras(3, width=8, height=8, fov_deg=40.0)))
    near, far = ray_box(o, d, 1.25)
    scene = sphere_scene()
    return o, d, near, far, jax.jit(lambda *r: render_rays(scene, *r, 64)["rgb"])(o, d, near, far)


@pytest.mark.parametrize("lattice", LATTICES)
def test_volume_rendering_fit_of_a_tiny_scene_reduces_the_loss(lattice, tiny_views):
    o, d, near, far, target = tiny_views
    res = jnp.asarray(level_resolutions(4, 4, 32), jnp.float32)
    params = init_radiance_field(jax.random.PRNGKey(0), n_levels=4, table_size=2 ** 10, hidden=(16,))
    opt = optax.adam(1e-2, b1=0.9, b2=0.99, eps=1e-15)

    def loss(p, key):
        out = render_rays(lambda x: radiance(p, x, res, lattice, 1.25), o, d, near, far, 16, key)
        return jnp.mean((out["rgb"] - target) ** 2)

    @jax.jit
    def step(p, s, key):
        value, g = jax.value_and_grad(loss)(p, key)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, value

    state, losses = opt.init(params), []
    for i in range(40):
        params, state, value = step(params, state, jax.random.PRNGKey(i))
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])           # measured about 0.18 for both lattices
