"""P4 random pruning: sparse-from-init MLP/CNN on digits vs dense, over width, sparsity and uniform/ERK.

Paper: "The Unreasonable Effectiveness of Random Pruning: Return of the Most Naive Baseline for
Sparse Training" (Liu et al., ICLR 2022). Masks are drawn once at initialisation with exact
per-layer counts (``sparsejax.random_mask``) from uniform or ERK densities, and the network is
trained sparse from scratch with ``sparsejax.keep_mask(adam)``. Claims checked: (1) the accuracy
gap to the dense network of the same width shrinks as width grows; (2) ERK beats uniform at high
sparsity. One jitted step per (model, width): masks live in the optimizer state, so the 9 runs of
a width (dense + 4 sparsities x 2 distributions) share one compilation.
"""
from __future__ import annotations

import json

import jax
import numpy as np
import optax

import sparsejax as sj
from sparsejax.core import param_count
from sparsejax.data import load_digits
from sparsejax.nn import CNN, MLP
from sparsejax.train import LoopCheckpointer, TrainState, evaluate, fit, make_eval_step, make_train_step

PRESETS = {
    "smoke": {
        "models": ["mlp", "cnn"], "widths": [1, 2, 4], "sparsities": [0.5, 0.8, 0.9, 0.95],
        "distributions": ["uniform", "erk"], "seeds": [0], "steps": 300, "batch_size": 64,
        "learning_rate": 3e-3, "checkpoint_every": 0,
    },
    "full": {
        "models": ["mlp", "cnn"], "widths": [1, 2, 4], "sparsities": [0.5, 0.8, 0.9, 0.95],
        "distributions": ["uniform", "erk"], "seeds": [0, 1, 2], "steps": 3000, "batch_size": 64,
        "learning_rate": 2e-3, "checkpoint_every": 500,
    },
}

PAPERS = ("P4",)
CLAIM = ("P4: randomly pruned sparse networks trained from scratch approach the dense network as width grows, "
         "and ERK layer ratios beat uniform at high sparsity")

MODELS = {"mlp": lambda width: MLP(10, hidden=(64, 64), width=width),
          "cnn": lambda width: CNN(10, channels=(8, 16), hidden=32, width=width)}


def _runs(config):
    """The (distribution, sparsity) settings of one width: dense first."""
    return [("dense", 0.0)] + [(d, s) for s in config["sparsities"] for d in config["distributions"]]


def _load_done(path):
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["model"], r["width"], r["distribution"], r["sparsity"], r["seed"]): r for r in rows}


def _draw_mask(key, params, distribution, sparsity):
    """Exact-count random mask; ``"dense"`` keeps everything (an all-True mask)."""
    if distribution == "dense":
        return sj.random_mask(key, params, 0.0)
    densities = {"uniform": sj.uniform_densities, "erk": sj.erk_densities}[distribution](params, sparsity)
    return sj.random_mask(key, params, densities)


def run(config: dict, ctx) -> dict:
    """Train every (model, width, distribution, sparsity, seed) and tabulate test accuracy."""
    unknown = set(config["models"]) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; valid: {sorted(MODELS)}")
    split = load_digits(seed=0)
    rows_path = ctx.out_dir / "rows.jsonl"
    done = _load_done(rows_path) if ctx.resume else {}
    if ctx.primary and not ctx.resume and rows_path.exists():
        rows_path.unlink()
    ctx.barrier("random_pruning rows read")  # several processes: all skip the same finished rows
    rows = []
    total = len(config["models"]) * len(config["widths"]) * len(config["seeds"]) * len(_runs(config))
    bar = ctx.progress(total=total, desc="random_pruning runs")
    for model_name in config["models"]:
        for width in config["widths"]:
            model = MODELS[model_name](width)
            template = model.init(jax.random.PRNGKey(0), split.x_train[:1])
            tx = sj.keep_mask(optax.adam(config["learning_rate"]), _draw_mask(jax.random.PRNGKey(0), template, "dense", 0.0))
            train_step = make_train_step(model.apply, tx)
            eval_step = make_eval_step(model.apply)
            for seed in config["seeds"]:
                k_init, k_mask, k_data = jax.random.split(jax.random.PRNGKey(1000 * ctx.seed + seed), 3)
                params0 = model.init(k_init, split.x_train[:1])
                for distribution, sparsity in _runs(config):
                    run_key = (model_name, width, distribution, sparsity, seed)
                    if run_key in done:
                        rows.append(done[run_key])
                        bar.update()
                        continue
                    mask = _draw_mask(k_mask, params0, distribution, sparsity)
                    params = sj.apply_mask(params0, mask)
                    state = TrainState.create(params, tx)
                    state = state._replace(opt_state=state.opt_state._replace(mask=mask))
                    tag = f"{model_name}-w{width}-{distribution}-s{sparsity}-seed{seed}"
                    ckpt = LoopCheckpointer(ctx.checkpoint_dir(tag), config["checkpoint_every"] or 1,
                                            enabled=config["checkpoint_every"] > 0)
                    state, _ = fit(train_step, state, split.x_train, split.y_train, steps=config["steps"],
                                   batch_size=config["batch_size"], key=k_data, checkpointer=ckpt)
                    ckpt.close()
                    metrics = evaluate(eval_step, state.params, split.x_test, split.y_test)
                    row = {"model": model_name, "width": width, "distribution": distribution,
                           "sparsity": sparsity, "seed": seed, "test_accuracy": metrics["accuracy"],
                           "measured_sparsity": sj.sparsity(sj.apply_mask(state.params, mask)),
                           "parameters": param_count(params0)}
                    rows.append(row)
                    if ctx.primary:
                        with open(rows_path, "a") as fh:
                            fh.write(json.dumps(row) + "\n")
                    bar.update()
    bar.close()
    summary = _summary(rows)
    ctx.save_figure(plot(rows, config), "accuracy_gap.png")
    return {"rows": rows, **summary}


def _mean_acc(rows, **where):
    vals = [r["test_accuracy"] for r in rows if all(r[k] == v for k, v in where.items())]
    return float(np.mean(vals)) if vals else float("nan")


def _summary(rows) -> dict:
    """Gap to dense per (model, width, distribution, sparsity) and the two claims of P4."""
    gaps = {}
    for r in rows:
        if r["distribution"] == "dense":
            continue
        dense = _mean_acc(rows, model=r["model"], width=r["width"], distribution="dense")
        key = f'{r["model"]}/w{r["width"]}/{r["distribution"]}/s{r["sparsity"]}'
        gaps[key] = dense - _mean_acc(rows, model=r["model"], width=r["width"],
                                      distribution=r["distribution"], sparsity=r["sparsity"])
    models = sorted({r["model"] for r in rows})
    widths = sorted({r["width"] for r in rows})
    sparse = [r for r in rows if r["distribution"] != "dense"]
    high = max((r["sparsity"] for r in sparse), default=None)
    mean_gap_by_width = {
        f"{m}/w{w}": float(np.mean([g for k, g in gaps.items() if k.startswith(f"{m}/w{w}/")])) for m in models
        for w in widths
    }
    shrinks = {m: mean_gap_by_width[f"{m}/w{widths[-1]}"] < mean_gap_by_width[f"{m}/w{widths[0]}"] for m in models}
    erk_vs_uniform = {
        f"{m}/w{w}": _mean_acc(rows, model=m, width=w, distribution="erk", sparsity=high)
        - _mean_acc(rows, model=m, width=w, distribution="uniform", sparsity=high)
        for m in models for w in widths
    }
    return {
        "gap_to_dense": gaps,
        "mean_gap_by_width": mean_gap_by_width,
        "claim_gap_shrinks_with_width": shrinks,
        "erk_minus_uniform_at_highest_sparsity": erk_vs_uniform,
        "claim_erk_beats_uniform_at_high_sparsity": float(np.mean(list(erk_vs_uniform.values()))) > 0,
        "highest_sparsity": high,
    }


def plot(rows, config):
    """Accuracy gap to dense vs sparsity: one panel per model, one line per (width, distribution)."""
    import matplotlib.pyplot as plt

    models = config["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
    for ax, m in zip(axes[0], models):
        for color, w in zip(plt.cm.viridis(np.linspace(0.0, 0.85, len(config["widths"]))), config["widths"]):
            dense = _mean_acc(rows, model=m, width=w, distribution="dense")
            for d, style in zip(config["distributions"], ["--", "-"]):
                ys = [dense - _mean_acc(rows, model=m, width=w, distribution=d, sparsity=s) for s in config["sparsities"]]
                ax.plot(config["sparsities"], ys, style, color=color, marker="o", label=f"width x{w}, {d}")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set(title=f"{m.upper()} on digits", xlabel="sparsity", ylabel="dense acc - sparse acc")
        ax.legend(fontsize=7)
    fig.suptitle("Random pruning at init (P4): gap to the dense model of the same width")
    return fig


def summarize(results: dict) -> str:
    """One table cell: mean gap to dense at the smallest and largest width, ERK minus uniform, verdicts."""
    m = results["metrics"]
    cfg = results.get("config", {})
    gaps = m["mean_gap_by_width"]
    widths = sorted({int(k.split("/w")[1]) for k in gaps})
    models = sorted({k.split("/")[0] for k in gaps})
    parts = []
    for model in models:
        lo, hi = gaps[f"{model}/w{widths[0]}"], gaps[f"{model}/w{widths[-1]}"]
        parts.append(f"{model}: gap to dense {100 * lo:.1f} pts at width x{widths[0]} -> {100 * hi:.1f} at x{widths[-1]}")
    erk = m["erk_minus_uniform_at_highest_sparsity"]
    mean_erk = float(np.mean(list(erk.values()))) if erk else float("nan")
    shrink = all(m["claim_gap_shrinks_with_width"].values())
    seeds = len(cfg.get("seeds", [0]))
    return (f"{'; '.join(parts)} (mean over sparsities {cfg.get('sparsities')}); ERK - uniform at s="
            f"{m['highest_sparsity']}: {100 * mean_erk:+.1f} pts; {cfg.get('steps')} steps, {seeds} seed(s); "
            f"trivial baseline: chance 10%; gap shrinks: {'claim held' if shrink else 'did not hold'}; ERK > uniform: "
            f"{'claim held' if m['claim_erk_beats_uniform_at_high_sparsity'] else 'did not hold'}")
