"""P38 MoDE (RepMode's mixture of diverse experts in SparseSSP): reductions and the re-parameterisation identity."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.reconstruction.cells import STRUCTURES, make_cells
from generative.reconstruction.ssp import OFFICIAL_EXPERTS, SMALL_EXPERTS, MoDEConv, SparseSSP, _Block, _conv_same

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_one_expert_block_is_the_plain_block(ndim):
    """A MoDE block with the single expert conv3 has gate softmax = 1 for every task: with the plain block's kernels
    and biases it computes the plain block exactly (any task id, scalar or per sample)."""
    x = jax.random.normal(KEY, (2,) + (6,) * ndim + (3,))
    plain = _Block(4, ndim)
    pp = plain.init(KEY, x)["params"]
    mode = _Block(4, ndim, experts=("conv3",), num_tasks=3)
    mp = mode.init(jax.random.PRNGKey(1), x, 0)["params"]
    for i in range(2):
        conv = pp[f"_Conv_{i}"]["Conv_0"]
        mp[f"_Conv_{i}"]["MoDEConv_0"].update(conv3=conv["kernel"], bias=conv["bias"])
    ref = np.asarray(plain.apply({"params": pp}, x))
    for task in (0, 2, jnp.array([1, 2])):
        np.testing.assert_allclose(np.asarray(mode.apply({"params": mp}, x, task)), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("ndim,kernel,experts", [(2, 5, OFFICIAL_EXPERTS),
                                                 (3, 3, SMALL_EXPERTS)])
def test_merged_kernel_equals_multi_branch(ndim, kernel, experts):
    """Gated re-parameterisation: one conv with the merged kernel = the sum of the gated expert branches (convs,
    and zero-padded average pools followed by 1x1 convs), per task and with a different task per sample."""
    x = jax.random.normal(KEY, (2,) + (7,) * ndim + (3,))
    m = MoDEConv(4, kernel, ndim, num_tasks=2, experts=experts)
    p = m.init(jax.random.PRNGKey(2), x, 0)
    for task in (0, 1, jnp.array([1, 0])):
        np.testing.assert_allclose(np.asarray(m.apply(p, x, task)), np.asarray(m.apply(p, x, task, multi_branch=True)),
                                   rtol=0, atol=1e-5)
    per_sample = m.apply(p, x, jnp.array([1, 0]))                 # one kernel per sample = that task's kernel
    np.testing.assert_allclose(np.asarray(per_sample[0]), np.asarray(m.apply(p, x, 1)[0]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(per_sample[1]), np.asarray(m.apply(p, x, 0)[1]), atol=1e-6)
    merged = m.apply(p, 1, method=MoDEConv.merged_kernel)
    assert merged.shape == (kernel,) * ndim + (3, 4)
    np.testing.assert_allclose(np.asarray(_conv_same(x, merged, ndim) + p["params"]["bias"]),
                               np.asarray(m.apply(p, x, 1)), rtol=0, atol=1e-6)
    g = m.apply(p, jnp.arange(2), method=MoDEConv.gates)
    assert g.shape == (2, len(experts), 4)
    np.testing.assert_allclose(np.asarray(g.sum(axis=1)), 1.0, atol=1e-6)


def test_avg_expert_is_average_pool_then_1x1():
    """An avg3 expert alone (gate = 1) is a zero-padded 3x3 mean followed by its 1x1 weight."""
    x = jax.random.normal(KEY, (1, 5, 5, 2))
    m = MoDEConv(3, 3, 2, num_tasks=1, experts=("avg3",), use_bias=False)
    p = m.init(KEY, x, 0)
    w = np.asarray(p["params"]["avg3"])
    xp = np.pad(np.asarray(x[0]), ((1, 1), (1, 1), (0, 0)))
    mean = np.stack([[xp[i:i + 3, j:j + 3].sum((0, 1)) / 9 for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(np.asarray(m.apply(p, x, 0))[0], mean @ w, atol=1e-6)


def test_mode_sparsessp_is_routed_by_the_task():
    x = jax.random.normal(KEY, (2, 2, 8, 8, 1))
    model = SparseSSP(depth=4, width=2, levels=1, experts=SMALL_EXPERTS, num_tasks=2)
    p = jax.jit(model.init)(KEY, x, 0)
    fwd = jax.jit(model.apply)                                      # one compile for both task ids
    y0, y1 = fwd(p, x, jnp.int32(0)), fwd(p, x, jnp.int32(1))
    assert y0.shape == (2, 4, 8, 8, 1)
    assert not np.allclose(np.asarray(y0), np.asarray(y1))     # the task id changes the prediction
    with pytest.raises(ValueError, match="task id"):
        model.apply(p, x)


def test_mode_conv_rejects_bad_configs():
    x = jnp.zeros((1, 5, 5, 2))
    for kw in ({"kernel_size": 4}, {"experts": ("conv5",)}, {"experts": ("pool3",)}, {"num_tasks": 0}):
        with pytest.raises(ValueError):
            MoDEConv(3, **{"kernel_size": 3, "ndim": 2, **kw}).init(KEY, x, 0)
    with pytest.raises(ValueError):
        MoDEConv(3, 3, 2).init(KEY, x, jnp.zeros((3,), jnp.int32))     # task batch != B
    with pytest.raises(ValueError):
        MoDEConv(3, 3, 2).init(KEY, x, 0.5)


def test_cells_structure_channels():
    d = make_cells(2, seed=3, shape=(8, 16, 16))
    s = d["structures"]
    assert s.shape == (2, len(STRUCTURES), 8, 16, 16) and len(STRUCTURES) >= 2
    assert float(s.min()) >= 0.0 and np.allclose(s.max(axis=(2, 3, 4)), 1.0)
    # the channels are different structures, not copies
    assert not np.allclose(s[:, 0], s[:, 1]) and not np.allclose(s[:, 0], s[:, 2])
