"""Group-wise low-bit weight quantization and GQSA (P3): group quantization + group sparsity with
block-wise (BQPO) and end-to-end (E2E-OQP) optimisation, packed storage with exact footprints."""
from sparsejax.quant.gqsa import (
    GQSAWeight,
    bqpo,
    freeze_codes,
    frozen_weights,
    gqsa_init,
    gqsa_masks,
    gqsa_matmul,
    gqsa_nbytes,
    gqsa_pack,
    gqsa_to_quantized,
    gqsa_unpack,
    gqsa_weights,
    group_salience,
    join_frozen,
    make_e2e_oqp_step,
    merge,
    split_frozen,
)
from sparsejax.quant.group_quant import (
    GroupQuantized,
    dequantize,
    fake_quantize,
    group_dequantize,
    group_quant_nbytes,
    group_quantize,
    minmax_params,
    quantize,
    round_ste,
)
from sparsejax.quant.packing import pack_codes, unpack_codes

__all__ = [
    "pack_codes", "unpack_codes", "minmax_params", "quantize", "dequantize", "fake_quantize", "round_ste",
    "GroupQuantized", "group_quantize", "group_dequantize", "group_quant_nbytes", "group_salience",
    "gqsa_masks", "gqsa_init", "gqsa_weights", "merge", "bqpo", "freeze_codes", "frozen_weights",
    "split_frozen", "join_frozen", "make_e2e_oqp_step", "GQSAWeight", "gqsa_pack", "gqsa_unpack",
    "gqsa_nbytes", "gqsa_matmul", "gqsa_to_quantized",
]
