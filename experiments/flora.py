"""P27 FLoRA: adapt a digits CNN's conv kernels in a Tucker core space (keeping the 4-D structure)
vs LoRA on the reshaped kernel, full fine-tuning and head-only, over matched parameter budgets.

Paper: "FLoRA: Low-Rank Core Space for N-dimension" (Si et al.; code
``SJTU-DeepVisionLab/FLoRA``). Setup: ``sparsejax.nn.CNN`` (3x3 convs ``channels``, dense
``hidden``, average pooling) is pre-trained inside the run on digits 0-4 (checkpointed), then
fine-tuned on two shifted tasks: digits 5-9 (new classes) and inverted digits 0-4 (``1 - x``).
Every method trains a freshly initialised head (5 classes); the adapters act on every conv kernel:

* ``flora``: ``dW = scale G x_1 A_in x_2 A_out x_3 A_kh x_4 A_kw`` (``sparsejax.llm.flora``), the
  official conv configuration ``scale = 4`` with ranks ``[r, r, k, k]`` for ``r`` in
  ``flora_ranks`` and spatial rank ``k`` in ``flora_spatial`` (official ``[16, 16, 2, 2]``); a
  rank is capped at its mode's size (conv_0 has one input channel);
* ``lora``: LoRA on the ``(k_h k_w in, out)`` reshaped kernel with the rank whose trainable count
  is closest to FLoRA's at each budget (matched in parameters);
* ``full`` (all weights) and ``head_only`` (linear probe); trivial baselines: majority class, and
  for the inverted task the pre-trained network with its own head, not fine-tuned.

The learning rate of each method (and budget) is picked from ``lr_grid`` on a validation split
(20 % of the training images) with seed 0; all seeds then use it (AdamW, warm-up + cosine, no
weight decay). 3 seeds (head initialisation, LoRA/FLoRA factors and batch order). Deviation: the
official adapter applies dropout 0.01 to the adapter input; here the update is merged into the
kernel, without dropout. Scale: 8x8 digits and a 3-conv CNN (the paper: ViT/ConvNeXt on VTAB,
LLMs, multi-modal models).
"""
from __future__ import annotations

import jax
import numpy as np

from experiments._stats import fmt_mean_std, mean_std
from sparsejax.llm import combine, flora, full, lora, lora_num_params, num_trainable
from sparsejax.llm.adapters import get_leaf, match_paths
from sparsejax.llm.train import adamw_state, finetune
from sparsejax.train import evaluate, fit, make_eval_step, make_train_step
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.tracking import log_scalars

PAPERS = ("P27",)
CLAIM = "Keeping the N-D structure of conv kernels (Tucker core FLoRA) beats LoRA-style reshaping (P27)"

PRESETS = {
    "smoke": {"channels": [16, 32, 64], "hidden": 64, "pretrain_steps": 400, "pretrain_lr": 3e-3,
              "finetune_steps": 150, "batch_size": 64, "lr_grid": [1e-3, 3e-3, 1e-2], "seeds": [0, 1, 2],
              "flora_ranks": [2, 8], "flora_spatial": [2], "flora_scale": 4.0, "tasks": ["digits_5_9", "inverted_0_4"]},
    "full": {"channels": [16, 32, 64], "hidden": 64, "pretrain_steps": 1000, "pretrain_lr": 3e-3,
             "finetune_steps": 400, "batch_size": 64, "lr_grid": [3e-4, 1e-3, 3e-3, 1e-2], "seeds": [0, 1, 2],
             "flora_ranks": [2, 4, 8, 16], "flora_spatial": [2, 3], "flora_scale": 4.0,
             "tasks": ["digits_5_9", "inverted_0_4"]},
}
CONVS = "params/conv_*/kernel"


def task_data(name: str, split):
    """``(x_train, y_train, x_test, y_test)`` of a task: classes 0-4 (pre-training), 5-9 or inverted 0-4."""
    def pick(x, y, classes, invert):
        keep = np.isin(y, classes)
        return (1.0 - x[keep] if invert else x[keep]).astype(np.float32), (y[keep] - classes[0]).astype(np.int32)

    classes, invert = {"pretrain": ([0, 1, 2, 3, 4], False), "digits_5_9": ([5, 6, 7, 8, 9], False),
                       "inverted_0_4": ([0, 1, 2, 3, 4], True)}[name]
    return (*pick(split.x_train, split.y_train, classes, invert), *pick(split.x_test, split.y_test, classes, invert))


def flora_ranks(params, r: int, k: int) -> dict:
    """Per conv kernel ``[r_in, r_out, k, k]``, each capped at its mode's size."""
    out = {}
    for path in match_paths(params, CONVS):
        kh, kw, c_in, c_out = get_leaf(params, path).shape
        out[path] = [min(r, c_in), min(r, c_out), min(k, kh), min(k, kw)]
    return out


def build(method: str, params, key, budget: dict | None, scale: float):
    """The adapter (conv adapter + trainable head, or everything) for ``method``."""
    head = full(params, "params/head/*")
    if method == "head_only":
        return head
    if method == "full":
        return full(params, "*")
    if method == "flora":
        parts = [flora(params, ranks, path, jax.random.fold_in(key, i), scale=scale)
                 for i, (path, ranks) in enumerate(budget["flora_ranks"].items())]
        return combine(*parts, head)
    return combine(lora(params, budget["lora_rank"], CONVS, key), head)


def run(config: dict, ctx) -> dict:
    """Pre-train on digits 0-4, fine-tune on each task with every method and budget over seeds."""
    from sparsejax.data import load_digits
    from sparsejax.nn import CNN

    cfg = config
    split = load_digits(seed=0)
    model = CNN(5, channels=tuple(cfg["channels"]), hidden=cfg["hidden"])
    apply = model.apply
    x_pre, y_pre, x_pre_te, y_pre_te = task_data("pretrain", split)
    init = jax.jit(model.init)
    params = init(jax.random.PRNGKey(ctx.seed), x_pre[:1])
    tx, state = adamw_state(params, cfg["pretrain_lr"], cfg["pretrain_steps"], 1e-4)
    with LoopCheckpointer(ctx.checkpoint_dir("pretrain"), every=cfg["pretrain_steps"]) as ck:
        state, _ = fit(make_train_step(apply, tx), state, x_pre, y_pre, steps=cfg["pretrain_steps"],
                       batch_size=cfg["batch_size"], key=jax.random.PRNGKey(1), checkpointer=ck)
    pre = state.params
    eval_step = make_eval_step(apply)
    acc = lambda p, x, y: evaluate(eval_step, p, x, y)["accuracy"]  # noqa: E731
    out = {"pretrain_accuracy_0_4": acc(pre, x_pre_te, y_pre_te), "tasks": {}}
    conv_shapes = [get_leaf(pre, p).shape for p in match_paths(pre, CONVS)]
    budgets = []
    for k in cfg["flora_spatial"]:
        for r in cfg["flora_ranks"]:
            ranks = flora_ranks(pre, r, k)
            n = num_trainable(combine(*[flora(pre, rk, p, jax.random.PRNGKey(0)) for p, rk in ranks.items()]))
            budgets.append({"name": f"r{r}_k{k}", "flora_ranks": ranks, "flora_params": n,
                            "lora_rank": max(1, int(round(n / lora_num_params(conv_shapes, 1))))})
    out["budgets"] = [{k: v for k, v in b.items() if k != "flora_ranks"} for b in budgets]
    runs = [("head_only", None), ("full", None)] + [(m, b) for b in budgets for m in ("flora", "lora")]
    bar = ctx.progress(total=len(cfg["tasks"]) * len(runs), desc="flora runs")
    for task in cfg["tasks"]:
        x_tr, y_tr, x_te, y_te = task_data(task, split)
        n_val = len(x_tr) // 5
        x_fit, y_fit, x_val, y_val = x_tr[n_val:], y_tr[n_val:], x_tr[:n_val], y_tr[:n_val]
        res = {"majority_accuracy": float(np.mean(y_te == np.bincount(y_tr).argmax())), "methods": {}}
        if task == "inverted_0_4":
            res["no_finetune_accuracy"] = acc(pre, x_te, y_te)

        def tune(method, budget, seed, lr, x, y):
            key = jax.random.PRNGKey(100 + seed)
            fresh_head = init(jax.random.fold_in(key, 1), x[:1])["params"]["head"]
            base = {"params": {**pre["params"], "head": fresh_head}}
            ad = build(method, base, jax.random.fold_in(key, 2), budget, cfg["flora_scale"])
            tag = f"{task}_{method}_{budget['name'] if budget else 'all'}_s{seed}_lr{lr:g}_{len(x)}"
            with LoopCheckpointer(ctx.checkpoint_dir(tag), every=cfg["finetune_steps"]) as ckpt:
                trained, _ = finetune(base, None, ad, (x, y), steps=cfg["finetune_steps"], batch_size=cfg["batch_size"],
                                      learning_rate=lr, key=jax.random.fold_in(key, 3), apply_fn=apply,
                                      checkpointer=ckpt)
            return ad.merge(base, trained), num_trainable(ad)

        for method, budget in runs:
            name = method if budget is None else f"{method}_{budget['name']}"
            val = {lr: acc(tune(method, budget, cfg["seeds"][0], lr, x_fit, y_fit)[0], x_val, y_val)
                   for lr in cfg["lr_grid"]}
            lr = max(val, key=val.get)
            row = {"lr": lr, "accuracy": [], "budget": None if budget is None else budget["name"]}
            for seed in cfg["seeds"]:
                merged, row["trainable"] = tune(method, budget, seed, lr, x_tr, y_tr)
                row["accuracy"].append(acc(merged, x_te, y_te))
            row["accuracy_mean_std"] = mean_std(row["accuracy"])
            log_scalars(row["trainable"], {"accuracy": row["accuracy_mean_std"][0]}, prefix=f"flora/{task}/{name}")
            res["methods"][name] = row
            bar.update()
        out["tasks"][task] = res
    bar.close()
    out["claims"] = _claims(out, budgets)
    ctx.save_figure(plot(out), "flora.png")
    return out


def _claims(out: dict, budgets) -> dict:
    claims = {}
    for task, res in out["tasks"].items():
        m = res["methods"]
        wins = [m[f"flora_{b['name']}"]["accuracy_mean_std"][0] > m[f"lora_{b['name']}"]["accuracy_mean_std"][0]
                for b in budgets]
        claims[task] = {"flora_beats_lora_at_budgets": sum(wins), "budgets": len(wins),
                        "flora_beats_head_only": max(m[f"flora_{b['name']}"]["accuracy_mean_std"][0] for b in budgets)
                        > m["head_only"]["accuracy_mean_std"][0],
                        "learned": m["head_only"]["accuracy_mean_std"][0] > res["majority_accuracy"]}
    return claims


def plot(out: dict):
    """Accuracy vs trainable parameters per task (mean ± std over seeds)."""
    import matplotlib.pyplot as plt

    tasks = list(out["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        res = out["tasks"][task]
        for method, mark in (("flora", "o-"), ("lora", "s-")):
            rows = sorted((r for n, r in res["methods"].items() if n.startswith(method + "_")), key=lambda r: r["trainable"])
            ax.errorbar([r["trainable"] for r in rows], [r["accuracy_mean_std"][0] for r in rows],
                        yerr=[r["accuracy_mean_std"][1] for r in rows], fmt=mark, label=method)
        for method, mark in (("head_only", "kv"), ("full", "k*")):
            r = res["methods"][method]
            ax.errorbar([r["trainable"]], [r["accuracy_mean_std"][0]], yerr=[r["accuracy_mean_std"][1]], fmt=mark,
                        label=method)
        ax.axhline(res["majority_accuracy"], color="grey", ls=":", label="majority class")
        ax.set(xscale="log", xlabel="trainable parameters", ylabel="test accuracy", title=task)
        ax.legend(fontsize=7)
    fig.suptitle("FLoRA vs LoRA on conv kernels (P27)")
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: accuracy per method and budget for each task, verdict."""
    cfg, m = results["config"], results["metrics"]
    parts = []
    for task, res in m["tasks"].items():
        cells = ", ".join(f"{n} ({r['trainable']}) {fmt_mean_std(r['accuracy'])}" for n, r in res["methods"].items())
        parts.append(f"{task}: majority {res['majority_accuracy']:.3f}; {cells}")
    c = m["claims"]
    wins, total = sum(v["flora_beats_lora_at_budgets"] for v in c.values()), sum(v["budgets"] for v in c.values())
    if not all(v["learned"] for v in c.values()):
        verdict = "did not learn (head-only not above majority)"
    elif wins == total:
        verdict = f"claim held: FLoRA above LoRA at all {total} (task, budget) pairs"
    elif wins > 0:
        verdict = f"partly held: FLoRA above LoRA at {wins} of {total} (task, budget) pairs"
    else:
        verdict = f"did not hold: FLoRA never above LoRA ({total} pairs)"
    return (f"CNN {cfg['channels']} pre-trained on digits 0-4 (test acc {m['pretrain_accuracy_0_4']:.3f}), "
            f"{cfg['finetune_steps']} fine-tune steps, {len(cfg['seeds'])} seeds, FLoRA scale {cfg['flora_scale']:g}; "
            f"test accuracy (trainable params incl. the 5-class head): " + "; ".join(parts) + f"; {verdict}")
