"""Pallas kernels for the sparse hot paths, each beside a plain-jnp reference with the same
signature, and flax layers that serve the compressed weights:

* `block_sparse_matmul` on `BlockSparse` (kept ``(bk, bn)`` blocks; work and bytes scale with them);
* `quantized_matmul` on `QuantizedWeight` (W4/W8, group-wise scales and zero points);
* `block_sparse_quantized_matmul` on `QuantBlockSparse` (GQSA W4 + block sparsity, P3);
* `nm24_matmul` on `NM24` (2:4 with packed 2-bit indices, P7; memory-bound GEMV only);
* `block_sparse_attention`: causal flash attention over the kept blocks of a per-head block mask
  (S2-Attention, P44; splash attention on TPU);
* `SparseDense` / `QuantDense` layers (`sparsejax.kernels.layers`).

Backends: Triton on GPU, Mosaic on TPU, interpret mode on CPU (`sparsejax.kernels._util`).
"""
from sparsejax.kernels.block_sparse import (
    BlockSparse,
    block_sparse_matmul,
    block_sparse_matmul_reference,
    block_sparse_nbytes,
    check_block_sparse,
    from_block_sparse,
    to_block_sparse,
)
from sparsejax.kernels.block_sparse_attention import (
    block_sparse_attention,
    block_sparse_attention_reference,
)
from sparsejax.kernels.layers import QuantDense, SparseDense, apply_with_layers
from sparsejax.kernels.nm24 import NM24, from_nm24, nm24_matmul, nm24_matmul_reference, nm24_nbytes, to_nm24
from sparsejax.kernels.quantized import (
    QuantBlockSparse,
    QuantizedWeight,
    block_sparse_quantized_matmul,
    block_sparse_quantized_matmul_reference,
    dequantize_block_sparse,
    dequantize_weight,
    quantize_weight,
    quantized_from_codes,
    quantized_matmul,
    quantized_matmul_reference,
    quantized_nbytes,
    to_quant_block_sparse,
)

__all__ = [
    "BlockSparse", "to_block_sparse", "from_block_sparse", "block_sparse_matmul", "block_sparse_matmul_reference",
    "block_sparse_nbytes", "check_block_sparse",
    "QuantizedWeight", "quantize_weight", "quantized_from_codes", "dequantize_weight", "quantized_matmul",
    "quantized_matmul_reference", "quantized_nbytes",
    "QuantBlockSparse", "to_quant_block_sparse", "dequantize_block_sparse", "block_sparse_quantized_matmul",
    "block_sparse_quantized_matmul_reference",
    "SparseDense", "QuantDense", "apply_with_layers",
    "NM24", "to_nm24", "from_nm24", "nm24_matmul", "nm24_matmul_reference", "nm24_nbytes",
    "block_sparse_attention", "block_sparse_attention_reference",
]
