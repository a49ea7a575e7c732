"""TEDDY one-shot degree-based edge sparsification vs random, reverse-TEDDY and an iterative learned
edge mask (UGS-lite), with and without distillation and the l0 weight projection (P32).

Data (:mod:`sparsejax.graphs.synthetic`): a degree-corrected contextual SBM (power-law degrees,
Gaussian class-mean features, 20/20/60 split) and networkx's karate club (its only small real
graph with node labels). Models: 2-layer GCN (official structure, no bias, dropout 0.5) and 2-layer
GIN (official structure), each trained full-batch with Adam (lr 0.01, L2 5e-4), test accuracy at the
best validation epoch (official protocol). The dense model of the same architecture and seed is the
distillation teacher (its best-validation logits).

Edge masks at every level of ``edge_sparsity`` (1 - 0.9^(i+1) schedule values by default): TEDDY
(low degree-score edges pruned), reverse TEDDY (high-score edges pruned), random (uniform scores),
UGS-lite (iterative learned mask, re-learned at each level on the previous level's graph). Every
mask is trained from scratch with each recipe in ``recipes``: ``plain``, ``kd`` (distillation
lambda ``kd_weight``), ``l0`` (projection after every step to the paired weight sparsity),
``kd+l0`` (TEDDY's recipe). Weight sparsity is paired with edge sparsity level by level
(``weight_sparsity``). Baselines: the dense model, the model with no edges (an MLP on the features), random.
All methods share seeds, epochs and data; 3 seeds.
"""
from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std
from sparsejax.graphs import (
    GCN, GIN, dc_csbm, karate_club, l0_keep_count, n_parameters, nested_edge_masks, teddy_scores, train_node_classifiers,
    ugs_masks,
)

PAPERS = ("P32",)
CLAIM = ("One-shot degree-based TEDDY edge sparsification (with distillation and l0 weight projection) matches or "
         "beats iterative graph-lottery-ticket methods (UGS) at equal edge and weight sparsity")

METHODS = ("teddy", "random", "reverse", "ugs")
_COMMON = {"avg_degree": 10.0, "homophily": 0.7, "alpha": 2.5, "n_classes": 5, "feature_signal": 1.0,
           "lr": 0.01, "weight_decay": 5e-4, "kd_weight": 0.1, "ugs_l1": 1e-3, "seeds": [0, 1, 2],
           "methods": list(METHODS), "models": ["gcn", "gin"]}
PRESETS = {
    "smoke": {**_COMMON, "n": 500, "feature_dim": 32, "hidden": 32, "epochs": 100,
              "edge_sparsity": [0.1, 0.3, 0.5, 0.7], "weight_sparsity": [0.1, 0.3, 0.5, 0.7],
              "recipes": ["plain", "kd+l0"], "karate": True},
    "full": {**_COMMON, "n": 2000, "feature_dim": 64, "hidden": 64, "epochs": 200,
             "edge_sparsity": [0.1, 0.271, 0.41, 0.522, 0.613, 0.686],
             "weight_sparsity": [0.1, 0.271, 0.41, 0.522, 0.613, 0.686],
             "recipes": ["plain", "kd", "l0", "kd+l0"], "karate": True},
}


def _masks(method, data, model, cfg, seed_keys):
    """``(n_seeds, L, E)`` keep masks of one edge method."""
    levels = cfg["edge_sparsity"]
    if method == "ugs":
        return ugs_masks(model, data, seed_keys, levels, l1=cfg["ugs_l1"], epochs=cfg["epochs"], lr=cfg["lr"],
                         weight_decay=cfg["weight_decay"])
    out = []
    for k in seed_keys:
        if method == "teddy":
            s = teddy_scores(data.edges, data.n_nodes)
        elif method == "reverse":
            s = -teddy_scores(data.edges, data.n_nodes)
        else:
            s = jax.random.uniform(jax.random.fold_in(k, 7), (data.edges.shape[0],))
        out.append(np.asarray(nested_edge_masks(s, data.edges, levels), np.float32))
    return np.stack(out)


def make_model(kind: str, hidden: int, n_classes: int):
    """The official-structure 2-layer ``"gcn"`` (dropout 0.5) or ``"gin"``."""
    if kind not in ("gcn", "gin"):
        raise ValueError(f"model must be 'gcn' or 'gin', got {kind!r}")
    return GCN(hidden, n_classes, dropout=0.5) if kind == "gcn" else GIN(hidden, n_classes)


def run_dataset(name, data, cfg, ctx, bar, kind: str = "gcn") -> dict:
    """Dense and empty-graph baselines, then every (method, recipe, level, seed) on one graph and model."""
    model = make_model(kind, cfg["hidden"], data.n_classes)
    seeds = cfg["seeds"]
    keys = [jax.random.PRNGKey(1000 * ctx.seed + s) for s in seeds]
    n_e, train = data.edges.shape[0], dict(epochs=cfg["epochs"], lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    dense = train_node_classifiers(model, data, keys, np.ones((len(seeds), n_e)), **train)
    empty = train_node_classifiers(model, data, keys, np.zeros((len(seeds), n_e)), **train)
    total = n_parameters(model, data)
    levels = list(zip(cfg["edge_sparsity"], cfg["weight_sparsity"]))
    rows = []
    for method in cfg["methods"]:
        masks = _masks(method, data, model, cfg, keys)                        # (S, L, E)
        for recipe in cfg["recipes"]:
            kd, l0 = "kd" in recipe, "l0" in recipe
            ew = masks.transpose(1, 0, 2).reshape(-1, n_e)                   # level-major, then seed
            ks = [k for _ in levels for k in keys]
            keep = [l0_keep_count(total, pw) if l0 else total for _, pw in levels for _ in seeds]
            res = train_node_classifiers(model, data, ks, ew, kd_weight=np.full(len(ks), cfg["kd_weight"] if kd else 0.0),
                                         teacher=np.tile(dense["logits"], (len(levels), 1, 1)), l0_keep=keep, **train)
            acc = res["test_acc"].reshape(len(levels), len(seeds))
            dens = res["weight_density"].reshape(len(levels), len(seeds))
            kept = ew.reshape(len(levels), len(seeds), n_e).mean(-1)
            for li, (pe, pw) in enumerate(levels):
                rows.append({"dataset": name, "method": method, "recipe": recipe, "edge_sparsity": pe,
                             "weight_sparsity": pw if l0 else 0.0, "measured_edge_sparsity": float(1 - kept[li].mean()),
                             "measured_weight_density": float(dens[li].mean()), "test_acc": acc[li].tolist(),
                             "mean": float(acc[li].mean()), "std": float(acc[li].std())})
            ctx.log(f"{name} {method}/{recipe}: " + ", ".join(f"{pe:.2f}: {acc[li].mean():.3f}"
                                                               for li, (pe, _) in enumerate(levels)))
            bar.update()
    return {"rows": rows, "dense": dense["test_acc"].tolist(), "no_edges": empty["test_acc"].tolist(),
            "n_edges": int(n_e), "n_nodes": data.n_nodes, "n_params": total,
            "chance": float(np.bincount(data.y[data.test]).max() / data.test.sum())}


def run(config: dict, ctx) -> dict:
    """Both datasets (karate optional), every method and recipe; returns rows, baselines and claims."""
    data = {"csbm": dc_csbm(ctx.seed, n=config["n"], n_classes=config["n_classes"], avg_degree=config["avg_degree"],
                            homophily=config["homophily"], alpha=config["alpha"], feature_dim=config["feature_dim"],
                            feature_signal=config["feature_signal"])}
    if config["karate"]:
        data["karate"] = karate_club(ctx.seed)
    models = config.get("models", ["gcn"])
    bar = ctx.progress(total=len(data) * len(models) * len(config["methods"]) * len(config["recipes"]),
                       desc="edge methods x recipes")
    out = {f"{name}/{kind}": run_dataset(f"{name}/{kind}", g, config, ctx, bar, kind)
           for name, g in data.items() for kind in models}
    bar.close()
    ctx.save_figure(plot(out, config), "teddy.png")
    return {"datasets": out, "claims": _claims(out, config)}


def _claims(out, config) -> dict:
    """Per dataset and recipe: TEDDY's mean accuracy minus UGS-lite's and minus the best other method,
    averaged over levels, and the fraction of levels where TEDDY >= UGS-lite."""
    res = {}
    for name, d in out.items():
        for recipe in config["recipes"]:
            get = {(r["method"], r["edge_sparsity"]): r["mean"] for r in d["rows"] if r["recipe"] == recipe}
            levels = config["edge_sparsity"]
            if "teddy" not in config["methods"] or "ugs" not in config["methods"]:
                continue
            diff = [get[("teddy", p)] - get[("ugs", p)] for p in levels]
            others = [get[("teddy", p)] - max(get[(m, p)] for m in config["methods"] if m != "teddy") for p in levels]
            res[f"{name}/{recipe}"] = {"teddy_minus_ugs": float(np.mean(diff)),
                                       "teddy_ge_ugs_fraction": float(np.mean([x >= 0 for x in diff])),
                                       "teddy_minus_best_other": float(np.mean(others))}
    return res


def plot(out, config):
    """Test accuracy against edge sparsity, one panel per dataset and recipe."""
    names, recipes = list(out), config["recipes"]
    fig, axes = plt.subplots(len(names), len(recipes), figsize=(4 * len(recipes), 3.2 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        for j, recipe in enumerate(recipes):
            ax = axes[i][j]
            for m in config["methods"]:
                rs = [r for r in out[name]["rows"] if r["method"] == m and r["recipe"] == recipe]
                ax.errorbar([r["edge_sparsity"] for r in rs], [r["mean"] for r in rs], [r["std"] for r in rs],
                            marker="o", label=m, capsize=2)
            ax.axhline(np.mean(out[name]["dense"]), color="k", ls="--", label="dense")
            ax.axhline(np.mean(out[name]["no_edges"]), color="gray", ls=":", label="no edges")
            ax.set_title(f"{name} / {recipe}"), ax.set_xlabel("edge sparsity"), ax.set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """One README cell: scale, dense / no-edge baselines, per-method accuracy (mean over levels) per
    recipe, and whether TEDDY matched or beat UGS-lite."""
    m, cfg = results["metrics"], results["config"]
    parts = [f"{' + '.join(k.upper() for k in cfg.get('models', ['gcn']))}, {len(cfg['seeds'])} seeds, {cfg['epochs']} epochs, edge sparsity "
             f"{cfg['edge_sparsity'][0]:.0%}-{cfg['edge_sparsity'][-1]:.0%} (weight sparsity paired under l0)"]
    for name, d in m["datasets"].items():
        txt = [f"{name} (n={d['n_nodes']}, |E|={d['n_edges']}): dense {fmt_mean_std(d['dense'])}, no edges "
               f"{fmt_mean_std(d['no_edges'])}, majority {d['chance']:.2f}"]
        for recipe in cfg["recipes"]:
            means = {meth: np.mean([r["mean"] for r in d["rows"] if r["method"] == meth and r["recipe"] == recipe])
                     for meth in cfg["methods"]}
            top = {meth: [r["mean"] for r in d["rows"] if r["method"] == meth and r["recipe"] == recipe][-1]
                   for meth in cfg["methods"]}
            txt.append(f"{recipe}: " + ", ".join(f"{k} {v:.3f} ({top[k]:.3f} at {cfg['edge_sparsity'][-1]:.0%})"
                                                 for k, v in means.items()))
        parts.append(" ".join(txt))
    verdicts = [f"{k}: TEDDY-UGS {v['teddy_minus_ugs']:+.3f}, >= UGS at {v['teddy_ge_ugs_fraction']:.0%} of levels"
                for k, v in m["claims"].items()]
    ok = [v["teddy_minus_ugs"] >= -0.005 for v in m["claims"].values()]
    parts.append("; ".join(verdicts))
    parts.append(("claim held" if all(ok) else "claim held only in part" if any(ok) else "claim did not hold")
                 + " (TEDDY matches or beats UGS-lite on average, within 0.5 points); mean accuracy over levels, "
                 "in parentheses at the highest level")
    return cell(*parts)
