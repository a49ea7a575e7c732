"""Pallas kernels for the sparse hot paths, each beside a plain-jnp reference with the same
signature (interpret mode is picked automatically on CPU): N:M sparse matmul from the compressed
format, group-sparse matmul (P28) and group-sparse low-bit dequantize-matmul (P3 GQSA)."""
from sparsejax.kernels.group_matmul import (
    group_sparse_dequant_matmul,
    group_sparse_dequant_matmul_reference,
    group_sparse_matmul,
    group_sparse_matmul_reference,
)
from sparsejax.kernels.nm_matmul import nm_matmul, nm_matmul_reference

__all__ = [
    "nm_matmul", "nm_matmul_reference",
    "group_sparse_matmul", "group_sparse_matmul_reference",
    "group_sparse_dequant_matmul", "group_sparse_dequant_matmul_reference",
]
