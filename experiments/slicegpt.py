"""P48 SliceGPT: rotate a pre-trained LM's residual stream and slice its width; perplexity vs
parameter count for PCA, random and no rotation, with and without recovery fine-tuning.

Paper: "SliceGPT: Compress Large Language Models by Deleting Rows and Columns" (Ashkboos et al.,
ICLR 2024; code ``microsoft/TransformerCompression``). The algorithm is
``sparsejax.llm.slicegpt`` (LayerNorm -> RMSNorm fold, sequential PCA on calibration signals in
float64 with 1 % damping, width rounded down to a multiple of 8, shortcut matrices, head not
sliced). Setup: the functional LM (4 layers, d = 64, 4 heads, FFN 256, learned positions) is
pre-trained inside the run on the grammar-A corpus (checkpointed in the run directory);
``calibration_windows`` windows of the training stream (seed 42, as the code's ``cal_nsamples``
= 128 and seed) calibrate every variant; slicing ``sparsities`` of the residual width. Variants:
``pca`` (the paper), ``random`` (Haar-random orthogonal rotations), ``none`` (keep the
highest-energy coordinates); each without and (at ``rft_sparsities``) with a recovery fine-tune
(LoRA, rank ``rft_rank``, on every block kernel, ``rft_steps`` steps on the training windows — the
paper's RFT is LoRA on instruction/text data, whose hyper-parameters were not checked here).

Metrics: test perplexity and the parameter count *including* the shortcut matrices (and
embeddings and head). Trivial baselines: unigram and bigram perplexity (add-0.1, fitted on the
training windows). "Quality kept" is the fraction of the dense model's log-perplexity gain over
the unigram model that the sliced model retains; the claim "25 % removable keeping most of the
quality" is read as quality kept >= 0.9 at the slicing whose parameter reduction is closest to 25 %.
Scale: a tiny LM on a synthetic grammar (the paper: OPT/LLAMA-2 up to 70B, WikiText-2 perplexity
and zero-shot tasks); at d = 64 rounding to multiples of 8 makes the slicing grid coarse.
"""
from __future__ import annotations

import math

import jax
import numpy as np

from sparsejax.data.grammar import VOCAB
from sparsejax.core import param_count
from sparsejax.llm import lora, perplexity, slicegpt
from sparsejax.llm.slicegpt import sliced_dim
from sparsejax.llm.train import finetune, grammar_windows, ngram_perplexity, pretrain_lm
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.tracking import log_scalars

PAPERS = ("P48",)
CLAIM = ("SliceGPT removes up to 25% of parameters (rotate by PCA, delete rows and columns) keeping most of the "
         "quality; PCA rotation beats random/no rotation (P48)")

MODEL = {"d_model": 64, "n_layers": 4, "n_heads": 4, "max_len": 32, "mlp_ratio": 4}
PRESETS = {
    "smoke": {"model": MODEL, "seq_len": 32, "pretrain_sentences": 10000, "eval_sentences": 400, "pretrain_steps": 1000,
              "pretrain_lr": 3e-3, "batch_size": 32, "calibration_windows": 128,
              "sparsities": [0.1, 0.2, 0.25, 0.3, 0.4], "rotations": ["pca", "random", "none"],
              "rft_sparsities": [0.3], "rft_steps": 100, "rft_rank": 8, "rft_lr": 3e-3},
    "full": {"model": {**MODEL, "d_model": 128}, "seq_len": 32, "pretrain_sentences": 20000, "eval_sentences": 1000,
             "pretrain_steps": 3000, "pretrain_lr": 2e-3, "batch_size": 32, "calibration_windows": 128,
             "sparsities": [0.1, 0.2, 0.25, 0.3, 0.4], "rotations": ["pca", "random", "none"],
             "rft_sparsities": [0.1, 0.2, 0.25, 0.3, 0.4], "rft_steps": 200, "rft_rank": 8, "rft_lr": 2e-3},
}
RFT_TARGETS = "blocks/*/*/kernel"


def quality_kept(ppl: float, dense: float, unigram: float) -> float:
    """Fraction of the dense model's log-perplexity gain over the unigram model that remains."""
    return (math.log(unigram) - math.log(ppl)) / (math.log(unigram) - math.log(dense))


def run(config: dict, ctx) -> dict:
    """Pre-train, then slice with every rotation at every sparsity (and recovery-fine-tune some)."""
    cfg = config
    data = grammar_windows("A", cfg["pretrain_sentences"], cfg["eval_sentences"], cfg["seq_len"], seed=0)
    vocab = len(VOCAB)
    with LoopCheckpointer(ctx.checkpoint_dir("pretrain"), every=cfg["pretrain_steps"]) as ckpt:
        # the pre-training losses are not reported: a resumed run would only hold those after the restore
        params, lm_cfg, _ = pretrain_lm(jax.random.PRNGKey(ctx.seed), vocab, data.train, model=cfg["model"],
                                             steps=cfg["pretrain_steps"], batch_size=cfg["batch_size"],
                                             learning_rate=cfg["pretrain_lr"], checkpointer=ckpt)
    calib_idx = np.random.default_rng(42).choice(len(data.train), cfg["calibration_windows"], replace=False)
    calib = data.train[calib_idx, :-1]
    dense_ppl, dense_params = perplexity(params, data.test, lm_cfg), param_count(params)
    out = {"dense": {"ppl": dense_ppl, "params": dense_params},
           "baselines": {f"{n}gram_ppl": ngram_perplexity(data.train, data.test, vocab, n) for n in (1, 2)}}
    uni = out["baselines"]["1gram_ppl"]
    ctx.log(f"dense LM: test ppl {dense_ppl:.3f} ({dense_params} params); unigram {uni:.2f}, "
            f"bigram {out['baselines']['2gram_ppl']:.2f}")
    rows = []
    bar = ctx.progress(total=len(cfg["rotations"]) * len(cfg["sparsities"]), desc="slicegpt")
    for rotation in cfg["rotations"]:
        for s in cfg["sparsities"]:
            sliced, s_cfg = slicegpt(params, lm_cfg, calib, s, rotation=rotation, seed=ctx.seed)
            row = {"rotation": rotation, "sparsity": s, "width": sliced_dim(cfg["model"]["d_model"], s),
                   "params": param_count(sliced), "ppl": perplexity(sliced, data.test, s_cfg)}
            row["param_fraction"] = row["params"] / dense_params
            row["quality_kept"] = quality_kept(row["ppl"], dense_ppl, uni)
            if s in cfg["rft_sparsities"]:
                ad = lora(sliced, cfg["rft_rank"], RFT_TARGETS, jax.random.PRNGKey(ctx.seed))
                with LoopCheckpointer(ctx.checkpoint_dir(f"rft_{rotation}_{s:g}"), every=cfg["rft_steps"]) as ck:
                    trained, _ = finetune(sliced, s_cfg, ad, data.train, steps=cfg["rft_steps"],
                                          batch_size=cfg["batch_size"], learning_rate=cfg["rft_lr"],
                                          key=jax.random.PRNGKey(7 + ctx.seed), checkpointer=ck)
                row["rft_ppl"] = perplexity(ad.merge(sliced, trained), data.test, s_cfg)
                row["rft_quality_kept"] = quality_kept(row["rft_ppl"], dense_ppl, uni)
            log_scalars(int(100 * s), {k: v for k, v in row.items() if isinstance(v, float)}, prefix=f"slicegpt/{rotation}")
            rows.append(row)
            bar.update()
    bar.close()
    out["rows"] = rows
    out["claims"] = _claims(out, cfg)
    ctx.save_figure(plot(out), "slicegpt.png")
    return out


def _claims(out: dict, cfg: dict) -> dict:
    rows = out["rows"]
    by = {(r["rotation"], r["sparsity"]): r for r in rows}
    pca = [r for r in rows if r["rotation"] == "pca"]
    at25 = min(pca, key=lambda r: abs((1 - r["param_fraction"]) - 0.25))
    others = [o for o in cfg["rotations"] if o != "pca"]
    return {
        "pca_row_closest_to_25pct_removed": {"sparsity": at25["sparsity"], "removed": 1 - at25["param_fraction"],
                                             "quality_kept": at25["quality_kept"],
                                             "rft_quality_kept": at25.get("rft_quality_kept")},
        "25pct_removed_keeps_90pct_quality": at25["quality_kept"] >= 0.9,
        "pca_beats_other_rotations_everywhere": all(by[("pca", s)]["ppl"] < by[(o, s)]["ppl"]
                                                    for s in cfg["sparsities"] for o in others),
        "sliced_beats_bigram_everywhere": all(r["ppl"] < out["baselines"]["2gram_ppl"] for r in pca),
    }


def plot(out: dict):
    """Test perplexity vs parameter count (incl. shortcuts) per rotation, with RFT points."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rot, mark in (("pca", "o"), ("random", "s"), ("none", "^")):
        rows = [r for r in out["rows"] if r["rotation"] == rot]
        if not rows:
            continue
        ax.plot([r["params"] for r in rows], [r["ppl"] for r in rows], mark + "-", label=f"{rot}")
        rft = [r for r in rows if "rft_ppl" in r]
        ax.plot([r["params"] for r in rft], [r["rft_ppl"] for r in rft], mark, mfc="none", ms=10,
                label=f"{rot} + recovery FT")
    ax.plot([out["dense"]["params"]], [out["dense"]["ppl"]], "k*", ms=12, label="dense")
    ax.axhline(out["baselines"]["2gram_ppl"], color="grey", ls=":", label="bigram")
    ax.set(xlabel="parameters (incl. shortcut matrices)", ylabel="test perplexity", yscale="log",
           title="SliceGPT (P48) on the grammar LM")
    ax.legend(fontsize=7)
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: dense vs sliced perplexities per rotation, the 25% point, verdict."""
    cfg, m = results["config"], results["metrics"]
    c = m["claims"]
    at = c["pca_row_closest_to_25pct_removed"]
    table = "; ".join(
        f"{rot}: " + ", ".join(f"{r['sparsity']:.0%}->{r['ppl']:.2f}" + (f" (RFT {r['rft_ppl']:.2f})" if "rft_ppl" in r
                                                                         else "")
                               for r in m["rows"] if r["rotation"] == rot) for rot in cfg["rotations"])
    if not c["sliced_beats_bigram_everywhere"] and at["quality_kept"] < 0:
        verdict = "did not hold (sliced model worse than the unigram model)"
    else:
        held = [c["25pct_removed_keeps_90pct_quality"], c["pca_beats_other_rotations_everywhere"]]
        verdict = ("claim held at this scale" if all(held) else
                   "partly held" if any(held) else "did not hold") + (
            f" (quality kept at {at['removed']:.0%} removed: {at['quality_kept']:.2f}"
            + (f", {at['rft_quality_kept']:.2f} after RFT" if at["rft_quality_kept"] is not None else "")
            + f"; PCA best at every slicing: {'yes' if held[1] else 'no'})")
    return (f"{cfg['model']['n_layers']}-layer d={cfg['model']['d_model']} LM on grammar A "
            f"({cfg['pretrain_steps']} pre-training steps), {cfg['calibration_windows']} calibration windows; dense ppl "
            f"{m['dense']['ppl']:.3f} ({m['dense']['params']} params), bigram {m['baselines']['2gram_ppl']:.2f}, unigram "
            f"{m['baselines']['1gram_ppl']:.2f}; slicing -> test ppl: {table}; {verdict}")
