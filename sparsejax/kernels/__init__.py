"""Pallas kernels for the sparse hot paths, each beside a plain-jnp reference with the same
signature: block-sparse matmul (BSR by column tile), weight-only W4/W8 quantized matmul, their
combination (GQSA W4 + block sparsity, P3) and 2:4 matmul with packed 2-bit indices (P7).
Triton on GPU, Mosaic on TPU, interpret mode on CPU (see `sparsejax.kernels._util`)."""
from sparsejax.kernels.block_sparse import (
    BlockSparse,
    block_sparse_matmul,
    block_sparse_matmul_reference,
    block_sparse_nbytes,
    check_block_sparse,
    from_block_sparse,
    to_block_sparse,
)

__all__ = [
    "BlockSparse", "to_block_sparse", "from_block_sparse", "block_sparse_matmul", "block_sparse_matmul_reference",
    "block_sparse_nbytes", "check_block_sparse",
]
