"""Transformer compression and parameter-efficient fine-tuning on an explicit-weight decoder LM:
the functional LM (:mod:`~sparsejax.llm.model`), one adapter API for LoRA, S²FT and FLoRA
(:mod:`~sparsejax.llm.adapters`, :mod:`~sparsejax.llm.s2ft`, :mod:`~sparsejax.llm.flora`) and
SliceGPT (:mod:`~sparsejax.llm.slicegpt`). Attention variants live in their own submodules, imported
directly: S2-Attention block patterns (P44, :mod:`~sparsejax.llm.s2_attention`) and tensor attention
(P21, :mod:`~sparsejax.llm.tensor_attention`)."""
from sparsejax.llm.adapters import (
    Adapter, combine, full, get_leaf, lora, lora_num_params, make_adapter_train_step, match_paths, num_trainable,
    set_leaf, slice_adapter,
)
from sparsejax.llm.flora import CONV_RANKS, CONV_SCALE, flora, flora_num_params, tucker_delta
from sparsejax.llm.model import (
    LMConfig, attention, causal_mask, forward, from_decoder_lm, init_lm, lm_loss, perplexity,
)
from sparsejax.llm.s2ft import co_permute, s2ft, select_units, training_costs, unit_orders, unpermute
from sparsejax.llm.slicegpt import fold_layernorm, pca_calc, rotate_and_slice, sliced_dim, slicegpt

__all__ = [
    "LMConfig", "attention", "causal_mask", "forward", "from_decoder_lm", "init_lm", "lm_loss",
    "perplexity", "Adapter", "combine", "full", "get_leaf", "set_leaf", "lora", "lora_num_params",
    "make_adapter_train_step", "match_paths", "num_trainable", "slice_adapter", "CONV_RANKS", "CONV_SCALE", "flora",
    "flora_num_params", "tucker_delta", "co_permute", "s2ft", "select_units", "training_costs", "unit_orders",
    "unpermute", "fold_layernorm", "pca_calc", "rotate_and_slice", "sliced_dim", "slicegpt",
]
