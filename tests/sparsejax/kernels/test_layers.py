"""SparseDense / QuantDense serve trained (masked) Dense layers with unchanged outputs; the benchmark's
roofline counts; the serving experiments end to end (slow)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.kernels import (
    QuantDense,
    SparseDense,
    apply_with_layers,
    dequantize_weight,
    quantize_weight,
)
from sparsejax.structured import block_mask


def _dense(seed, k, n):
    rng = np.random.default_rng(seed)
    return {"kernel": jnp.asarray(rng.standard_normal((k, n)), jnp.float32),
            "bias": jnp.asarray(rng.standard_normal(n), jnp.float32)}, \
        jnp.asarray(rng.standard_normal((5, k)), jnp.float32)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_sparse_dense_from_dense_matches_masked_dense(use_kernel):
    p, x = _dense(0, 64, 48)
    mask = block_mask(p["kernel"], (16, 16), 0.5)
    module, variables = SparseDense.from_dense(p, mask, (16, 16), use_kernel=use_kernel)
    want = nn.Dense(48).apply({"params": {"kernel": p["kernel"] * mask, "bias": p["bias"]}}, x)
    np.testing.assert_allclose(module.apply(variables, x), want, rtol=1e-5, atol=1e-5)
    assert set(variables) == {"params", "compressed"} and set(variables["params"]) == {"values", "bias"}
    assert variables["params"]["values"].shape == (6, 16, 16)
    # the block values are trainable params: the gradient reaches only kept blocks
    g = jax.jit(jax.grad(lambda v: jnp.sum(module.apply(
        {**variables, "params": {**variables["params"], "values": v}}, x))))(variables["params"]["values"])
    assert g.shape == (6, 16, 16) and bool(jnp.all(jnp.isfinite(g)))


def test_sparse_dense_init_gives_a_valid_layer():
    module = SparseDense(40, 24, (16, 16), nnzb=3, max_blocks_per_col=2, use_kernel=False)
    variables = jax.jit(module.init)(jax.random.PRNGKey(0), jnp.ones((2, 40)))
    assert jax.jit(module.apply)(variables, jnp.ones((2, 40))).shape == (2, 24)


@pytest.mark.parametrize("bits, use_kernel", [(4, True), (8, False)])
def test_quant_dense_dense_layout_matches_dequantized_weight(bits, use_kernel):
    p, x = _dense(1, 64, 32)
    module, variables = QuantDense.from_dense(p, bits, g=32, use_kernel=use_kernel)
    w = dequantize_weight(quantize_weight(p["kernel"], bits, 32))
    np.testing.assert_allclose(module.apply(variables, x), x @ w + p["bias"], rtol=1e-4, atol=1e-4)


def test_quant_dense_from_codes_zeroes_masked_entries_and_block_layout():
    p, x = _dense(2, 64, 32)
    mask = np.zeros((64, 32), bool)
    mask[:16] = True  # only the first group of 16 rows is kept
    module, variables = QuantDense.from_dense(p, 4, g=16, mask=mask, use_kernel=False)
    y = module.apply(variables, x) - p["bias"]
    w_kept = np.asarray(dequantize_weight(quantize_weight(np.asarray(p["kernel"]) * mask, 4, 16)))
    assert np.all(w_kept[16:] == 0)
    np.testing.assert_allclose(y, np.asarray(x) @ w_kept, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(module.apply(variables, x.at[:, 16:].set(123.0)), module.apply(variables, x),
                               rtol=1e-5, atol=1e-4)  # pruned rows are exactly zero
    bmask = block_mask(p["kernel"], (16, 32), 0.5)
    bmod, bvars = QuantDense.from_dense(p, 4, mask=bmask, block_shape=(16, 32), use_kernel=True)
    assert bmod.layout == "block" and bvars["compressed"]["block_rows"].shape == (2,)
    np.testing.assert_allclose(bmod.apply(bvars, x), bmod.clone(use_kernel=False).apply(bvars, x), rtol=1e-5, atol=1e-5)


def test_apply_with_layers_replaces_only_the_named_dense_and_checks_paths():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(16, name="out")(nn.relu(nn.Dense(32, name="hid")(x)))

    net = Net()
    x = jnp.ones((3, 32))
    params = net.init(jax.random.PRNGKey(0), x)
    hid = params["params"]["hid"]
    mask = jnp.ones(hid["kernel"].shape, bool)
    layers = {("hid",): SparseDense.from_dense(hid, mask, (16, 16), use_kernel=False)}
    np.testing.assert_allclose(apply_with_layers(net, params, x, layers=layers), net.apply(params, x),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"never calls as nn.Dense: \[\('nope',\)\]"):
        apply_with_layers(net, params, x, layers={("nope",): layers[("hid",)]})


def test_roofline_counts_and_predictions():
    from experiments.bench_sparse_kernels import make_formats, roofline_rows

    w = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    rows = {(r["format"], r["m"]): r for r in roofline_rows(make_formats(w, (64, 64), 128), [1, 4096], 512, 512)}
    assert rows[("bsr90", 4096)]["flops_vs_dense"] == pytest.approx(round(0.1 * 64) / 64)
    assert rows[("bsr50", 1)]["bytes_vs_dense"] == pytest.approx(0.5, abs=0.01)
    assert rows[("nm24", 1)]["bytes_vs_dense"] == pytest.approx(0.5625, abs=1e-3)
    assert rows[("w4", 1)]["bytes_vs_dense"] == pytest.approx(0.25 + 3 / (2 * 128), abs=1e-3)
    # memory-bound decode: predicted speedup ~ 1 / bytes ratio, bounded by it
    for name in ("bsr50", "w4", "nm24"):
        r = rows[(name, 1)]
        assert 1.0 < r["predicted_speedup_H200"] <= 1 / r["bytes_vs_dense"] + 1e-9


@pytest.mark.slow  # ~1 min of CPU: formats of 256x256, CPU timings, interpret-mode check of 7 kernels
def test_bench_experiment_end_to_end(tmp_path):
    from experiments import bench_sparse_kernels
    from experiments.runner import run_experiment

    res = run_experiment("bench_sparse_kernels", "smoke", out=tmp_path, quiet=True, overrides=[
        "ms=[1, 16]", "k=256", "n=256", "block=[32, 32]", "group_size=32", "cpu_time_ms=[1]", "repeats=1",
        "check_shape=[16, 128, 64]"])
    m = res["metrics"]
    assert len(m["roofline"]) == 2 * 7 and len(m["timings"]) == 7
    assert max(m["interpret_max_abs_err"].values()) < 1e-3
    assert "not measured yet" in bench_sparse_kernels.summarize(res)
    assert list(tmp_path.rglob("*.png"))


@pytest.mark.slow  # ~1 min of CPU: trains small MLPs and serves them in interpret mode
def test_block_sparse_digits_served_identically(tmp_path):
    from experiments import block_sparse_digits
    from experiments.runner import run_experiment

    res = run_experiment("block_sparse_digits", "smoke", out=tmp_path, quiet=True, overrides=[
        "seeds=[0]", "sparsities=[0.5]", "dense_steps=30", "finetune_steps=20"])
    m = res["metrics"]
    assert m["served_identical"] and m["served_max_abs_logit_diff"] < 1e-4
    served = [r for r in m["rows"] if "served_accuracy" in r]
    assert served and all(r["served_accuracy"] == pytest.approx(r["test_accuracy"], abs=1e-6) for r in served)
    assert all(r["compressed_bytes"] < r["dense_bytes"] for r in served)
    cell = block_sparse_digits.summarize(res)
    assert "|" not in cell and "identical predictions" in cell
