"""Pallas kernels (interpret mode on CPU) equal their plain-jnp references; bad shapes raise."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsejax.kernels import (
    group_sparse_dequant_matmul,
    group_sparse_dequant_matmul_reference,
    group_sparse_matmul,
    group_sparse_matmul_reference,
    nm_matmul,
    nm_matmul_reference,
)
from sparsejax.quant.packing import pack_codes
from sparsejax.structured.group import group_compress, group_decompress, group_mask
from sparsejax.structured.nm_format import nm_compress, nm_decompress


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@settings(max_examples=4, deadline=None)
@given(nm=st.sampled_from([(1, 4), (2, 4), (2, 8)]), groups=st.sampled_from([4, 8]),
       mb=st.sampled_from([(8, 4), (8, 8), (16, 8)]), nb=st.sampled_from([(16, 8), (16, 16)]),
       seed=st.integers(0, 100))
def test_nm_matmul_matches_reference_and_dense(nm, groups, mb, nb, seed):
    n, m = nm
    (M, bm), (N, bn) = mb, nb
    x, w = _normal(seed, (M, groups * m)), _normal(seed + 1, (groups * m, N))
    c = nm_compress(w, n, m, axis=0)
    out = nm_matmul(x, c.values, c.indices, n=n, m=m, block_m=bm, block_n=bn, block_groups=groups // 2)
    ref = nm_matmul_reference(x, c.values, c.indices, n=n, m=m)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    dense = jnp.dot(x, nm_decompress(c), precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(ref, dense, rtol=1e-5, atol=1e-4)


@settings(max_examples=4, deadline=None)
@given(g=st.sampled_from([2, 4, 8]), groups=st.sampled_from([4, 8]), sparsity=st.sampled_from([0.25, 0.5, 0.75]),
       balanced=st.booleans(), seed=st.integers(0, 100))
def test_group_sparse_matmul_matches_reference(g, groups, sparsity, balanced, seed):
    x, w = _normal(seed, (8, groups * g)), _normal(seed + 1, (groups * g, 16))
    mask = group_mask(w, g, sparsity, axis=0, balanced=balanced)
    c = group_compress(w, g, mask)
    out = group_sparse_matmul(x, c.values, c.group_idx, block_m=4, block_n=8, block_groups=groups // 2)
    ref = group_sparse_matmul_reference(x, c.values, c.group_idx)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    dense = jnp.dot(x, jnp.where(mask, w, 0), precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(ref, dense, rtol=1e-5, atol=1e-4)


@settings(max_examples=4, deadline=None)
@given(bits=st.sampled_from([2, 4]), g=st.sampled_from([4, 8]), slots=st.integers(1, 4), seed=st.integers(0, 100))
def test_dequant_matmul_matches_reference_and_closed_form(bits, g, slots, seed):
    groups, N = 8, 16
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**bits, (slots, g, N))
    scales = rng.uniform(0.1, 1.0, (slots, N)).astype(np.float32)
    zeros = rng.integers(0, 2**bits, (slots, N)).astype(np.float32)
    gidx = np.sort(np.stack([rng.permutation(groups)[:slots] for _ in range(N)], 1), axis=0).astype(np.uint8)
    x = _normal(seed, (8, groups * g))
    packed = pack_codes(codes, bits, axis=1)
    out = group_sparse_dequant_matmul(x, packed, scales, zeros, gidx, bits=bits, block_m=8, block_n=8, block_groups=4)
    ref = group_sparse_dequant_matmul_reference(x, packed, scales, zeros, gidx, bits=bits)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    # closed form: dense dequantized weight built by scatter on the host
    w = np.zeros((groups * g, N), np.float32)
    deq = (codes - zeros[:, None]) * scales[:, None]
    for t in range(slots):
        for c in range(N):
            j = int(gidx[t, c])
            w[j * g:(j + 1) * g, c] = deq[t, :, c]
    np.testing.assert_allclose(ref, np.asarray(x, np.float64) @ w, rtol=1e-4, atol=1e-3)


def test_default_blocks_and_interpret_autoselect():
    x, w = _normal(0, (8, 16)), _normal(1, (16, 8))
    c = nm_compress(w, 2, 4)
    assert jax.default_backend() == "cpu"  # interpret=None must pick interpret mode here
    np.testing.assert_allclose(nm_matmul(x, c.values, c.indices, n=2, m=4),
                               x @ nm_decompress(c), rtol=1e-5, atol=1e-4)


def test_ragged_shapes_raise_clear_errors():
    x, w = _normal(0, (12, 16)), _normal(1, (16, 8))
    c = nm_compress(w, 2, 4)
    with pytest.raises(ValueError, match="block_m=8 does not divide"):
        nm_matmul(x, c.values, c.indices, n=2, m=4, block_m=8)
    with pytest.raises(ValueError, match="block_n=3"):
        nm_matmul(x, c.values, c.indices, n=2, m=4, block_n=3)
    with pytest.raises(ValueError, match="not divisible by m=4"):
        nm_matmul(_normal(0, (8, 18)), c.values, c.indices, n=2, m=4)
    with pytest.raises(ValueError, match="needs"):
        nm_matmul(_normal(0, (8, 32)), c.values, c.indices, n=2, m=4)
    gc = group_compress(w, 4, group_mask(w, 4, 0.5, axis=0))
    with pytest.raises(ValueError, match="not divisible by the group size"):
        group_sparse_matmul(_normal(0, (8, 18)), gc.values, gc.group_idx)
    with pytest.raises(ValueError, match="block_groups=3"):
        group_sparse_matmul(_normal(0, (8, 16)), gc.values, gc.group_idx, block_groups=3)
    packed = pack_codes(jnp.zeros(gc.values.shape, jnp.uint8), 4, axis=1)
    s = jnp.ones(gc.group_idx.shape)
    with pytest.raises(ValueError, match="bits must be one of"):
        group_sparse_dequant_matmul(x[:8], packed, s, s, gc.group_idx, bits=3)
    with pytest.raises(ValueError, match="scales"):
        group_sparse_dequant_matmul(x[:8], packed, s[:, :4], s, gc.group_idx)
    with pytest.raises(ValueError, match="uint8"):
        group_sparse_dequant_matmul(x[:8], packed.astype(jnp.int32), s, s, gc.group_idx)


def test_group_format_round_trip_through_kernel_reference():
    w = _normal(3, (32, 8))
    mask = group_mask(w, 8, 0.5, axis=0)
    c = group_compress(w, 8, mask)
    np.testing.assert_array_equal(group_decompress(c), jnp.where(mask, w, 0))


def test_bench_experiment_end_to_end(tmp_path):
    from experiments.runner import run_experiment

    res = run_experiment("bench_sparse_kernels", "smoke", out=tmp_path, quiet=True,
                         overrides=["shapes=[[16, 64, 32]]", "interpret_shapes=[[8, 32, 16]]", "repeats=1"])
    metrics = res.get("metrics", res)
    assert metrics["backend"] == "cpu" and "need a GPU" in metrics["note"]
    modes = [(r["mode"], r["kernel_s"] is None) for r in metrics["rows"]]
    assert modes == [("no-kernel", True)] * 3 + [("interpret", False)] * 3
    assert all(r["reference_over_dense"] > 0 for r in metrics["rows"])
    assert list(tmp_path.rglob("*.png"))
