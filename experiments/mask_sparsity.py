"""P33 MaskSparsity vs network slimming vs L1-norm filter pruning: a BN-CNN on digits, ~55 % of channels removed.

Paper: "Pruning-aware Sparse Regularization for Network Pruning" (Jiang et al.; code
``CASIA-IVA-Lab/MaskSparsity``). A baseline ``sparsejax.nn.BNCNN`` (3x3 VALID convs + BN + ReLU,
global average pool, head) is trained on digits with SGD momentum 0.9. Then, at equal steps:

* **network slimming**: ``sparse_steps`` from the baseline with the L1 subgradient ``s * sign(gamma)``
  on *every* BN scale, prune the globally smallest ``prune_ratio`` of ``|gamma|``, fine-tune;
* **MaskSparsity + slimming mask**: restart from the **baseline**, ``sparse_steps`` with the L1
  subgradient only on the channels that slimming pruned, prune exactly those channels, fine-tune;
* **MaskSparsity + uniform mask**: the same with the mask = the ``prune_ratio`` smallest baseline
  ``|gamma|`` of every layer;
* **L1-norm filter pruning** (Li et al. 2017): prune the ``prune_ratio`` filters of smallest kernel L1
  norm per layer from the baseline, fine-tune ``sparse_steps + finetune_steps`` (equal total steps).

Pruning is real: ``sparsejax.structured.coupled.extract`` builds the compact BNCNN (the BN shifts of
removed channels folded into the next layer), so "after pruning" is the compact network's accuracy
and params/FLOPs are the compact network's. Reported per method: accuracy right after pruning and after
fine-tuning (3 seeds), the mean training loss over the last quarter of the sparsity phase
(the paper's under-fitting argument), the fraction of masked channels that reached ``|gamma| < 0.01``
(the official pruning threshold), params/FLOPs. Trivial baseline: the majority-class accuracy.
Deviations: ``s`` is far larger than the paper's 5e-4 (digits runs a few hundred steps, not 100 ImageNet
epochs); the slimming mask uses a global fraction instead of the 0.01 threshold so every method removes
the same number of channels (FLOPs differ with the per-layer distribution and are reported); no
residual network (ResNet-56/110 in the paper) - residual coupling is supported by ``bn_cnn_groups``.
"""
from __future__ import annotations

import jax
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std, mean_std
from sparsejax.data import load_digits
from sparsejax.nn import BNCNN
from sparsejax.regularizers import (
    bn_gammas, bn_scale_mask, l1_filter_keep, masked_l1, slimming_keep, uniform_keep,
)
from sparsejax.structured.coupled import bn_cnn_groups, count_params_flops, extract, kept_sizes
from sparsejax.train import BNTrainState, evaluate, fit, make_bn_eval_step, make_bn_train_step

PAPERS = ("P33",)
CLAIM = ("P33: MaskSparsity (L1 only on the channels to be pruned, from the baseline weights) removes >50% of "
         "FLOPs without accuracy loss and beats network slimming at equal pruning")

PRESETS = {
    "smoke": {"channels": [16, 32, 32], "prune_ratio": 0.55, "base_steps": 300, "sparse_steps": 200,
              "finetune_steps": 100, "batch_size": 64, "learning_rate": 0.05, "finetune_lr": 0.01,
              "strength": 0.1, "seeds": [0, 1, 2]},
    "full": {"channels": [32, 64, 64], "prune_ratio": 0.55, "base_steps": 1500, "sparse_steps": 1000,
             "finetune_steps": 500, "batch_size": 64, "learning_rate": 0.05, "finetune_lr": 0.01,
             "strength": 0.05, "seeds": [0, 1, 2]},
}

METHODS = ("slimming", "mask_sparsity_slimming_mask", "mask_sparsity_uniform_mask", "l1_norm_filter")


def _train(model, variables, tx, data, steps, batch_size, key):
    state = BNTrainState.create(variables, tx)
    state, losses = fit(make_bn_train_step(model, tx), state, data.x_train, data.y_train, steps=steps,
                        batch_size=batch_size, key=key, num_classes=10)
    return state.variables, losses


def _sgd(lr):
    return optax.sgd(lr, momentum=0.9)


def _prune_and_finetune(model, variables, specs, keep, data, cfg, steps, key):
    """Extract the compact network; accuracy right after pruning and after ``steps`` of fine-tuning."""
    small_p, small_s = extract(variables["params"], specs, keep, variables["batch_stats"])
    sizes = kept_sizes(specs, keep)
    small_model = BNCNN(10, channels=tuple(sizes[s.name] for s in specs), momentum=model.momentum)
    small = {"params": small_p, "batch_stats": small_s}
    ev = make_bn_eval_step(small_model)
    after_prune = evaluate(ev, small, data.x_test, data.y_test)["accuracy"]
    tuned, _ = _train(small_model, small, _sgd(cfg["finetune_lr"]), data, steps, cfg["batch_size"], key)
    after_ft = evaluate(ev, tuned, data.x_test, data.y_test)["accuracy"]
    cost = count_params_flops(lambda v, x: model.apply(v, x), variables,
                              lambda v, x: small_model.apply(v, x), small, data.x_test[:1])
    return {"acc_after_prune": after_prune, "acc_after_finetune": after_ft, "channels": list(sizes.values()),
            "params": cost["params_after"], "flops": cost["flops_after"], "flops_ratio": cost["flops_ratio"],
            "params_ratio": cost["params_ratio"]}


def run(config: dict, ctx) -> dict:
    """Baseline, then the four pruning recipes per seed; accuracies, sparsity-phase loss, params/FLOPs."""
    data = load_digits()
    majority = float(np.mean(data.y_test == np.bincount(data.y_train).argmax()))
    rows = []
    for seed in config["seeds"]:
        key = jax.random.PRNGKey(1000 * ctx.seed + seed)
        k_init, k_base, k_sparse, k_ft = jax.random.split(key, 4)
        model = BNCNN(10, channels=tuple(config["channels"]))
        variables = jax.jit(model.init)(k_init, data.x_train[:2])
        base, _ = _train(model, variables, _sgd(config["learning_rate"]), data, config["base_steps"],
                         config["batch_size"], k_base)
        base_acc = evaluate(make_bn_eval_step(model), base, data.x_test, data.y_test)["accuracy"]
        specs = bn_cnn_groups(base["params"])
        all_on = {s.name: np.ones(s.size, bool) for s in specs}
        ctx.log(f"seed {seed}: baseline accuracy {base_acc:.3f}")

        def sparse_phase(regularize):
            tx = optax.chain(masked_l1(bn_scale_mask(base["params"], specs, regularize), config["strength"]),
                             _sgd(config["learning_rate"]))
            return _train(model, base, tx, data, config["sparse_steps"], config["batch_size"], k_sparse)

        slim, slim_losses = sparse_phase(all_on)
        slim_keep = slimming_keep(slim["params"], specs, config["prune_ratio"])
        ms, ms_losses = sparse_phase({k: ~v for k, v in slim_keep.items()})
        uni_keep = uniform_keep(base["params"], specs, config["prune_ratio"])
        uni, uni_losses = sparse_phase({k: ~v for k, v in uni_keep.items()})
        plans = {"slimming": (slim, slim_keep, slim_losses),
                 "mask_sparsity_slimming_mask": (ms, slim_keep, ms_losses),
                 "mask_sparsity_uniform_mask": (uni, uni_keep, uni_losses),
                 "l1_norm_filter": (base, l1_filter_keep(base["params"], specs, config["prune_ratio"]), None)}
        for method in METHODS:
            trained, keep, losses = plans[method]
            steps = config["finetune_steps"] + (config["sparse_steps"] if method == "l1_norm_filter" else 0)
            res = _prune_and_finetune(model, trained, specs, keep, data, config, steps, k_ft)
            g = bn_gammas(trained["params"], specs)
            masked = np.concatenate([g[n][~keep[n]] for n in keep])
            res.update({"seed": seed, "method": method, "baseline_accuracy": base_acc,
                        "pruned_channels": int(sum((~k).sum() for k in keep.values())),
                        "total_channels": int(sum(k.size for k in keep.values())),
                        "pruned_below_0.01": float(np.mean(masked < 0.01)),
                        "sparse_phase_final_loss": (float(np.mean(losses[-max(1, len(losses) // 4):]))
                                                    if losses else None)})
            rows.append(res)
            ctx.log(f"seed {seed} {method}: pruned {res['pruned_channels']}/{res['total_channels']} ch, "
                    f"acc after prune {res['acc_after_prune']:.3f}, after FT {res['acc_after_finetune']:.3f}, "
                    f"FLOPs x{res['flops_ratio']:.2f}")
    ctx.save_figure(plot(rows), "mask_sparsity.png")
    return {"rows": rows, "table": _table(rows), "majority_accuracy": majority,
            "baseline_accuracy": mean_std([r["baseline_accuracy"] for r in rows if r["method"] == METHODS[0]])}


def plot(rows):
    """Accuracy right after pruning and after fine-tuning per method (mean over seeds)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(METHODS))
    for off, key in ((-0.2, "acc_after_prune"), (0.2, "acc_after_finetune")):
        ax.bar(x + off, [np.mean([r[key] for r in rows if r["method"] == m]) for m in METHODS], 0.4, label=key)
    ax.set_xticks(x, [m.replace("_", "\n", 2) for m in METHODS], fontsize=7)
    ax.set(ylabel="test accuracy", title="MaskSparsity (P33): BN-CNN on digits")
    ax.legend()
    return fig


def _table(rows):
    out = {}
    for m in METHODS:
        sel = [r for r in rows if r["method"] == m]
        out[m] = {k: [r[k] for r in sel] for k in ("acc_after_prune", "acc_after_finetune", "flops_ratio",
                                                     "params_ratio", "pruned_below_0.01", "sparse_phase_final_loss")}
    return out


def summarize(results: dict) -> str:
    """One README cell: accuracies after pruning / fine-tuning, FLOPs, sparsity-phase loss; claim verdict."""
    cfg, m = results["config"], results["metrics"]
    t = m["table"]
    parts = [f"BNCNN {cfg['channels']} on digits, {int(100 * cfg['prune_ratio'])}% channels removed, "
             f"{len(cfg['seeds'])} seed(s), steps base/sparse/FT {cfg['base_steps']}/{cfg['sparse_steps']}/"
             f"{cfg['finetune_steps']}; baseline acc {m['baseline_accuracy'][0]:.3f}, majority class "
             f"{m['majority_accuracy']:.3f}; acc after prune -> after FT (FLOPs kept)"]
    for meth, r in t.items():
        loss = r["sparse_phase_final_loss"]
        parts.append(f"{meth} {fmt_mean_std(r['acc_after_prune'])} -> {fmt_mean_std(r['acc_after_finetune'])} "
                     f"(x{np.mean(r['flops_ratio']):.2f}" + (f", sparse-phase loss {np.mean(loss):.3f}" if loss[0] is not None
                                                             else "") + ")")
    ms_t, sl_t = t["mask_sparsity_slimming_mask"], t["slimming"]
    ms, slim = np.mean(ms_t["acc_after_finetune"]), np.mean(sl_t["acc_after_finetune"])
    ms_p, slim_p = np.mean(ms_t["acc_after_prune"]), np.mean(sl_t["acc_after_prune"])
    base = m["baseline_accuracy"][0]
    parts.append(f"MaskSparsity masked channels with abs(gamma) < 0.01 at pruning: {np.mean(ms_t['pruned_below_0.01']):.2f}")
    if base <= m["majority_accuracy"] + 0.1:
        verdict = "did not learn (baseline not above majority class)"
    else:
        no_loss = ms >= base - 0.01
        ft = "tie within 0.005" if abs(ms - slim) <= 0.005 else ("better" if ms > slim else "worse")
        verdict = (f"no-loss claim {'held' if no_loss else 'did not hold'} (MaskSparsity {ms:.3f} vs baseline {base:.3f} "
                   f"at FLOPs x{np.mean(ms_t['flops_ratio']):.2f}); vs slimming: after pruning {ms_p:.3f} vs "
                   f"{slim_p:.3f} ({'better' if ms_p > slim_p + 0.01 else 'not better'}), after FT {ms:.3f} vs {slim:.3f} "
                   f"({ft}); sparsity-phase loss {np.mean(ms_t['sparse_phase_final_loss']):.3f} vs "
                   f"{np.mean(sl_t['sparse_phase_final_loss']):.3f}")
    return cell(*parts, verdict)
