"""SparseSSP (plain and with MoDE experts) vs a pure 3D U-Net: accuracy and FLOPs against the slice-keep ratio r (P38).

Library: :mod:`generative.reconstruction.ssp` (models, MoDE convs, slice keeping, fold/unfold) and
:mod:`generative.reconstruction.cells` (synthetic cells with an optical model and several structure channels,
``dna``/``organelles``/``membrane``; AllenCell data are not available offline). For each r the TL stack keeps every
r-th z-slice, is nearest-upsampled back to D and fed to

* ``sparsessp``: SparseSSP "3e2d" (3D encoder, depth folded into channels, 2D decoder), one output channel per
  structure (multi-head);
* ``sparsessp_mode``: the same network with every block conv, fold gate and head a MoDE conv (RepMode's mixture of
  diverse experts, task-conditioned gating, re-parameterised into one kernel), predicting the structure named by
  the task id (one pass per structure, as upstream). Matched **FLOPs per pass** at equal width: the experts
  ``conv3, conv1, avg3`` merge into one 3-kernel, the plain convs' size; parameters are higher (the 1x1 experts and
  the gates: 1.16x at the smoke size); both counts are recorded;
* ``unet3d``: a pure 3D U-Net with the same encoder and width (equal width, *not* equal parameters: at equal width
  the folded 2D decoder has more parameters but fewer FLOPs), multi-head;
* the trivial baseline: each structure's training-set mean voxel value (R^2 about 0).

All nets: MSE, Adam (official lr 4e-4 is for 2000 epochs; here ``lr``), full-volume batches, random flips
omitted; the MoDE net draws one task per step for the whole batch (upstream mixes tasks in a batch; the expected
gradient is the same). Metrics on held-out cells, per structure then averaged: R^2 (pooled over voxels), PSNR
(:func:`generative.reconstruction.metrics.psnr` with data range 1); forward FLOPs by XLA's cost analysis,
parameters. Seeds (3) give mean ± std; the smoke preset is tiny (8x16x16 cells, width 4, 150 steps, r in {1, 8});
the full preset (32x64x64) has not been run.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std
from generative.reconstruction.cells import STRUCTURES, make_cells
from generative.reconstruction.metrics import psnr
from generative.reconstruction.ssp import SMALL_EXPERTS, SparseSSP, UNet3D, forward_flops, keep_slices, r2_score
from sparsejax.core import param_count

PAPERS = ("P38",)
CLAIM = ("a 3D-encoder / 2D-decoder network (depth folded into channels) predicts 3D fluorescence from sparsely "
         "sampled transmitted-light z-slices about as well as a pure 3D U-Net, with far fewer acquired slices and "
         "lower compute")

PRESETS = {
    "smoke": {"shape": [8, 16, 16], "n_train": 48, "n_test": 8, "ratios": [1, 8], "width": 4, "levels": 2,
              "steps": 150, "batch": 4, "lr": 3e-3, "structures": list(STRUCTURES), "seeds": [0, 1, 2]},
    "full": {"shape": [32, 64, 64], "n_train": 200, "n_test": 20, "ratios": [1, 2, 4, 8], "width": 16,
             "levels": 3, "steps": 3000, "batch": 4, "lr": 1e-3, "structures": list(STRUCTURES), "seeds": [0, 1, 2]},
}
MODELS = ("sparsessp", "sparsessp_mode", "unet3d")


def make_model(name: str, config: dict, n_struct: int):
    """The arm's network: multi-head (one output channel per structure) for the plain nets, task-routed MoDE with
    one output channel for ``sparsessp_mode`` (the :data:`SMALL_EXPERTS` at merged kernel 3, like the plain convs)."""
    kw = {"depth": config["shape"][0], "width": config["width"], "levels": config["levels"]}
    if name == "sparsessp":
        return SparseSSP(out_channels=n_struct, **kw)
    if name == "sparsessp_mode":
        return SparseSSP(experts=SMALL_EXPERTS, num_tasks=n_struct, mode_kernel=3, **kw)
    if name == "unet3d":
        return UNet3D(out_channels=n_struct, **kw)
    raise ValueError(f"unknown model {name!r}; valid: {MODELS}")


def train_eval(name: str, config: dict, data: dict, r: int, seed: int) -> dict:
    """Train one model at slice-keep ratio r; per-structure R^2 / PSNR on the test cells, FLOPs and parameters.

    Targets are ``(N, D, H, W, S)`` (one channel per structure). Plain nets fit all S channels per step; the MoDE
    net draws one task per step (the whole batch shares it) and fits that channel, as RepMode trains one
    structure per sample.
    """
    n_struct = data["train"]["y"].shape[-1]
    model = make_model(name, config, n_struct)
    routed = name == "sparsessp_mode"
    xtr = jnp.asarray(keep_slices(data["train"]["tl"], r))[..., None]
    ttr = jnp.asarray(data["train"]["y"])
    xte = jnp.asarray(keep_slices(data["test"]["tl"], r))[..., None]
    tte = data["test"]["y"]
    key = jax.random.PRNGKey(seed)
    params = model.init(key, xtr[:1], 0) if routed else model.init(key, xtr[:1])
    opt = optax.adam(config["lr"])
    state = opt.init(params)

    def loss_fn(q, idx, task):
        if routed:
            return jnp.mean((model.apply(q, xtr[idx], task)[..., 0] - ttr[idx][..., task]) ** 2)
        return jnp.mean((model.apply(q, xtr[idx]) - ttr[idx]) ** 2)

    @jax.jit
    def step(p, s, idx, task):
        loss, g = jax.value_and_grad(loss_fn)(p, idx, task)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    rng = np.random.default_rng(seed)
    losses = []
    for i in range(config["steps"]):
        idx = jnp.asarray(rng.choice(len(xtr), config["batch"], replace=False))
        params, state, loss = step(params, state, idx, jnp.asarray(rng.integers(n_struct), jnp.int32))
        if i % 25 == 0 or i == config["steps"] - 1:
            losses.append(float(loss))
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(f"{name} r={r}: non-finite loss at step {i}")
    if routed:
        fwd = jax.jit(model.apply)
        pred = np.stack([np.asarray(fwd(params, xte, jnp.int32(t)))[..., 0] for t in range(n_struct)], axis=-1)
        flops = forward_flops(model, params, xte[:1], jnp.int32(0))
    else:
        pred = np.asarray(jax.jit(model.apply)(params, xte))
        flops = forward_flops(model, params, xte[:1])
    per = {"r2": [r2_score(pred[..., j], tte[..., j]) for j in range(n_struct)],
           "psnr": [psnr(pred[..., j], tte[..., j], data_range=1.0) for j in range(n_struct)]}
    return {"r2": float(np.mean(per["r2"])), "psnr": float(np.mean(per["psnr"])),
            "r2_per_structure": per["r2"], "psnr_per_structure": per["psnr"],
            "flops": flops, "flops_all_structures": flops * (n_struct if routed else 1),
            "params": param_count(params), "loss_curve": losses, "slices_kept": int(xte.shape[1])}


def _load(n: int, seed: int, shape, names) -> dict:
    cells = make_cells(n, seed, shape)
    idx = [STRUCTURES.index(s) for s in names]
    return {"tl": cells["tl"], "y": np.moveaxis(cells["structures"][:, idx], 1, -1)}


def run(config: dict, ctx) -> dict:
    """Every model x ratio x seed; the per-structure training-mean baseline per seed."""
    shape = tuple(config["shape"])
    names = list(config["structures"])
    if len(names) < 1 or any(n not in STRUCTURES for n in names):
        raise ValueError(f"structures must be a non-empty subset of {STRUCTURES}, got {names}")
    rows = {name: {str(r): [] for r in config["ratios"]} for name in MODELS}
    baseline = {"r2": [], "psnr": []}
    bar = ctx.progress(total=len(config["seeds"]) * len(config["ratios"]) * len(MODELS), desc="sparse ssp")
    for seed in config["seeds"]:
        s = 1000 * ctx.seed + seed
        data = {"train": _load(config["n_train"], 2 * s, shape, names), "test": _load(config["n_test"], 2 * s + 1, shape, names)}
        yte = data["test"]["y"]
        mean = np.broadcast_to(data["train"]["y"].mean(axis=(0, 1, 2, 3)), yte.shape)
        baseline["r2"].append(float(np.mean([r2_score(mean[..., j], yte[..., j]) for j in range(len(names))])))
        baseline["psnr"].append(float(np.mean([psnr(mean[..., j], yte[..., j], data_range=1.0) for j in range(len(names))])))
        for r in config["ratios"]:
            for name in MODELS:
                res = train_eval(name, config, data, r, s)
                rows[name][str(r)].append(res)
                ctx.log(f"seed {seed} r={r} {name}: R2 {res['r2']:.3f} {np.round(res['r2_per_structure'], 3)} "
                        f"PSNR {res['psnr']:.2f} MFLOPs/pass {res['flops'] / 1e6:.1f} params {res['params']}")
                bar.update()
    bar.close()
    keys = ("r2", "psnr", "r2_per_structure", "psnr_per_structure", "flops", "flops_all_structures", "params",
            "slices_kept")
    table = {name: {r: {k: [x[k] for x in v] for k in keys} for r, v in per.items()} for name, per in rows.items()}
    ctx.save_figure(plot(table, baseline), "sparse_ssp.png")
    return {"structures": names, "table": table, "baseline": baseline,
            "curves": {n: {r: [x["loss_curve"] for x in v] for r, v in p.items()} for n, p in rows.items()},
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
    r0 = ratios[0]
    return {"ssp_r2_minus_unet_r2": {str(r): m("sparsessp", r, "r2") - m("unet3d", r, "r2") for r in ratios},
            "mode_r2_minus_ssp_r2": {str(r): m("sparsessp_mode", r, "r2") - m("sparsessp", r, "r2") for r in ratios},
            "flops_ratio_ssp_over_unet": m("sparsessp", r0, "flops") / m("unet3d", r0, "flops"),
            "params_ratio_ssp_over_unet": m("sparsessp", r0, "params") / m("unet3d", r0, "params"),
            "flops_ratio_mode_over_ssp": m("sparsessp_mode", r0, "flops") / m("sparsessp", r0, "flops"),
            "params_ratio_mode_over_ssp": m("sparsessp_mode", r0, "params") / m("sparsessp", r0, "params"),
            "ssp_r2_drop_r1_to_rmax": m("sparsessp", min(ratios), "r2") - m("sparsessp", max(ratios), "r2")}


def summarize(results: dict) -> str:
    """One README cell from a record (``results["metrics"]``) or from run()'s dict: mean-over-structures R^2 and
    PSNR (mean ± std over seeds) per r for SSP, SSP+MoDE and the 3D U-Net; per-structure R^2 at the largest r;
    the mean baseline; FLOPs and parameter ratios."""
    cfg = results.get("config", {})
    results = results.get("metrics", results)
    t, c = results["table"], results["claims"]
    names = results.get("structures", [])
    structs = f"{len(names)} structures ({'/'.join(names)}), " if names else "one target (no MoDE arm), "
    parts = [f"synthetic cells {'x'.join(map(str, cfg.get('shape', [])))}, {structs}"
             f"width {cfg.get('width')}, {cfg.get('steps')} steps, "
             f"{len(cfg.get('seeds', []))} seed(s)"] if cfg else []
    f = fmt_mean_std
    if "sparsessp_mode" not in t:          # a record from before the MoDE arm (single target)
        t = {**t, "sparsessp_mode": {r: {"r2": [float("nan")], "psnr": [float("nan")]} for r in t["sparsessp"]}}
        c = {**c, "flops_ratio_mode_over_ssp": float("nan"), "params_ratio_mode_over_ssp": float("nan")}
        names = []
    for r in t["sparsessp"]:
        parts.append(f"r={r}: R2 SSP {f(t['sparsessp'][r]['r2'], 2)}, MoDE {f(t['sparsessp_mode'][r]['r2'], 2)}, "
                     f"3D {f(t['unet3d'][r]['r2'], 2)}; PSNR {f(t['sparsessp'][r]['psnr'], 3)}, "
                     f"{f(t['sparsessp_mode'][r]['psnr'], 3)}, {f(t['unet3d'][r]['psnr'], 3)}")
    rmax = max(t["sparsessp"], key=int)
    if names:
        per = lambda n: "/".join(f"{np.mean([x[j] for x in t[n][rmax]['r2_per_structure']]):.2f}"  # noqa: E731
                                 for j in range(len(names)))
        parts.append(f"r={rmax} per-structure R2 SSP {per('sparsessp')}, MoDE {per('sparsessp_mode')}, 3D {per('unet3d')}")
    parts.append(f"mean baseline R2 {f(results['baseline']['r2'], 2)}, PSNR {f(results['baseline']['psnr'], 3)}")
    parts.append(f"FLOPs/pass SSP/3D {c['flops_ratio_ssp_over_unet']:.2f}, MoDE/SSP {c['flops_ratio_mode_over_ssp']:.2f} "
                 f"(MoDE needs one pass per structure); params SSP/3D {c['params_ratio_ssp_over_unet']:.2f}, "
                 f"MoDE/SSP {c['params_ratio_mode_over_ssp']:.2f}")
    return cell(*parts)
