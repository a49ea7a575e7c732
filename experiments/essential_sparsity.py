"""P41 essential sparsity: one-shot global magnitude pruning of pre-trained ViTs and LMs, knees,
SSL vs supervised, small vs large data, OMP vs IMP masks, and abrupt sparsification.

Paper: "The Emergence of Essential Sparsity in Large Pre-trained Models: The Weights that Matter"
(Jaiswal et al., NeurIPS 2023; code ``VITA-Group/essential_sparsity``). As in the code, the
prunable set is the attention (fused ``qkv``, ``out``) and MLP (``fc1``, ``fc2``) kernels of every
block; embeddings, norms and heads stay dense; the mask is one global magnitude threshold, drawn
once from the pre-trained weights at ``s = 0, 0.1, ..., 0.9``; fine-tuning keeps the mask fixed
and uses the same budget at every ``s``.

* ViT on digits (zoo): pre-trained supervised (cross-entropy) vs self-supervised (SimMIM-style
  masked-patch reconstruction). Without fine-tuning: accuracy (supervised) and reconstruction
  loss (SSL); with fine-tuning: accuracy after ``finetune_steps`` supervised steps with the mask
  (the SSL model gets a new head).
* DecoderLM on the PCFG corpus pre-trained on 1 500 vs 20 000 sentences: held-out perplexity
  without and with ``lm_finetune_steps`` fine-tuning steps.
* OMP vs IMP (3 rounds, rewinding to the pre-trained weights) at ``omp_imp_sparsities`` on the
  supervised ViT: accuracy and mask IoU.
* Abrupt sparsification: fraction of weights with ``|w| < 0.05 std(w)`` along pre-training (zoo history).

Rules (``sparsejax.pruning.essential``): essential sparsity = the largest grid ``s`` whose metric
stays within 1 % (relative) of the dense value at every grid point up to ``s``; knee = the point
farthest from the chord of the normalised curve; a knee counts as *sharp* when the mean slope
after it is at least 3x the mean slope before it. Scale: 2-layer, d=64 models, a few hundred
pre-training steps, one pre-training seed per condition (the zoo), so no seed spread.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.pruning import essential_sparsity, imp, knee, make_retrain, mask_iou, one_shot_sweep
from sparsejax.train import evaluate, make_eval_step
from sparsejax.train.tracking import log_scalars
from sparsejax.train.zoo import lm_perplexity, mae_loss, pretrained, vit_from_mae

PAPERS = ("P41",)
CLAIM = ("Pre-trained transformers have an essential sparsity (sharp knee): one-shot magnitude pruning removes "
         "~30-50% with <=1% drop; SSL and more data raise it; OMP ~ IMP below the knee (P41)")

GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
PRESETS = {
    "smoke": {"sparsities": GRID, "finetune_steps": 40, "lm_finetune_steps": 30, "omp_imp_sparsities": [0.2, 0.4, 0.6],
              "imp_rounds": 3, "batch_size": 64, "learning_rate": 1e-3, "tolerance": 0.01, "zoo_overrides": {}},
    "full": {"sparsities": GRID, "finetune_steps": 150, "lm_finetune_steps": 100, "omp_imp_sparsities": [0.2, 0.4, 0.6],
             "imp_rounds": 3, "batch_size": 64, "learning_rate": 1e-3, "tolerance": 0.01,
             "zoo_overrides": {"steps": 3000}},
}
SHARP = 3.0


def block_kernels(path: str, leaf) -> bool:
    """Prunable set of the official code: attention and MLP kernels inside the transformer blocks."""
    return getattr(leaf, "ndim", 0) >= 2 and "block_" in path


def sharpness(sparsities, metric, at: float) -> float:
    """Mean |slope| after the knee ``at`` divided by the mean |slope| before it (inf if flat before)."""
    s, m = np.asarray(sparsities), np.asarray(metric, np.float64)
    slopes = np.abs(np.diff(m) / np.diff(s))
    i = int(np.flatnonzero(s == at)[0])
    before, after = slopes[:i], slopes[i:]
    if before.size == 0 or after.size == 0:
        return float("nan")
    b = float(np.mean(before))
    return float(np.mean(after) / b) if b > 0 else float("inf")


def _curve_stats(grid, values, tol, higher):
    k = knee(grid, values)
    return {"values": values, "essential": essential_sparsity(grid, values, tolerance=tol, higher_is_better=higher),
            "knee": k, "sharpness": sharpness(grid, values, k)}


def run(config: dict, ctx) -> dict:
    """Sweep the four pre-trained models, compare OMP and IMP, collect the abrupt-sparsification curves."""
    from sparsejax.data import load_digits

    ov, grid, tol = config["zoo_overrides"], config["sparsities"], config["tolerance"]
    get = lambda name: pretrained(name, overrides=ov, log=ctx.log, progress=not ctx.quiet)  # noqa: E731
    vit_sl, vit_ssl, lm_s, lm_l = (get(n) for n in ("vit_digits_supervised", "vit_digits_mae", "lm_grammar_small",
                                                    "lm_grammar_large"))
    split = load_digits(seed=0)
    key = jax.random.PRNGKey(ctx.seed)
    vit = vit_sl.model
    eval_step = make_eval_step(vit.apply)
    accuracy = lambda p: evaluate(eval_step, p, split.x_test, split.y_test)["accuracy"]  # noqa: E731
    adam = lambda sched: optax.adam(sched)  # noqa: E731
    lr = optax.constant_schedule(config["learning_rate"])
    ft_vit = make_retrain(vit.apply, split.x_train, split.y_train, steps=config["finetune_steps"],
                          batch_size=config["batch_size"], key=jax.random.fold_in(key, 1), optimizer=adam, schedule=lr)
    out = {"sparsity": grid}
    bar = ctx.progress(total=6, desc="essential sparsity sweeps")

    sweep = one_shot_sweep(vit_sl.params, grid, accuracy, finetune=lambda p, m: ft_vit(p, m, 0), predicate=block_kernels)
    out["vit_supervised"] = {"pruned": _curve_stats(grid, sweep["pruned"], tol, True),
                             "finetuned": _curve_stats(grid, sweep["finetuned"], tol, True)}
    bar.update()
    mae_model, mae_cfg = vit_ssl.model, vit_ssl.info["config"]
    x_te = jnp.asarray(split.x_test)
    recon_jit = jax.jit(lambda p: mae_loss(mae_model, p, x_te, jax.random.PRNGKey(123), mae_cfg["mask_ratio"]))
    recon = lambda p: float(recon_jit(p))  # noqa: E731
    ssl_pruned = one_shot_sweep(vit_ssl.params, grid, recon, predicate=block_kernels)
    ssl_vit = vit_from_mae(vit_ssl.params, vit, jax.random.fold_in(key, 2), split.x_train[:1])
    ssl_ft = one_shot_sweep(ssl_vit, grid, accuracy, finetune=lambda p, m: ft_vit(p, m, 0), predicate=block_kernels)
    out["vit_ssl"] = {"pruned_recon_loss": _curve_stats(grid, ssl_pruned["pruned"], tol, False),
                      "finetuned": _curve_stats(grid, ssl_ft["finetuned"], tol, True),
                      "iou_with_supervised_mask": [mask_iou(a, b) for a, b in zip(ssl_ft["masks"], sweep["masks"])]}
    bar.update()

    for tag, entry in (("lm_small", lm_s), ("lm_large", lm_l)):
        from sparsejax.data import grammar_corpus, lm_windows

        c = entry.info["config"]
        train = lm_windows(grammar_corpus(c["n_sentences"], seed=c["seed"]), c["seq_len"])
        test = lm_windows(grammar_corpus(500, seed=10_000 + c["seed"]), c["seq_len"])
        ppl = lambda p, m=entry.model: lm_perplexity(m, p, test[:, :-1], test[:, 1:])  # noqa: E731
        ft_lm = make_retrain(entry.model.apply, train[:, :-1], train[:, 1:], steps=config["lm_finetune_steps"],
                             batch_size=32, key=jax.random.fold_in(key, 3), optimizer=adam, schedule=lr)
        res = one_shot_sweep(entry.params, grid, ppl, finetune=lambda p, m: ft_lm(p, m, 0), predicate=block_kernels)
        out[tag] = {"pruned": _curve_stats(grid, res["pruned"], tol, False),
                    "finetuned": _curve_stats(grid, res["finetuned"], tol, False),
                    "train_sentences": c["n_sentences"]}
        bar.update()

    omp_imp = []
    for s in config["omp_imp_sparsities"]:
        omp_mask = sweep["masks"][grid.index(s)] if s in grid else sj.magnitude_mask(
            vit_sl.params, s, "global", predicate=block_kernels)
        omp_acc = accuracy(sj.apply_mask(ft_vit(sj.apply_mask(vit_sl.params, omp_mask), omp_mask, 0), omp_mask))
        res = imp(vit_sl.params, ft_vit, target_sparsity=s, phases=config["imp_rounds"], rewind_params=vit_sl.params,
                  predicate=block_kernels)
        omp_imp.append({"sparsity": s, "omp_accuracy": omp_acc, "imp_accuracy": accuracy(res.params[-1]),
                        "mask_iou": mask_iou(omp_mask, res.masks[-1])})
        log_scalars(int(100 * s), omp_imp[-1], prefix="omp_vs_imp")
    out["omp_vs_imp"] = omp_imp
    bar.update()
    out["abrupt_sparsification"] = {name: e.info["history"] for name, e in
                                    (("vit_supervised", vit_sl), ("vit_ssl", vit_ssl), ("lm_small", lm_s),
                                     ("lm_large", lm_l))}
    out["dense"] = {"vit_supervised_accuracy": vit_sl.info["metrics"]["test_accuracy"],
                    "lm_small_ppl": lm_s.info["metrics"]["test_perplexity"],
                    "lm_large_ppl": lm_l.info["metrics"]["test_perplexity"]}
    bar.update()
    bar.close()
    out["claims"] = _claims(out)
    ctx.save_figure(plot(out), "essential_sparsity.png")
    return out


def _claims(out):
    sharp = {k: out[k]["pruned"]["sharpness"] >= SHARP for k in ("vit_supervised", "lm_small", "lm_large")}
    below = [r for r in out["omp_vs_imp"] if r["sparsity"] <= out["vit_supervised"]["finetuned"]["knee"]]
    return {
        "sharp_knee": sharp,
        "ssl_higher_essential": out["vit_ssl"]["finetuned"]["essential"] > out["vit_supervised"]["finetuned"]["essential"],
        "ssl_at_least_essential": out["vit_ssl"]["finetuned"]["essential"] >= out["vit_supervised"]["finetuned"]["essential"],
        "more_data_higher_essential": out["lm_large"]["pruned"]["essential"] > out["lm_small"]["pruned"]["essential"],
        "more_data_at_least_essential": out["lm_large"]["pruned"]["essential"] >= out["lm_small"]["pruned"]["essential"],
        "omp_close_to_imp_below_knee": bool(below) and all(abs(r["omp_accuracy"] - r["imp_accuracy"]) <= 0.01
                                                           for r in below),
    }


def plot(out):
    """Four panels: ViT accuracy vs sparsity, LM perplexity vs sparsity, OMP vs IMP, near-zero fraction."""
    import matplotlib.pyplot as plt

    s = out["sparsity"]
    fig, ax = plt.subplots(1, 4, figsize=(20, 4))
    ax[0].plot(s, out["vit_supervised"]["pruned"]["values"], "o-", label="supervised, no FT")
    ax[0].plot(s, out["vit_supervised"]["finetuned"]["values"], "s-", label="supervised, FT")
    ax[0].plot(s, out["vit_ssl"]["finetuned"]["values"], "^-", label="SSL (masked patches), FT")
    ax[0].axvline(out["vit_supervised"]["pruned"]["knee"], color="grey", ls=":")
    ax[0].set(title="ViT on digits", xlabel="one-shot sparsity", ylabel="test accuracy")
    for tag, style in (("lm_small", "o"), ("lm_large", "s")):
        n = out[tag]["train_sentences"]
        ax[1].plot(s, out[tag]["pruned"]["values"], style + "-", label=f"{n} sentences, no FT")
        ax[1].plot(s, out[tag]["finetuned"]["values"], style + "--", label=f"{n} sentences, FT")
    ax[1].set(title="DecoderLM on PCFG", xlabel="one-shot sparsity", ylabel="held-out perplexity", yscale="log")
    r = out["omp_vs_imp"]
    xs = [row["sparsity"] for row in r]
    ax[2].plot(xs, [row["omp_accuracy"] for row in r], "o-", label="OMP (one-shot) + FT")
    ax[2].plot(xs, [row["imp_accuracy"] for row in r], "s-", label="IMP (3 rounds, rewind) ")
    ax2 = ax[2].twinx()
    ax2.bar(xs, [row["mask_iou"] for row in r], width=0.05, alpha=0.3, color="grey")
    ax2.set_ylabel("mask IoU (bars)")
    ax[2].set(title="OMP vs IMP (supervised ViT)", xlabel="sparsity", ylabel="test accuracy")
    for name, h in out["abrupt_sparsification"].items():
        ax[3].plot(h["step"], h["near_zero"], label=name)
    ax[3].set(title="near-zero weights during pre-training", xlabel="step", ylabel="frac |w| < 0.05 std")
    for a in ax:
        a.legend(fontsize=7)
    fig.suptitle("Essential sparsity (P41)")
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: essential sparsity and knees per model, SSL vs SL, small vs large data, OMP vs IMP."""
    cfg, m = results["config"], results["metrics"]
    c = m["claims"]
    e = lambda k, curve: m[k][curve]["essential"]  # noqa: E731
    kn = lambda k, curve: m[k][curve]["knee"]  # noqa: E731
    omp = ", ".join(f"{r['sparsity']:.0%}: OMP {r['omp_accuracy']:.3f} vs IMP {r['imp_accuracy']:.3f} (IoU "
                    f"{r['mask_iou']:.2f})" for r in m["omp_vs_imp"])
    sharp = ", ".join(f"{k} {m[k]['pruned']['sharpness']:.1f}x" for k in ("vit_supervised", "lm_small", "lm_large"))
    held = [all(c["sharp_knee"].values()), c["ssl_at_least_essential"], c["more_data_at_least_essential"],
            c["omp_close_to_imp_below_knee"]]
    verdict = "claim held" if all(held) else ("partly held" if any(held) else "did not hold")
    return (f"2-layer d=64 ViT (digits) and DecoderLM (PCFG), one pre-training seed, grid {cfg['sparsities'][0]}-{cfg['sparsities'][-1]}, FT "
            f"{cfg['finetune_steps']}/{cfg['lm_finetune_steps']} steps; dense ViT acc "
            f"{m['dense']['vit_supervised_accuracy']:.3f}, LM ppl {m['dense']['lm_small_ppl']:.2f} (1.5k sent.) / "
            f"{m['dense']['lm_large_ppl']:.2f} (20k); essential sparsity (<=1% drop) ViT supervised "
            f"{e('vit_supervised', 'pruned'):.1f} no FT / {e('vit_supervised', 'finetuned'):.1f} FT vs SSL "
            f"{e('vit_ssl', 'finetuned'):.1f} FT; LM small {e('lm_small', 'pruned'):.1f} vs large "
            f"{e('lm_large', 'pruned'):.1f} (no FT); knees ViT {kn('vit_supervised', 'pruned'):.1f}, LM "
            f"{kn('lm_small', 'pruned'):.1f}/{kn('lm_large', 'pruned'):.1f}, slope ratio after/before {sharp}; {omp}; "
            f"sharp knee {'yes' if held[0] else 'no'}, SSL>=SL {'yes' if held[1] else 'no'}, more data>= "
            f"{'yes' if held[2] else 'no'}, OMP~IMP below knee {'yes' if held[3] else 'no'}; {verdict}")
