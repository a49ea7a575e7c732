"""Fully dynamic submodular maximisation: oracle calls per update and value against offline greedy (P36).

Objectives (:mod:`sparsejax.algorithms.submodular_objectives`): coverage of closed neighbourhoods on
Barabási–Albert graphs (networkx, generated here) for n in ``ns``, and facility location on scikit-learn's
bundled digits (RBF similarity of ``fl_clients`` client images to ``fl_n`` element images). Update streams, fixed
before any algorithm runs (oblivious adversary): a sliding window (elements inserted in random order, each deleted
``window * n`` updates later) and a random mix (insert a random absent element with probability ``p_insert``, else
delete a random live one, ``2n`` updates).

Algorithms (:mod:`sparsejax.algorithms.dynamic_submodular`): the paper's algorithm (our reconstruction), the port of
Lattanzi et al. 2020 it corrects, Sieve-Streaming (Badanidiyuru et al. 2014; insertion-only, the sieves that held
a deleted element re-run from scratch on the surviving stream), recompute-greedy (lazy greedy after every update; its
cost per update is the oracle calls of one recompute, measured at checkpoints) and a random subset of k live
elements (trivial baseline).
Oracle calls are counted by the objectives (one per marginal gain or value; the ``n`` singleton gains that fix the
OPT-guess grid are excluded, and so are the calls of the invariant checks run at every checkpoint).
Metrics: amortised oracle calls per update against n with the log-log slope (polylog: slope near 0; recompute: 1);
``f(S_t) / f(greedy_t)`` at every checkpoint (offline greedy is itself ``>= (1 - 1/e) OPT``), and the ratio to the
brute-forced OPT after every update on tiny instances (claim: ``>= 1/2 - eps``).
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import matplotlib.pyplot as plt

from experiments._stats import cell, fmt_mean_std, loglog_slope
from sparsejax.algorithms import (
    DynamicSubmodular, FacilityLocation, LattanziDynamic, SieveStreamingDynamic, brute_force_opt, graph_coverage,
    lazy_greedy,
)

PAPERS = ("P36",)
CLAIM = ("A fully dynamic (1/2 - eps)-approximation for monotone submodular maximisation under a cardinality "
         "constraint with amortised poly(log n, log k, 1/eps) oracle calls per update")

DYNAMIC = {"dynamic": DynamicSubmodular, "lattanzi": LattanziDynamic, "sieve": SieveStreamingDynamic}
PRESETS = {
    "smoke": {"ns": [256, 512, 1024, 2048], "ba_m": 3, "k": 10, "eps": 0.2, "window": 0.25, "p_insert": 0.6,
              "checkpoints": 16, "fl_n": 512, "fl_clients": 128, "fl_gamma": 0.5, "tiny_n": 12, "tiny_k": 3,
              "tiny_streams": 20, "tiny_steps": 30, "seeds": [0]},
    "full": {"ns": [1024, 2048, 4096, 8192, 16384], "ba_m": 3, "k": 20, "eps": 0.2, "window": 0.25,
             "p_insert": 0.6, "checkpoints": 32, "fl_n": 1797, "fl_clients": 256, "fl_gamma": 0.5, "tiny_n": 14,
             "tiny_k": 3, "tiny_streams": 50, "tiny_steps": 40, "seeds": [0, 1, 2]},
}


def sliding_stream(rng, n: int, window: int) -> list[tuple[str, int]]:
    """Insert all elements in random order; delete each ``window`` updates after its insertion."""
    order, ops = rng.permutation(n), []
    for i, e in enumerate(order):
        ops.append(("insert", int(e)))
        if i >= window:
            ops.append(("delete", int(order[i - window])))
    return ops


def random_stream(rng, n: int, steps: int, p_insert: float) -> list[tuple[str, int]]:
    """Random insertions (absent elements) and deletions (live elements), fixed in advance."""
    live, absent, ops = [], list(range(n)), []
    for _ in range(steps):
        if absent and (not live or rng.random() < p_insert):
            e = absent.pop(int(rng.integers(len(absent))))
            live.append(e)
            ops.append(("insert", e))
        else:
            e = live.pop(int(rng.integers(len(live))))
            absent.append(e)
            ops.append(("delete", e))
    return ops


def replay(make_objective, ops, config, seed) -> dict:
    """Run every algorithm on one stream; calls per update, value ratios to greedy at checkpoints."""
    k, eps = config["k"], config["eps"]
    rng = np.random.default_rng(seed)
    every = max(1, len(ops) // config["checkpoints"])
    out = {}
    ratios = {name: [] for name in (*DYNAMIC, "random")}
    greedy_calls, invariants_ok = [], True
    algs, objs = {}, {}
    for name, cls in DYNAMIC.items():
        objs[name] = make_objective()
        algs[name] = cls(objs[name], k, eps, seed=seed)
        objs[name].reset_calls()
    ref = make_objective()
    live = set()
    excluded = {name: 0 for name in DYNAMIC}
    for t, (op, e) in enumerate(ops, 1):
        (live.add if op == "insert" else live.discard)(e)
        for name, alg in algs.items():
            getattr(alg, op)(e)
        if t % every == 0 and live:
            before = objs["dynamic"].calls
            try:
                algs["dynamic"].check_invariants()
            except AssertionError:
                invariants_ok = False
            excluded["dynamic"] += objs["dynamic"].calls - before
            ref.reset_calls()
            _, g_val = lazy_greedy(ref, sorted(live), k)
            greedy_calls.append(ref.calls)
            for name, alg in algs.items():
                ratios[name].append(alg.solution()[1] / g_val if g_val > 0 else 1.0)
            pick = rng.choice(sorted(live), size=min(k, len(live)), replace=False)
            ratios["random"].append(ref.value(pick) / g_val if g_val > 0 else 1.0)
    for name in DYNAMIC:
        out[name] = {"calls_per_update": (objs[name].calls - excluded[name]) / len(ops),
                     "ratio_min": float(np.min(ratios[name])), "ratio_mean": float(np.mean(ratios[name]))}
    out["recompute_greedy"] = {"calls_per_update": float(np.mean(greedy_calls)), "ratio_min": 1.0, "ratio_mean": 1.0}
    out["random"] = {"ratio_min": float(np.min(ratios["random"])), "ratio_mean": float(np.mean(ratios["random"]))}
    out["invariants_held"] = invariants_ok
    out["updates"] = len(ops)
    out["ratio_trace"] = {name: [float(r) for r in v] for name, v in ratios.items()}
    return out


def tiny_check(config, seed) -> dict:
    """Ratio to brute-forced OPT after every update on tiny BA coverage instances, for every dynamic algorithm."""
    rng = np.random.default_rng(10_000 + seed)
    n, k, eps = config["tiny_n"], config["tiny_k"], config["eps"]
    worst = {name: 1.0 for name in DYNAMIC}
    updates = 0
    for s in range(config["tiny_streams"]):
        g = nx.barabasi_albert_graph(n, 2, seed=int(rng.integers(1 << 30)))
        algs = {name: cls(graph_coverage(g), k, eps, seed=s) for name, cls in DYNAMIC.items()}
        ref = graph_coverage(g)
        for op, e in random_stream(rng, n, config["tiny_steps"], config["p_insert"]):
            for alg in algs.values():
                getattr(alg, op)(e)
            opt = brute_force_opt(ref, sorted(algs["dynamic"].live), k)
            updates += 1
            for name, alg in algs.items():
                worst[name] = min(worst[name], alg.solution()[1] / opt if opt > 0 else 1.0)
    return {"worst_ratio_to_opt": worst, "updates": updates, "bound": 0.5 - eps}


def _digits_objective(config, rng):
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    elems = rng.choice(x.shape[0], size=config["fl_n"], replace=False)
    clients = rng.choice(x.shape[0], size=config["fl_clients"], replace=False)
    d2 = ((x[clients][:, None, :] - x[elems][None, :, :]) ** 2).sum(-1)
    sim = np.exp(-config["fl_gamma"] * d2)
    return lambda: FacilityLocation(sim)


def run(config: dict, ctx) -> dict:
    """Coverage streams for every n and seed, one facility-location stream per seed, tiny brute-force checks."""
    rows = []
    jobs = len(config["seeds"]) * (2 * len(config["ns"]) + 2)
    bar = ctx.progress(total=jobs, desc="streams")
    for seed in config["seeds"]:
        rng = np.random.default_rng(1000 * ctx.seed + seed)
        for n in config["ns"]:
            g = nx.barabasi_albert_graph(n, config["ba_m"], seed=int(rng.integers(1 << 30)))
            for stream in ("sliding", "random"):
                ops = (sliding_stream(rng, n, int(config["window"] * n)) if stream == "sliding"
                       else random_stream(rng, n, 2 * n, config["p_insert"]))
                res = replay(lambda: graph_coverage(g), ops, config, seed)
                rows.append({"objective": "coverage", "n": n, "stream": stream, "seed": seed, **res})
                ctx.log(f"seed {seed} n={n} {stream}: " + ", ".join(
                    f"{a} {res[a]['calls_per_update']:.0f} calls/upd, ratio min {res[a]['ratio_min']:.3f}"
                    for a in (*DYNAMIC, "recompute_greedy")) + f"; invariants {res['invariants_held']}")
                bar.update()
        make = _digits_objective(config, rng)
        ops = sliding_stream(rng, config["fl_n"], int(config["window"] * config["fl_n"]))
        res = replay(make, ops, config, seed)
        rows.append({"objective": "facility_location_digits", "n": config["fl_n"], "stream": "sliding",
                     "seed": seed, **res})
        bar.update()
    tiny = [tiny_check(config, seed) for seed in config["seeds"]]
    bar.update(len(config["seeds"]))
    bar.close()
    slopes = {}
    for stream in ("sliding", "random"):
        cov = [r for r in rows if r["objective"] == "coverage" and r["stream"] == stream]
        slopes[stream] = {}
        for alg in (*DYNAMIC, "recompute_greedy"):
            s, lo, hi = loglog_slope([r["n"] for r in cov], [r[alg]["calls_per_update"] for r in cov])
            slopes[stream][alg] = {"slope": s, "ci": [lo, hi]}
    worst_tiny = {name: min(t["worst_ratio_to_opt"][name] for t in tiny) for name in DYNAMIC}
    ctx.save_figure(plot(rows, config), "dynamic_submodular.png")
    return {"rows": rows, "slopes": slopes, "tiny": tiny, "worst_tiny_ratio": worst_tiny,
            "bound": 0.5 - config["eps"], "invariants_held": all(r["invariants_held"] for r in rows),
            "claim_ratio_held": all(v >= 0.5 - config["eps"] for v in worst_tiny.values())}


def plot(rows, config):
    """Oracle calls per update vs n (log-log) and the value ratio to greedy along the largest sliding stream."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for stream, style in (("sliding", "-"), ("random", "--")):
        cov = [r for r in rows if r["objective"] == "coverage" and r["stream"] == stream and r["seed"] ==
               config["seeds"][0]]
        for alg, colour in zip((*DYNAMIC, "recompute_greedy"), ("C0", "C1", "C3", "C2")):
            axes[0].plot([r["n"] for r in cov], [r[alg]["calls_per_update"] for r in cov], style, marker="o",
                         color=colour, label=f"{alg} ({stream})")
    axes[0].set_xscale("log"), axes[0].set_yscale("log")
    axes[0].set_xlabel("n"), axes[0].set_ylabel("oracle calls per update")
    big = [r for r in rows if r["objective"] == "coverage" and r["stream"] == "sliding"][-1]
    for alg, trace in big["ratio_trace"].items():
        axes[1].plot(trace, marker=".", label=alg)
    axes[1].axhline(0.5 - config["eps"], color="k", ls=":", label="1/2 - eps")
    axes[1].set_xlabel("checkpoint"), axes[1].set_ylabel("f(S_t) / f(greedy_t)")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def summarize(results: dict) -> str:
    """One README cell: scale, calls-per-update slopes beside recompute-greedy, value ratios, the tiny OPT check."""
    m, cfg = results["metrics"], results["config"]
    parts = [f"BA-graph coverage n={cfg['ns'][0]}..{cfg['ns'][-1]}, k={cfg['k']}, eps={cfg['eps']}, sliding window "
             f"{cfg['window']}n + random mix, {len(cfg['seeds'])} seed(s); digits facility location n={cfg['fl_n']}"]
    for stream, fits in m["slopes"].items():
        parts.append(f"calls/update ~ n^slope ({stream}): " + ", ".join(
            f"{a} {v['slope']:.2f} [{v['ci'][0]:.2f},{v['ci'][1]:.2f}]" for a, v in fits.items()))
    big = [r for r in m["rows"] if r["objective"] == "coverage" and r["n"] == cfg["ns"][-1]]
    def per_stream(a):
        return "/".join(fmt_mean_std([r[a]["calls_per_update"] for r in big if r["stream"] == s], 3)
                        for s in ("sliding", "random"))
    parts.append(f"at n={cfg['ns'][-1]}: calls/update (sliding/random) " + ", ".join(
        f"{a} {per_stream(a)}" for a in (*DYNAMIC, "recompute_greedy")) + "; min f/greedy " + ", ".join(
        f"{a} {min(r[a]['ratio_min'] for r in big):.3f}" for a in (*DYNAMIC, "random")))
    cheaper = all(r["dynamic"]["calls_per_update"] < r["recompute_greedy"]["calls_per_update"] for r in big)
    cheapest = {s: min(DYNAMIC, key=lambda a: np.mean([r[a]["calls_per_update"] for r in big if r["stream"] == s]))
                for s in ("sliding", "random")}
    parts.append(("the reconstruction is cheaper than recompute-greedy" if cheaper else
                  "recompute-greedy (lazy) is still cheaper than the reconstruction") + f" at n={cfg['ns'][-1]}; "
                 "cheapest dynamic algorithm (sliding/random): " + "/".join(cheapest.values())
                 + ("; the sieve is deterministic, so a stream that deletes its picks would force a re-scan of the "
                    "live set per update: its low cost here holds for these random-order streams only"
                    if "sieve" in cheapest.values() else ""))
    fl = [r for r in m["rows"] if r["objective"] != "coverage"]
    parts.append("facility location min f/greedy " + ", ".join(
        f"{a} {min(r[a]['ratio_min'] for r in fl):.3f}" for a in (*DYNAMIC, "random")))
    parts.append(f"tiny brute-force OPT (n={cfg['tiny_n']}, k={cfg['tiny_k']}): worst f/OPT " + ", ".join(
        f"{a} {v:.3f}" for a, v in m["worst_tiny_ratio"].items()) + f" vs bound {m['bound']:.2f}: "
        + ("held" if m["claim_ratio_held"] else "NOT held") + f"; invariants held: {m['invariants_held']}")
    parts.append("algorithm is a reconstruction (paper body unavailable); its cost bound is O(k log n / eps), "
                 "polylog in n but not in k")
    return cell(*parts)
