"""Pore-space representations for microbial-decomposition simulation (P34, Monga, Klai et al., arXiv 2309.01611).

Synthetic porous volumes (stand-ins for the paper's soil CT) of two kinds: complements of overlapping grain spheres
(:func:`geometry.porous.sphere_pack`, "spheres") and thresholded Gaussian random fields
(:func:`geometry.porous.gaussian_field_pores`, "grf"). Each is represented four ways: the voxel graph (reference),
the curvilinear-skeleton branch regions (the paper's method), greedy maximal balls (the authors' earlier
sphere-based baseline) and one well-mixed node (trivial baseline). The same kinetics (authors' parameters,
:mod:`geometry.porous.simulate`) run on each from the same initial state: DOM uniform over the pore space, biomass
spots at random pore voxels (each put in the node that holds its voxel, or the nearest ball). We report nodes,
build time, simulation time and the error of the pool curves (% of total C in MB, DOM, SOM, FOM, CO2) against the
voxel reference: max abs difference over time and pools and the time-averaged abs difference (max over pools), in
percentage points, and CO2 at the last day; 3 volumes (seeds) per geometry. A second run with D x100 separates the
error of mixing inside a node from the geometry.

dt study (first volume of the first geometry, D x1): every representation is run with the authors' split step and
with the coupled step (:func:`geometry.porous.simulate`, ``scheme``) at each dt of ``dt_study["dts"]``; we report,
per scheme and representation, the largest change of the curves between consecutive dts (max over time and pools,
pp; for a first-order scheme it estimates the error at the larger dt) and the errors against the voxel curve at the
same dt and scheme. The main comparison's dt counts as converged when the coupled voxel change from dt to dt/2 is
within ``dt_study["tol_pp"]``; the run checks this and the summary says so.

Deviations: synthetic volumes instead of CT; segmentation reconstructed (no spur pruning; see
:mod:`geometry.porous.representations`); the main comparison uses the coupled uptake-diffusion step, not the
authors' split step (which is far from converged in dt on voxels at any dt we can afford; see the dt study);
shorter horizon in the smoke preset.
"""
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std
from geometry.porous import (
    DecompositionParams, ball_graph, gaussian_field_pores, region_graph, simulate, sphere_pack, voxel_graph,
    well_mixed_graph,
)
from geometry.porous.simulate import POOLS

PAPERS = ("P34",)
CLAIM = ("curvilinear-skeleton regions describe the pore space with far fewer nodes than voxels and no geometric "
         "approximation, giving decomposition curves close to the voxel reference (closer than balls) at a "
         "fraction of the simulation cost")

_COMMON = {"porosity": 0.35, "radius": [3.0, 6.0], "grf_sigma": 2.5, "geometries": ["spheres", "grf"],
           "seeds": [0, 1, 2], "dt": 0.01, "scheme": "coupled", "dom_total": 289.5, "mb_spot": 5.4e-8,
           "record_days": 0.1, "diffusion_scales": [1.0, 100.0]}
PRESETS = {
    "smoke": {**_COMMON, "size": 48, "days": 3.0, "spots": 20,
              "dt_study": {"dts": [0.02, 0.01, 0.005], "schemes": ["split", "coupled"], "tol_pp": 1.0}},
    "full": {**_COMMON, "size": 96, "days": 5.0, "spots": 100,
             "dt_study": {"dts": [0.02, 0.01, 0.005, 0.0025], "schemes": ["split", "coupled"], "tol_pp": 1.0}},
}
METHODS = ("voxel", "skeleton", "ball", "well-mixed")
_BUILDERS = {"voxel": voxel_graph, "skeleton": region_graph, "ball": ball_graph, "well-mixed": well_mixed_graph}
_METRICS = ("nodes", "build_s", "sim_s", "max_err_pp", "mean_err_pp", "co2_final", "co2_err_pp", "mass_drift")


def make_volume(config: dict, geometry: str, seed: int) -> np.ndarray:
    """Pore mask of one synthetic volume (``geometry`` "spheres" or "grf")."""
    if geometry == "spheres":
        return sphere_pack(config["size"], config["porosity"], tuple(config["radius"]), seed=seed)
    if geometry == "grf":
        return gaussian_field_pores(config["size"], config["porosity"], config["grf_sigma"], seed=seed)
    raise ValueError(f"unknown geometry {geometry!r}")


def _initial(graph, spot_voxels, config):
    init = np.zeros((5, graph.n_nodes))
    init[1] = config["dom_total"] * graph.volume / graph.volume.sum()
    np.add.at(init[0], graph.voxel_node[spot_voxels], config["mb_spot"])
    return init


def _record_every(config: dict, dt: float) -> int:
    every = config["record_days"] / dt
    if round(every) < 1 or abs(every - round(every)) > 1e-6:
        raise ValueError(f"record_days {config['record_days']} must be a multiple of dt {dt}")
    return int(round(every))


def _setup(config: dict, geometry: str, seed: int):
    mask = make_volume(config, geometry, seed)
    rng = np.random.default_rng(seed + 1000)
    spots = rng.choice(int(mask.sum()), size=config["spots"], replace=False)
    graphs, builds = {}, {}
    for name in METHODS:
        t0 = time.perf_counter()
        graphs[name] = _BUILDERS[name](mask)
        builds[name] = time.perf_counter() - t0
    return mask, spots, graphs, builds


def _simulate(graph, spots, config: dict, dt: float, scheme: str, params: DecompositionParams) -> dict:
    solver = "cg" if graph.n_nodes > 60000 else "direct"
    t0 = time.perf_counter()
    times, totals, _ = simulate(graph, _initial(graph, spots, config), days=config["days"], dt=dt, params=params,
                                solver=solver, scheme=scheme, record_every=_record_every(config, dt))
    sim = time.perf_counter() - t0
    pct = 100.0 * totals / totals.sum(1, keepdims=True)
    return {"nodes": graph.n_nodes, "edges": int(graph.contact.nnz // 2), "sim_s": sim, "times": times.tolist(),
            "percent": pct.tolist(), "mass_drift": float(abs(totals.sum(1) / totals[0].sum() - 1).max())}


def _add_errors(res: dict) -> None:
    """Errors of every method's curves against the voxel curve of the same run set (pp)."""
    ref = np.asarray(res["voxel"]["percent"])
    for r in res.values():
        pct = np.asarray(r["percent"])
        r["max_err_pp"] = float(np.abs(pct - ref).max())
        r["mean_err_pp"] = float(np.abs(pct - ref).mean(0).max())
        r["co2_final"] = float(pct[-1, 4])
        r["co2_err_pp"] = float(abs(pct[-1, 4] - ref[-1, 4]))


def run_volume(config: dict, geometry: str, seed: int) -> dict:
    """All representations on one volume; per diffusion scale and method: nodes, timings, curves (% of C)."""
    mask, spots, graphs, builds = _setup(config, geometry, seed)
    out = {"geometry": geometry, "porosity": float(mask.mean()), "pore_voxels": int(mask.sum())}
    for scale in config["diffusion_scales"]:
        params = DecompositionParams(diffusion=DecompositionParams().diffusion * scale)
        res = {}
        for name in METHODS:
            res[name] = _simulate(graphs[name], spots, config, config["dt"], config["scheme"], params)
            res[name]["build_s"] = builds[name]
        _add_errors(res)
        out[f"D x{scale:g}"] = res
    return out


def dt_study(config: dict, seed: int, reuse: dict | None = None) -> dict:
    """Every scheme x dt x representation on volume ``seed`` of the first geometry (D x1): CO2 at the last day,
    errors against the voxel curve at the same (scheme, dt), and the change between consecutive dts (pp).
    ``reuse``: the main comparison's D x1 runs on that volume (taken for its own scheme and dt, not rerun)."""
    study = config["dt_study"]
    dts = sorted(study["dts"], reverse=True)
    _, spots, graphs, _ = _setup(config, config["geometries"][0], seed)
    params = DecompositionParams()
    out = {"dts": dts, "tol_pp": study["tol_pp"], "schemes": {}}
    for scheme in study["schemes"]:
        per_dt = []
        for dt in dts:
            if reuse is not None and scheme == config["scheme"] and dt == config["dt"]:
                res = reuse
            else:
                res = {name: _simulate(graphs[name], spots, config, dt, scheme, params) for name in METHODS}
                _add_errors(res)
            per_dt.append(res)
        curves = {name: [np.asarray(r[name]["percent"]) for r in per_dt] for name in METHODS}
        diffs = {name: [np.abs(a - b) for a, b in zip(c[:-1], c[1:])] for name, c in curves.items()}
        extrap = {}
        if len(dts) >= 2 and abs(dts[-2] / dts[-1] - 2.0) < 1e-9:  # Richardson, first order: 2 p(dt/2) - p(dt)
            ex = {name: 2 * c[-1] - c[-2] for name, c in curves.items()}
            extrap = {name: {"max_err_pp": float(np.abs(ex[name] - ex["voxel"]).max()),
                             "mean_err_pp": float(np.abs(ex[name] - ex["voxel"]).mean(0).max()),
                             "co2_final": float(ex[name][-1, 4])} for name in METHODS}
        out["schemes"][scheme] = {
            "change_pp": {name: [float(d.max()) for d in ds] for name, ds in diffs.items()},
            "mean_change_pp": {name: [float(d.mean(0).max()) for d in ds] for name, ds in diffs.items()},
            "richardson": extrap,
            **{k: {name: [r[name][k] for r in per_dt] for name in METHODS}
               for k in ("co2_final", "max_err_pp", "mean_err_pp", "sim_s")},
            "voxel_percent": [r["voxel"]["percent"] for r in per_dt], "times": per_dt[0]["voxel"]["times"],
        }
    main = out["schemes"].get(config["scheme"])
    if main is not None:
        ok = [dt for dt, c in zip(dts, main["change_pp"]["voxel"]) if c <= study["tol_pp"]]
        out["converged_dt"] = max(ok) if ok else None
        out["reference_converged"] = bool(ok) and config["dt"] <= max(ok)
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


def plot_dt(study: dict):
    """CO2 at the last day against dt per scheme and representation, and the voxel change between dts."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    dts = np.asarray(study["dts"])
    markers = {"voxel": "o", "skeleton": "s", "ball": "^", "well-mixed": "x"}
    for scheme, s in study["schemes"].items():
        ls = "-" if scheme == "coupled" else "--"
        for name in METHODS:
            axes[0].plot(dts, s["co2_final"][name], ls, marker=markers[name], label=f"{name} {scheme}")
        axes[1].plot(dts[:-1], s["change_pp"]["voxel"], ls, marker="o", label=f"voxel {scheme}")
        axes[1].plot(dts[:-1], s["change_pp"]["skeleton"], ls, marker="s", label=f"skeleton {scheme}")
    axes[1].axhline(study["tol_pp"], color="k", lw=0.8, label="tolerance")
    axes[0].set(xscale="log", xlabel="dt (days)", ylabel="CO2 at last day (% of C)", title="CO2 vs dt")
    axes[1].set(xscale="log", yscale="log", xlabel="dt (days)", ylabel="max |curve(dt) - curve(dt/2)| (pp)",
                title="change to dt/2")
    axes[0].legend(fontsize=6, ncol=2), axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(config: dict, ctx) -> dict:
    runs = [(g, s) for g in config["geometries"] for s in config["seeds"]]
    bar = ctx.progress(total=len(runs) + 1, desc="pore segmentation")
    volumes = []
    for geometry, s in runs:
        v = run_volume(config, geometry, 1000 * ctx.seed + s)
        volumes.append(v)
        for key in (k for k in v if k.startswith("D x")):
            ctx.log(f"{geometry} seed {s} {key}: " + ", ".join(
                f"{m} {v[key][m]['nodes']} nodes sim {v[key][m]['sim_s']:.2f}s err {v[key][m]['max_err_pp']:.2f}pp"
                for m in METHODS))
        bar.update()
    reuse = volumes[0].get("D x1")  # the first geometry's first volume, D x1
    study = dt_study(config, 1000 * ctx.seed + config["seeds"][0], reuse)
    ctx.log("dt study voxel change (pp): " + ", ".join(f"{k} {np.round(v['change_pp']['voxel'], 3).tolist()}"
                                                       for k, v in study["schemes"].items()))
    bar.update()
    scales = [f"D x{x:g}" for x in config["diffusion_scales"]]
    ctx.save_figure(plot(volumes[0][scales[0]]), "pore_segmentation.png")
    ctx.save_figure(plot_dt(study), "pore_segmentation_dt.png")
    summary = {g: {key: {m: {k: [v[key][m][k] for v in volumes if v["geometry"] == g] for k in _METRICS}
                         for m in METHODS} for key in scales} for g in config["geometries"]}
    return {"config": config, "volumes": volumes, "summary": summary, "dt_study": study}


def summarize(results: dict) -> str:
    m = results["metrics"]
    parts = []
    for geometry, per_scale in m["summary"].items():
        for key, s in per_scale.items():
            head = f"{geometry} {key}: "
            if key == next(iter(per_scale)):
                head += "nodes " + ", ".join(f"{n} {fmt_mean_std(s[n]['nodes'], 3)}" for n in METHODS) + "; "
            sk, ball = np.mean(s["skeleton"]["mean_err_pp"]), np.mean(s["ball"]["mean_err_pp"])
            speed = np.mean(s["voxel"]["sim_s"]) / np.mean(s["skeleton"]["sim_s"])
            parts.append(head + f"voxel CO2 {fmt_mean_std(s['voxel']['co2_final'], 3)} %, " + ", ".join(
                f"{n} err max {fmt_mean_std(s[n]['max_err_pp'], 2)} / time-mean {fmt_mean_std(s[n]['mean_err_pp'], 2)}"
                f" pp" for n in METHODS[1:]) + f"; skeleton {speed:.0f}x faster than voxels, "
                + ("closer to voxels than balls" if sk < ball else "NOT closer to voxels than balls"))
    st = m["dt_study"]
    dts = "/".join(f"{d:g}" for d in st["dts"])
    for scheme, s in st["schemes"].items():
        line = (f"dt study {scheme} (dt {dts}): voxel CO2 " + "/".join(f"{x:.2f}" for x in s["co2_final"]["voxel"])
                + " %, voxel change to dt/2 " + "/".join(f"{x:.2f}" for x in s["change_pp"]["voxel"])
                + " pp, skeleton time-mean err " + "/".join(f"{x:.1f}" for x in s["mean_err_pp"]["skeleton"])
                + " pp, ball " + "/".join(f"{x:.1f}" for x in s["mean_err_pp"]["ball"]) + " pp, skeleton change "
                + "/".join(f"{x:.1f}" for x in s["change_pp"]["skeleton"]) + " pp")
        rich = s["richardson"]
        if rich and scheme == m["config"]["scheme"]:
            line += f", Richardson dt->0: voxel CO2 {rich['voxel']['co2_final']:.2f} %, " + ", ".join(
                f"{n} err max {rich[n]['max_err_pp']:.1f} / time-mean {rich[n]['mean_err_pp']:.1f} pp"
                for n in METHODS[1:])
        parts.append(line)
    ref = m["config"]["dt"]
    parts.append(f"reference dt {ref:g} " + ("converged" if st.get("reference_converged") else "NOT converged")
                 + f" (tol {st['tol_pp']:g} pp)")
    return cell(*parts)
