"""SPE (P45): out-of-distribution cycle counting (larger graphs, perturbed edges) and PE stability.

Huang et al., "On the Stability of Expressive Positional Encodings for Graph Neural Networks",
Sec. 3.2 / 5 (stability implies better generalization under domain shift). GIN + {no PE, LapPE,
SignNet, SPE} are trained to count 3..6-cycles on small random networkx graphs and tested on (a)
the same distribution, (b) the same test graphs with a fraction of edges removed and as many
added (targets recomputed), for several fractions, and (c) larger graphs with the same average
degree. Errors are MAE / train-target std averaged over cycle lengths; degradation = shifted /
in-distribution error. We also measure the trained PE's relative sensitivity
(||PE(G') - PE(G)|| / ||PE(G)||) / (||L(G') - L(G)|| / ||L(G)||) on the perturbed graphs.
Paper claim: SPE's error degrades least. Time per training step is reported for every method.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.spe_substructure_counting import LENGTHS, train_gin  # noqa: E402
from geometry.spe import perturb_edges, sample_graphs  # noqa: E402
from geometry.spe.training import cycle_count_dataset, pe_sensitivity, predict  # noqa: E402


PRESETS = {
    "smoke": {
        "methods": ["none", "lap", "signnet", "spe"], "n_train": 320, "n_test": 128,
        "n_min": 8, "n_max": 14, "large_n_min": 20, "large_n_max": 28, "avg_degree": 3.0,
        "perturb_fracs": [0.05, 0.1, 0.2], "spe_full_spectrum": True, "spe_rho_pool": "sum",
        "hidden": 32, "pe_dim": 16, "num_layers": 3,
        "steps": 300, "batch_size": 32, "lr": 2e-3, "ckpt_every": 1000,
    },
    "full": {
        "methods": ["none", "lap", "signnet", "spe"], "n_train": 3000, "n_test": 1000,
        "n_min": 10, "n_max": 20, "large_n_min": 30, "large_n_max": 40, "avg_degree": 3.0,
        "perturb_fracs": [0.02, 0.05, 0.1, 0.2, 0.3], "spe_full_spectrum": True, "spe_rho_pool": "sum",
        "hidden": 64, "pe_dim": 32, "num_layers": 4,
        "steps": 4000, "batch_size": 64, "lr": 1e-3, "ckpt_every": 500,
    },
}


def _test_sets(config, rng, test_graphs):
    """Named (graphs, n_pad) test sets: in-distribution, perturbed copies, larger graphs."""
    n_max = config["n_max"]
    sets = {"id": (test_graphs, n_max)}
    for frac in config["perturb_fracs"]:
        sets[f"perturbed_{frac:g}"] = ([perturb_edges(g, frac, rng) for g in test_graphs], n_max)
    large = sample_graphs(config["n_test"], (config["large_n_min"], config["large_n_max"]), rng,
                          avg_degree=config["avg_degree"])
    sets["larger"] = (large, config["large_n_max"])
    return sets


def _plot(rows, set_names, fracs, ctx):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    width = 0.8 / len(rows)
    x = np.arange(len(set_names))
    for i, row in enumerate(rows):
        axes[0].bar(x + i * width, [row[f"nmae_{s}"] for s in set_names], width, label=row["method"])
        axes[1].plot([0.0] + fracs, [row["nmae_id"]] + [row[f"nmae_perturbed_{f:g}"] for f in fracs],
                     "o-", label=row["method"])
    axes[0].set_xticks(x + width * (len(rows) - 1) / 2, set_names, rotation=20)
    axes[0].set_ylabel("MAE / train std (mean over 3..6-cycles)")
    axes[0].set_title("test error per distribution")
    axes[1].set_xlabel("fraction of edges rewired")
    axes[1].set_title("error vs edge perturbation")
    sens = [(r["method"], r["pe_sensitivity_median"]) for r in rows if r["method"] != "none"]
    axes[2].bar([m for m, _ in sens], [v for _, v in sens])
    axes[2].set_yscale("log")
    axes[2].set_title("relative PE change / relative Laplacian change (median)")
    for ax in axes[:2]:
        ax.legend()
    ctx.save_figure(fig, "ood_stability.png")


def run(config: dict, ctx) -> dict:
    """Train GIN + each PE in-distribution, then evaluate on perturbed and larger graphs."""
    rng = np.random.default_rng(ctx.seed)
    n_max = config["n_max"]
    graphs = sample_graphs(config["n_train"] + config["n_test"], (config["n_min"], n_max), rng,
                           avg_degree=config["avg_degree"])
    train = cycle_count_dataset(graphs[: config["n_train"]], n_max, n_max, LENGTHS)
    raw_sets = _test_sets(config, rng, graphs[config["n_train"]:])
    sets = {name: cycle_count_dataset(gs, n_pad, n_max, LENGTHS) for name, (gs, n_pad) in raw_sets.items()}
    # LapPE / SignNet need exactly n_max eigenvectors; SPE takes any number (phi is elementwise,
    # rho sums over columns), so on larger graphs it may use the full spectrum.
    full_sets = {name: cycle_count_dataset(gs, n_pad, n_pad, LENGTHS) if n_pad > n_max else sets[name]
                 for name, (gs, n_pad) in raw_sets.items()}
    scale = np.asarray(train.targets).std(0)
    set_names = list(sets)
    ctx.log("mean target counts: " + ", ".join(
        f"{s}={np.asarray(d.targets).mean(0).round(1).tolist()}" for s, d in sets.items()))
    rows = []
    for method in config["methods"]:
        extra = {"rho_pool": config["spe_rho_pool"]} if method == "spe" else {}
        model, params, info = train_gin(method, config, train, ctx, **extra)
        row = {"method": method, "ms_per_step": info["ms_per_step"], "final_train_loss": info["final_loss"]}
        eval_sets = full_sets if method == "spe" and config["spe_full_spectrum"] else sets
        for name, data in eval_sets.items():
            pred = predict(model, params, data.spectra, info["mean"], info["std"])
            err = np.abs(pred - np.asarray(data.targets)).mean(0) / scale
            row[f"nmae_{name}"] = float(err.mean())
            row.update({f"nmae_{name}_c{c}": float(e) for c, e in zip(LENGTHS, err)})
        for name in set_names[1:]:
            row[f"degradation_{name}"] = row[f"nmae_{name}"] / row["nmae_id"]
        sens = pe_sensitivity(model, params, sets["id"].spectra,
                              sets[f"perturbed_{config['perturb_fracs'][0]:g}"].spectra)
        row["pe_sensitivity_median"] = float(np.median(sens))
        rows.append(row)
        ctx.log(f"{method:8s} " + " ".join(f"{s}={row[f'nmae_{s}']:.3f}" for s in set_names)
                + f"  PE sensitivity {row['pe_sensitivity_median']:.3g}  {info['ms_per_step']:.1f} ms/step")
    _plot(rows, set_names, list(config["perturb_fracs"]), ctx)
    degr = {s: min(rows, key=lambda r: r[f"degradation_{s}"])["method"] for s in set_names[1:]}
    return {"rows": rows, "test_sets": set_names, "least_degradation": degr,
            "train_target_std": scale.tolist()}
