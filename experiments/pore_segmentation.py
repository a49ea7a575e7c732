"""Pore-space representations for microbial-decomposition simulation (P34, Monga, Klai et al., arXiv 2309.01611).

Synthetic porous volumes (complement of overlapping grain spheres, :func:`geometry.porous.sphere_pack`; stand-in
for the paper's soil CT) are represented four ways: the voxel graph (reference), the curvilinear-skeleton branch
regions (the paper's method), greedy maximal balls (the authors' earlier sphere-based baseline) and one well-mixed
node (trivial baseline). The same biology (authors' kinetics and parameters, :mod:`geometry.porous.simulate`) and
implicit DOM diffusion run on each from the same initial state: DOM uniform over the pore space, biomass spots at
random pore voxels (each put in the node that holds its voxel, or the nearest ball). We report nodes, build time,
simulation time and the error of the pool curves (% of total C in MB, DOM, SOM, FOM, CO2) against the voxel
reference: max abs difference over time and pools and the time-averaged abs difference (max over pools), in
percentage points, and CO2 at the last day; 3 volumes (seeds). A second run with D x100 separates the error of
mixing inside a node from the geometry.
Deviations: synthetic volumes instead of CT; segmentation reconstructed (no spur pruning; see
:mod:`geometry.porous.representations`); explicit biology + implicit diffusion with the authors' parameters, shorter
horizon in the smoke preset.
Caveat: in the authors' split scheme a node can consume at most its own DOM per transformation step, so fine nodes
(voxels) are supply-limited and the curves depend on node size and on dt (the voxel reference is not converged in
dt at dt = 0.01 day: CO2 at day 3 doubles at dt = 0.0025 on a 32^3 volume).
"""
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std
from geometry.porous import (
    DecompositionParams, ball_graph, region_graph, simulate, sphere_pack, voxel_graph, well_mixed_graph,
)
from geometry.porous.simulate import POOLS

PAPERS = ("P34",)
CLAIM = ("curvilinear-skeleton regions describe the pore space with far fewer nodes than voxels and no geometric "
         "approximation, giving decomposition curves close to the voxel reference (closer than balls) at a "
         "fraction of the simulation cost")

PRESETS = {
    "smoke": {"size": 48, "porosity": 0.35, "radius": [3.0, 6.0], "seeds": [0, 1, 2], "days": 3.0, "dt": 0.01,
              "spots": 20, "dom_total": 289.5, "mb_spot": 5.4e-8, "record_every": 5, "diffusion_scales": [1.0, 100.0]},
    "full": {"size": 96, "porosity": 0.35, "radius": [3.0, 6.0], "seeds": [0, 1, 2], "days": 5.0, "dt": 0.01,
             "spots": 100, "dom_total": 289.5, "mb_spot": 5.4e-8, "record_every": 5, "diffusion_scales": [1.0, 100.0]},
}
METHODS = ("voxel", "skeleton", "ball", "well-mixed")
_BUILDERS = {"voxel": voxel_graph, "skeleton": region_graph, "ball": ball_graph, "well-mixed": well_mixed_graph}


def _initial(graph, spot_voxels, config):
    init = np.zeros((5, graph.n_nodes))
    init[1] = config["dom_total"] * graph.volume / graph.volume.sum()
    np.add.at(init[0], graph.voxel_node[spot_voxels], config["mb_spot"])
    return init


def run_volume(config: dict, seed: int) -> dict:
    """All representations on one volume; per diffusion scale and method: nodes, timings, curves (% of C)."""
    mask = sphere_pack(config["size"], config["porosity"], tuple(config["radius"]), seed=seed)
    rng = np.random.default_rng(seed + 1000)
    spots = rng.choice(int(mask.sum()), size=config["spots"], replace=False)
    out = {"porosity": float(mask.mean()), "pore_voxels": int(mask.sum())}
    graphs, builds = {}, {}
    for name in METHODS:
        t0 = time.perf_counter()
        graphs[name] = _BUILDERS[name](mask)
        builds[name] = time.perf_counter() - t0
    for scale in config["diffusion_scales"]:
        params = DecompositionParams(diffusion=DecompositionParams().diffusion * scale)
        res = {}
        for name in METHODS:
            g = graphs[name]
            init = _initial(g, spots, config)
            solver = "cg" if g.n_nodes > 60000 else "direct"
            t0 = time.perf_counter()
            times, totals, _ = simulate(g, init, days=config["days"], dt=config["dt"], params=params,
                                        solver=solver, record_every=config["record_every"])
            sim = time.perf_counter() - t0
            pct = 100.0 * totals / totals.sum(1, keepdims=True)
            res[name] = {"nodes": g.n_nodes, "edges": int(g.contact.nnz // 2), "build_s": builds[name],
                         "sim_s": sim, "times": times.tolist(), "percent": pct.tolist(),
                         "mass_drift": float(abs(totals.sum(1) / totals[0].sum() - 1).max())}
        ref = np.asarray(res["voxel"]["percent"])
        for name in METHODS:
            pct = np.asarray(res[name]["percent"])
            res[name]["max_err_pp"] = float(np.abs(pct - ref).max())
            res[name]["mean_err_pp"] = float(np.abs(pct - ref).mean(0).max())
            res[name]["co2_final"] = float(pct[-1, 4])
            res[name]["co2_err_pp"] = float(abs(pct[-1, 4] - ref[-1, 4]))
        out[f"D x{scale:g}"] = res
    return out


def plot(volume: dict):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    styles = {"voxel": "-", "skeleton": "--", "ball": ":", "well-mixed": "-."}
    for pool, ax in zip((0, 1, 4), axes):
        for name in METHODS:
            r = volume[name]
            ax.plot(r["times"], np.asarray(r["percent"])[:, pool], styles[name], label=f"{name} ({r['nodes']} nodes)")
        ax.set_title(f"{POOLS[pool]} (% of C)"), ax.set_xlabel("days")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(config: dict, ctx) -> dict:
    bar = ctx.progress(total=len(config["seeds"]), desc="pore segmentation")
    volumes = []
    for s in config["seeds"]:
        v = run_volume(config, 1000 * ctx.seed + s)
        volumes.append(v)
        for key in (k for k in v if k.startswith("D x")):
            ctx.log(f"seed {s} {key}: " + ", ".join(f"{m} {v[key][m]['nodes']} nodes sim {v[key][m]['sim_s']:.2f}s "
                                                   f"err {v[key][m]['max_err_pp']:.2f}pp" for m in METHODS))
        bar.update()
    scales = [f"D x{x:g}" for x in config["diffusion_scales"]]
    ctx.save_figure(plot(volumes[0][scales[0]]), "pore_segmentation.png")
    summary = {key: {m: {k: [v[key][m][k] for v in volumes]
                         for k in ("nodes", "build_s", "sim_s", "max_err_pp", "mean_err_pp", "co2_final", "co2_err_pp", "mass_drift")}
                     for m in METHODS} for key in scales}
    return {"config": config, "volumes": volumes, "summary": summary}


def summarize(results: dict) -> str:
    parts = []
    for key, s in results["metrics"]["summary"].items():
        if not parts:
            parts.append("nodes " + ", ".join(f"{m} {fmt_mean_std(s[m]['nodes'], 3)}" for m in METHODS))
        parts.append(f"{key}: voxel sim {fmt_mean_std(s['voxel']['sim_s'], 2)} s CO2 "
                     f"{fmt_mean_std(s['voxel']['co2_final'], 3)} %, " + ", ".join(
                         f"{m} err max {fmt_mean_std(s[m]['max_err_pp'], 2)} / time-mean "
                         f"{fmt_mean_std(s[m]['mean_err_pp'], 2)} pp, CO2 {fmt_mean_std(s[m]['co2_final'], 3)} %, sim "
                         f"{fmt_mean_std(s[m]['sim_s'], 2)} s" for m in METHODS[1:]))
        sk, ball = np.mean(s["skeleton"]["mean_err_pp"]), np.mean(s["ball"]["mean_err_pp"])
        speed = np.mean(s["voxel"]["sim_s"]) / np.mean(s["skeleton"]["sim_s"])
        parts.append(f"{key}: skeleton {speed:.0f}x faster than voxels, "
                     + ("closer to voxels than balls" if sk < ball else "NOT closer to voxels than balls"))
    return cell(*parts)
