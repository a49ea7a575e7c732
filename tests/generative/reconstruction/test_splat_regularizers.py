"""LM-Gaussian geometric regularisers: depth-normal consistency, distortion, point-cloud render loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.reconstruction.cameras import make_camera, orbit_cameras
from generative.reconstruction.splat import (
    camera_arrays, depth_normal_error, depth_normal_loss, depth_to_normal, distortion, distortion_loss, edge_weights,
    init_gaussians, interpolate_cameras, median_depth, ndc_depth, point_cloud_render, point_render_loss, ray_depths,
    render,
)

K = jnp.asarray([10.0, 10.0, 6.0, 5.0])  # fx, fy, cx, cy


def _plane_depth(n, c, H=10, W=12):
    """z-depth of the plane n . x = c seen through the pixel rays of K."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    d = np.stack([(u - K[2]) / K[0], (v - K[3]) / K[1], np.ones_like(u)], -1)
    return jnp.asarray(c / (d @ np.asarray(n)))


def test_depth_normal_zero_on_a_plane_with_matching_normals():
    n = np.array([0.3, -0.2, -1.0]); n /= np.linalg.norm(n)  # faces the camera (n_z < 0)
    depth = _plane_depth(n, -2.0)
    normals = jnp.broadcast_to(jnp.asarray(3.0 * n), depth.shape + (3,))  # unnormalised on purpose
    np.testing.assert_allclose(np.asarray(depth_to_normal(depth, K))[1:-1, 1:-1], np.broadcast_to(n, (8, 10, 3)),
                               atol=1e-5)
    err = np.asarray(depth_normal_error(normals, depth, K))
    np.testing.assert_allclose(err[1:-1, 1:-1], 0.0, atol=1e-5)
    # official mean over all pixels: the border (no finite difference) contributes exactly 1 per pixel
    H, W = depth.shape
    border = (H * W - (H - 2) * (W - 2)) / (H * W)
    loss = depth_normal_loss(normals, depth * 0.5, jnp.full(depth.shape, 0.5), depth, K)
    np.testing.assert_allclose(float(loss), border, atol=1e-5)
    # a wrong normal (flipped) costs 2 inside
    assert np.allclose(np.asarray(depth_normal_error(-normals, depth, K))[1:-1, 1:-1], 2.0, atol=1e-5)


def test_depth_normal_gradient_finite_and_nonzero():
    depth = _plane_depth(np.array([0.0, 0.0, -1.0]), -2.0) + 0.05 * jnp.sin(jnp.arange(12.0))[None]
    normals = jnp.broadcast_to(jnp.asarray([0.1, 0.0, -1.0]), depth.shape + (3,))
    g = jax.jit(jax.grad(lambda d, n: depth_normal_loss(n, d, jnp.ones_like(d), d, K), argnums=(0, 1)))(depth, normals)
    assert all(np.isfinite(np.asarray(x)).all() and np.abs(np.asarray(x)).max() > 0 for x in g)


def _brute(w, z):
    m = np.asarray(ndc_depth(jnp.asarray(z)))
    return sum(w[i] * w[j] * (m[i] - m[j]) ** 2 for i in range(len(w)) for j in range(i))


def test_distortion_matches_double_sum_and_vanishes_at_one_depth():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for n in (1, 2, 7):
            w, z = rng.uniform(0, 0.3, n), np.sort(rng.uniform(1.0, 5.0, n))
            got = float(distortion(jnp.asarray(w), jnp.asarray(z)))
            np.testing.assert_allclose(got, _brute(w, z), rtol=1e-10, atol=1e-15)
            # symmetric form: half the full double sum
            m = np.asarray(ndc_depth(jnp.asarray(z)))
            np.testing.assert_allclose(got, 0.5 * (np.outer(w, w) * (m[:, None] - m[None]) ** 2).sum(), rtol=1e-10,
                                       atol=1e-15)
        assert float(distortion(jnp.asarray([0.5]), jnp.asarray([3.0]))) == 0.0
        assert float(distortion(jnp.asarray(rng.uniform(0, 1, 5)), jnp.full(5, 2.5))) == pytest.approx(0, abs=1e-15)
        # batched rays and detached weights: the gradient reaches the depths only
        W, Z = jnp.asarray(rng.uniform(0, 0.3, (3, 4))), jnp.sort(jnp.asarray(rng.uniform(1, 5, (3, 4))), -1)
        gw, gz = jax.grad(lambda w, z: distortion(w, z).sum(), argnums=(0, 1))(W, Z)
        assert np.all(np.asarray(gw) == 0) and np.all(np.isfinite(np.asarray(gz))) and np.abs(np.asarray(gz)).max() > 0


def test_median_depth_is_the_transmittance_half_crossing():
    alpha = jnp.asarray([[0.3, 0.3, 0.3, 0.3], [0.001, 0.1, 0.001, 0.001], [0.0, 0.0, 0.0, 0.0]])
    trans = jnp.cumprod(jnp.concatenate([jnp.ones((3, 1)), 1 - alpha[:, :-1]], 1), 1)
    z = jnp.asarray([[1.0, 2.0, 3.0, 4.0]] * 3)
    # row 0: T = 1, .7, .49 -> the second Gaussian is the last with T > 0.5; row 1: alphas < 1/255 are skipped
    np.testing.assert_allclose(np.asarray(median_depth(trans, alpha, z)), [2.0, 2.0, 0.0])


def test_rendered_geometry_maps_of_one_flat_gaussian():
    """A flat Gaussian facing the camera: ray depth = its plane, the distortion is 0, median = plane depth."""
    cam = make_camera([0.0, -3.0, 0.0], [0, 0, 0], width=12, height=10, fov_deg=50)
    with jax.enable_x64(True):
        p = init_gaussians([[0.1, 0.0, 0.05]], [[0.5, 0.5, 0.5]], scale=0.4, opacity=0.9, dtype=jnp.float64)
        p["log_scales"] = p["log_scales"].at[0, 1].set(np.log(1e-4))  # flat along world y = the viewing axis
        out = render(p, camera_arrays(cam, jnp.float64), 12, 10, None, 0.3, True)
        a = np.asarray(out["alpha"])
        zr = np.asarray(out["ray_depth"]) / a
        np.testing.assert_allclose(zr, 3.0, rtol=1e-6)  # the plane y = 0 lies at camera depth 3
        np.testing.assert_allclose(np.asarray(out["distortion"]), 0.0, atol=1e-20)
        med = np.asarray(out["median_depth"])
        np.testing.assert_allclose(med[a >= 1 / 255], 3.0, rtol=1e-6)
        # ray depth = the density maximum along the pixel ray (brute force on a fine grid of depths)
        p["log_scales"] = jnp.log(jnp.asarray([[0.3, 0.1, 0.2]]))
        p["quats"] = jnp.asarray([[0.9, 0.2, -0.3, 0.1]])
        zs = np.asarray(ray_depths(p, camera_arrays(cam, jnp.float64), jnp.asarray([[4.5, 6.5]])))[0, 0]
        from generative.reconstruction.splat import covariances
        Sinv = np.linalg.inv(np.asarray(covariances(p["log_scales"], p["quats"]))[0])
        ray = cam.R.T @ np.array([(4.5 - cam.cx) / cam.fx, (6.5 - cam.cy) / cam.fy, 1.0])
        ts = np.linspace(2, 4, 200001)
        x = cam.center[None] + ts[:, None] * ray[None] - np.array([0.1, 0.0, 0.05])
        assert abs(ts[np.argmin(np.einsum("ti,ij,tj->t", x, Sinv, x))] - zs) < 1e-4


def test_distortion_loss_and_edge_weights():
    img = jnp.zeros((6, 7, 3)).at[:, 3:].set(1.0)
    e = np.asarray(edge_weights(img))
    assert e.shape == (6, 7) and np.all(e[0] == 0) and np.all(e[:, 0] == 0)
    np.testing.assert_allclose(e[1:-1, 1], 1.0)  # flat region
    np.testing.assert_allclose(e[1:-1, 2], np.exp(-1.0))  # next to the step
    D, a = jnp.full((6, 7), 0.02), jnp.full((6, 7), 0.5)
    np.testing.assert_allclose(float(distortion_loss(D, a, jnp.asarray(e))), (0.02 / 0.25 * e).mean(), rtol=1e-6)
    assert float(distortion_loss(D, jnp.zeros((6, 7)), jnp.asarray(e))) == 0.0


def test_interpolated_cameras_and_point_render():
    cams = orbit_cameras(3, width=16, height=16)
    v = interpolate_cameras(cams, 4)
    assert len(v) == 8 and np.allclose(v[0].R, cams[0].R) and np.allclose(v[4].t, cams[1].t)
    for c in v:  # orbit cameras keep the same t, so slerp keeps them on the orbit, looking at the origin
        np.testing.assert_allclose(np.linalg.norm(c.center), 3.0, rtol=1e-9)
        np.testing.assert_allclose(c.R @ np.zeros(3) + c.t, [0, 0, 3.0], atol=1e-9)
    with pytest.raises(ValueError):
        interpolate_cameras(cams[:1])
    # a point at the image centre, inside radius; an occluded one behind it (20 nearest kept -> averaged);
    cam = make_camera([0.0, -3.0, 0.0], [0, 0, 0], width=8, height=8, fov_deg=50)
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cols = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    img = point_cloud_render(pts, cols, cam, radius_px=0.8, background=(0.5, 0.5, 0.5))
    # both project to (4, 4): the four centre pixels are at distance sqrt(0.5) < 0.8 px -> equal weights
    np.testing.assert_allclose(img[3:5, 3:5], np.broadcast_to([0.5, 0.0, 0.5], (2, 2, 3)))
    assert np.allclose(img[0, 0], 0.5)
    near_only = point_cloud_render(pts, cols, cam, radius_px=0.8, points_per_pixel=1)
    np.testing.assert_allclose(near_only[3:5, 3:5], np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)))
    assert float(point_render_loss(jnp.asarray(img), jnp.asarray(img))) == 0.0
    np.testing.assert_allclose(float(point_render_loss(jnp.zeros((2, 2, 3)), jnp.ones((2, 2, 3)))), 1.0)


def test_geometry_losses_have_finite_gradients_with_empty_pixels():
    """Empty background pixels (zero depth, zero normals) must not give NaN gradients."""
    cam = make_camera([0.0, -3.0, 0.0], [0, 0, 0], width=10, height=8, fov_deg=50)
    c = camera_arrays(cam)
    p = init_gaussians([[0.0, 0.0, 0.0], [0.2, 0.3, 0.1]], [[0.5, 0.5, 0.5]] * 2, scale=0.08, opacity=0.8)
    edge = edge_weights(jnp.zeros((8, 10, 3)))

    def f(p):
        o = render(p, c, 10, 8, None, 0.3, True)
        return (0.05 * depth_normal_loss(o["normals"], o["ray_depth"], o["alpha"], o["median_depth"], c["K"])
                + 100 * distortion_loss(o["distortion"], o["alpha"], edge))

    o = render(p, c, 10, 8, None, 0.3, True)
    assert float(np.asarray(o["alpha"]).min()) < 1e-6  # there are empty pixels
    g = jax.jit(jax.grad(f))(p)
    assert all(np.isfinite(np.asarray(v)).all() for v in g.values())
    assert np.abs(np.asarray(g["means"])).max() > 0
