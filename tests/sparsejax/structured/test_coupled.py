"""Coupled groups and compact extraction: group norms equal a loop reference, extraction shrinks shapes
and reproduces the zero-masked network (BN shifts folded), FLOP counts match closed forms."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.core.tree import leaves_with_paths
from sparsejax.nn import BNCNN, MLP, ViT
from sparsejax.structured.coupled import (
    Dependency, GroupSpec, Member, apply_mask, bn_cnn_groups, build_groups, count_params_flops, extract,
    group_keep_mask, group_norms, kept_sizes, mlp_groups, params_flops, scale_groups, vit_head_groups,
)


def _random_keep(specs, seed, frac=0.5):
    rng = np.random.default_rng(seed)
    keep = {}
    for s in specs:
        k = rng.random(s.size) > frac
        k[rng.integers(s.size)] = True  # never drop a whole layer
        keep[s.name] = jnp.asarray(k)
    return keep


def _loop_norms(params, spec):
    flat = dict(leaves_with_paths(params))
    out = []
    for i in range(spec.size):
        sq = 0.0
        for m in spec.members:
            w = np.asarray(flat[m.path])
            for j in range(m.offset + i * m.block, m.offset + (i + 1) * m.block):
                sq += float(np.sum(np.take(w, j, axis=m.axis) ** 2))
        out.append(np.sqrt(sq))
    return np.array(out)


def _perturb(params, seed):
    """Random nonzero biases/scales (fresh init has zero biases, which would hide a missing fold)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a) + 0.3 * rng.normal(size=a.shape), a.dtype), params)


def test_mlp_groups_norms_and_extract():
    model = MLP(10, hidden=(12, 9))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 7))
    params = _perturb(jax.jit(model.init)(jax.random.PRNGKey(1), x)["params"], 2)
    specs = mlp_groups(params)
    assert [(s.name, s.size) for s in specs] == [("dense_0", 12), ("dense_1", 9)]
    for s in specs:
        np.testing.assert_allclose(group_norms(params, s), _loop_norms(params, s), rtol=1e-5)
    keep = _random_keep(specs, 0)
    sizes = kept_sizes(specs, keep)
    small, _ = extract(params, specs, keep)
    assert small["dense_0"]["kernel"].shape == (7, sizes["dense_0"])
    # the fold matters: dropped units' biases reach the head through relu(bias) @ rows
    assert not np.allclose(np.asarray(small["head"]["bias"]), np.asarray(params["head"]["bias"]))
    assert small["dense_1"]["kernel"].shape == (sizes["dense_0"], sizes["dense_1"])
    assert small["head"]["kernel"].shape == (sizes["dense_1"], 10)
    small_model = MLP(10, hidden=(sizes["dense_0"], sizes["dense_1"]))
    for roles in [("out",), ("out", "shift", "in")]:
        masked = apply_mask(params, group_keep_mask(params, specs, keep, roles))
        small, _ = extract(masked, specs, keep)
        np.testing.assert_allclose(small_model.apply({"params": small}, x), model.apply({"params": masked}, x),
                                   rtol=1e-5, atol=1e-5)


def test_scale_groups_only_touches_members():
    model = MLP(4, hidden=(6,))
    params = _perturb(jax.jit(model.init)(jax.random.PRNGKey(0), jnp.ones((1, 3)))["params"], 1)
    spec = mlp_groups(params)[0]
    f = jnp.arange(6.0)
    scaled = scale_groups(params, spec, f)
    np.testing.assert_allclose(group_norms(scaled, spec), f * group_norms(params, spec), rtol=1e-5)
    np.testing.assert_array_equal(scaled["head"]["bias"], params["head"]["bias"])
    np.testing.assert_allclose(scaled["head"]["kernel"], params["head"]["kernel"] * f[:, None], rtol=1e-6)
    with pytest.raises(ValueError, match="factors"):
        scale_groups(params, spec, jnp.ones(5))


@pytest.mark.parametrize("residual", [False, True])
def test_bn_cnn_extract_equals_masked(residual):
    model = BNCNN(10, channels=(6, 8, 8), residual=residual)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
    variables = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    params = _perturb(variables["params"], 3)
    stats = _perturb(variables["batch_stats"], 4)
    stats = {k: {"mean": v["mean"], "var": jnp.abs(v["var"]) + 0.1} for k, v in stats.items()}
    specs = bn_cnn_groups(params, residual=residual)
    names = [s.name for s in specs]
    assert names == (["conv_0", "conv_1"] if residual else ["conv_0", "conv_1", "conv_2"])
    for s in specs:
        np.testing.assert_allclose(group_norms(params, s), _loop_norms(params, s), rtol=1e-5)
    keep = _random_keep(specs, 1)
    sizes = kept_sizes(specs, keep)
    widths = [sizes["conv_0"], sizes["conv_1"], sizes["conv_1" if residual else "conv_2"]]
    small_model = BNCNN(10, channels=tuple(widths), residual=residual)
    roles_list = [("out", "shift", "in")] if residual else [("out",), ("out", "shift", "in")]
    for roles in roles_list:
        masked = apply_mask(params, group_keep_mask(params, specs, keep, roles))
        small, small_stats = extract(masked, specs, keep, stats)
        assert small["conv_1"]["kernel"].shape == (3, 3, widths[0], widths[1])
        assert small_stats["bn_1"]["mean"].shape == (widths[1],)
        ref = model.apply({"params": masked, "batch_stats": stats}, x)
        out = small_model.apply({"params": small, "batch_stats": small_stats}, x)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    if residual:
        with pytest.raises(ValueError, match="residual coupling"):
            extract(params, specs, keep, stats)


def test_vit_heads_extract_equals_masked():
    model = ViT(10, d_model=16, n_layers=2, n_heads=4, mlp_ratio=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 8, 8, 1))
    params = _perturb(jax.jit(model.init)(jax.random.PRNGKey(1), x)["params"], 5)
    specs = vit_head_groups(params, n_heads=4, mlp_neurons=True)
    assert [(s.name, s.size) for s in specs] == [("block_0/heads", 4), ("block_0/mlp", 32),
                                                 ("block_1/heads", 4), ("block_1/mlp", 32)]
    for s in specs:
        np.testing.assert_allclose(group_norms(params, s), _loop_norms(params, s), rtol=1e-5)
    keep = _random_keep(specs, 2)
    sizes = kept_sizes(specs, keep)
    small, _ = extract(params, specs, keep)
    heads = tuple(sizes[f"block_{i}/heads"] for i in range(2))
    assert small["block_0"]["attn"]["qkv"]["kernel"].shape == (16, 3 * heads[0] * 4)
    small_model = ViT(10, d_model=16, n_layers=2, n_heads=heads, head_dim=4,
                      mlp_hidden=tuple(sizes[f"block_{i}/mlp"] for i in range(2)))
    for roles in [("out",), ("out", "shift", "in")]:
        masked = apply_mask(params, group_keep_mask(params, specs, keep, roles))
        small, _ = extract(masked, specs, keep)
        np.testing.assert_allclose(small_model.apply({"params": small}, x), model.apply({"params": masked}, x),
                                   rtol=1e-4, atol=1e-5)
    # the compact params regroup with head_dim
    assert [s.size for s in vit_head_groups(small, head_dim=4)] == list(heads)


def test_flops_closed_form():
    model = MLP(10, hidden=(12, 9))
    x = jnp.ones((5, 7))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)["params"]
    specs = mlp_groups(params)
    keep = {"dense_0": jnp.arange(12) < 4, "dense_1": jnp.arange(9) < 3}
    small, _ = extract(params, specs, keep)
    apply = lambda p, xb: model.apply({"params": p}, xb)  # noqa: E731
    small_apply = lambda p, xb: MLP(10, hidden=(4, 3)).apply({"params": p}, xb)  # noqa: E731
    got = count_params_flops(apply, params, small_apply, small, x)
    assert got["flops_before"] == 2 * 5 * (7 * 12 + 12 * 9 + 9 * 10)
    assert got["flops_after"] == 2 * 5 * (7 * 4 + 4 * 3 + 3 * 10)
    assert got["params_after"] == 7 * 4 + 4 + 4 * 3 + 3 + 3 * 10 + 10
    cnn = BNCNN(3, channels=(2, 5))
    xc = jnp.ones((1, 8, 8, 1))
    v = jax.jit(cnn.init)(jax.random.PRNGKey(0), xc)
    assert params_flops(lambda vv, xb: cnn.apply(vv, xb), v, xc)["flops"] == 2 * (36 * 9 * 2 + 16 * 9 * 2 * 5 + 5 * 3)


def test_build_groups_checks():
    params = MLP(3, hidden=(4,)).init(jax.random.PRNGKey(0), jnp.ones((1, 2)))["params"]
    with pytest.raises(ValueError, match="no params leaf"):
        build_groups(params, [Dependency("a", (Member("dense_0/kernl", 1),))])
    with pytest.raises(ValueError, match="expected offset 0"):
        build_groups(params, [Dependency("a", (Member("dense_0/kernel", 1), Member("head/kernel", 1, role="in")))])
    with pytest.raises(ValueError, match="role"):
        Member("dense_0/kernel", 1, role="input")
    spec = GroupSpec("a", 4, (Member("dense_0/kernel", 1),))
    with pytest.raises(ValueError, match="keep\\['a'\\]"):
        group_keep_mask(params, [spec], {"a": jnp.ones(3, bool)})
