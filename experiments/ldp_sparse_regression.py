"""Non-interactive LDP sparse linear regression: l2 error against n, d and eps, with and without public
unlabelled covariates, beside LDP-IHT and non-private Lasso (P10).

Data (:func:`sparsejax.recovery.sparse_regression_data`): Rademacher covariates (so ``tau_x = 1`` truncates
nothing), a k-sparse unit-norm theta, label noise 0.1, labels truncated at ``tau_y``. Users are drawn in
chunks; only their clean sufficient statistics are kept, and the sum of their Gaussian noises is drawn
once (exact in law, :func:`sparsejax.recovery.privatize`). Estimators: NLDP (private covariance and
cross term, top-k thresholding of ``Sigma_bar^-1 c^``), NLDP with ``n`` public unlabelled covariates (the
whole budget on the cross term), LDP-IHT (sequentially interactive baseline, ``ceil(log2 n)`` groups;
n- and eps-sweeps, up to ``iht_max_n`` users since it keeps them in memory), non-private Lasso
(scikit-learn, ``alpha = 0.1 sqrt(2 log d / m)``, on the first ``m = min(n, chunk)`` users only, to bound
memory) and the zero estimator (error ``||theta|| = 1``). ``delta`` is fixed (not ``n^-1.1``) so the n-slope
is not bent by ``log(1/delta)``. Record with one BLAS thread (``OMP_NUM_THREADS=1``) on a shared machine.
Fitted log-log slopes (bootstrap CIs) sit beside the theory: n^-1/2, eps^-1, and in d the NLDP upper bound
d^1 (``d sqrt(k) / (sqrt(n) eps)``), the public-data bound d^1/2 and the lower bound d^1/2
(``sqrt(d k log d)``); the public-data gain ``err(NLDP) / err(public)`` should grow like d^1/2.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Lasso

from experiments._stats import cell, loglog_slope
from sparsejax.recovery import closed_form_estimate, ldp_iht, privatize, sparse_regression_data, user_sums

PAPERS = ("P10",)
CLAIM = ("the non-interactive LDP estimator's l2 error scales as d sqrt(k) / (sqrt(n) eps), and public unlabelled "
         "covariates improve it by a factor of order sqrt(d)")

_COMMON = {"k": 4, "delta": 1e-6, "tau_x": 1.0, "tau_y": 3.0, "noise_std": 0.1, "eig_floor": 0.1, "chunk": 200_000,
           "iht_lr": 0.5}
PRESETS = {
    "smoke": {**_COMMON, "seeds": 3, "d": 16, "eps": 8.0, "n": 800_000,
              "n_grid": [200_000, 400_000, 800_000, 1_600_000, 3_200_000, 6_400_000], "eps_grid": [2.0, 4.0, 8.0, 16.0],
              "d_grid": [8, 16, 32], "n_for_d": 800_000, "eps_for_d": 16.0, "iht_max_n": 1_600_000},
    "full": {**_COMMON, "seeds": 10, "d": 32, "eps": 4.0, "n": 6_400_000,
             "n_grid": [400_000, 800_000, 1_600_000, 3_200_000, 6_400_000, 12_800_000],
             "eps_grid": [1.0, 2.0, 4.0, 8.0, 16.0], "d_grid": [8, 16, 32, 64], "n_for_d": 12_800_000, "eps_for_d": 8.0,
             "iht_max_n": 3_200_000},
}
METHODS = ("nldp", "nldp_public", "ldp_iht", "lasso")


def _trial(rng, n, d, eps, config, with_iht: bool) -> dict:
    """All estimators on one draw of ``n`` users (and ``n`` public unlabelled covariates); l2 errors."""
    k, tx, ty = config["k"], config["tau_x"], config["tau_y"]
    theta, sxx, sxy, pub = None, np.zeros((d, d)), np.zeros(d), np.zeros((d, d))
    keep_iht = with_iht and n <= config["iht_max_n"]
    parts = []
    for start in range(0, n, config["chunk"]):
        m = min(config["chunk"], n - start)
        x, y, theta = sparse_regression_data(rng, m, d, k, config["noise_std"], theta=theta)
        a, b, _ = user_sums(x, y, tx, ty)
        sxx, sxy = sxx + a, sxy + b
        xp = sparse_regression_data(rng, m, d, k, theta=theta)[0].astype(np.float64)
        pub += xp.T @ xp
        if keep_iht or not parts:
            parts.append((x, y))
    out = {}
    sig, c = privatize(sxx, sxy, n, d, eps, config["delta"], tx, ty, rng)
    out["nldp"] = closed_form_estimate(sig, c, k=k, eig_floor=config["eig_floor"])
    _, c_pub = privatize(sxx, sxy, n, d, eps, config["delta"], tx, ty, rng, public=True)
    out["nldp_public"] = closed_form_estimate(pub / n, c_pub, k=k, eig_floor=config["eig_floor"])
    x0, y0 = parts[0]
    out["lasso"] = Lasso(alpha=0.1 * math.sqrt(2 * math.log(d) / x0.shape[0]), fit_intercept=False).fit(x0, y0).coef_
    if keep_iht:
        x_all = np.concatenate([q[0] for q in parts])
        y_all = np.concatenate([q[1] for q in parts])
        out["ldp_iht"] = ldp_iht(x_all, y_all, eps, config["delta"], k, tx, ty, rng, lr=config["iht_lr"])
    return {name: float(np.linalg.norm(est - theta)) for name, est in out.items()}


def _sweep(name, values, rng, config, bar, with_iht) -> list:
    rows = []
    for v in values:
        n = v if name == "n" else (config["n_for_d"] if name == "d" else config["n"])
        d = v if name == "d" else config["d"]
        eps = v if name == "eps" else (config["eps_for_d"] if name == "d" else config["eps"])
        for s in range(config["seeds"]):
            errs = _trial(rng, int(n), int(d), float(eps), config, with_iht)
            rows.append({"sweep": name, "value": v, "seed": s, "n": int(n), "d": int(d), "eps": float(eps), **errs})
            bar.update()
    return rows


def _mean(rows, sweep, method):
    vals = sorted({r["value"] for r in rows if r["sweep"] == sweep and method in r})
    return vals, [float(np.mean([r[method] for r in rows if r["sweep"] == sweep and r["value"] == v])) for v in vals]


def run(config: dict, ctx) -> dict:
    """Run the n-, eps- and d-sweeps and fit the log-log slopes."""
    rng = np.random.default_rng(ctx.seed)
    total = config["seeds"] * (len(config["n_grid"]) + len(config["eps_grid"]) + len(config["d_grid"]))
    bar = ctx.progress(total=total, desc="LDP trials")
    rows = (_sweep("n", config["n_grid"], rng, config, bar, True) + _sweep("eps", config["eps_grid"], rng, config, bar, True)
            + _sweep("d", config["d_grid"], rng, config, bar, False))
    bar.close()
    slopes = {}
    for sweep in ("n", "eps", "d"):
        for method in METHODS:
            have = [r for r in rows if r["sweep"] == sweep and method in r]
            if len({r["value"] for r in have}) < 3:
                continue
            xs, ys = [r["value"] for r in have], [r[method] for r in have]
            s, lo, hi = loglog_slope(xs, ys, seed=ctx.seed)
            slopes[f"{method}_vs_{sweep}"] = {"slope": s, "ci95": [lo, hi]}
    d_rows = [r for r in rows if r["sweep"] == "d"]
    gain = loglog_slope([r["value"] for r in d_rows], [r["nldp"] / r["nldp_public"] for r in d_rows], seed=ctx.seed)
    slopes["public_gain_vs_d"] = {"slope": gain[0], "ci95": [gain[1], gain[2]]}
    means = {f"{m}_vs_{s}": dict(zip(*[list(map(float, t)) for t in _mean(rows, s, m)]))
             for s in ("n", "eps", "d") for m in METHODS if any(m in r for r in rows if r["sweep"] == s)}
    ctx.log("slopes: " + ", ".join(f"{k} {v['slope']:.2f}" for k, v in slopes.items()))
    ctx.save_figure(plot(rows, config), "ldp_sparse_regression.png")
    theory = {"n": -0.5, "eps": -1.0, "d_upper": 1.0, "d_public": 0.5, "d_lower": 0.5, "public_gain_vs_d": 0.5}
    return {"rows": rows, "slopes": slopes, "mean_error": means, "theory_exponents": theory,
            "zero_estimator_error": 1.0}


def plot(rows, config):
    """Mean l2 error against n, eps and d (log-log) with rate lines anchored at the first NLDP point."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, sweep, rates in zip(axes, ("n", "eps", "d"),
                                ({"upper/lower n^-1/2": -0.5}, {"upper/lower eps^-1": -1.0},
                                 {"NLDP upper d^1": 1.0, "public / lower ~d^1/2": 0.5})):
        for m in METHODS:
            if any(m in r for r in rows if r["sweep"] == sweep):
                xs, ys = _mean(rows, sweep, m)
                ax.loglog(xs, ys, "o-", label=m)
        xs, ys = _mean(rows, sweep, "nldp")
        for label, e in rates.items():
            ax.loglog(xs, [ys[0] * (x / xs[0]) ** e for x in xs], "--", label=label)
        ax.axhline(1.0, color="grey", lw=0.8, label="zero estimator")
        ax.set_xlabel(sweep)
        ax.set_ylabel("l2 error")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """Fitted slopes beside theory and the public-data gain; verdict per claim."""
    m, c = results["metrics"], results["config"]
    s = m["slopes"]

    def f(key):
        v = s[key]
        return f"{v['slope']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]"

    def inside(key, target):
        return s[key]["ci95"][0] <= target <= s[key]["ci95"][1]

    e_n = m["mean_error"]["nldp_vs_n"]
    top = max(e_n, key=float)
    iht = m["mean_error"]["ldp_iht_vs_n"]
    top_iht = max(iht, key=float)
    verdict = [f"n-rate {'held' if inside('nldp_vs_n', -0.5) else 'did not hold'}",
               f"eps-rate {'held' if inside('nldp_vs_eps', -1.0) else 'did not hold'}",
               f"d-rate (<= d^1) {'held' if s['nldp_vs_d']['ci95'][0] <= 1.0 else 'did not hold'}",
               f"public gain ~d^1/2 {'held' if inside('public_gain_vs_d', 0.5) else 'did not hold'}"]
    return cell(f"d={c['d']}, eps={c['eps']:g}, k={c['k']}, n<={max(c['n_grid']):.1e}; d-sweep {c['d_grid']} at "
                f"n={c['n_for_d']:.1e}, eps={c['eps_for_d']:g}; {c['seeds']} seeds, delta={c['delta']:g}",
                f"NLDP slope vs n {f('nldp_vs_n')} (theory -0.5), vs eps {f('nldp_vs_eps')} (-1), vs d "
                f"{f('nldp_vs_d')} (upper 1, lower 0.5); public slope vs d {f('nldp_public_vs_d')} (0.5); "
                f"public gain vs d {f('public_gain_vs_d')} (0.5); LDP-IHT vs n {f('ldp_iht_vs_n')}",
                f"at n={float(top):.1e}: NLDP {e_n[top]:.3f}, public {m['mean_error']['nldp_public_vs_n'][top]:.3f}, "
                f"Lasso {m['mean_error']['lasso_vs_n'][top]:.4f}, zero 1.0; at n={float(top_iht):.1e}: NLDP "
                f"{e_n[top_iht]:.3f}, LDP-IHT {iht[top_iht]:.3f}", "; ".join(verdict))
