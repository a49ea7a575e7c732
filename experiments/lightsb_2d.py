"""LightSB (P25) 2-D toy: Gaussian -> Swiss roll / moons at several epsilon, samples and SDE trajectories.

Paper claim: the light solver fits these bridges in about a minute on CPU. We train one LightSB per
(target, epsilon), report the training wall time and the Sinkhorn divergence (ott-jax) between
generated and target samples, and plot mapped samples and Euler-Maruyama trajectories.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from ott.tools.sinkhorn_divergence import sinkdiv
from sklearn.datasets import make_moons, make_swiss_roll

from generative import lightsb

PAPERS = ("P25",)
CLAIM = "LightSB fits 2-D Gaussian -> Swiss-roll bridges in about a minute on CPU, for several epsilon (Fig. 2)"

PRESETS = {
    "smoke": {"targets": ["swiss_roll", "moons"], "epsilons": [0.1, 0.01], "n_components": 64, "steps": 1000,
              "batch_size": 128, "learning_rate": 1e-2, "n_train": 4000, "n_eval": 600, "n_sde_steps": 50},
    "full": {"targets": ["swiss_roll", "moons"], "epsilons": [0.1, 0.01, 0.002], "n_components": 500,
             "steps": 10000, "batch_size": 128, "learning_rate": 1e-3, "n_train": 20000, "n_eval": 2000,
             "n_sde_steps": 100},
}


def target_samples(name: str, n: int, seed: int) -> np.ndarray:
    """2-D target samples: the paper's Swiss roll (x, z coordinates / 7.5) or two moons (centred)."""
    if name == "swiss_roll":
        pts = make_swiss_roll(n, noise=0.8, random_state=seed)[0][:, [0, 2]] / 7.5
    elif name == "moons":
        pts = make_moons(n, noise=0.05, random_state=seed)[0] * 1.5 - np.array([0.75, 0.25])
    else:
        raise ValueError(f"unknown target {name!r}; valid: swiss_roll, moons")
    return pts.astype(np.float32)


def run(config: dict, ctx) -> dict:
    """Fit LightSB on each 2-D toy pair and eps; plot samples and SDE trajectories."""
    rng = np.random.default_rng(ctx.seed)
    key = jax.random.key(ctx.seed)
    rows = []
    targets, epsilons = list(config["targets"]), list(config["epsilons"])
    fig, axes = plt.subplots(len(targets), 2 * len(epsilons), figsize=(4 * 2 * len(epsilons), 4 * len(targets)),
                             squeeze=False)
    for ti, name in enumerate(targets):
        x1 = target_samples(name, config["n_train"], ctx.seed)
        x0 = rng.normal(size=(config["n_train"], 2)).astype(np.float32)
        y_eval = target_samples(name, config["n_eval"], ctx.seed + 1)
        x_eval = rng.normal(size=(config["n_eval"], 2)).astype(np.float32)
        for ei, eps in enumerate(epsilons):
            key, k_fit, k_plan, k_sde = jax.random.split(key, 4)
            start = time.perf_counter()
            params, losses = lightsb.fit(
                k_fit, x0, x1, epsilon=eps, n_components=config["n_components"], steps=config["steps"],
                batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                chunk=min(500, config["steps"]), return_losses=True,
                progress=lambda it, **kw: ctx.progress(it, **{**kw, "desc": f"{name} eps={eps}"}),
            )
            jax.block_until_ready(params.r)
            fit_s = time.perf_counter() - start
            mapped = lightsb.sample_plan(k_plan, params, x_eval, 1)[:, 0]
            paths = lightsb.sample_sde(k_sde, params, x_eval[:300], config["n_sde_steps"])
            div_plan = float(sinkdiv(mapped, jnp.asarray(y_eval), epsilon=1e-2)[0])
            div_sde = float(sinkdiv(paths[:, -1], jnp.asarray(y_eval[:300]), epsilon=1e-2)[0])
            div_source = float(sinkdiv(jnp.asarray(x_eval), jnp.asarray(y_eval), epsilon=1e-2)[0])
            rows.append({"target": name, "epsilon": eps, "fit_seconds": fit_s, "final_loss": float(losses[-100:].mean()),
                         "sinkdiv_plan_vs_target": div_plan, "sinkdiv_sde_vs_target": div_sde,
                         "sinkdiv_source_vs_target": div_source})
            ctx.log(f"{name} eps={eps}: fit {fit_s:.1f}s, sinkdiv plan {div_plan:.4f} sde {div_sde:.4f} "
                    f"(source {div_source:.4f})")
            ax = axes[ti, 2 * ei]
            ax.scatter(*y_eval.T, s=2, c="tab:orange", alpha=0.4, label="target")
            ax.scatter(*np.asarray(mapped).T, s=2, c="tab:blue", alpha=0.4, label="LightSB y|x")
            ax.set_title(f"{name}, eps={eps}: samples")
            ax.legend(loc="upper right", markerscale=4, fontsize=7)
            ax = axes[ti, 2 * ei + 1]
            p = np.asarray(paths)
            for traj in p[:40]:
                ax.plot(traj[:, 0], traj[:, 1], lw=0.6, c="tab:gray", alpha=0.7)
            ax.scatter(*p[:, 0].T, s=3, c="tab:green", label="x ~ p0")
            ax.scatter(*p[:, -1].T, s=3, c="tab:red", label="SDE end")
            ax.set_title(f"{name}, eps={eps}: trajectories")
            ax.legend(loc="upper right", markerscale=3, fontsize=7)
    for ax in axes.ravel():
        ax.set_xlim(-3, 3), ax.set_ylim(-3, 3), ax.set_aspect("equal")
    ctx.save_figure(fig, "lightsb_2d.png")
    return {"rows": rows, "max_fit_seconds": max(r["fit_seconds"] for r in rows),
            "all_plans_closer_than_source": all(r["sinkdiv_plan_vs_target"] < r["sinkdiv_source_vs_target"] for r in rows)}


def summarize(results: dict) -> str:
    """One README cell: fit time and Sinkhorn divergence of plan samples vs the source-as-prediction baseline."""
    rows = results["metrics"]["rows"]
    cells = ", ".join(f"{r['target']}/eps={r['epsilon']:g}: {r['sinkdiv_plan_vs_target']:.3f} "
                      f"(source {r['sinkdiv_source_vs_target']:.3f}, {r['fit_seconds']:.0f}s)" for r in rows)
    ok = all(r["sinkdiv_plan_vs_target"] < r["sinkdiv_source_vs_target"] for r in rows)
    fast = max(r["fit_seconds"] for r in rows) < 120
    verdict = "claim held" if ok and fast else ("did not learn" if not ok else "did not hold (slower than 2 min)")
    return (f"{results['config']['steps']} steps, K={results['config']['n_components']}, seed {results.get('seed', 0)}: "
            f"Sinkhorn divergence to target {cells}; {verdict}")
