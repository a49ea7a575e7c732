"""Benchmark: Sinkhorn-Newton-Sparse (P29) vs ott-jax Sinkhorn, iteration and time ratios at n = 500..4000.

Random point clouds in the unit square (squared Euclidean cost, uniform weights), float64, both
solvers run to the same L1 marginal error, compiled first and timed afterwards in this process.
"""
from __future__ import annotations

import jax
import matplotlib.pyplot as plt

from experiments.sinkhorn_newton_sparse import random_problem
from generative.ot import SinkhornNewtonSparse, compare_with_sinkhorn

PRESETS = {
    "smoke": {"sizes": [200, 400], "epsilons": [0.003], "threshold": 1e-8, "sparsity": 0.05,
              "switch_threshold": 0.05, "repeats": 1},
    "full": {"sizes": [500, 1000, 2000, 4000], "epsilons": [0.01, 0.003, 0.001], "threshold": 1e-8,
             "sparsity": 0.02, "switch_threshold": 0.05, "repeats": 1},
}


def run(config: dict, ctx) -> dict:
    """Time SNS against ott-jax Sinkhorn at each (n, eps) and report the ratios."""
    rows = []
    with jax.enable_x64(True):
        sns = SinkhornNewtonSparse(threshold=config["threshold"], sparsity=config["sparsity"],
                                   switch_threshold=config["switch_threshold"])
        jobs = [(n, e) for n in config["sizes"] for e in config["epsilons"]]
        for n, eps in ctx.progress(jobs, desc="sizes"):
            res = compare_with_sinkhorn(random_problem(n, eps, ctx.seed), sns, repeats=config["repeats"])
            res = {k: v for k, v in res.items() if not k.endswith("history")}
            rows.append({"n": n, "epsilon": eps, **res})
            ctx.log(f"n={n} eps={eps}: iters {res['sinkhorn_iters']} vs {res['sns_sinkhorn_iters']}+"
                    f"{res['sns_newton_iters']} ({res['iteration_ratio']:.1f}x), time {res['sinkhorn_seconds']:.2f}s vs "
                    f"{res['sns_seconds']:.2f}s ({res['time_ratio']:.2f}x), SNS converged {res['sns_converged']}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for eps in config["epsilons"]:
        sub = [r for r in rows if r["epsilon"] == eps]
        axes[0].plot([r["n"] for r in sub], [r["iteration_ratio"] for r in sub], "o-", label=f"eps={eps}")
        axes[1].plot([r["n"] for r in sub], [r["time_ratio"] for r in sub], "o-", label=f"eps={eps}")
    for ax, title in zip(axes, ("iterations: Sinkhorn / SNS", "wall time: Sinkhorn / SNS")):
        ax.set_xscale("log"), ax.set_yscale("log"), ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xlabel("n"), ax.set_title(title), ax.legend()
    ctx.save_figure(fig, "bench_sns.png")
    return {"rows": rows, "max_time_ratio": max(r["time_ratio"] for r in rows),
            "min_iteration_ratio": min(r["iteration_ratio"] for r in rows)}
