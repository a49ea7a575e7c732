"""SparseSSP vs a pure 3D U-Net: accuracy and FLOPs against the slice-keep ratio r (P38).

Library: :mod:`generative.reconstruction.ssp` (models, slice keeping, fold/unfold) and
:mod:`generative.reconstruction.cells` (synthetic cells with an optical model; AllenCell data are not available
offline). For each r the TL stack keeps every r-th z-slice, is nearest-upsampled back to D and fed to

* SparseSSP "3e2d" (3D encoder, depth folded into channels, 2D decoder),
* a pure 3D U-Net with the same encoder and width (equal width, *not* equal parameters: at equal width the
  folded 2D decoder has more parameters but fewer FLOPs; both counts are recorded),
* the trivial baseline: the training-set mean voxel value (R^2 about 0).

Both nets: MSE, Adam (official lr 4e-4 is for 2000 epochs; here ``lr``), full-volume batches, random flips
omitted. Metrics on held-out cells: R^2 (pooled over voxels), PSNR (:func:`generative.reconstruction.metrics.psnr`
with data range 1), forward FLOPs by XLA's cost analysis, parameters. Seeds give mean ± std (3 seeds; the smoke
preset is tiny: 8x16x16 cells, width 4, 150 steps, shared 2-core CPU, about 15 min); the full preset (32x64x64)
has not been run.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std
from generative.reconstruction.cells import make_cells
from generative.reconstruction.metrics import psnr
from generative.reconstruction.ssp import SparseSSP, UNet3D, forward_flops, keep_slices, r2_score
from sparsejax.core import param_count

PAPERS = ("P38",)
CLAIM = ("a 3D-encoder / 2D-decoder network (depth folded into channels) predicts 3D fluorescence from sparsely "
         "sampled transmitted-light z-slices about as well as a pure 3D U-Net, with far fewer acquired slices and "
         "lower compute")

PRESETS = {
    "smoke": {"shape": [8, 16, 16], "n_train": 48, "n_test": 8, "ratios": [1, 2, 8], "width": 4, "levels": 2,
              "steps": 150, "batch": 4, "lr": 3e-3, "seeds": [0, 1, 2]},
    "full": {"shape": [32, 64, 64], "n_train": 200, "n_test": 20, "ratios": [1, 2, 4, 8], "width": 16,
             "levels": 3, "steps": 3000, "batch": 4, "lr": 1e-3, "seeds": [0, 1, 2]},
}
MODELS = {"sparsessp": SparseSSP, "unet3d": UNet3D}


def train_eval(name: str, config: dict, data: dict, r: int, seed: int) -> dict:
    """Train one model at slice-keep ratio r; R^2 / PSNR on the test cells, FLOPs and parameters."""
    depth = config["shape"][0]
    model = MODELS[name](depth=depth, width=config["width"], levels=config["levels"])
    xtr = jnp.asarray(keep_slices(data["train"]["tl"], r))[..., None]
    ttr = jnp.asarray(data["train"]["target"])[..., None]
    xte = jnp.asarray(keep_slices(data["test"]["tl"], r))[..., None]
    tte = data["test"]["target"]
    key = jax.random.PRNGKey(seed)
    params = model.init(key, xtr[:1])
    opt = optax.adam(config["lr"])
    state = opt.init(params)

    @jax.jit
    def step(p, s, idx):
        loss, g = jax.value_and_grad(lambda q: jnp.mean((model.apply(q, xtr[idx]) - ttr[idx]) ** 2))(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    rng = np.random.default_rng(seed)
    losses = []
    for i in range(config["steps"]):
        params, state, loss = step(params, state, jnp.asarray(rng.choice(len(xtr), config["batch"], replace=False)))
        if i % 25 == 0 or i == config["steps"] - 1:
            losses.append(float(loss))
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(f"{name} r={r}: non-finite loss at step {i}")
    pred = np.asarray(jax.jit(model.apply)(params, xte))[..., 0]
    return {"r2": r2_score(pred, tte), "psnr": psnr(pred, tte, data_range=1.0),
            "flops": forward_flops(model, params, xte[:1]), "params": param_count(params),
            "loss_curve": losses, "slices_kept": int(xte.shape[1])}


def run(config: dict, ctx) -> dict:
    """Every model x ratio x seed; the mean-predictor baseline per seed."""
    shape = tuple(config["shape"])
    rows = {name: {str(r): [] for r in config["ratios"]} for name in MODELS}
    baseline = {"r2": [], "psnr": []}
    bar = ctx.progress(total=len(config["seeds"]) * len(config["ratios"]) * len(MODELS), desc="sparse ssp")
    for seed in config["seeds"]:
        s = 1000 * ctx.seed + seed
        data = {"train": make_cells(config["n_train"], 2 * s, shape), "test": make_cells(config["n_test"], 2 * s + 1, shape)}
        mean = np.full_like(data["test"]["target"], data["train"]["target"].mean())
        baseline["r2"].append(r2_score(mean, data["test"]["target"]))
        baseline["psnr"].append(psnr(mean, data["test"]["target"], data_range=1.0))
        for r in config["ratios"]:
            for name in MODELS:
                res = train_eval(name, config, data, r, s)
                rows[name][str(r)].append(res)
                ctx.log(f"seed {seed} r={r} {name}: R2 {res['r2']:.3f} PSNR {res['psnr']:.2f} "
                        f"MFLOPs {res['flops'] / 1e6:.1f} params {res['params']}")
                bar.update()
    bar.close()
    table = {name: {r: {k: [x[k] for x in v] for k in ("r2", "psnr", "flops", "params", "slices_kept")}
                    for r, v in per.items()} for name, per in rows.items()}
    ctx.save_figure(plot(table, baseline), "sparse_ssp.png")
    return {"table": table, "baseline": baseline, "curves": {n: {r: [x["loss_curve"] for x in v] for r, v in p.items()}
                                                             for n, p in rows.items()},
            "claims": _claims(table, config["ratios"])}


def plot(table: dict, baseline: dict):
    """R^2 and PSNR (mean and std over seeds) against the slice-keep ratio r, with the mean predictor."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key in zip(axes, ("r2", "psnr")):
        for name, per in table.items():
            ratios = sorted(per, key=int)
            vals = [np.asarray(per[r][key]) for r in ratios]
            ax.errorbar([int(r) for r in ratios], [v.mean() for v in vals], yerr=[v.std() for v in vals],
                        marker="o", capsize=3, label=name)
        ax.axhline(np.mean(baseline[key]), color="grey", ls="--", label="mean predictor")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("slice-keep ratio r (every r-th z-slice acquired)")
        ax.set_ylabel({"r2": "R$^2$", "psnr": "PSNR (dB)"}[key])
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _claims(table, ratios) -> dict:
    m = lambda name, r, k: float(np.mean(table[name][str(r)][k]))  # noqa: E731
    return {"ssp_r2_minus_unet_r2": {str(r): m("sparsessp", r, "r2") - m("unet3d", r, "r2") for r in ratios},
            "flops_ratio_ssp_over_unet": m("sparsessp", ratios[0], "flops") / m("unet3d", ratios[0], "flops"),
            "params_ratio_ssp_over_unet": m("sparsessp", ratios[0], "params") / m("unet3d", ratios[0], "params"),
            "ssp_r2_drop_r1_to_rmax": m("sparsessp", min(ratios), "r2") - m("sparsessp", max(ratios), "r2")}


def summarize(results: dict) -> str:
    """One README cell from a record (``results["metrics"]``) or from run()'s dict."""
    cfg = results.get("config", {})
    results = results.get("metrics", results)
    t, c = results["table"], results["claims"]
    parts = [f"synthetic cells {'x'.join(map(str, cfg.get('shape', [])))}, width {cfg.get('width')}, "
             f"{cfg.get('steps')} steps, {len(cfg.get('seeds', []))} seed(s)"] if cfg else []
    for r in t["sparsessp"]:
        parts.append(f"r={r}: R2 SSP {fmt_mean_std(t['sparsessp'][r]['r2'], 2)} vs 3D {fmt_mean_std(t['unet3d'][r]['r2'], 2)}, "
                     f"PSNR {fmt_mean_std(t['sparsessp'][r]['psnr'], 3)} vs {fmt_mean_std(t['unet3d'][r]['psnr'], 3)}")
    parts.append(f"mean baseline R2 {fmt_mean_std(results['baseline']['r2'], 2)}, "
                 f"PSNR {fmt_mean_std(results['baseline']['psnr'], 3)}")
    parts.append(f"SSP/3D FLOPs {c['flops_ratio_ssp_over_unet']:.2f}, params {c['params_ratio_ssp_over_unet']:.2f}")
    return cell(*parts)
