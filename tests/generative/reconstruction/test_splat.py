import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.reconstruction.cameras import make_camera, orbit_cameras
from generative.reconstruction.splat import (
    camera_arrays, corrupt_depth, densify_and_prune, depth_prior_loss, init_gaussians, pearson, pseudo_view_weights,
    render, render_camera, trace_spheres,
)


def _cam(w=16, h=12):
    return make_camera([0.0, -3.0, 0.0], [0, 0, 0], width=w, height=h, fov_deg=50)


def test_isotropic_footprint_matches_projected_gaussian():
    cam = _cam(24, 20)
    s, op = 0.15, 0.5
    with jax.enable_x64(True):
        params = init_gaussians([[0.1, 0.0, -0.05]], [[0.5, 0.5, 0.5]], scale=s, opacity=op, dtype=jnp.float64)
        out = render(params, camera_arrays(cam, jnp.float64), cam.width, cam.height, None, 0.0)
        alpha = np.asarray(out["alpha"])
    p = cam.R @ np.array([0.1, 0.0, -0.05]) + cam.t
    J = np.array([[cam.fx / p[2], 0, -cam.fx * p[0] / p[2] ** 2], [0, cam.fy / p[2], -cam.fy * p[1] / p[2] ** 2]])
    cov = J @ cam.R @ (s * s * np.eye(3)) @ cam.R.T @ J.T
    mu = np.array([cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy])
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    d = np.stack([u - mu[0], v - mu[1]], -1)
    expect = op * np.exp(-0.5 * np.einsum("hwi,ij,hwj->hw", d, np.linalg.inv(cov), d))
    np.testing.assert_allclose(alpha, expect, atol=1e-10)


def test_two_gaussians_composite_in_depth_order():
    cam = _cam(8, 8)
    # a big red Gaussian in front (nearer to the camera at y=-3), a green one behind; listed back-first
    pts = [[0.0, 0.5, 0.0], [0.0, -0.5, 0.0]]
    cols = [[0.01, 0.99, 0.01], [0.99, 0.01, 0.01]]
    params = init_gaussians(pts, cols, scale=0.8, opacity=0.6)
    out = render_camera(params, cam, blur=0.0)
    alone = [render_camera(jax.tree.map(lambda a: a[i:i + 1], params), cam, blur=0.0) for i in range(2)]
    a_back, a_front = (np.asarray(o["alpha"]) for o in alone)
    c_back, c_front = (np.asarray(jax.nn.sigmoid(params["color_logits"][i])) for i in range(2))
    expect = a_front[..., None] * c_front + ((1 - a_front) * a_back)[..., None] * c_back
    np.testing.assert_allclose(np.asarray(out["rgb"]), expect, atol=1e-5)
    z_back, z_front = (np.asarray(o["depth"]) / np.asarray(o["alpha"]) for o in alone)
    np.testing.assert_allclose(np.asarray(out["depth"]), a_front * z_front + (1 - a_front) * a_back * z_back, rtol=1e-5)
    assert np.all(z_front < z_back)
    # the listing order does not matter (the renderer sorts by depth)
    flipped = render_camera(jax.tree.map(lambda a: a[::-1], params), cam, blur=0.0)
    np.testing.assert_allclose(np.asarray(flipped["rgb"]), np.asarray(out["rgb"]), atol=1e-6)


def test_gradients_match_finite_differences():
    cam = _cam(8, 6)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        params = init_gaussians(rng.normal(0, 0.3, (3, 3)), rng.uniform(0.2, 0.8, (3, 3)), scale=0.3, opacity=0.5,
                                dtype=jnp.float64)
        params["quats"] = jnp.asarray(rng.normal(size=(3, 4)))
        params["log_scales"] = jnp.asarray(rng.normal(np.log(0.3), 0.2, (3, 3)))
        camj = camera_arrays(cam, jnp.float64)
        target = jnp.asarray(rng.uniform(size=(6, 8, 3)))

        def loss(p):
            o = render(p, camj, cam.width, cam.height, None, 0.3)
            return jnp.sum((o["rgb"] - target) ** 2) + 0.1 * jnp.sum(o["depth"] ** 2)

        g = jax.grad(loss)(params)
        loss = jax.jit(loss)
        h = 1e-6
        for k in params:
            flat = np.asarray(params[k]).ravel()
            for i in range(0, flat.size, max(flat.size // 4, 1)):
                e = np.zeros_like(flat); e[i] = h
                pp = dict(params); pm = dict(params)
                pp[k] = jnp.asarray((flat + e).reshape(params[k].shape))
                pm[k] = jnp.asarray((flat - e).reshape(params[k].shape))
                fd = (loss(pp) - loss(pm)) / (2 * h)
                np.testing.assert_allclose(np.asarray(g[k]).ravel()[i], fd, rtol=1e-4, atol=1e-6)


def test_scene_depth_normals_consistent():
    cam = orbit_cameras(1, radius=3.0, width=16, height=16)[0]
    gt = trace_spheres(cam)
    m = gt["mask"]
    assert m.any() and not m.all()
    np.testing.assert_allclose(np.linalg.norm(gt["normals"][m], axis=-1), 1.0, atol=1e-9)
    # normals face the camera: n . (point - centre) < 0 in camera frame
    p_cam = gt["points"][m] @ cam.R.T + cam.t
    assert np.all(np.sum(gt["normals"][m] * p_cam, -1) < 0)
    np.testing.assert_allclose(p_cam[:, 2], gt["depth"][m])


def test_depth_prior_affine_invariant():
    rng = np.random.default_rng(1)
    d = jnp.asarray(rng.uniform(1, 3, (16, 16)))
    assert float(depth_prior_loss(d, 2.0 * d + 5.0)) < 1e-5
    assert float(depth_prior_loss(d, -d)) > 3.9
    noisy = corrupt_depth(np.asarray(d), np.ones((16, 16), bool), rng, noise=0.0, smooth=0.0)
    assert abs(float(pearson(d, jnp.asarray(noisy))) - 1) < 1e-5


def test_densify_and_prune():
    params = init_gaussians(np.zeros((4, 3)), np.full((4, 3), 0.5), scale=0.1, opacity=0.5)
    params["opacity_logits"] = params["opacity_logits"].at[3].set(-10.0)
    params["log_scales"] = params["log_scales"].at[1].set(np.log(1.0))
    out = densify_and_prune(params, np.array([1.0, 1.0, 0.0, 0.0]), np.random.default_rng(0), grad_threshold=0.5,
                            scale_threshold=0.5)
    # 0 cloned, 1 split (two children with scales / 1.6), 2 kept, 3 pruned
    assert out["means"].shape == (5, 3)
    np.testing.assert_allclose(np.exp(out["log_scales"][1]), 1.0 / 1.6, rtol=1e-5)
    with pytest.raises(ValueError):
        densify_and_prune(params, np.zeros(3), np.random.default_rng(0), grad_threshold=0.5, scale_threshold=0.5)


def test_pseudo_view_weights():
    w = pseudo_view_weights(np.array([[0.0, 0, 0], [1.0, 0, 0], [0.01, 0, 0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w, [0.0, 1.0, 0.16])
