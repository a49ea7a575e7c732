"""Sinkhorn-Newton-Sparse (P29) vs ott-jax Sinkhorn: iterations and wall time to the same marginal error.

Settings of the paper at reachable sizes: random point clouds in the unit square (squared Euclidean
cost) and W1 / W2 between two digit images viewed as histograms on a pixel grid (sklearn digits,
upsampled bilinearly, with a small floor so that every bin has mass). For each problem and epsilon
both solvers run to the same threshold on ``||P1 - a||_1 + ||P^T1 - b||_1`` in float64, each
compiled first and timed afterwards in this process (minimum of ``repeats`` timings). Ratios
(Sinkhorn / SNS) are reported only where both solvers converged; other rows say "did not
converge". Trivial reference: vanilla Sinkhorn itself (no eps-scaling, momentum or Anderson
acceleration, as in the paper). SNS runs with its defaults: the paper's N1 = 20 Sinkhorn warm-up,
Hessian entries kept by retained mass (1e-3) up to a 20% cap instead of the paper's lambda = 2/n
(see :mod:`generative.ot.sns` for why and for the measured cost of a Newton step).
Paper claim: orders of magnitude fewer iterations, and a wall-time speedup at small epsilon.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from ott.geometry import costs, pointcloud
from ott.problems.linear import linear_problem

from generative.ot import SinkhornNewtonSparse, compare_with_sinkhorn
from sparsejax.data import load_digits

PAPERS = ("P29",)
CLAIM = ("Sinkhorn-Newton-Sparse reaches the same marginal error with orders of magnitude fewer iterations than "
         "Sinkhorn and a wall-time speedup at small epsilon (Fig. 2-3)")

PRESETS = {
    "smoke": {"n_points": 300, "image_size": 16, "epsilons": [0.01, 0.003, 0.001], "threshold": 1e-8,
              "sparsity": 0.2, "mass_tol": 1e-3, "warmup_iterations": 20,
              "problems": ["random", "digits_w1", "digits_w2"], "floor": 1e-3, "repeats": 3},
    "full": {"n_points": 1000, "image_size": 28, "epsilons": [0.03, 0.01, 0.003, 0.001, 0.0003],
             "threshold": 1e-9, "sparsity": 0.2, "mass_tol": 1e-3, "warmup_iterations": 20,
             "problems": ["random", "digits_w1", "digits_w2"], "floor": 1e-3, "repeats": 3},
}


def make_solver(config: dict) -> SinkhornNewtonSparse:
    """SNS from an experiment config (threshold, sparsity cap, mass_tol, warm-up length)."""
    return SinkhornNewtonSparse(threshold=config["threshold"], sparsity=config["sparsity"],
                                mass_tol=config["mass_tol"], max_sinkhorn_iterations=config["warmup_iterations"])


def _ratio_text(r, key):
    return "did not converge" if r[key] is None else f"{r[key]:.1f}x"


def random_problem(n: int, eps: float, seed: int) -> linear_problem.LinearProblem:
    """Uniform weights on n uniform points in [0,1]^2 each side, squared Euclidean cost."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=(n, 2)), rng.uniform(size=(n, 2))
    return linear_problem.LinearProblem(pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=eps))


def digit_histograms(size: int, floor: float, seed: int):
    """Two different digits (classes 2 and 5) as normalized histograms on a ``size x size`` grid."""
    split = load_digits(test_size=0.5, seed=seed)
    imgs = []
    for cls in (2, 5):
        img = np.asarray(split.x_train[split.y_train == cls][0, :, :, 0], np.float64)
        img = np.asarray(jax.image.resize(jnp.asarray(img), (size, size), "linear"))
        img = np.clip(img, 0.0, None) + floor * img.max()
        imgs.append((img / img.sum()).ravel())
    grid = (np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2) + 0.5) / size
    return grid, imgs[0], imgs[1]


def digits_problem(size: int, eps: float, power: int, floor: float, seed: int) -> linear_problem.LinearProblem:
    """W1 (power=1, Euclidean cost) or W2 (power=2, squared Euclidean) between two digit histograms."""
    grid, a, b = digit_histograms(size, floor, seed)
    cost_fn = costs.Euclidean() if power == 1 else costs.SqEuclidean()
    geom = pointcloud.PointCloud(jnp.asarray(grid), jnp.asarray(grid), cost_fn=cost_fn, epsilon=eps)
    return linear_problem.LinearProblem(geom, a=jnp.asarray(a), b=jnp.asarray(b))


def make_problem(name: str, eps: float, config: dict, seed: int):
    """The ott ``LinearProblem`` named ``name`` (random point clouds or digit histograms) at ``eps``."""
    if name == "random":
        return random_problem(config["n_points"], eps, seed)
    if name in ("digits_w1", "digits_w2"):
        return digits_problem(config["image_size"], eps, 1 if name == "digits_w1" else 2, config["floor"], seed)
    raise ValueError(f"unknown problem {name!r}; valid: random, digits_w1, digits_w2")


def run(config: dict, ctx) -> dict:
    """Compare SNS and ott-jax Sinkhorn on every (problem, eps): iterations, time, curves."""
    rows = []
    with jax.enable_x64(True):
        sns = make_solver(config)
        jobs = [(p, e) for p in config["problems"] for e in config["epsilons"]]
        for name, eps in ctx.progress(jobs, desc="problems"):
            prob = make_problem(name, eps, config, ctx.seed)
            res = compare_with_sinkhorn(prob, sns, repeats=config["repeats"])
            rows.append({"problem": name, "epsilon": eps, "n": int(prob.geom.shape[0]), **res})
            ctx.log(f"{name} eps={eps}: Sinkhorn {res['sinkhorn_iters']} it {res['sinkhorn_seconds']:.3f}s | SNS "
                    f"{res['sns_sinkhorn_iters']}+{res['sns_newton_iters']} it {res['sns_seconds']:.3f}s | ratios "
                    f"iters {_ratio_text(res, 'iteration_ratio')} time {_ratio_text(res, 'time_ratio')} (errors "
                    f"{res['sinkhorn_final_error']:.1e}/{res['sns_final_error']:.1e})")
    problems, epsilons = list(config["problems"]), list(config["epsilons"])
    fig, axes = plt.subplots(2, len(problems), figsize=(5 * len(problems), 7), squeeze=False)
    for pi, name in enumerate(problems):
        for ei, eps in enumerate(epsilons):
            row = next(r for r in rows if r["problem"] == name and r["epsilon"] == eps)
            color = plt.cm.viridis(ei / max(len(epsilons) - 1, 1))
            for col, key in ((0, 0), (1, 2)):
                ax = axes[col, pi]
                h = np.asarray(row["sinkhorn_history"])
                s = np.asarray(row["sns_history"])
                if len(h):
                    ax.semilogy(h[:, key], np.maximum(h[:, 1], 1e-16), "--", color=color, label=f"Sinkhorn eps={eps}")
                if len(s):
                    ax.semilogy(s[:, key], np.maximum(s[:, 1], 1e-16), "-", color=color, label=f"SNS eps={eps}")
        axes[0, pi].set_xscale("log"), axes[0, pi].set_xlabel("iteration"), axes[0, pi].set_title(name)
        axes[1, pi].set_xlabel("seconds (after compilation)"), axes[1, pi].set_xscale("log")
        for ax in axes[:, pi]:
            ax.set_ylabel("marginal error (L1)")
            ax.axhline(config["threshold"], color="k", lw=0.5)
    axes[0, 0].legend(fontsize=6)
    ctx.save_figure(fig, "convergence.png")
    conv = [r for r in rows if r["both_converged"]]
    small = [r for r in conv if r["epsilon"] == min(epsilons)]
    table = [{k: r[k] for k in ("problem", "epsilon", "n", "sinkhorn_iters", "sns_sinkhorn_iters", "sns_newton_iters",
                                "iteration_ratio", "time_ratio", "sinkhorn_final_error", "sns_final_error",
                                "sns_converged", "both_converged")} for r in rows]
    return {
        "rows": rows, "table": table,
        "median_iteration_ratio": float(np.median([r["iteration_ratio"] for r in conv])) if conv else None,
        "median_time_ratio_smallest_eps": float(np.median([r["time_ratio"] for r in small])) if small else None,
        "all_sns_converged": all(r["sns_converged"] for r in rows),
        "n_not_converged": len(rows) - len(conv),
    }


def summarize(results: dict) -> str:
    """One README cell: iteration / time ratios per (problem, eps) where both converged."""
    m = results["metrics"]
    cfg = results["config"]
    cells = ", ".join(f"{r['problem']}/eps={r['epsilon']:g}: {_ratio_text(r, 'iteration_ratio')} it, "
                      f"{_ratio_text(r, 'time_ratio')} time" for r in m["rows"])
    ok = m["median_iteration_ratio"] is not None and m["median_iteration_ratio"] >= 10 and m["n_not_converged"] == 0
    verdict = "claim held (>= 10x fewer iterations, all converged)" if ok else "did not hold at this scale"
    return (f"n={cfg['n_points']} clouds / {cfg['image_size']}^2 digit histograms, threshold {cfg['threshold']:g}, "
            f"min of {cfg['repeats']} timings, vs ott-jax Sinkhorn: {cells}; {verdict}")
