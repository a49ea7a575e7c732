"""P38 SparseSSP: folding, slice keeping, shapes, one training step, FLOPs (tiny sizes)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from generative.reconstruction.cells import make_cells
from generative.reconstruction.ssp import (
    SparseSSP, UNet3D, fold_depth, forward_flops, keep_slices, r2_score, unfold_depth, upsample_depth,
)
from sparsejax.core import param_count

KEY = jax.random.PRNGKey(0)


def test_fold_unfold_exact_inverse_and_official_order():
    x = jax.random.normal(KEY, (2, 4, 3, 5, 6))
    y = fold_depth(x)
    assert y.shape == (2, 3, 5, 24)
    assert np.array_equal(np.asarray(unfold_depth(y, 4)), np.asarray(x))
    assert np.array_equal(np.asarray(fold_depth(unfold_depth(y, 4))), np.asarray(y))
    # channel index c*D + d, as torch's view(B, C*D, H, W) of (B, C, D, H, W)
    assert float(y[1, 2, 3, 2 * 4 + 1]) == float(x[1, 1, 2, 3, 2])
    with pytest.raises(ValueError):
        unfold_depth(y, 5)


@pytest.mark.parametrize("r", [1, 2, 3, 4, 8])
def test_keep_slices_keeps_every_rth(r):
    vol = np.arange(2 * 16 * 3).reshape(2, 16, 3)
    kept = np.asarray(keep_slices(vol, r))
    assert np.array_equal(kept, vol[:, [z for z in range(16) if z % r == 0]])


def test_keep_slices_rejects_bad_r():
    with pytest.raises(ValueError):
        keep_slices(np.zeros((1, 8)), 0)


def test_nearest_upsampling_maps_each_slice_to_r_depths():
    x = jnp.arange(4.0).reshape(1, 4, 1, 1, 1)
    up = np.asarray(upsample_depth(x, 16)).ravel()
    assert np.array_equal(up, np.repeat(np.arange(4.0), 4))


@pytest.mark.parametrize("r", [1, 2, 4, 8])
def test_output_shapes(r):
    x = jnp.zeros((1, 8 // r, 8, 8, 1))
    for model in (SparseSSP(depth=8, width=2, levels=1), UNet3D(depth=8, width=2, levels=1)):
        params = model.init(KEY, x)
        assert model.apply(params, x).shape == (1, 8, 8, 8, 1)


def test_training_step_reduces_loss():
    data = make_cells(2, seed=0, shape=(8, 8, 8))
    x = jnp.asarray(keep_slices(data["tl"], 2))[..., None]
    t = jnp.asarray(data["target"])[..., None]
    model = SparseSSP(depth=8, width=4, levels=1)
    params = model.init(KEY, x)
    opt = optax.adam(3e-3)
    state = opt.init(params)
    loss = lambda p: jnp.mean((model.apply(p, x) - t) ** 2)  # noqa: E731
    step = jax.jit(lambda p, s: (lambda l, g: (l, *opt.update(g, s, p)))(*jax.value_and_grad(loss)(p)))
    first = float(loss(params))
    for _ in range(10):
        _, upd, state = step(params, state)
        params = optax.apply_updates(params, upd)
    assert float(loss(params)) < first


def test_flops_positive_and_2d_decoder_cheaper_at_equal_width():
    x = jnp.zeros((1, 4, 16, 16, 1))
    flops = {}
    for model in (SparseSSP(depth=8, width=4, levels=2), UNet3D(depth=8, width=4, levels=2)):
        params = model.init(KEY, x)
        flops[type(model).__name__] = forward_flops(model, params, x)
        assert param_count(params) > 0
    assert flops["SparseSSP"] > 0 and flops["UNet3D"] > 0
    assert flops["SparseSSP"] < flops["UNet3D"]


def test_r2_score():
    t = jnp.asarray(np.random.default_rng(0).normal(size=(50,)))
    assert r2_score(t, t) == pytest.approx(1.0)
    assert r2_score(jnp.full_like(t, t.mean()), t) == pytest.approx(0.0, abs=1e-6)


def test_cells_shapes_and_ranges():
    d = make_cells(2, seed=1, shape=(8, 16, 16))
    assert d["tl"].shape == d["target"].shape == (2, 8, 16, 16)
    assert abs(float(d["tl"][0].mean())) < 1e-4 and float(d["target"].max()) <= 1.0 + 1e-6
    assert np.array_equal(make_cells(2, seed=1, shape=(8, 16, 16))["tl"], d["tl"])
    with pytest.raises(ValueError):
        make_cells(1, shape=(2, 16, 16))
