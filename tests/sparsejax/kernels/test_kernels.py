"""Pallas kernels (interpret mode on CPU) equal their plain-jnp references and the dense product,
do work proportional to the kept blocks, differentiate like the reference, and lower for CUDA (Triton)
and TPU (Mosaic) on a CPU host."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsejax.kernels import (
    NM24,
    BlockSparse,
    QuantizedWeight,
    block_sparse_matmul,
    block_sparse_matmul_reference,
    block_sparse_quantized_matmul,
    block_sparse_quantized_matmul_reference,
    dequantize_weight,
    from_block_sparse,
    from_nm24,
    nm24_matmul,
    nm24_matmul_reference,
    quantize_weight,
    quantized_matmul,
    quantized_matmul_reference,
    to_block_sparse,
    to_nm24,
    to_quant_block_sparse,
)
from sparsejax.kernels._util import TPU_CUSTOM_CALL, TRITON_CUSTOM_CALL, default_block_m, export_text
from sparsejax.structured import block_mask, nm_mask

TOL = {jnp.float32: 2e-4, jnp.bfloat16: 3e-2, jnp.float16: 4e-3}


def _rand(seed, shape, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(a, b, dtype):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, atol=TOL[dtype] * scale, rtol=TOL[dtype])


# ------------------------------------------------------------------------------------- block sparse


@settings(max_examples=3, deadline=None)
@given(kb=st.integers(1, 4), nb=st.integers(1, 3), block=st.sampled_from([(16, 16), (32, 16), (16, 32)]),
       sparsity=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]), m=st.sampled_from([1, 5, 17]),
       ragged=st.sampled_from([(0, 0), (3, 5)]), backend=st.sampled_from(["triton", "tpu"]),
       dtype=st.sampled_from([jnp.float32, jnp.bfloat16]), seed=st.integers(0, 1000))
def test_block_sparse_matches_reference_and_dense(kb, nb, block, sparsity, m, ragged, backend, dtype, seed):
    bk, bn = block
    w = _rand(seed, (kb * bk, nb * bn))
    mask = np.asarray(block_mask(w, block, sparsity))
    k, n = kb * bk - ragged[0], nb * bn - ragged[1]  # ragged K/N: the format pads to whole blocks
    bs = to_block_sparse(w[:k, :n], block, mask[:k, :n], dtype=dtype)
    assert bs.nnzb == round((1 - sparsity) * kb * nb)
    x = jnp.asarray(_rand(seed + 1, (m, k)), dtype)
    dense = np.asarray(x, np.float32) @ np.asarray(jnp.asarray(w[:k, :n] * mask[:k, :n], dtype), np.float32)
    y = block_sparse_matmul(x, bs, backend=backend, interpret=True)
    assert y.shape == (m, n) and y.dtype == dtype
    ref = block_sparse_matmul_reference(x, bs)
    _close(y, ref, dtype)
    _close(ref, dense, dtype)
    np.testing.assert_array_equal(np.asarray(from_block_sparse(bs), np.float32),
                                  np.asarray(jnp.asarray(w[:k, :n] * mask[:k, :n], dtype), np.float32))


@pytest.mark.parametrize("backend, sparsity", [("triton", 0.5), ("triton", 0.9), ("tpu", 0.75)])
def test_work_is_exactly_the_kept_blocks(backend, sparsity):
    """The debug counter inside the kernel counts the MMAs each program runs: per column tile it is the
    tile's kept-block count, in total nnzb per row tile; pruned blocks are never touched."""
    w = _rand(0, (8 * 16, 5 * 16))
    bs = to_block_sparse(w, (16, 16), block_mask(w, (16, 16), sparsity))
    assert bs.nnzb == round((1 - sparsity) * 40)
    x = jnp.asarray(_rand(1, (40, w.shape[0])))
    y, counts = block_sparse_matmul(x, bs, block_m=16, backend=backend, interpret=True, debug_counts=True)
    per_tile = np.diff(np.asarray(bs.block_ptr))
    assert counts.shape == (3, 5)
    np.testing.assert_array_equal(np.asarray(counts), np.tile(per_tile, (3, 1)))
    assert int(counts.sum()) == 3 * bs.nnzb
    _close(y, x @ np.asarray(from_block_sparse(bs)), jnp.float32)


def test_block_sparse_all_pruned_and_empty_column_tiles():
    w = _rand(2, (32, 48))
    mask = np.zeros(w.shape, bool)
    mask[16:, 16:32] = True  # one kept block; column tiles 0 and 2 and row block 0 are empty
    bs = to_block_sparse(w, (16, 16), mask)
    x = jnp.asarray(_rand(3, (4, 32)))
    for backend in ("triton", "tpu"):
        _close(block_sparse_matmul(x, bs, backend=backend, interpret=True), x @ (w * mask), jnp.float32)
    empty = to_block_sparse(w, (16, 16), np.zeros(w.shape, bool))
    assert empty.nnzb == 0
    np.testing.assert_array_equal(np.asarray(block_sparse_matmul(x, empty, interpret=True)), 0.0)


def test_block_sparse_gradients_match_reference():
    w = _rand(4, (64, 32))
    bs = to_block_sparse(w, (16, 16), block_mask(w, (16, 16), 0.5))
    x = jnp.asarray(_rand(5, (3, 2, 64)))  # leading batch dims are flattened

    def loss(fn):
        def f(x, v):
            b = BlockSparse(v, bs.block_rows, bs.block_ptr, bs.shape, bs.block_shape, bs.max_blocks_per_col)
            return jnp.sum(jnp.sin(fn(x, b)))
        return jax.jit(jax.grad(f, argnums=(0, 1)))(x, bs.values)

    gk = loss(lambda x, b: block_sparse_matmul(x, b, interpret=True))
    gr = loss(block_sparse_matmul_reference)
    for a, b in zip(gk, gr):
        _close(a, b, jnp.float32)


# ------------------------------------------------------------------------------------- quantized


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("backend, dtype", [("triton", jnp.bfloat16), ("triton", jnp.float16), ("tpu", jnp.float32)])
def test_quantized_matmul_matches_reference(bits, backend, dtype):
    w = _rand(6, (90, 40))  # ragged: K padded to g * codes-per-byte, N to 16
    qw = quantize_weight(w, bits, 16)
    wd = np.asarray(dequantize_weight(qw))
    assert np.abs(wd - w).max() <= np.asarray(qw.scales, np.float32).max() / 2 + 1e-6
    x = jnp.asarray(_rand(7, (3, 90)), dtype)
    y = quantized_matmul(x, qw, backend=backend, interpret=True)
    assert y.shape == (3, 40) and y.dtype == dtype
    _close(y, quantized_matmul_reference(x, qw), dtype)
    _close(quantized_matmul_reference(x, qw), np.asarray(x, np.float32) @ wd, dtype)


def test_quantized_gradients_in_x_and_scales():
    w = _rand(8, (64, 32))
    qw = quantize_weight(w, 4, 16, scale_dtype=jnp.float32)
    x = jnp.asarray(_rand(9, (5, 64)))

    def grads(fn):
        f = lambda x, s: jnp.sum(jnp.sin(fn(x, QuantizedWeight(qw.packed, s, qw.zeros, 4, 16, qw.shape))))  # noqa
        return jax.jit(jax.grad(f, argnums=(0, 1)))(x, qw.scales)

    for a, b in zip(grads(lambda x, q: quantized_matmul(x, q, interpret=True)), grads(quantized_matmul_reference)):
        _close(a, b, jnp.float32)


@pytest.mark.parametrize("bits, backend", [(4, "triton"), (8, "tpu")])
def test_block_sparse_quantized_matches_reference_and_counts(bits, backend):
    w = _rand(10, (96, 64))
    mask = np.asarray(block_mask(w, (16, 32), 0.5))
    q = to_quant_block_sparse(w, (16, 32), bits, mask)
    x = jnp.asarray(_rand(11, (2, 96)))
    y, counts = block_sparse_quantized_matmul(x, q, backend=backend, interpret=True, debug_counts=True)
    ref = block_sparse_quantized_matmul_reference(x, q)
    _close(y, ref, jnp.float32)
    assert int(counts.sum()) == q.nnzb == 6
    # dequantized kept blocks are within half a step of the masked weight
    direct = np.asarray(x) @ (w * mask)
    assert np.abs(np.asarray(ref) - direct).max() < (0.6 if bits == 4 else 0.05) * np.abs(direct).max()


# ------------------------------------------------------------------------------------- 2:4


@pytest.mark.parametrize("k, n, backend, dtype", [
    (100, 40, "triton", jnp.float32), (128, 32, "triton", jnp.bfloat16),
    pytest.param(1024, 16, "tpu", jnp.float32, marks=pytest.mark.slow)])
def test_nm24_matches_reference_and_dense(k, n, backend, dtype):
    w = _rand(12, (k, n))
    mask = np.asarray(nm_mask(jnp.asarray(w), 2, 4, axis=0))
    c = to_nm24(w, mask, dtype=dtype)
    np.testing.assert_array_equal(np.asarray(from_nm24(c), np.float32),
                                  np.asarray(jnp.asarray(w * mask, dtype), np.float32))
    assert c.meta.nbytes * 8 == 2 * (c.values.size)  # 2 bits per kept weight
    x = jnp.asarray(_rand(13, (3, k)), dtype)
    y = nm24_matmul(x, c, backend=backend, interpret=True)
    _close(y, nm24_matmul_reference(x, c), dtype)
    _close(nm24_matmul_reference(x, c), np.asarray(x, np.float32) @ (w * mask), dtype)


def test_nm24_gradients_match_reference():
    w = _rand(14, (128, 32))
    c = to_nm24(w * np.asarray(nm_mask(jnp.asarray(w), 2, 4, axis=0)))
    x = jnp.asarray(_rand(15, (4, 128)))

    def grads(fn):
        return jax.jit(jax.grad(lambda x, v: jnp.sum(jnp.sin(fn(x, NM24(v, c.meta, c.shape)))), argnums=(0, 1)))(
            x, c.values)

    for a, b in zip(grads(lambda x, cc: nm24_matmul(x, cc, interpret=True)), grads(nm24_matmul_reference)):
        _close(a, b, jnp.float32)


# ------------------------------------------------------------------------------------- block sizes


def test_default_block_m_is_a_power_of_two_tile_in_16_128():
    assert [default_block_m(m) for m in (1, 16, 17, 100, 256, 4096)] == [16, 16, 32, 128, 128, 128]


# ------------------------------------------------------------------------------------- lowering


def _kernels_for_lowering(platform):
    rng = np.random.default_rng(0)
    if platform == "cuda":
        w = rng.standard_normal((256, 128)).astype(np.float32)
        bsr = to_block_sparse(w, (32, 32), block_mask(w, (32, 32), 0.6), dtype=jnp.bfloat16)  # 13 blocks
        qw = quantize_weight(w, 4, 32)
        q8 = quantize_weight(w, 8, 64)
        qbs = to_quant_block_sparse(w, (32, 32), 4, block_mask(w, (32, 32), 0.5))
        nm = to_nm24(w * np.asarray(nm_mask(jnp.asarray(w), 2, 4, axis=0)), dtype=jnp.bfloat16)
        x = jax.ShapeDtypeStruct((16, 256), jnp.bfloat16)
        backend = "triton"
    else:
        w = rng.standard_normal((1024, 256)).astype(np.float32)
        bsr = to_block_sparse(w, (128, 128), block_mask(w, (128, 128), 0.5), dtype=jnp.bfloat16)
        qw = quantize_weight(w, 4, 128)
        q8 = quantize_weight(w, 8, 128)
        qbs = to_quant_block_sparse(w, (128, 256), 4, block_mask(w, (128, 256), 0.5))
        nm = to_nm24(w * np.asarray(nm_mask(jnp.asarray(w), 2, 4, axis=0)), dtype=jnp.bfloat16)
        x = jax.ShapeDtypeStruct((16, 1024), jnp.bfloat16)
        backend = "tpu"
    kw = dict(backend=backend, interpret=False)
    return x, {
        "block_sparse": lambda x: block_sparse_matmul(x, bsr, **kw),
        "w4": lambda x: quantized_matmul(x, qw, **kw),
        "w8": lambda x: quantized_matmul(x, q8, **kw),
        "w4_block_sparse": lambda x: block_sparse_quantized_matmul(x, qbs, **kw),
        "nm24": lambda x: nm24_matmul(x, nm, **kw),
    }


@pytest.mark.parametrize("platform, custom_call", [("cuda", TRITON_CUSTOM_CALL), ("tpu", TPU_CUSTOM_CALL)])
def test_every_kernel_lowers(platform, custom_call):
    """jax.export runs the real Pallas -> Triton / Mosaic TPU lowering on this CPU host (not PTX / the
    TPU compiler); each of the 5 kernels must become one of its backend's custom calls."""
    x, fns = _kernels_for_lowering(platform)
    text = export_text(lambda x: [fn(x) for fn in fns.values()], x, platform=platform)
    assert text.count(f"stablehlo.custom_call @{custom_call}(") == len(fns)
