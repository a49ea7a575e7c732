"""Lifting / group convolution equivariance on analytic inputs, pooling and the classifier (P19)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geometry.lie import (
    AffineGCNN,
    bilinear_kernel,
    group_conv,
    group_conv_kernels,
    group_inverse,
    group_layer_norm,
    invariant_pool,
    kernel_offsets,
    lift_conv,
    lifting_kernels,
    rotation_2d,
    sample_group,
    spatial_max_pool,
)

SIZE = 40
CENTERS = np.array([[-3.0, 2.0], [3.0, -3.0], [2.0, 4.0]])
SIGMAS = np.array([3.0, 3.6, 2.7])
AMPS = np.array([1.0, 0.8, -0.6])


def blobs(a, t, size=SIZE):
    """Exact image of ``L_(t, a) f`` for f a sum of Gaussian blobs: f(a^{-1}(y - c - t))."""
    idx = jnp.arange(size, dtype=jnp.float32)
    y = jnp.stack(jnp.meshgrid(idx, idx, indexing="ij"), -1) - (size - 1) / 2.0
    z = jnp.einsum("ij,abj->abi", group_inverse(jnp.asarray(a, jnp.float32)), y - t)
    d = ((z[:, :, None, :] - CENTERS) ** 2).sum(-1)
    return (AMPS * jnp.exp(-d / (2 * SIGMAS**2))).sum(-1)[None, ..., None].astype(jnp.float32)


def gauss_kernel(v, s=0.3):
    """Smooth, non-symmetric analytic lifting kernel in kernel coordinates."""
    r2 = (v**2).sum(-1) / s**2
    return ((1.0 + 2.0 * v[..., 0] - v[..., 1]) * jnp.exp(-r2 / 2))[..., None, None]


def interp(feature, points):
    """Bilinear interpolation of a (H, W) map at array-index points (..., 2)."""
    return jax.scipy.ndimage.map_coordinates(feature, [points[..., 0], points[..., 1]], order=1)


AFFINE = rotation_2d(0.3) @ jnp.array([[1.15, 0.15], [0.0, 0.85]])
SHIFT = jnp.array([2.0, -1.5])


def _transport_error(out0, out1, a, t, margin=10):
    """max |F'(x, a h) - F(a^{-1}(x - t), h)| / max |F| on interior pixels x."""
    idx = jnp.arange(SIZE, dtype=jnp.float32)
    x = jnp.stack(jnp.meshgrid(idx, idx, indexing="ij"), -1)
    c = (SIZE - 1) / 2.0
    src = jnp.einsum("ij,abj->abi", group_inverse(a), x - c - t) + c
    inner = (slice(margin, SIZE - margin),) * 2
    errs = []
    for i in range(out0.shape[-1]):
        pulled = interp(out0[..., i], src)
        errs.append(jnp.abs(out1[..., i] - pulled)[inner].max() / jnp.abs(out0[..., i]).max())
    return float(max(errs))


def test_lifting_equivariance_with_transported_samples():
    """(L f * k)(x, A h) = (f * k)(A^{-1}(x - t), h) on exact transformed Gaussian blobs."""
    g = sample_group(jax.random.PRNGKey(0), 6, 2, spd_scale=0.2).g
    k0 = lifting_kernels(gauss_kernel, g, 13)
    k1 = lifting_kernels(gauss_kernel, AFFINE @ g, 13)
    out0 = lift_conv(blobs(jnp.eye(2), jnp.zeros(2)), k0)[0, ..., 0]
    out1 = lift_conv(blobs(AFFINE, SHIFT), k1)[0, ..., 0]
    err = _transport_error(out0, out1, AFFINE, SHIFT)
    assert err < 0.03, err
    # control: without transporting the samples the outputs differ at O(1)
    wrong = lift_conv(blobs(AFFINE, SHIFT), k0)[0, ..., 0]
    assert _transport_error(out0, wrong, AFFINE, SHIFT) > 5 * err


def test_group_conv_equivariance_with_transported_samples():
    """Group convolution maps transported inputs to transported outputs (xi^{-1}(h^{-1}g) is invariant)."""
    kg = jax.random.split(jax.random.PRNGKey(1), 2)
    g_in = sample_group(kg[0], 4, 2, spd_scale=0.2).g
    g_out = sample_group(kg[1], 3, 2, spd_scale=0.2).g

    def kernel(v, c):
        r2 = (v**2).sum(-1)
        val = jnp.exp(-r2 / (2 * 0.3**2)) * (1.0 + 0.5 * v[..., 0]) * jnp.cos(c[..., 3] + 0.3 * c[..., 0])
        return val[..., None, None]

    def pipeline(img, a):
        feats = lift_conv(img, lifting_kernels(gauss_kernel, a @ g_in, 13))
        w = jnp.full((4,), 0.25)
        return group_conv(feats, group_conv_kernels(kernel, a @ g_in, a @ g_out, w, 9))[0, ..., 0]

    out0 = pipeline(blobs(jnp.eye(2), jnp.zeros(2)), jnp.eye(2))
    out1 = pipeline(blobs(AFFINE, SHIFT), AFFINE)
    assert _transport_error(out0, out1, AFFINE, SHIFT, margin=12) < 0.05


def test_invariant_error_falls_with_number_of_group_samples():
    """Monte-Carlo invariance of the pooled lifted features.

    The pooled invariant (mean over N sampled h of the spatial sum of relu(F)^2) of f and of
    L_(t, R) f (R a rotation, under which the sampler's distribution is invariant) estimate the
    same integral with independent samples; their relative gap must fall with N (~ N^{-1/2}).
    """
    rot = rotation_2d(0.7)
    imgs = (blobs(jnp.eye(2), jnp.zeros(2)), blobs(rot, SHIFT))

    @jax.jit
    def pooled(img, key):
        g = sample_group(key, 256, 2, spd_scale=0.3).g
        f = lift_conv(img, lifting_kernels(gauss_kernel, g, 13))[0, ..., 0]
        return (jax.nn.relu(f) ** 2).sum((0, 1))

    curve = {16: [], 64: [], 256: []}
    for seed in range(5):
        p0 = pooled(imgs[0], jax.random.PRNGKey(seed))
        p1 = pooled(imgs[1], jax.random.PRNGKey(1000 + seed))
        for n in curve:
            curve[n].append(float(jnp.abs(p1[:n].mean() - p0[:n].mean()) / p0[:n].mean()))
    errs = {n: float(np.mean(v)) for n, v in curve.items()}
    print("invariance error vs number of group samples:", errs)
    assert errs[64] < errs[16] and errs[256] < errs[64]
    assert errs[256] < 0.6 * errs[16]


def test_bilinear_kernel_interpolates_grid():
    grid = jax.random.normal(jax.random.PRNGKey(0), (5, 5, 2, 3))
    nodes = jnp.stack(jnp.meshgrid(jnp.linspace(-1, 1, 5), jnp.linspace(-1, 1, 5), indexing="ij"), -1)
    np.testing.assert_allclose(bilinear_kernel(grid, nodes), grid, atol=1e-5)
    mid = bilinear_kernel(grid, jnp.array([-0.75, -1.0]))
    np.testing.assert_allclose(mid, 0.5 * (grid[0, 0] + grid[1, 0]), atol=1e-5)
    np.testing.assert_allclose(bilinear_kernel(grid, jnp.array([1.6, 0.0])), 0.0)


def test_pooling_shapes_and_invariance_to_sample_order():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 7, 4, 3))
    pooled = spatial_max_pool(x)
    assert pooled.shape == (2, 3, 4, 4, 3)
    np.testing.assert_allclose(pooled[:, 0, 0], x[:, :2, :2].max((1, 2)))
    perm = x[:, :, :, ::-1]
    for mode in ("max", "mean"):
        np.testing.assert_allclose(invariant_pool(x, mode), invariant_pool(perm, mode), atol=1e-6)
    normed = group_layer_norm(3.0 * x + 1.0)
    np.testing.assert_allclose(normed.mean((1, 2, 3, 4)), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std((1, 2, 3, 4)), 1.0, atol=1e-3)
    np.testing.assert_allclose(normed, group_layer_norm(x), atol=1e-4)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_affine_gcnn_forward_and_parameter_parity():
    x = jnp.zeros((2, 16, 16, 1))
    key = jax.random.PRNGKey(0)
    counts = {}
    for group in ("gl2", "sl2", "se2"):
        model = AffineGCNN(10, channels=(4, 4), num_samples=4, group=group, kernel_hidden=8, head=8)
        shapes = jax.eval_shape(model.init, key, x, key)
        counts[group] = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes))
    assert counts["gl2"] == counts["sl2"] == counts["se2"]
    params = model.init(key, x, key)
    out = jax.jit(model.apply)(params, x + 1.0, key)
    assert out.shape == (2, 10) and bool(jnp.all(jnp.isfinite(out)))


def test_layer_errors():
    with pytest.raises(ValueError):
        kernel_offsets(4)
    with pytest.raises(ValueError):
        lift_conv(jnp.zeros((8, 8, 1)), jnp.zeros((2, 3, 3, 1, 1)))
    with pytest.raises(ValueError):
        lifting_kernels(gauss_kernel, jnp.zeros((2, 3, 3)), 3)
    with pytest.raises(ValueError):
        group_conv_kernels(lambda v, c: v, jnp.eye(2)[None], jnp.eye(2)[None], jnp.ones(2), 3)
    with pytest.raises(ValueError):
        invariant_pool(jnp.zeros((1, 2, 2, 2, 1)), "median")
    with pytest.raises(ValueError):
        AffineGCNN(10, group="se3").init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)), jax.random.PRNGKey(0))
