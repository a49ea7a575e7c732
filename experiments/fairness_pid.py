"""Local vs global fairness in FL via PID (P35): canonical examples, FedAvg audits, AGLFOP fronts.

(i) The three canonical examples of the paper, exact tables: Ŷ = Z with S independent (pure unique
disparity), S = Z = Ŷ (pure redundancy: globally unfair, locally fair), Z = Ŷ xor S (pure masked
disparity: globally fair, locally unfair); each should carry exactly 1 bit in one term.
(ii) Federated scenarios: the official synthetic generator (``synth3``: two Gaussian classes, Z = Y
w.p. alpha = 0.95) with its iid / heterogeneity (0.92) / synergy client splits, and scikit-learn's
diabetes data (Z = sex, client S = age above the median, Y = target above the median; features
without sex). FedAvg logistic regression (JAX) is trained on 70% and audited on the other 30%:
accuracy, I(Z;S), global and local disparity and their PID. Baselines: centralised scikit-learn
logistic regression on the pooled data, and the constant (majority) predictor (all disparities 0).
(iii) AGLFOP on the test distribution P(s, z, y) of every scenario over an eps_global x eps_local
grid (bits; the official grid is linspace(0, 1, 10)): the best accuracy any FL strategy can reach,
and the PID of each optimum. Checks: the identities (Uni + Red = global, Uni + Syn = local),
global - local <= I(Z;S) everywhere, and where local and global fairness disagree.
Deviation: the official code solves AGLFOP with SLSQP from a random start and trains an MLP with
FedAvg in torch on ADULT (not vendored here); here the exact conic program and logistic regression.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from experiments._stats import cell, fmt_mean_std
from sparsejax.algorithms.fair_fl import (
    aglfop, disparities, fedavg_logistic, federated_synthetic, predict_logistic, szy_distribution,
)
from sparsejax.algorithms.pid import pid_broja

PAPERS = ("P35",)
CLAIM = ("Global disparity = Unique + Redundant and local disparity = Unique + Masked (canonical examples: 1 bit "
         "each); local fairness does not imply global fairness under heterogeneity nor vice versa, and AGLFOP "
         "gives the accuracy-global-local fairness Pareto front")

_COMMON = {"n_per_class": 500, "alpha": 0.95, "heterogeneity": 0.92, "rounds": 50, "local_steps": 5, "lr": 0.5,
           "scenarios": ["iid", "heterogeneity", "synergy", "diabetes"]}
PRESETS = {
    "smoke": {**_COMMON, "seeds": [0, 1, 2], "eps_grid": [0.0, 0.05, 0.1, 0.2, 0.5, 1.0]},
    "full": {**_COMMON, "seeds": [0, 1, 2, 3, 4], "eps_grid": [float(e) for e in np.linspace(0, 1, 10)]},
}

_CANONICAL = {
    "unique": [(a, a, b) for a in (0, 1) for b in (0, 1)],
    "redundant": [(0, 0, 0), (1, 1, 1)],
    "masked": [(a ^ b, a, b) for a in (0, 1) for b in (0, 1)],
}


def canonical_tables() -> dict:
    """Exact joints p[z, ŷ, s] of the three canonical examples."""
    out = {}
    for name, triples in _CANONICAL.items():
        p = np.zeros((2, 2, 2))
        for t in triples:
            p[t] += 1.0 / len(triples)
        out[name] = p
    return out


def scenario_data(name: str, seed: int, config: dict):
    """``(x, y, z, s)`` of one scenario (synthetic split or the diabetes clients)."""
    if name == "diabetes":
        data = load_diabetes()
        x = data.data
        z = (x[:, 1] > 0).astype(np.int64)
        s = (x[:, 0] > np.median(x[:, 0])).astype(np.int64)
        y = (data.target > np.median(data.target)).astype(np.int64)
        return np.delete(x, 1, axis=1) * 10.0, y, z, s
    return federated_synthetic(np.random.default_rng(seed), config["n_per_class"], config["alpha"], name,
                               config["heterogeneity"])


def _dis_dict(d):
    return {k: float(v) for k, v in d._asdict().items()}


def audit(name: str, seed: int, config: dict) -> dict:
    """Train FedAvg and the baselines on 70%, return accuracy and disparity PID on the other 30%."""
    x, y, z, s = scenario_data(name, seed, config)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=2 * s + z)
    tr, te = idx_tr, idx_te
    w = fedavg_logistic([(x[tr][s[tr] == k], y[tr][s[tr] == k]) for k in (0, 1)], config["rounds"],
                        config["local_steps"], config["lr"])
    preds = {"fedavg": predict_logistic(w, x[te]),
             "central_logreg": LogisticRegression(max_iter=1000).fit(x[tr], y[tr]).predict(x[te]).astype(np.int64),
             "constant": np.full(te.size, int(np.mean(y[tr]) > 0.5))}
    out = {"scenario": name, "seed": seed, "p_szy": szy_distribution(s[te], z[te], y[te]).tolist()}
    for m, yh in preds.items():
        out[m] = {"accuracy": float(np.mean(yh == y[te])), **_dis_dict(disparities(z[te], yh, s[te]))}
    return out


def front(p_szy, grid) -> list:
    """AGLFOP accuracy and the PID of its optimum at every (eps_global, eps_local) grid point."""
    out = []
    for eg in grid:
        for el in grid:
            res = aglfop(p_szy, eg, el)
            d = disparities(joint=np.transpose(res.q.sum(2), (1, 2, 0)))
            out.append({"eps_global": eg, "eps_local": el, "accuracy": 1 - res.error, **_dis_dict(d)})
    return out


def run(config: dict, ctx) -> dict:
    """Canonical PIDs, FedAvg audits per scenario and seed, AGLFOP fronts on seed 0's test split."""
    canonical = {k: pid_broja(p)._asdict() for k, p in canonical_tables().items()}
    scenarios = config["scenarios"]
    bar = ctx.progress(total=len(scenarios) * (len(config["seeds"]) + 1), desc="audits + fronts")
    audits, fronts, corners = [], {}, {}
    for name in scenarios:
        for seed in config["seeds"]:
            audits.append(audit(name, seed, config))
            bar.update()
        p = np.asarray(audits[-len(config["seeds"])]["p_szy"])
        fronts[name] = front(p, config["eps_grid"])
        corners[name] = {}
        for label, eg, el in (("unconstrained", None, None), ("global_fair", 0.0, None),
                              ("local_fair", None, 0.0), ("both_fair", 0.0, 0.0)):
            res = aglfop(p, eg, el)
            d = disparities(joint=np.transpose(res.q.sum(2), (1, 2, 0)))
            corners[name][label] = {"accuracy": 1 - res.error, **_dis_dict(d)}
        bar.update()
        c = corners[name]
        ctx.log(f"{name}: I(Z;S)={c['unconstrained']['i_z_s']:.3f} acc unconstrained {c['unconstrained']['accuracy']:.3f}"
                f" global-fair {c['global_fair']['accuracy']:.3f} (local {c['global_fair']['local']:.3f}) local-fair "
                f"{c['local_fair']['accuracy']:.3f} (global {c['local_fair']['global_']:.3f}) both "
                f"{c['both_fair']['accuracy']:.3f}")
    bar.close()
    checks = _checks(audits, fronts, corners)
    ctx.save_figure(_plot(fronts, config), "fairness_pid_fronts.png")
    return {"canonical": canonical, "audits": audits, "fronts": fronts, "corners": corners, "checks": checks}


def _checks(audits, fronts, corners) -> dict:
    items = [a[m] for a in audits for m in ("fedavg", "central_logreg", "constant")]
    items += [r for f in fronts.values() for r in f] + [c for cs in corners.values() for c in cs.values()]
    ident = max(max(abs(d["unique"] + d["redundant"] - d["global_"]), abs(d["unique"] + d["masked"] - d["local"]))
                for d in items)
    bound = max(d["global_"] - d["local"] - d["i_z_s"] for d in items)
    return {"max_identity_violation": float(ident), "max_global_minus_local_minus_izs": float(bound),
            "min_pid_term": float(min(min(d["unique"], d["redundant"], d["masked"], d["unique_client"])
                                      for d in items)),
            "local_fair_global_disparity": {k: c["local_fair"]["global_"] for k, c in corners.items()},
            "global_fair_local_disparity": {k: c["global_fair"]["local"] for k, c in corners.items()}}


def _plot(fronts, config):
    grid = config["eps_grid"]
    names = list(fronts)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        acc = np.array([r["accuracy"] for r in fronts[name]]).reshape(len(grid), len(grid))
        im = ax.imshow(acc.T, origin="lower", cmap="viridis", vmin=0.5, vmax=1.0,
                       extent=(-0.5, len(grid) - 0.5, -0.5, len(grid) - 0.5))
        ax.set_xticks(range(len(grid)), [f"{g:g}" for g in grid], fontsize=7)
        ax.set_yticks(range(len(grid)), [f"{g:g}" for g in grid], fontsize=7)
        ax.set(title=f"AGLFOP accuracy: {name}", xlabel="eps global I(Z;Ŷ)", ylabel="eps local I(Z;Ŷ|S)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """README cell: canonical PIDs, FedAvg audit per scenario, AGLFOP corners, identity checks, verdicts."""
    m, cfg = results["metrics"], results["config"]
    canon = m["canonical"]
    term = {"unique": "unique_1", "redundant": "redundant", "masked": "synergistic"}
    parts = ["canonical (bits): " + ", ".join(f"{k} {canon[k][term[k]]:.4f}" for k in term)]
    for name in cfg["scenarios"]:
        a = [x for x in m["audits"] if x["scenario"] == name]
        f = [x["fedavg"] for x in a]
        c = m["corners"][name]
        parts.append(
            f"{name}: I(Z;S) {fmt_mean_std([x['i_z_s'] for x in f], 2)}; FedAvg acc {fmt_mean_std([x['accuracy'] for x in f], 3)}"
            f" (central LR {fmt_mean_std([x['central_logreg']['accuracy'] for x in a], 3)}, constant "
            f"{fmt_mean_std([x['constant']['accuracy'] for x in a], 2)}), global {fmt_mean_std([x['global_'] for x in f], 2)}"
            f" = Uni {fmt_mean_std([x['unique'] for x in f], 2)} + Red {fmt_mean_std([x['redundant'] for x in f], 2)}, "
            f"local {fmt_mean_std([x['local'] for x in f], 2)} (Masked {fmt_mean_std([x['masked'] for x in f], 2)}); "
            f"AGLFOP acc global-fair {c['global_fair']['accuracy']:.3f} (its local {c['global_fair']['local']:.3f}), "
            f"local-fair {c['local_fair']['accuracy']:.3f} (its global {c['local_fair']['global_']:.3f}), both "
            f"{c['both_fair']['accuracy']:.3f}")
    ch = m["checks"]
    canon_ok = all(abs(canon[k][term[k]] - 1) < 1e-5 for k in term)
    het = ch["local_fair_global_disparity"].get("heterogeneity", 0.0) > 0.05
    syn = ch["global_fair_local_disparity"].get("synergy", 0.0) > 0.01
    parts.append(f"PID terms >= {ch['min_pid_term']:.1e} (identities hold by the BROJA construction), max(global-local-I(Z;S)) "
                 f"{ch['max_global_minus_local_minus_izs']:.1e}; canonical 1 bit: {'held' if canon_ok else 'did not hold'}; "
                 f"local-fair but globally unfair under heterogeneity: {'held' if het else 'did not hold'}; globally "
                 f"fair but locally unfair (synergy split): {'held' if syn else 'did not hold'}")
    return cell(*parts)
