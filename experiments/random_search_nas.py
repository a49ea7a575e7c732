"""P18 Random Search over node masks vs one random mask at the same node sparsity.

Paper: "Random Search as a Baseline for Sparse Neural Network Architecture Search" (arXiv
2403.08265; no official code, the procedure is reconstructed, see ``sparsejax.nas.random_search``).
An over-parameterised MLP parent (``hidden`` widths) is initialised once per seed; ``candidates``
random node masks at node sparsity ``s`` (the same count of nodes per hidden layer) are trained
together with ``jax.vmap`` on the same minibatches (Adam, constant learning rate). Random Search
selects the candidate with the best short-budget score (validation accuracy after
``short_steps``; variant: minus the validation loss at initialisation) and keeps training it to
``steps``; the baseline is candidate 0, one random mask. Because every candidate is trained to the
end, the final test accuracy of all of them is known, which gives the Kendall tau (scipy) between
the short-budget score and the final accuracy, and the mean over candidates (the expected
accuracy of a random mask).

Reported per dataset (digits 8x8 flattened; ``make_classification`` with 32 features, 4 classes)
and node sparsity: final test accuracy of selected, random, mean of all candidates and the oracle
best; the paired difference selected - random over seeds with a percentile bootstrap CI
(``scipy.stats.bootstrap``), also pooled over sparsities; steps to 90 % of the final validation
accuracy; weight sparsity implied by the node sparsity (about ``1-(1-s)^2`` for the hidden-hidden
kernel); the dense parent and the majority-class accuracy as trivial baselines. Search cost:
``candidates * short_steps`` extra steps. The claim holds when the pooled CI contains 0 (selected
neither better nor faster than random).
"""
from __future__ import annotations

import jax
import numpy as np
import optax
from scipy import stats

from sparsejax.data import load_digits, synthetic_classification
from sparsejax.nas import (
    candidate_accuracy, node_weight_mask, random_node_masks, search_scores, select_best, steps_to_fraction,
    train_candidates,
)
from sparsejax.nn import MLP

PAPERS = ("P18",)
CLAIM = ("P18: sparse MLPs found by Random Search over node masks are neither more accurate nor faster-converging "
         "than one random node mask at the same sparsity")

PRESETS = {
    "smoke": {"datasets": ["digits", "synthetic"], "hidden": [128, 128], "sparsities": [0.5, 0.75, 0.9, 0.95],
              "candidates": 32, "short_steps": 20, "steps": 150, "batch_size": 64, "learning_rate": 3e-3,
              "eval_every": 10, "seeds": [0, 1, 2]},
    "full": {"datasets": ["digits", "synthetic"], "hidden": [512, 512], "sparsities": [0.5, 0.75, 0.9, 0.95],
             "candidates": 32, "short_steps": 20, "steps": 300, "batch_size": 64, "learning_rate": 3e-3,
             "eval_every": 10, "seeds": [0, 1, 2, 3, 4]},
}


def _data(name: str, seed: int):
    """(x_train, y_train, x_val, y_val, x_test, y_test): 20 % of the training split is validation."""
    if name not in ("digits", "synthetic"):
        raise ValueError(f"unknown dataset {name!r}; valid: digits, synthetic")
    split = load_digits(flatten=True, seed=seed) if name == "digits" else synthetic_classification(
        n_samples=2000, n_features=32, n_classes=4, seed=seed)
    n_val = len(split.x_train) // 5
    perm = np.random.default_rng(seed).permutation(len(split.x_train))
    val, tr = perm[:n_val], perm[n_val:]
    return (split.x_train[tr], split.y_train[tr], split.x_train[val], split.y_train[val], split.x_test, split.y_test,
            split.num_classes)


def _bootstrap(diffs, seed: int = 0):
    diffs = np.asarray(diffs, float)
    if len(diffs) < 2 or np.ptp(diffs) == 0:
        return [float(diffs.mean()), float(diffs.mean())]
    res = stats.bootstrap((diffs,), np.mean, confidence_level=0.95, n_resamples=2000, method="percentile",
                          random_state=seed)
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def _weight_sparsity(params, masks) -> float:
    mask = node_weight_mask(params, [m[0] for m in masks])
    kept = sum(int(np.sum(np.asarray(v["kernel"]))) for v in mask.values())
    total = sum(int(np.size(v["kernel"])) for v in mask.values())
    return 1.0 - kept / total


def run(config: dict, ctx) -> dict:
    """Random Search vs a random node mask for every dataset, sparsity and seed."""
    rows, baselines = [], []
    tx = optax.adam(config["learning_rate"])
    bar = ctx.progress(total=len(config["datasets"]) * len(config["seeds"]) * (len(config["sparsities"]) + 1),
                       desc="random search NAS")
    for name in config["datasets"]:
        for seed in config["seeds"]:
            x_tr, y_tr, x_va, y_va, x_te, y_te, n_cls = _data(name, seed)
            model = MLP(n_cls, hidden=tuple(config["hidden"]))
            key = jax.random.PRNGKey(1000 * ctx.seed + seed)
            params = model.init(jax.random.fold_in(key, 0), x_tr[:1])["params"]
            apply_fn = lambda p, x, model=model: model.apply({"params": p}, x)  # noqa: E731
            kw = dict(steps=config["steps"], batch_size=config["batch_size"], key=jax.random.fold_in(key, 1), tx=tx,
                      eval_every=config["eval_every"])
            dense_masks = random_node_masks(key, config["hidden"], 0.0, 1)
            dense = train_candidates(apply_fn, params, dense_masks, x_tr, y_tr, x_va, y_va, **kw)
            majority = float(np.mean(y_te == np.bincount(y_tr).argmax()))
            baselines.append({"dataset": name, "seed": seed, "majority": majority,
                              "dense": float(candidate_accuracy(apply_fn, dense.params, x_te, y_te)[0]),
                              "dense_steps_to_90": steps_to_fraction(dense.eval_steps, dense.val_accuracy[0])})
            bar.update()
            for s in config["sparsities"]:
                masks = random_node_masks(jax.random.fold_in(key, int(round(1e4 * s))), config["hidden"], s,
                                          config["candidates"])
                res = train_candidates(apply_fn, params, masks, x_tr, y_tr, x_va, y_va, **kw)
                final = candidate_accuracy(apply_fn, res.params, x_te, y_te)
                score = search_scores(res, config["short_steps"])
                score_init = search_scores(res, 0)
                best = select_best(score)
                conv = [steps_to_fraction(res.eval_steps, c) for c in res.val_accuracy]
                row = {"dataset": name, "seed": seed, "sparsity": s, "weight_sparsity": _weight_sparsity(params, masks),
                       "selected": float(final[best]), "selected_init_score": float(final[select_best(score_init)]),
                       "random": float(final[0]), "candidate_mean": float(final.mean()),
                       "oracle": float(final.max()), "selected_steps_to_90": conv[best], "random_steps_to_90": conv[0],
                       "mean_steps_to_90": float(np.mean(conv)),
                       "tau_short": float(stats.kendalltau(score, final).statistic),
                       "tau_init": float(stats.kendalltau(score_init, final).statistic),
                       "search_extra_steps": config["candidates"] * config["short_steps"]}
                rows.append(row)
                ctx.log(f"{name} seed {seed} s={s}: selected {row['selected']:.3f} random {row['random']:.3f} "
                        f"mean {row['candidate_mean']:.3f} tau {row['tau_short']:.2f}")
                bar.update()
    bar.close()
    table = _table(rows, baselines, config)
    ctx.save_figure(plot(table, config), "random_search_nas.png")
    return {"rows": rows, "baselines": baselines, "table": table}


def _table(rows, baselines, config):
    out = {}
    for name in config["datasets"]:
        b = [r for r in baselines if r["dataset"] == name]
        sel_all = [r for r in rows if r["dataset"] == name]
        entry = {"majority": float(np.mean([r["majority"] for r in b])), "dense": float(np.mean([r["dense"] for r in b])),
                 "dense_steps_to_90": float(np.mean([r["dense_steps_to_90"] for r in b])), "by_sparsity": {}}
        for s in config["sparsities"]:
            sel = [r for r in sel_all if r["sparsity"] == s]
            d = [r["selected"] - r["random"] for r in sel]
            entry["by_sparsity"][str(s)] = {
                **{k: [float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel]))]
                   for k in ("selected", "random", "candidate_mean", "oracle", "selected_init_score",
                             "selected_steps_to_90", "random_steps_to_90", "tau_short", "tau_init", "weight_sparsity")},
                "diff_selected_random": float(np.mean(d)), "diff_ci": _bootstrap(d)}
        d_all = [r["selected"] - r["random"] for r in sel_all]
        d_mean = [r["selected"] - r["candidate_mean"] for r in sel_all]
        dconv = [r["selected_steps_to_90"] - r["random_steps_to_90"] for r in sel_all]
        entry["pooled"] = {"diff_selected_random": float(np.mean(d_all)), "diff_ci": _bootstrap(d_all),
                           "diff_selected_mean": float(np.mean(d_mean)), "diff_mean_ci": _bootstrap(d_mean),
                           "diff_steps_to_90": float(np.mean(dconv)), "diff_steps_ci": _bootstrap(dconv),
                           "tau_short": float(np.mean([r["tau_short"] for r in sel_all]))}
        out[name] = entry
    return out


def plot(table, config):
    """Final test accuracy vs node sparsity: selected, random, candidate mean, dense, majority."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 3.8), squeeze=False)
    for ax, (name, entry) in zip(axes[0], table.items()):
        s = config["sparsities"]
        for key, style in (("selected", "o-"), ("random", "s--"), ("candidate_mean", "^:"), ("oracle", "v-.")):
            vals = np.array([entry["by_sparsity"][str(v)][key] for v in s])
            ax.errorbar(s, vals[:, 0], yerr=vals[:, 1], fmt=style, label=key, capsize=3)
        ax.axhline(entry["dense"], color="k", lw=1, label="dense parent")
        ax.axhline(entry["majority"], color="grey", ls=":", label="majority class")
        ax.set(xlabel="node sparsity", ylabel="test accuracy", title=name)
        ax.legend(fontsize=7)
    fig.suptitle("Random Search over node masks (P18)")
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: selected vs random accuracy per sparsity, pooled paired difference, tau, verdict."""
    cfg, t = results["config"], results["metrics"]["table"]
    parts = [f"MLP {'-'.join(map(str, cfg['hidden']))}, N={cfg['candidates']} candidates, score = val acc after "
             f"{cfg['short_steps']} steps, {cfg['steps']} steps, {len(cfg['seeds'])} seeds"]
    held = True
    for name, e in t.items():
        cells = [f"s={s}: sel {v['selected'][0]:.3f} / rand {v['random'][0]:.3f}"
                 for s, v in e["by_sparsity"].items()]
        p = e["pooled"]
        ci, cci = p["diff_ci"], p["diff_steps_ci"]
        parts.append(f"{name} (dense {e['dense']:.3f}, majority {e['majority']:.3f}): " + ", ".join(cells)
                     + f"; pooled sel-rand {p['diff_selected_random']:+.3f} [95% CI {ci[0]:+.3f}, {ci[1]:+.3f}], "
                       f"steps-to-90% diff {p['diff_steps_to_90']:+.1f} [{cci[0]:+.1f}, {cci[1]:+.1f}], "
                       f"Kendall tau(short score, final) {p['tau_short']:.2f}")
        held &= ci[0] <= 0 and cci[1] >= 0
        if e["dense"] <= e["majority"] + 0.05:
            parts.append(f"{name}: did not learn")
    verdict = ("claim held: Random Search neither better nor faster than one random mask (CIs do not exclude 0 in its favour)" if held else
               "claim did not hold: Random Search differed from a random mask on some set")
    return "; ".join(parts) + f"; {verdict}"
