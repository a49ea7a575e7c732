"""S²FT: structured sparse fine-tuning by co-permuted dense slices (P12; Yang et al., NeurIPS 2024;
code ``Infini-AI-Lab/S2FT``).

Following the official ``finetune.py`` / ``s2_utils.py``:

1. **Selection over all layers jointly** (:func:`select_units`): ``int(o_ratio * L * H)`` attention
   heads and ``int(d_ratio * L * F)`` FFN channels drawn uniformly without replacement from the
   global index ranges (``random.sample`` in the code); the commonsense LLaMA script's ratios are
   the defaults: ``o_ratio = 0.052`` (output projection by head), ``d_ratio = 0.02`` (down
   projection by channel), ``v_ratio = u_ratio = 0`` (not implemented here).
   ``method="magnitude"`` is our variant: the units with the largest L2 norm of their trainable
   rows (``out`` rows of the head, ``fc2`` row of the channel), globally.
2. **Co-permutation** (:func:`co_permute`): per layer the order is "selected units first, then the
   rest in their original order" (the code's ``order``); heads permute the q, k and v columns of
   the fused ``qkv`` kernel (and bias) and the rows of ``out``; channels permute the ``fc1`` columns
   and bias and the ``fc2`` rows. The network function is unchanged.
3. **Dense slices** (:func:`s2ft`): the trainable parameters are the zero-initialised deltas of the
   leading rows ``out[:k_h * hd]`` and ``fc2[:k_c]`` (torch's ``o_proj[:, start:end]`` and
   ``down_proj[:, start:end]``: flax kernels are ``(in, out)``, so torch columns are our rows);
   everything else is frozen. ``adapter.merge`` fuses the slices in place; :func:`unpermute`
   restores the original unit order.

Costs (:func:`training_costs`) are analytic, per training step, for full fine-tuning, LoRA and
S²FT (the paper measures memory and latency on GPUs; nothing here is measured): weights, gradients
and Adam moments of the trainable entries; the activations that the *weight* gradients need (full
FT: every linear's input; LoRA: the adapted linears' inputs and the rank-r intermediate; S²FT:
only the inputs of the selected rows — the "partial back-propagation" of the paper); FLOPs as
forward + activation-gradient back-propagation (all methods, ``2 N`` per token each for ``N``
matmul weights) + weight gradients of the trainable entries (+ LoRA's extra branch).
"""
from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from sparsejax.core.validation import check_choice, check_int, check_number
from sparsejax.llm.adapters import Adapter, slice_adapter
from sparsejax.core import param_count
from sparsejax.llm.model import LMConfig, head_dim

OFFICIAL_O_RATIO = 0.052
OFFICIAL_D_RATIO = 0.02


def _dims(params: dict, config: LMConfig) -> tuple[int, int, int]:
    blocks = params["blocks"]
    hd = head_dim(blocks[0], config.n_heads)
    return len(blocks), hd, blocks[0]["fc1"]["kernel"].shape[1]


def _split(global_ids, per_layer: int, n_layers: int) -> list[list[int]]:
    out = [[] for _ in range(n_layers)]
    for g in sorted(int(i) for i in global_ids):
        out[g // per_layer].append(g % per_layer)
    return out


def select_units(params: dict, config: LMConfig, *, o_ratio: float = OFFICIAL_O_RATIO,
                 d_ratio: float = OFFICIAL_D_RATIO, seed: int = 0, method: str = "random") -> dict:
    """``{"heads": [[h, ...] per layer], "channels": [[c, ...] per layer]}``: ``int(o_ratio * L * H)``
    heads and ``int(d_ratio * L * F)`` FFN channels chosen over all layers jointly, uniformly at
    random (``method="random"``, seeded) or by the largest row norms (``"magnitude"``)."""
    check_number("o_ratio", o_ratio, minimum=0.0, maximum=1.0)
    check_number("d_ratio", d_ratio, minimum=0.0, maximum=1.0)
    check_int("seed", seed, minimum=0)
    check_choice("method", method, ("random", "magnitude"))
    n_layers, hd, ffn = _dims(params, config)
    h = config.n_heads
    n_heads, n_channels = int(o_ratio * n_layers * h), int(d_ratio * n_layers * ffn)
    if method == "random":
        rng = np.random.default_rng(seed)
        heads = rng.choice(n_layers * h, n_heads, replace=False)
        channels = rng.choice(n_layers * ffn, n_channels, replace=False)
    else:
        head_norm = np.concatenate([np.linalg.norm(np.asarray(b["out"]["kernel"]).reshape(h, -1), axis=1)
                                    for b in params["blocks"]])
        chan_norm = np.concatenate([np.linalg.norm(np.asarray(b["fc2"]["kernel"]), axis=1) for b in params["blocks"]])
        heads = np.argsort(-head_norm, kind="stable")[:n_heads]
        channels = np.argsort(-chan_norm, kind="stable")[:n_channels]
    return {"heads": _split(heads, h, n_layers), "channels": _split(channels, ffn, n_layers)}


def unit_orders(selection: dict, n_heads: int, ffn: int) -> list[dict]:
    """Per layer ``{"heads": order, "channels": order}``: the selected units first, then the rest."""
    def order(sel, n):
        sel = list(sel)
        return np.array(sel + [i for i in range(n) if i not in set(sel)], np.int64)
    return [{"heads": order(hs, n_heads), "channels": order(cs, ffn)}
            for hs, cs in zip(selection["heads"], selection["channels"])]


def _permute_block(block: dict, heads, channels, n_heads: int) -> dict:
    d_in = block["qkv"]["kernel"].shape[0]
    hd = block["qkv"]["kernel"].shape[1] // (3 * n_heads)
    d_mid = block["out"]["kernel"].shape[1]
    qkv_k = block["qkv"]["kernel"].reshape(d_in, 3, n_heads, hd)[:, :, heads].reshape(d_in, -1)
    qkv_b = block["qkv"]["bias"].reshape(3, n_heads, hd)[:, heads].reshape(-1)
    out_k = block["out"]["kernel"].reshape(n_heads, hd, d_mid)[heads].reshape(n_heads * hd, d_mid)
    b = dict(block)
    b["qkv"] = {"kernel": qkv_k, "bias": qkv_b}
    b["out"] = {**block["out"], "kernel": out_k}
    b["fc1"] = {"kernel": block["fc1"]["kernel"][:, channels], "bias": block["fc1"]["bias"][channels]}
    b["fc2"] = {**block["fc2"], "kernel": block["fc2"]["kernel"][channels]}
    return b


def co_permute(params: dict, config: LMConfig, orders: list[dict]) -> dict:
    """Reorder heads (q, k, v columns and ``out`` rows) and FFN channels (``fc1`` columns + bias and
    ``fc2`` rows) of every block by ``orders`` (from :func:`unit_orders`); the logits are unchanged."""
    if len(orders) != len(params["blocks"]):
        raise ValueError(f"orders has {len(orders)} layers, the model {len(params['blocks'])}")
    blocks = [_permute_block(b, jnp.asarray(o["heads"]), jnp.asarray(o["channels"]), config.n_heads)
              for b, o in zip(params["blocks"], orders)]
    return {**params, "blocks": blocks}


def unpermute(params: dict, config: LMConfig, orders: list[dict]) -> dict:
    """Inverse of :func:`co_permute` (the original unit order)."""
    inverse = [{k: np.argsort(v) for k, v in o.items()} for o in orders]
    return co_permute(params, config, inverse)


def s2ft(params: dict, config: LMConfig, selection: dict) -> tuple[dict, Adapter, list[dict]]:
    """``(permuted params, adapter, orders)``: the co-permuted model and the S²FT adapter whose
    trainable entries are the leading ``out`` rows of the selected heads and ``fc2`` rows of the
    selected channels of each layer (zero-initialised deltas). Train with
    :func:`sparsejax.llm.adapters.make_adapter_train_step`, fuse with ``adapter.merge`` and map back
    with :func:`unpermute`."""
    n_layers, hd, ffn = _dims(params, config)
    for name, n in (("heads", config.n_heads), ("channels", ffn)):
        sel = selection.get(name)
        if sel is None or len(sel) != n_layers:
            raise ValueError(f"selection[{name!r}] must list the selected {name} of each of the {n_layers} layers")
        for i, units in enumerate(sel):
            if len(set(units)) != len(units) or any(not 0 <= int(u) < n for u in units):
                raise ValueError(f"selection[{name!r}][{i}] = {list(units)} must hold distinct ids in [0, {n})")
    orders = unit_orders(selection, config.n_heads, ffn)
    permuted = co_permute(params, config, orders)
    slices = {}
    for i, (hs, cs) in enumerate(zip(selection["heads"], selection["channels"])):
        if hs:
            slices[f"blocks/{i}/out/kernel"] = (0, 0, len(hs) * hd)
        if cs:
            slices[f"blocks/{i}/fc2/kernel"] = (0, 0, len(cs))
    if not slices:
        raise ValueError("the selection is empty: raise o_ratio or d_ratio")
    return permuted, slice_adapter(permuted, slices), orders


def _linears(params: dict) -> list[tuple[str, int, int]]:
    out = []
    for i, b in enumerate(params["blocks"]):
        for name in ("qkv", "out", "fc1", "fc2"):
            d_in, d_out = b[name]["kernel"].shape
            out.append((f"blocks/{i}/{name}/kernel", d_in, d_out))
    d_in, d_out = params["lm_head"]["kernel"].shape
    out.append(("lm_head/kernel", d_in, d_out))
    return out


def training_costs(params: dict, config: LMConfig, adapter: Adapter | None, *, method: str,
                   batch_size: int, seq_len: int) -> dict:
    """Analytic per-step costs of fine-tuning ``params`` with ``method`` (``"full"``, ``"lora"`` or
    ``"s2ft"``, whose adapter gives the trainable shapes): ``trainable`` entries, ``memory_floats``
    (weights + gradients + 2 Adam moments of the trainable entries + the activations the weight
    gradients need) and ``flops`` (see the module docstring). The activations every method needs
    to back-propagate through the frozen network (norms, GELU, softmax) are the same for all three
    and are reported separately as ``shared_activation_floats``."""
    check_choice("method", method, ("full", "lora", "s2ft"))
    n = check_int("batch_size", batch_size, minimum=1) * check_int("seq_len", seq_len, minimum=1)
    linears = _linears(params)
    total = param_count(params)
    mm = sum(i * o for _, i, o in linears)
    n_layers, hd, ffn = _dims(params, config)
    d = params["blocks"][0]["qkv"]["kernel"].shape[0]
    attn_flops = 4 * n_layers * seq_len * config.n_heads * hd * n
    forward = 2 * mm * n + attn_flops
    backward_act = forward
    if method == "full":
        trainable, weight_act, extra = total, n * sum(i for _, i, _ in linears), 2 * mm * n
    elif adapter is None:
        raise ValueError(f"method={method!r} needs its adapter")
    elif method == "lora":
        trainable = int(sum(p["A"].size + p["B"].size for p in adapter.params.values()))
        rank_io = sum(p["A"].shape[1] * (p["A"].shape[0] + p["B"].shape[1]) for p in adapter.params.values())
        weight_act = n * sum(p["A"].shape[0] + p["A"].shape[1] for p in adapter.params.values())
        extra = 3 * 2 * rank_io * n  # branch forward, its activation gradient, its weight gradients
    else:
        trainable = int(sum(p.size for p in adapter.params.values()))
        weight_act = n * sum(p.shape[0] for p in adapter.params.values())  # inputs of the selected rows only
        extra = 2 * trainable * n
    shared = n * n_layers * (4 * d + ffn + config.n_heads * seq_len)
    return {"trainable": int(trainable), "memory_floats": int(total + 3 * trainable + weight_act),
            "weight_grad_activation_floats": int(weight_act), "shared_activation_floats": int(shared),
            "flops": int(forward + backward_act + extra)}

