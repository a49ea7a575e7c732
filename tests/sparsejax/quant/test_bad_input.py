"""Bad input to sparsejax.quant and sparsejax.kernels raises a clear error naming the argument (issue #12):
quantization bits, scales, zero points and codes are checked instead of masked or clipped, and the
index arrays of the compressed formats are range-checked instead of clamped by JAX gathers."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.kernels import (
    QuantDense,
    SparseDense,
    block_sparse_matmul,
    block_sparse_matmul_reference,
    nm24_matmul,
    quantize_weight,
    quantized_from_codes,
    quantized_matmul,
    quantized_matmul_reference,
    to_block_sparse,
    to_nm24,
    to_quant_block_sparse,
)
from sparsejax.quant import (
    dequantize,
    fake_quantize,
    gqsa_matmul,
    gqsa_pack,
    group_quantize,
    minmax_params,
    pack_codes,
    quantize,
    unpack_codes,
)
from sparsejax.structured import block_mask

RNG = np.random.default_rng(0)
W = jnp.asarray(RNG.standard_normal((64, 32)), jnp.float32)
S, Z = minmax_params(W, 4, 16)
CODES = quantize(W, S, Z, 4, 16)
GMASK = np.repeat(np.arange(4)[:, None] < 2, 16, 0) & np.ones((1, 32), bool)  # first 2 of 4 groups kept
GQ = gqsa_pack(CODES, S, Z, GMASK, 4, 16)
BS = to_block_sparse(W, (16, 16), block_mask(W, (16, 16), 0.5))
QW = quantize_weight(W, 4, 16)
X = jnp.ones((2, 64), jnp.float32)


def _bs(**changes):
    return dataclasses.replace(BS, **changes)


CASES = [
    # --- packing
    ("pack_codes out-of-range code", lambda: pack_codes(jnp.array([[16], [1]], jnp.uint8), 4, axis=0),
     ValueError, r"codes must lie in \[0, 16\), got values in \[1, 16\]"),
    ("pack_codes negative code", lambda: pack_codes(jnp.array([[-1], [1]], jnp.int32), 4, axis=0),
     ValueError, r"codes must lie in \[0, 16\)"),
    ("pack_codes float codes", lambda: pack_codes(jnp.ones((2, 2)), 4, axis=0), TypeError,
     r"codes must have a signed int or unsigned int dtype, got float32"),
    ("pack_codes bits=3", lambda: pack_codes(jnp.ones((2, 2), jnp.uint8), 3), ValueError, r"bits must be one of \(2, 4, 8\)"),
    ("pack_codes bits float", lambda: pack_codes(jnp.ones((2, 2), jnp.uint8), 4.0), TypeError, r"bits must be an int"),
    ("pack_codes axis out of range", lambda: pack_codes(jnp.ones((2, 2), jnp.uint8), 4, axis=2), ValueError,
     r"axis must be >= -2 and <= 1, got 2"),
    ("unpack_codes int32", lambda: unpack_codes(jnp.ones((2, 2), jnp.int32), 4), TypeError, r"must be uint8"),
    # --- group quantization
    ("group_quantize scale_dtype=int8", lambda: group_quantize(W, 4, 16, scale_dtype=jnp.int8), TypeError,
     r"scale_dtype must be a floating dtype, got int8"),
    ("group_quantize scale without zero", lambda: group_quantize(W, 4, 16, scale=S), ValueError,
     r"pass both scale and zero, or neither .* got only scale"),
    ("fake_quantize bits=0", lambda: fake_quantize(W, S, Z, 0, 16), ValueError, r"bits must be one of"),
    ("fake_quantize scale shape", lambda: fake_quantize(W, S[:2], Z, 4, 16), ValueError,
     r"scale must have shape \(4, 32\), got \(2, 32\)"),
    ("quantize zero out of range", lambda: quantize(W, S, Z + 20, 4, 16), ValueError, r"zero must lie in \[0, 16\)"),
    ("quantize non-integer zero", lambda: quantize(W, S, Z + 0.5, 4, 16), ValueError, r"zero must hold integer"),
    ("quantize scale <= 0", lambda: quantize(W, -S, Z, 4, 16), ValueError, r"scale must be > 0"),
    ("quantize NaN scale", lambda: quantize(W, S.at[0, 0].set(jnp.nan), Z, 4, 16), ValueError,
     r"scale must be finite, got 1 NaN"),
    ("minmax_params NaN weight", lambda: minmax_params(W.at[3, 3].set(jnp.inf), 4, 16), ValueError,
     r"w must be finite, got 0 NaN and 1 inf"),
    ("minmax_params g float", lambda: minmax_params(W, 4, 16.0), TypeError, r"g must be an int"),
    ("dequantize float codes", lambda: dequantize(W, S, Z, 16), TypeError, r"codes must have a signed int"),
    # --- GQSA storage
    ("gqsa_pack out-of-range code", lambda: gqsa_pack(CODES.astype(jnp.int32).at[0, 0].set(16), S, Z, GMASK, 4, 16),
     ValueError, r"codes must lie in \[0, 16\)"),
    ("gqsa_pack partial group mask", lambda: gqsa_pack(CODES, S, Z, GMASK & (np.arange(64)[:, None] != 3), 4, 16),
     ValueError, r"mask is not a group mask"),
    ("gqsa_pack mask shape", lambda: gqsa_pack(CODES, S, Z, GMASK[:32], 4, 16), ValueError,
     r"mask must have shape \(64, 32\)"),
    ("gqsa_pack scale_dtype int", lambda: gqsa_pack(CODES, S, Z, GMASK, 4, 16, scale_dtype=jnp.int16), TypeError,
     r"scale_dtype must be a floating dtype"),
    ("gqsa_matmul mismatched K", lambda: gqsa_matmul(jnp.ones((2, 48)), GQ), ValueError,
     r"x must have shape \(\.\.\., 64\) to match the weight's K=64, got \(2, 48\)"),
    ("gqsa_matmul not a GQSAWeight", lambda: gqsa_matmul(X, BS), TypeError, r"c must be a GQSAWeight"),
    # --- block-sparse format and kernel
    ("block rows out of range", lambda: block_sparse_matmul(X, _bs(block_rows=BS.block_rows.at[0].set(4))),
     ValueError, r"bs.block_rows must lie in \[0, 4\), got values in \[0, 4\]"),
    ("block_ptr not monotone", lambda: block_sparse_matmul(X, _bs(block_ptr=BS.block_ptr[::-1])), ValueError,
     r"bs.block_ptr must rise from 0 to nnzb=4"),
    ("max_blocks_per_col too small", lambda: block_sparse_matmul(X, _bs(max_blocks_per_col=0)), ValueError,
     r"max_blocks_per_col=0 < the largest tile count"),
    ("block_rows float", lambda: block_sparse_matmul(X, _bs(block_rows=BS.block_rows.astype(jnp.float32))),
     TypeError, r"bs.block_rows must have a signed int or unsigned int dtype"),
    ("x with the wrong K", lambda: block_sparse_matmul(jnp.ones((2, 60)), BS), ValueError, r"x must have shape \(\.\.\., 64\)"),
    ("x integer", lambda: block_sparse_matmul(jnp.ones((2, 64), jnp.int32), BS), TypeError, r"x must have a floating dtype"),
    ("x float64-like half types only", lambda: block_sparse_matmul(np.ones((2, 64), np.float64), BS), TypeError,
     r"x must be bfloat16, float16 or float32, got float64"),
    ("block_m too small", lambda: block_sparse_matmul(X, BS, block_m=8), ValueError, r"block_m must be >= 16, got 8"),
    ("block_m not a power of two", lambda: block_sparse_matmul(X, BS, block_m=24), ValueError,
     r"block_m must be a power of two, got 24"),
    ("unknown backend", lambda: block_sparse_matmul(X, BS, backend="cuda"), ValueError,
     r"backend must be one of \['triton', 'tpu'\], got 'cuda'"),
    ("compiled Triton tile below 16", lambda: block_sparse_matmul(X, to_block_sparse(W, (8, 16)), backend="triton",
                                                                  interpret=False), ValueError,
     r"bk=8: the Triton kernel needs MMA tiles >= 16"),
    ("compiled TPU lane tile", lambda: quantized_matmul(X, QW, backend="tpu", interpret=False), ValueError,
     r"g=16: the TPU kernel needs lane tiles that are multiples of 128"),
    ("interpret not a bool", lambda: block_sparse_matmul(X, BS, interpret="yes"), TypeError,
     r"interpret must be a bool or None"),
    ("not a BlockSparse", lambda: block_sparse_matmul(X, W), TypeError, r"bs must be a BlockSparse, got ArrayImpl"),
    ("to_block_sparse partial block", lambda: to_block_sparse(W, (16, 16), np.eye(64, 32, dtype=bool)), ValueError,
     r"mask is not block-sparse with block_shape \(16, 16\)"),
    ("to_block_sparse block not a power of two", lambda: to_block_sparse(W, (24, 16)), ValueError,
     r"block_shape\[0\] must be a power of two, got 24"),
    ("to_block_sparse NaN weight", lambda: to_block_sparse(W.at[0, 0].set(jnp.nan), (16, 16)), ValueError,
     r"w must be finite"),
    # --- quantized formats and kernels
    ("quantize_weight 2 bits", lambda: quantize_weight(W, 2, 16), ValueError, r"bits must be one of \(4, 8\)"),
    ("quantized_from_codes code out of range",
     lambda: quantized_from_codes(CODES.astype(jnp.int32).at[1, 1].set(99), S, Z, 4, 16), ValueError,
     r"codes must lie in \[0, 16\), got values in \[0, 99\]"),
    ("quantized_from_codes non-integer zero", lambda: quantized_from_codes(CODES, S, Z + 0.25, 4, 16), ValueError,
     r"zero must hold integers in \[0, 16\)"),
    ("quantized_from_codes NaN scale", lambda: quantized_from_codes(CODES, S.at[0, 0].set(jnp.nan), Z, 4, 16),
     ValueError, r"scale must be finite"),
    ("quantized_matmul g below 16", lambda: quantized_matmul(X, quantize_weight(W, 4, 8)), ValueError,
     r"group size g >= 16"),
    ("quantized zero points out of range", lambda: quantized_matmul(X, dataclasses.replace(QW, zeros=QW.zeros + 20)),
     ValueError, r"qw.zeros must lie in \[0, 16\)"),
    ("quantized_matmul mismatched K", lambda: quantized_matmul(jnp.ones((1, 65)), QW), ValueError,
     r"x must have shape \(\.\.\., 64\)"),
    ("quantized block_n not a power of two", lambda: quantized_matmul(X, QW, block_n=24), ValueError,
     r"block_n must be a power of two"),
    ("quant block codes per byte", lambda: to_quant_block_sparse(W, (16, 1), 4), ValueError,
     r"block_shape\[1\]=1 must be divisible by the 2 codes per byte"),
    ("to_nm24 not 2:4", lambda: to_nm24(W), ValueError, r"w is not 2:4 sparse along K: 512 groups"),
    ("nm24_matmul mismatched K", lambda: nm24_matmul(jnp.ones((1, 60)), to_nm24(W.at[1::2].set(0))), ValueError,
     r"x must have shape \(\.\.\., 64\)"),
    # --- layers
    ("SparseDense.from_dense mask shape", lambda: SparseDense.from_dense({"kernel": W}, np.ones((32, 32), bool), (16, 16)),
     ValueError, r"mask must have shape \(64, 32\)"),
    ("QuantDense.from_dense without kernel", lambda: QuantDense.from_dense({"w": W}, 4), ValueError,
     r"params must be a flax Dense params dict with a 'kernel'"),
    ("QuantDense.from_format wrong type", lambda: QuantDense.from_format(W), TypeError,
     r"w must be a QuantizedWeight or a QuantBlockSparse, got ArrayImpl"),
    ("QuantDense.from_dense bias shape", lambda: QuantDense.from_dense({"kernel": W, "bias": jnp.ones(3)}, 4, g=16),
     ValueError, r"params\['bias'\] must have shape \(32\)"),
]


@pytest.mark.parametrize("name, call, exc, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_clearly(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_good_inputs_of_the_table_pass():
    """The unmodified objects of the table are valid (so each case fails for its own reason)."""
    np.testing.assert_array_equal(unpack_codes(pack_codes(CODES, 4, axis=0), 4, axis=0), CODES)
    assert gqsa_matmul(X, GQ, use_kernel=False).shape == (2, 32)
    assert block_sparse_matmul_reference(X, BS).shape == quantized_matmul_reference(X, QW).shape == (2, 32)
