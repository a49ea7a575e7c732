"""Robust alternating minimisation for matrix completion (P26): time per iteration against rank k,
and final error against the per-regression solver tolerance.

(i) Wall time of one alternating-minimisation iteration (all column then all row regressions, jitted,
median of repeats) on an m × n matrix with observation rate ρ, for k in ``time_ks``: exact solves
(batched Gram + Cholesky, Θ(|Ω|k² + (m+n)k³)) against the sketch-preconditioned CG of
:mod:`sparsejax.sketch.solvers` (Õ(|Ω|k + (m+n)k³)). Fitted log-log slopes in k (bootstrap CI)
are reported beside the theory's 1 (robust) and 2 (exact). (ii) Final relative error
‖M − UVᵀ‖_F/‖M‖_F after ``iters`` iterations on noiseless and noisy rank-``k`` incoherent matrices,
for exact ALS, robust AM at constant tolerances δ and at the geometric schedule, SoftImpute
(λ = ``soft_lambda``·σ₁(P_Ω(M)/ρ)) and the trivial baseline (rank-k SVD of the zero-filled,
rescaled observations, i.e. the initialisation), over ``seeds`` seeds (mean ± std).
Caveat: at these sizes dense batched BLAS-3 Gram formation is cheap, so wall time need not show
the k vs k² separation; the summary says which one was measured.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std, loglog_slope
from sparsejax.recovery.matrix_completion import (
    alternating_minimization, als_half_step, incoherent_low_rank, init_factors, observed_index, relative_error,
    soft_impute,
)
from sparsejax.timing import time_per_call

PAPERS = ("P26",)
CLAIM = ("Alternating minimisation whose regressions are solved only approximately (sketch-preconditioned) "
         "still recovers incoherent low-rank matrices, in Õ(#Ω·k) time instead of Õ(#Ω·k²)")

PRESETS = {
    "smoke": {"m": 300, "n": 300, "rate": 0.3, "time_ks": [2, 4, 8, 16, 32], "time_repeats": 3, "k": 4,
              "iters": 15, "tols": [1e-1, 1e-2, 1e-4, 1e-6], "schedule": [1e-1, 0.5, 1e-6], "noise": [0.0, 0.05],
              "seeds": 3, "soft_lambda": 0.02, "soft_iters": 100, "sketch_factor": 4},
    "full": {"m": 1000, "n": 1000, "rate": 0.3, "time_ks": [2, 4, 8, 16, 32, 64], "time_repeats": 5, "k": 8,
             "iters": 15, "tols": [1e-1, 1e-2, 1e-4, 1e-6], "schedule": [1e-1, 0.5, 1e-6], "noise": [0.0, 0.05],
             "seeds": 3, "soft_lambda": 0.02, "soft_iters": 200, "sketch_factor": 4},
}


def time_iteration(key, config, k: int, solver: str, tol: float = 1e-4) -> float:
    """Median wall time of one full AM iteration (V then U) at rank ``k``."""
    _, mask, obs = incoherent_low_rank(key, config["m"], config["n"], k, config["rate"])
    ci, cv = observed_index(mask)
    ri, rv = observed_index(np.asarray(mask).T)
    U = init_factors(obs, mask, k)
    rows = config["sketch_factor"] * k
    tol = jnp.asarray(tol, U.dtype)

    def iteration(u):
        v = als_half_step(key, u, obs, ci, cv, tol, solver, rows, 50)
        return als_half_step(key, v, obs.T, ri, rv, tol, solver, rows, 50)

    return time_per_call(iteration, U, repeats=config["time_repeats"])


def run(config: dict, ctx) -> dict:
    key = jax.random.PRNGKey(ctx.seed)
    times = []
    for k in ctx.progress(config["time_ks"], desc="time vs k"):
        for solver in ("exact", "sketch"):
            times.append({"k": k, "solver": solver, "seconds": time_iteration(jax.random.fold_in(key, k), config, k,
                                                                               solver)})
    slopes = {s: dict(zip(("slope", "lo", "hi"), loglog_slope(
        [t["k"] for t in times if t["solver"] == s], [t["seconds"] for t in times if t["solver"] == s],
        seed=ctx.seed))) for s in ("exact", "sketch")}
    methods = (["exact"] + [f"sketch_tol{t:g}" for t in config["tols"]]
               + ["sketch_schedule", "soft_impute", "zero_fill_svd"])
    errors = {f"noise{nz:g}": {mth: [] for mth in methods} for nz in config["noise"]}
    histories = {}
    bar = ctx.progress(total=len(config["noise"]) * config["seeds"], desc="error vs tolerance")
    for nz in config["noise"]:
        for s in range(config["seeds"]):
            kk = jax.random.fold_in(key, 10_000 + s)
            M, mask, obs = incoherent_low_rank(kk, config["m"], config["n"], config["k"], config["rate"], nz)
            common = {"k": config["k"], "iters": config["iters"], "M_true": M, "sketch_factor": config["sketch_factor"]}
            res = {"exact": alternating_minimization(kk, obs, mask, solver="exact", **common)}
            for t in config["tols"]:
                res[f"sketch_tol{t:g}"] = alternating_minimization(kk, obs, mask, solver="sketch", tol0=t, decay=1.0,
                                                                   tol_final=t, **common)
            t0, dec, tf = config["schedule"]
            res["sketch_schedule"] = alternating_minimization(kk, obs, mask, solver="sketch", tol0=t0, decay=dec,
                                                              tol_final=tf, **common)
            for mth, (U, V, hist) in res.items():
                errors[f"noise{nz:g}"][mth].append(relative_error(M, U, V))
                if s == 0:
                    histories[f"noise{nz:g}/{mth}"] = hist
            scale = float(jnp.linalg.norm(obs / config["rate"], 2))
            z, hist = soft_impute(obs, mask, config["soft_lambda"] * scale, config["soft_iters"], M_true=M)
            errors[f"noise{nz:g}"]["soft_impute"].append(hist[-1])
            U0 = init_factors(obs, mask, config["k"])
            errors[f"noise{nz:g}"]["zero_fill_svd"].append(
                float(jnp.linalg.norm(M - U0 @ (U0.T @ obs / config["rate"])) / jnp.linalg.norm(M)))
            ctx.log(f"noise {nz} seed {s}: "
                    + ", ".join(f"{k_} {v[-1]:.2e}" for k_, v in errors[f"noise{nz:g}"].items()))
            bar.update()
    bar.close()
    ctx.save_figure(plot(times, histories), "robust_matrix_completion.png")
    return {"times": times, "time_slopes": slopes, "errors": errors, "histories": histories}


def plot(times, histories):
    """Time per iteration against k; error against iteration (first seed)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for s in ("exact", "sketch"):
        ts = [t for t in times if t["solver"] == s]
        axes[0].plot([t["k"] for t in ts], [t["seconds"] for t in ts], marker="o", label=s)
    axes[0].set(xscale="log", yscale="log", xlabel="rank k", ylabel="seconds per AM iteration")
    for name, h in histories.items():
        if name.startswith("noise0/"):
            axes[1].plot(np.arange(1, len(h) + 1), h, label=name.split("/")[1])
    axes[1].set(yscale="log", xlabel="iteration", ylabel="relative error (noiseless)")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def summarize(results: dict) -> str:
    """One README cell: time slopes in k beside 1 and 2, final errors per method and the verdict."""
    m, cfg = results["metrics"], results["config"]
    sl = m["time_slopes"]
    parts = [f"{cfg['m']}x{cfg['n']}, rate {cfg['rate']}, k={cfg['time_ks'][0]}..{cfg['time_ks'][-1]} for timing, "
             f"rank {cfg['k']}, {cfg['iters']} iterations, {cfg['seeds']} seeds",
             f"time per iteration vs k: exact slope {sl['exact']['slope']:.2f} [{sl['exact']['lo']:.2f}, "
             f"{sl['exact']['hi']:.2f}] (theory 2), sketch {sl['sketch']['slope']:.2f} [{sl['sketch']['lo']:.2f}, "
             f"{sl['sketch']['hi']:.2f}] (theory 1)"]
    for nz, errs in m["errors"].items():
        parts.append(f"{nz} final rel. error: " + ", ".join(f"{k} {fmt_mean_std(v, 2)}" for k, v in errs.items()))
    e0 = m["errors"][f"noise{cfg['noise'][0]:g}"]
    tight = f"sketch_tol{min(cfg['tols']):g}"
    match = np.mean(e0[tight]) <= 10 * np.mean(e0["exact"]) + 1e-6
    t_last = {t["solver"]: t["seconds"] for t in m["times"] if t["k"] == cfg["time_ks"][-1]}
    parts.append(f"robust AM at tol {min(cfg['tols']):g} matches exact ALS: {'yes' if match else 'no'}; "
                 f"at k={cfg['time_ks'][-1]} the {'sketch' if t_last['sketch'] < t_last['exact'] else 'exact'} solver "
                 "is faster in wall time; time claim "
                 + ("observed" if t_last["sketch"] < t_last["exact"] and sl["sketch"]["slope"] < sl["exact"]["slope"]
                    else "not observed (batched BLAS-3 Gram + Cholesky is cheap at these sizes; the k^3 QR and CG "
                         "iterations of the sketch solver dominate when |Omega_j| is not >> k^2)"))
    return cell(*parts)
