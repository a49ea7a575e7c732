"""P12 S²FT: fine-tune a grammar-A language model on the shifted grammar B at equal trainable
budgets; fit on B, forgetting on A, analytic memory and FLOPs.

Paper: "S²FT: Efficient, Scalable and Generalizable LLM Fine-tuning by Structured Sparsity"
(Yang et al., NeurIPS 2024; code ``Infini-AI-Lab/S2FT``). Setup: the functional LM of
``sparsejax.llm`` (4 layers, d = 64, 8 heads, FFN 256, vocabulary of grammar A + B) is pre-trained
inside the run on grammar A (checkpointed in the run directory), then fine-tuned on a small
grammar-B set (``sparsejax.data.grammar``: changed production probabilities, 14 new words).

Methods (same steps, batch, AdamW with warm-up + cosine, weight decay 0 as the official script):

* ``s2ft_random``: S²FT with the official commonsense ratios (``o_ratio = 0.052`` of all heads by
  their output projection, ``d_ratio = 0.02`` of all FFN channels by their down projection, drawn
  globally at random per seed, co-permuted, dense slices trained, fused afterwards);
* ``s2ft_magnitude``: the same budget, units with the largest row norms (our variant);
* ``lora``: LoRA on ``out`` and ``fc2`` of every block with the rank that matches S²FT's trainable
  count (matched in parameters);
* ``full``: full fine-tuning; ``head_only``: the ``lm_head`` (+ new-token embeddings);
* ``new_rows_only`` and ``no_finetune``: trivial baselines (only the new-token rows, nothing).

Deviation, shared by all methods: grammar B has words grammar A never used, so every fine-tuning
method (except ``no_finetune``) also trains the new tokens' embedding rows and ``lm_head`` columns
(counted separately as ``new_row_params``); the paper has no new vocabulary. The learning rate of
each method is picked on a B validation split with seed 0 from ``lr_grid``, then all seeds use it.
Scale: a tiny LM and a few hundred steps (the paper: LLaMA-7B/13B, commonsense and arithmetic
reasoning); the paper's generalisation claim is out-of-domain accuracy after instruction tuning,
here it is read as B test perplexity (fit) and A test perplexity (forgetting). Memory and FLOPs
are analytic (``sparsejax.llm.s2ft.training_costs``), not measured.
"""
from __future__ import annotations

import jax
import numpy as np

from experiments._stats import fmt_mean_std, mean_std
from sparsejax.data.grammar import VOCAB, VOCAB_SHIFTED
from sparsejax.core import param_count
from sparsejax.llm import (
    combine, full, lora, lora_num_params, num_trainable, perplexity, s2ft, select_units, slice_adapter,
    training_costs, unpermute,
)
from sparsejax.llm.train import finetune, grammar_windows, ngram_perplexity, pretrain_lm
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.tracking import log_scalars

PAPERS = ("P12",)
CLAIM = ("S2FT (co-permuted dense slices of random heads/channels) generalises better than LoRA and full "
         "fine-tuning with less memory and compute (P12)")

MODEL = {"d_model": 64, "n_layers": 4, "n_heads": 8, "max_len": 32, "mlp_ratio": 4}
PRESETS = {
    "smoke": {"model": MODEL, "seq_len": 32, "pretrain_sentences": 10000, "pretrain_steps": 1000,
              "pretrain_lr": 3e-3, "finetune_sentences": 300, "eval_sentences": 400, "finetune_steps": 150,
              "batch_size": 32, "lr_grid": [1e-3, 5e-3], "seeds": [0, 1, 2], "o_ratio": 0.052, "d_ratio": 0.02,
              "methods": ["no_finetune", "new_rows_only", "s2ft_random", "s2ft_magnitude", "lora", "full",
                          "head_only"]},
    "full": {"model": {**MODEL, "d_model": 128}, "seq_len": 32, "pretrain_sentences": 20000, "pretrain_steps": 3000,
             "pretrain_lr": 2e-3, "finetune_sentences": 1000, "eval_sentences": 1000, "finetune_steps": 500,
             "batch_size": 32, "lr_grid": [1e-3, 3e-3, 1e-2], "seeds": [0, 1, 2], "o_ratio": 0.052, "d_ratio": 0.02,
             "methods": ["no_finetune", "new_rows_only", "s2ft_random", "s2ft_magnitude", "lora", "full",
                         "head_only"]},
}
LORA_TARGETS = ["blocks/*/out/kernel", "blocks/*/fc2/kernel"]
N_OLD, N_ALL = len(VOCAB), len(VOCAB_SHIFTED)


def new_rows(params, with_head: bool = True):
    """Trainable embedding rows (and ``lm_head`` columns + bias) of the new grammar-B tokens."""
    slices = {"tok_embed": (0, N_OLD, N_ALL)}
    if with_head:
        slices.update({"lm_head/kernel": (1, N_OLD, N_ALL), "lm_head/bias": (0, N_OLD, N_ALL)})
    return slice_adapter(params, slices)


def build(method: str, params, config, cfg: dict, seed: int):
    """``(base params to adapt, adapter, orders or None)`` for ``method``."""
    if method == "new_rows_only":
        return params, new_rows(params), None
    if method == "full":
        return params, full(params, "*"), None
    if method == "head_only":
        return params, combine(full(params, "lm_head/*"), new_rows(params, with_head=False)), None
    if method.startswith("s2ft"):
        sel = select_units(params, config, o_ratio=cfg["o_ratio"], d_ratio=cfg["d_ratio"], seed=seed,
                           method=method.split("_")[1])
        permuted, ad, orders = s2ft(params, config, sel)
        return permuted, combine(ad, new_rows(permuted)), orders
    if method == "lora":
        return params, combine(lora(params, lora_rank(params, config, cfg), LORA_TARGETS, jax.random.PRNGKey(seed)),
                               new_rows(params)), None
    raise ValueError(f"unknown method {method!r}")


def s2ft_budget(params, config, cfg: dict) -> int:
    """Trainable S²FT entries at the configured ratios (independent of which units are drawn)."""
    sel = select_units(params, config, o_ratio=cfg["o_ratio"], d_ratio=cfg["d_ratio"], seed=0)
    return num_trainable(s2ft(params, config, sel)[1])


def lora_rank(params, config, cfg: dict) -> int:
    """The LoRA rank on ``out`` and ``fc2`` whose trainable count is closest to S²FT's."""
    shapes = [b[n]["kernel"].shape for b in params["blocks"] for n in ("out", "fc2")]
    budget, per_rank = s2ft_budget(params, config, cfg), lora_num_params(shapes, 1)
    return max(1, int(round(budget / per_rank)))


def run(config: dict, ctx) -> dict:
    """Pre-train on A, fine-tune on B with every method (lr picked on B validation, seed 0), evaluate."""
    cfg = config
    a = grammar_windows("A", cfg["pretrain_sentences"], cfg["eval_sentences"], cfg["seq_len"], seed=0)
    b = grammar_windows("B", cfg["finetune_sentences"], cfg["eval_sentences"], cfg["seq_len"], seed=0)
    with LoopCheckpointer(ctx.checkpoint_dir("pretrain"), every=cfg["pretrain_steps"]) as ckpt:
        # the pre-training losses are not reported: a resumed run would only hold those after the restore
        params, lm_cfg, _ = pretrain_lm(jax.random.PRNGKey(ctx.seed), N_ALL, a.train, model=cfg["model"],
                                             steps=cfg["pretrain_steps"], batch_size=cfg["batch_size"],
                                             learning_rate=cfg["pretrain_lr"], checkpointer=ckpt)
    out = {"pretrain": {"ppl_A": perplexity(params, a.test, lm_cfg),
                        "ppl_B": perplexity(params, b.test, lm_cfg)},
           "baselines": {f"{n}gram": {"ppl_B": ngram_perplexity(b.train, b.test, N_ALL, n),
                                      "ppl_A": ngram_perplexity(b.train, a.test, N_ALL, n)} for n in (1, 2)},
           "budget": {"s2ft": s2ft_budget(params, lm_cfg, cfg), "lora_rank": lora_rank(params, lm_cfg, cfg),
                      "new_row_params": num_trainable(new_rows(params)), "model": param_count(params)}}
    ctx.log(f"pre-trained: A ppl {out['pretrain']['ppl_A']:.2f}, B ppl {out['pretrain']['ppl_B']:.2f}; "
            f"S2FT budget {out['budget']['s2ft']}, LoRA rank {out['budget']['lora_rank']}")

    def tune(method, seed, lr):
        base, ad, orders = build(method, params, lm_cfg, cfg, seed)
        tag = f"{method}_s{seed}_lr{lr:g}"
        with LoopCheckpointer(ctx.checkpoint_dir(tag), every=cfg["finetune_steps"]) as ck:
            trained, _ = finetune(base, lm_cfg, ad, b.train, steps=cfg["finetune_steps"], batch_size=cfg["batch_size"],
                                  learning_rate=lr, key=jax.random.PRNGKey(1000 + seed), checkpointer=ck)
        fused = ad.merge(base, trained)
        if orders is not None:
            fused = unpermute(fused, lm_cfg, orders)
        return fused, num_trainable(ad)

    methods = {}
    bar = ctx.progress(total=len(cfg["methods"]), desc="s2ft methods")
    for method in cfg["methods"]:
        if method == "no_finetune":
            row = {"ppl_B": [out["pretrain"]["ppl_B"]] * len(cfg["seeds"]),
                   "ppl_A": [out["pretrain"]["ppl_A"]] * len(cfg["seeds"]), "trainable": 0, "lr": None}
        else:
            val = {lr: perplexity(tune(method, cfg["seeds"][0], lr)[0], b.val, lm_cfg) for lr in cfg["lr_grid"]}
            lr = min(val, key=val.get)
            row = {"ppl_B": [], "ppl_A": [], "lr": lr, "val_ppl_B_by_lr": {f"{k:g}": v for k, v in val.items()}}
            for seed in cfg["seeds"]:
                fused, row["trainable"] = tune(method, seed, lr)
                row["ppl_B"].append(perplexity(fused, b.test, lm_cfg))
                row["ppl_A"].append(perplexity(fused, a.test, lm_cfg))
        row["ppl_B_mean_std"], row["ppl_A_mean_std"] = mean_std(row["ppl_B"]), mean_std(row["ppl_A"])
        log_scalars(0, {"ppl_B": row["ppl_B_mean_std"][0], "ppl_A": row["ppl_A_mean_std"][0]}, prefix=f"s2ft/{method}")
        methods[method] = row
        bar.update()
    bar.close()
    out["methods"] = methods
    lora_ad = lora(params, out["budget"]["lora_rank"], LORA_TARGETS, jax.random.PRNGKey(0))
    s2_ad = s2ft(params, lm_cfg, select_units(params, lm_cfg, o_ratio=cfg["o_ratio"], d_ratio=cfg["d_ratio"]))[1]
    out["costs"] = {m: training_costs(params, lm_cfg, ad, method=m, batch_size=cfg["batch_size"], seq_len=cfg["seq_len"])
                    for m, ad in (("full", None), ("lora", lora_ad), ("s2ft", s2_ad))}
    out["claims"] = _claims(out)
    ctx.save_figure(plot(out), "s2ft.png")
    return out


def _claims(out: dict) -> dict:
    m = out["methods"]
    mean = lambda k, key="ppl_B": m[k][f"{key}_mean_std"][0] if k in m else float("nan")  # noqa: E731
    costs = out["costs"]
    return {
        "s2ft_beats_lora_on_B": mean("s2ft_random") < mean("lora"),
        "s2ft_beats_full_on_B": mean("s2ft_random") < mean("full"),
        "s2ft_forgets_less_than_lora": mean("s2ft_random", "ppl_A") < mean("lora", "ppl_A"),
        "s2ft_forgets_less_than_full": mean("s2ft_random", "ppl_A") < mean("full", "ppl_A"),
        "s2ft_beats_bigram_on_B": mean("s2ft_random") < out["baselines"]["2gram"]["ppl_B"],
        "s2ft_cheaper_than_lora_and_full": (costs["s2ft"]["memory_floats"] < costs["lora"]["memory_floats"]
                                            < costs["full"]["memory_floats"]
                                            and costs["s2ft"]["flops"] < costs["lora"]["flops"] < costs["full"]["flops"]),
    }


def plot(out: dict):
    """B perplexity (fit) vs A perplexity (forgetting) per method, mean ± std over seeds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    for name, row in out["methods"].items():
        (bm, bs), (am, as_) = row["ppl_B_mean_std"], row["ppl_A_mean_std"]
        ax[0].errorbar(bm, am, xerr=bs, yerr=as_, fmt="o", label=f"{name} ({row['trainable']} params)")
    ax[0].axvline(out["baselines"]["2gram"]["ppl_B"], color="grey", ls=":", label="bigram on B")
    ax[0].set(xlabel="test perplexity on B (fit)", ylabel="test perplexity on A (forgetting)", xscale="log",
              yscale="log", title="fine-tuning A -> B")
    ax[0].legend(fontsize=7)
    names = list(out["costs"])
    ax[1].bar(np.arange(3) - 0.2, [out["costs"][n]["memory_floats"] for n in names], 0.4, label="memory (floats)")
    ax[1].bar(np.arange(3) + 0.2, [out["costs"][n]["flops"] / 1e3 for n in names], 0.4, label="FLOPs / 1e3")
    ax[1].set(xticks=range(3), xticklabels=names, yscale="log", title="analytic cost per step")
    ax[1].legend(fontsize=7)
    fig.suptitle("S2FT (P12)")
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: B/A perplexity per method (mean ± std), budgets, costs, verdict."""
    cfg, m = results["config"], results["metrics"]
    meth, c, costs = m["methods"], m["claims"], m["costs"]
    cells = ", ".join(f"{k} {fmt_mean_std(v['ppl_B'])} / {fmt_mean_std(v['ppl_A'])}" for k, v in meth.items())
    rel = lambda k: costs[k]["memory_floats"] / costs["full"]["memory_floats"]  # noqa: E731
    relf = lambda k: costs[k]["flops"] / costs["full"]["flops"]  # noqa: E731
    fit = c["s2ft_beats_lora_on_B"] and c["s2ft_beats_full_on_B"]
    forget = c["s2ft_forgets_less_than_lora"] and c["s2ft_forgets_less_than_full"]
    lo, fu = c["s2ft_beats_lora_on_B"], c["s2ft_beats_full_on_B"]
    fit_txt = ("beats LoRA and full FT on B" if fit else "beats full FT but not LoRA on B" if fu
               else "beats LoRA but not full FT on B" if lo else "worse than LoRA and full FT on B")
    forget_txt = "forgets A less than both" if forget else "forgets A more than LoRA or full FT"
    if not c["s2ft_beats_bigram_on_B"]:
        verdict = "did not learn (S2FT not below the bigram on B)"
    elif fit and forget:
        verdict = "claim held at this scale"
    elif lo or fu or forget:
        verdict = f"partly held: S2FT {fit_txt}, {forget_txt}"
    else:
        verdict = "did not hold: S2FT worse than LoRA and full FT on B and forgets more"
    return (f"{cfg['model']['n_layers']}-layer d={cfg['model']['d_model']} LM pre-trained on grammar A "
            f"({cfg['pretrain_steps']} steps), fine-tuned {cfg['finetune_steps']} steps on {cfg['finetune_sentences']} "
            f"grammar-B sentences, {len(cfg['seeds'])} seeds; S2FT budget {m['budget']['s2ft']} params (official ratios "
            f"o={cfg['o_ratio']}, d={cfg['d_ratio']}) = LoRA r={m['budget']['lora_rank']}, all + "
            f"{m['budget']['new_row_params']} new-token params; test ppl B / A: {cells}; bigram on B "
            f"{m['baselines']['2gram']['ppl_B']:.2f}; analytic memory / FLOPs vs full FT: LoRA {rel('lora'):.2f} / "
            f"{relf('lora'):.2f}, S2FT {rel('s2ft'):.2f} / {relf('s2ft'):.2f}; {verdict}")
