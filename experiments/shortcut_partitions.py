"""Shortcut partitions on planar, bounded-treewidth and expander graphs (P16, arXiv 2308.00555).

For every graph family (grid with U[1, 2] weights, Delaunay triangulation, thinned random planar graph,
path-like random 3-tree, random 4-regular expander as the negative control), size n and eps, the
reconstructed cop-decomposition shortcut partition (:mod:`geometry.metric.partition`) is measured
exactly: the max strong diameter over eps*Delta (bound 1 by construction), and the hop ratio -- over all
vertex pairs, the fewest clusters a u-v path meets divided by ceil(d(u,v)/(eps*Delta)), i.e. the empirical
eps*h of the paper's low-hop property (bounded by 2^{O(r log r)}, independent of n and eps, on
K_r-minor-free graphs). The cop-decomposition lemma is checked directly: the largest number of earlier
supernodes adjacent to one domain (<= r-2: <= 3 for planar and treewidth-3 graphs).

Baselines with the same strong-diameter bound: Voronoi cells of a greedy eps*Delta/2-net (random order),
and the trivial singleton partition (every vertex its own cluster). Growth in n is the log-log slope (with a
bootstrap CI over seeds) of the hop ratio against n at each eps.
At n = ``cover_n`` the simplified single-scale cluster-centre tree cover / oracle (:mod:`geometry.metric.cover`,
one shortest-path tree per cluster centre) is compared with the same number of random roots: max additive error
over eps*Delta (bound 2 for the cluster-centre cover) and max stretch over pairs at distance >= Delta/4.
Deviations: the construction is reconstructed (no buffer step, our constants: expansion radius and segment
length eps*Delta/4); the paper's multi-scale (1+eps) tree cover with O(1) trees, its linear-space oracle and
Steiner point removal are not implemented.
"""
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std, loglog_slope
from geometry.graphs import all_pairs_distances, graph_diameter
from geometry.metric import (
    center_cover, make_graph, net_voronoi_partition, partition_report, random_center_cover, shortcut_partition,
)

PAPERS = ("P16",)
CLAIM = ("K_r-minor-free (planar) graphs admit partitions into clusters of strong diameter <= eps*Delta such that "
         "any u, v are joined by a path meeting O_r(ceil(d(u,v)/(eps*Delta))) clusters; expanders do not")

_FAMILIES = ["grid", "delaunay", "random_planar", "3-tree", "expander"]
PRESETS = {
    "smoke": {"families": _FAMILIES, "ns": [144, 400, 1024], "eps": [0.5, 0.25, 0.125], "seeds": [0, 1, 2],
              "cover_n": 400},
    "full": {"families": _FAMILIES, "ns": [256, 1024, 4096], "eps": [0.5, 0.25, 0.125, 0.0625],
             "seeds": [0, 1, 2], "cover_n": 1024},
}
MINOR_FREE_COPS = {"grid": 3, "delaunay": 3, "random_planar": 3, "3-tree": 3}


def _measure(adj, dist, delta, eps, seed):
    t0 = time.perf_counter()
    labels, cop = shortcut_partition(adj, eps, diameter=delta)
    build = time.perf_counter() - t0
    rep = partition_report(adj, labels, eps, delta, dist)
    rep.update(max_cops=cop.max_cops, n_supernodes=cop.n_supernodes, build_s=build,
               singleton_frac=float(np.mean(np.bincount(labels) == 1)))
    net = partition_report(adj, net_voronoi_partition(adj, eps * delta / 2, seed=seed), eps, delta, dist)
    single = partition_report(adj, np.arange(adj.shape[0]), eps, delta, dist)
    return rep, net, single["hop_ratio_max"], labels


def _oracle_distortion(cover, dist, eps, delta):
    """Max additive error / (eps*Delta) and max stretch over pairs with d >= Delta/4, via the oracle query
    (an upper bound on the tree-cover distance, which is never larger)."""
    n = dist.shape[0]
    u, v = np.triu_indices(n, k=1)
    est, d = cover.query(u, v), dist[u, v]
    if (est < d - 1e-9).any():
        raise RuntimeError("oracle estimate below the true distance")
    far = d >= delta / 4
    return {"n_trees": cover.n_trees, "add_err_ratio": float((est - d).max() / (eps * delta)),
            "far_stretch_max": float((est[far] / d[far]).max()), "far_stretch_mean": float((est[far] / d[far]).mean())}


def run(config: dict, ctx) -> dict:
    rows = []
    jobs = [(f, n, s) for f in config["families"] for n in config["ns"] for s in config["seeds"]]
    bar = ctx.progress(total=len(jobs), desc="graphs")
    for family, n, seed in jobs:
        adj, _ = make_graph(family, n, seed=1000 * ctx.seed + seed)
        dist = all_pairs_distances(adj)
        delta = graph_diameter(adj, dist)
        for eps in config["eps"]:
            rep, net, single, labels = _measure(adj, dist, delta, eps, seed)
            row = {"family": family, "n": int(adj.shape[0]), "seed": seed, "eps": eps, "diameter": delta,
                   "shortcut": rep, "net": net, "singleton_hop_ratio_max": single}
            if n == config["cover_n"]:
                cover = center_cover(adj, labels)
                row["cover"] = _oracle_distortion(cover, dist, eps, delta)
                row["random_cover"] = _oracle_distortion(random_center_cover(adj, cover.n_trees, seed), dist, eps,
                                                         delta)
            rows.append(row)
            ctx.log(f"{family} n={adj.shape[0]} seed={seed} eps={eps}: {rep['n_clusters']} clusters, strong diam "
                    f"{rep['strong_diam_ratio']:.2f} eps*D, hop ratio max {rep['hop_ratio_max']:.1f} (net "
                    f"{net['hop_ratio_max']:.1f}, singletons {single:.1f}), cops {rep['max_cops']}")
        bar.update()
    bar.close()
    summary = _summary(rows, config)
    ctx.save_figure(plot(rows, config), "shortcut_partitions.png")
    return {"rows": rows, "summary": summary}


def _summary(rows, config):
    out = {}
    for family in config["families"]:
        fam = [r for r in rows if r["family"] == family]
        per_eps = {}
        for eps in config["eps"]:
            sel = [r for r in fam if r["eps"] == eps]
            x = [r["n"] for r in sel]
            entry = {"hop_max": [r["shortcut"]["hop_ratio_max"] for r in sel],
                     "net_hop_max": [r["net"]["hop_ratio_max"] for r in sel],
                     "single_hop_max": [r["singleton_hop_ratio_max"] for r in sel],
                     "singleton_frac": float(np.mean([r["shortcut"]["singleton_frac"] for r in sel]))}
            for key in ("hop_max", "single_hop_max"):
                try:
                    s, lo, hi = loglog_slope(x, entry[key])
                    entry[key + "_slope"] = [s, lo, hi]
                except ValueError:
                    entry[key + "_slope"] = None
            cov = [r for r in sel if "cover" in r]
            if cov:
                for arm in ("cover", "random_cover"):
                    entry[arm] = {k: float(np.mean([r[arm][k] for r in cov])) for k in cov[0][arm]}
            per_eps[str(eps)] = entry
        out[family] = {
            "max_strong_diam_ratio": max(r["shortcut"]["strong_diam_ratio"] for r in fam),
            "all_connected": all(r["shortcut"]["connected"] for r in fam),
            "max_cops_by_n": {str(n): max(r["shortcut"]["max_cops"] for r in fam if r["n"] == n)
                              for n in sorted({r["n"] for r in fam})},
            "hop_ratio_max": max(r["shortcut"]["hop_ratio_max"] for r in fam), "per_eps": per_eps,
        }
    return out


def plot(rows, config):
    fig, axes = plt.subplots(1, len(config["eps"]), figsize=(4 * len(config["eps"]), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, eps in zip(axes, config["eps"]):
        for i, family in enumerate(config["families"]):
            sel = [r for r in rows if r["family"] == family and r["eps"] == eps]
            ns = sorted({r["n"] for r in sel})
            y = [np.mean([r["shortcut"]["hop_ratio_max"] for r in sel if r["n"] == n]) for n in ns]
            yb = [np.mean([r["net"]["hop_ratio_max"] for r in sel if r["n"] == n]) for n in ns]
            ax.plot(ns, y, "o-", color=f"C{i}", label=family)
            ax.plot(ns, yb, "x:", color=f"C{i}")
        ax.set(xscale="log", xlabel="n", title=f"eps={eps}")
    axes[0].set_ylabel("max hop ratio (empirical eps*h)")
    axes[0].legend(fontsize=7, title="solid: cop partition, dotted: net", title_fontsize=7)
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """One README cell: scale, strong diameters, hop ratios against n (slopes) beside the baselines, cops."""
    m, cfg = results["metrics"]["summary"], results["config"]
    parts = [f"n={cfg['ns']}, eps={cfg['eps']}, {len(cfg['seeds'])} seeds, all pairs exact; reconstructed cop "
             "partition (no buffer step)"]
    diam_ok = all(v["all_connected"] and v["max_strong_diam_ratio"] <= 1 + 1e-9 for v in m.values())
    parts.append(f"every cluster connected with strong diameter <= eps*Delta: {'yes' if diam_ok else 'NO'}")
    for family, v in m.items():
        e0 = str(cfg["eps"][0])

        def slopes(key):
            return "/".join(f"{x[key][0]:.2f}" if x[key] else "n/a" for x in v["per_eps"].values())
        sl = v["per_eps"][e0]["hop_max_slope"]
        ci = f" [{sl[1]:.2f},{sl[2]:.2f}]" if sl else ""
        parts.append(f"{family}: max hop ratio at eps={e0} {fmt_mean_std(v['per_eps'][e0]['hop_max'], 2)} (net "
                     f"{fmt_mean_std(v['per_eps'][e0]['net_hop_max'], 2)}, singletons "
                     f"{fmt_mean_std(v['per_eps'][e0]['single_hop_max'], 2)}), {v['hop_ratio_max']:.0f} over all eps; "
                     f"log-log slope vs n per eps {slopes('hop_max_slope')}{ci} (singletons "
                     f"{slopes('single_hop_max_slope')}); singleton clusters "
                     + "/".join(f"{x['singleton_frac']:.0%}" for x in v["per_eps"].values())
                     + "; max cops by n " + "/".join(str(c) for c in v["max_cops_by_n"].values()))
    cov = {f: v["per_eps"] for f, v in m.items() if "cover" in next(iter(v["per_eps"].values()))}
    if cov:
        parts.append(f"simplified cluster-centre cover/oracle at n={cfg['cover_n']} (never below d_G, checked): "
                     "trees, max additive error/(eps*Delta), max stretch for d >= Delta/4 per eps, vs random roots "
                     "of equal count: " + "; ".join(
                         f + " " + ", ".join(f"{x['cover']['n_trees']:.0f} trees {x['cover']['add_err_ratio']:.2f}/"
                                             f"{x['cover']['far_stretch_max']:.2f} (random "
                                             f"{x['random_cover']['add_err_ratio']:.2f}/"
                                             f"{x['random_cover']['far_stretch_max']:.2f})" for x in pe.values())
                         for f, pe in cov.items()))
    e0 = str(cfg["eps"][0])
    flat = {f: (v["per_eps"][e0]["hop_max_slope"] or [0, 1, 1])[1] <= 0 for f, v in m.items()}
    parts.append(f"claim 'hop ratio bounded in n' (slope CI at eps={e0} reaches 0): "
                 + ", ".join(f"{f} {'held' if ok else 'NOT held'}" for f, ok in flat.items())
                 + "; at smaller eps many clusters are single vertices at these n, so slopes there are not tests")
    minor_free_ok = all(max(m[f]["max_cops_by_n"].values()) <= c for f, c in MINOR_FREE_COPS.items() if f in m)
    parts.append(f"cop lemma (<= 3 cops) holds on planar/treewidth-3: {'yes' if minor_free_ok else 'NO'}")
    if "expander" in m:
        sl = m["expander"]["per_eps"][e0]["hop_max_slope"]
        grow = f"slope {sl[0]:.2f} at eps={e0}" if sl else "no slope"
        broken = max(m["expander"]["max_cops_by_n"].values()) > 3
        parts.append("expanders (negative control): cops grow with n ("
                     + ("lemma broken" if broken else "lemma not broken") + "), "
                     f"but the hop ratio grows only slightly ({grow}; Delta ~ log n keeps clusters to a few "
                     "vertices), so the hop-ratio side of the negative control is weak at these sizes")
    return cell(*parts)
