"""LSM / FNO / U-Net: shapes, the latent projection's linear cost and resolution-independent token
count, patch locality of the spectral block, relative L2, and training on a tiny problem."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.core import param_count
from generative.pde import (FNO, LSM, NeuralSpectralBlock, UNet, patchify, relative_l2,
                            trigonometric_basis, unpatchify)

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("model,shape", [
    (LSM(out_channels=2, width=8, num_scales=1, patch_size=2, num_basis=3, pad_to_fit=True), (2, 10, 10, 3)),
    (LSM(out_channels=1, width=8, num_scales=1, patch_size=2, num_basis=3), (2, 12, 1)),
    (UNet(out_channels=2, width=8, num_scales=2, pad_to_fit=True), (2, 9, 9, 3)),
    (UNet(out_channels=2, width=8, num_scales=2), (2, 8, 8, 3)),
    (FNO(out_channels=2, width=8, modes=3, depth=2, padding=2), (2, 10, 10, 3)),
    (FNO(out_channels=1, width=8, modes=4, depth=2), (2, 16, 1)),
])
def test_output_shapes(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    params = jax.eval_shape(model.init, KEY, x)  # shapes only: no compilation
    out = jax.eval_shape(model.apply, params, x)
    assert out.shape == shape[:-1] + (model.out_channels,)
    assert param_count(params) > 0


def test_patchify_roundtrip_and_layout():
    x = jnp.arange(2 * 4 * 6 * 3.0).reshape(2, 4, 6, 3)
    p = patchify(x, 2)
    assert p.shape == (2 * 2 * 3, 4, 3)
    np.testing.assert_array_equal(p[1, :, 0], x[0, 0:2, 2:4, 0].ravel())  # second patch of row 0
    np.testing.assert_array_equal(unpatchify(p, 2, (4, 6), 2), x)
    with pytest.raises(ValueError):
        patchify(x, 4)


def test_trigonometric_basis_values():
    z = jnp.array([0.5, -1.0])
    b = trigonometric_basis(z, 4)
    assert b.shape == (2, 8)
    np.testing.assert_allclose(b[0, :4], np.sin(np.pi * 0.5 * np.arange(4) / 4), atol=1e-6)
    np.testing.assert_allclose(b[1, 4:], np.cos(-np.pi * np.arange(4) / 4), atol=1e-6)


def _block_and_params(c=8, n=8, p=4):
    block = NeuralSpectralBlock(num_basis=4, patch_size=p, num_tokens=3, num_heads=4)
    return block, block.init(KEY, jnp.zeros((1, n, n, c)))


def test_latent_token_count_is_resolution_independent():
    block, params = _block_and_params()
    for n in (8, 16):
        x = jax.ShapeDtypeStruct((1, n, n, 8), jnp.float32)
        _, state = jax.eval_shape(lambda x: block.apply(params, x, mutable=["intermediates"]), x)
        (latent,) = state["intermediates"]["latent_tokens"]
        assert latent.shape == ((n // 4) ** 2, 3, 8)  # 3 tokens of 8 channels per patch


def test_latent_projection_cost_linear_in_grid_points():
    block, params = _block_and_params()

    def flops(n):
        x = jnp.zeros((1, n, n, 8))
        cost = jax.jit(lambda x: block.apply(params, x)).lower(x).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return cost["flops"]

    f16, f32, f64 = flops(16), flops(32), flops(64)
    assert 3.6 < f32 / f16 < 4.4 and 3.6 < f64 / f32 < 4.4  # 4x points -> 4x flops (not 16x)


def test_spectral_block_acts_patchwise():
    """Changing one patch of the input changes the block output only inside that patch."""
    block, params = _block_and_params()
    x = jax.random.normal(KEY, (1, 8, 8, 8))
    y = block.apply(params, x)
    y2 = block.apply(params, x.at[0, 0:4, 4:8].add(1.0))
    changed = np.asarray(jnp.any(jnp.abs(y2 - y) > 1e-6, axis=-1))[0]
    expected = np.zeros((8, 8), bool)
    expected[0:4, 4:8] = True
    np.testing.assert_array_equal(changed, expected)


def test_relative_l2_values_and_errors():
    t = jnp.array([[3.0, 4.0], [1.0, 0.0]])
    p = jnp.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(relative_l2(p, t), 0.5, rtol=1e-6)
    np.testing.assert_allclose(relative_l2(2 * t, t), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        relative_l2(p, t[:1])


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_lsm_loss_decreases_on_tiny_problem():
    """Learn the smoothing map x -> moving average of x on 1-D grids."""
    x = jax.random.normal(KEY, (8, 16, 1))
    y = (x + jnp.roll(x, 1, 1) + jnp.roll(x, -1, 1)) / 3
    model = LSM(out_channels=1, width=8, num_scales=1, patch_size=4, num_basis=4, num_tokens=2)
    params = jax.jit(model.init)(KEY, x)
    tx = optax.adam(3e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt):
        loss, g = jax.value_and_grad(lambda p: relative_l2(model.apply(p, x), y))(params)
        upd, opt = tx.update(g, opt)
        return optax.apply_updates(params, upd), opt, loss

    losses = []
    for _ in range(30):
        params, opt, loss = step(params, opt)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_size_that_does_not_fit_raises_instead_of_padding():
    """32^2 with the official 4 scales x patch 4 would need 64^2: refused unless pad_to_fit."""
    x = jax.ShapeDtypeStruct((1, 32, 32, 1), jnp.float32)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        jax.eval_shape(LSM(out_channels=1, width=8, num_scales=4, patch_size=4).init, KEY, x)
    with pytest.raises(ValueError, match="multiple of 2\\^num_scales"):
        jax.eval_shape(UNet(out_channels=1, width=8, num_scales=3).init, KEY, jax.ShapeDtypeStruct((1, 12, 12, 1),
                                                                                                   jnp.float32))
    params = jax.eval_shape(LSM(out_channels=1, width=8, num_scales=3, patch_size=4).init, KEY, x)  # 32 = 4 * 2^3
    assert param_count(params) > 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        jax.eval_shape(FNO(out_channels=1, modes=9).init, KEY, jnp.zeros((1, 16, 16, 1)))
    with pytest.raises(ValueError):
        jax.eval_shape(LSM(out_channels=1, width=6, num_scales=1, patch_size=2).init, KEY, jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError):
        jax.eval_shape(UNet(out_channels=1).init, KEY, jnp.zeros((8, 8)))
