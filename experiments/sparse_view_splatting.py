"""Sparse-view 3D Gaussian splatting with LM-Gaussian's priors: cumulative ablation (P46).

Library: :mod:`generative.reconstruction.splat` (renderer, density control, priors, diffusion repair),
:mod:`generative.reconstruction.cameras`, metrics from :mod:`generative.reconstruction.metrics`.

Scene: four Lambertian spheres (ray-traced, analytic depth/normals), ``n_views`` training cameras on a
360-degree orbit, ``n_test`` novel views at other azimuths. Variants (cumulative, as in the paper's
ablation): ``plain`` 3DGS (photometric loss only); ``+depth`` (Pearson depth prior, weight 0.1);
``+normal`` (normal prior 0.01 L1 + 0.01 (1 - cos)); ``+L_pr`` (weighted virtual-view regularisation:
L1 to renders of the initial point cloud at poses interpolated between consecutive training cameras,
weight 0.6 as ``stage1_360.py``); ``+refine`` (stage 2 as ``stage2_360.py``: ``rounds`` rounds of
rendering ``n_virtual`` virtual views, SDEdit repair by a tiny DDPM trained on the training views,
pseudo-GT L1 weighted min(1, 16 d / d_max), plus depth-normal consistency (0.05) and distortion (100);
the monocular depth/normal priors and L_pr are off in stage 2, as in the official code). A
non-cumulative arm ``+refine-nogeo`` drops the depth-normal and distortion terms from ``+refine``.
Every variant gets the same number of steps (stage 1 + stage 2; without refinement stage 2 continues
stage 1's losses).

Stand-ins and deviations (named): DUSt3R point cloud -> the true surface points of the training
views plus N(0, ``init_noise``^2) jitter (all of them for L_pr's point render, ``n_init`` of them for
the initial Gaussians); DUSt3R/Marigold depth -> ground truth under a random affine map plus smooth
warp and noise (``corrupt_depth``); Marigold normals -> noisy ground truth (``corrupt_normals``);
ControlNet/LoRA repair -> the project's DDPM; learning rates are 3DGS's scaled up for a few hundred
steps (position lr decays 10x, as 1e-4 -> 1e-5); densification is off by default (``densify_until``
= 0, as the official 360 config, whose densify_from = densify_until; the unit-tested
``densify_and_prune`` runs when it is > 0). The point render uses a radius of ``pr_radius_px`` pixels
(official: 0.01 NDC at ~500 px, about 2.5 px, which at 16-32 px would leave holes) and skips the
official division by the image maximum (a no-op with its white background). Each full-batch step
adds one L_pr term per training view (the official adds one per single-view iteration). Schedule of
the depth-normal and distortion terms: they start ``reg_from`` x stage-2 steps into stage 2 (default
0: at its start, as the README's forward-facing run, which resumes stage 2 at ``chkpnt6000`` =
``regularization_from_iter``; the 360 config sets it to its last iteration, 30000, where the terms
never act). They use the renderer's per-pixel ray depth (see ``splat.render``); the depth prior keeps
the mean-centre depth. Trivial baseline: the mean training colour as a constant image. Rendered
depth is composited over a far background depth ``far`` before the Pearson loss (the stand-in prior
has a far background too).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std, mean_std
from generative.reconstruction.cameras import orbit_camera, orbit_cameras
from generative.reconstruction.metrics import psnr, ssim
from generative.reconstruction.splat import (
    camera_arrays, corrupt_depth, corrupt_normals, densify_and_prune, depth_normal_loss, depth_prior_loss,
    distortion_loss, edge_weights, init_gaussians, interpolate_cameras, normal_prior_loss, photometric_loss,
    point_cloud_render, point_render_loss, pseudo_view_weights, render, repair, trace_spheres, train_repair_model,
)
from generative.reconstruction.splat.priors import LAMBDA_DEPTH
from generative.reconstruction.splat.regularizers import LAMBDA_DEPTH_NORMAL, LAMBDA_DISTORTION, LAMBDA_PR

PAPERS = ("P46",)
CLAIM = ("at sparse views, each large-model prior (depth, normal, virtual-view point render, diffusion repair of "
         "virtual views) improves novel-view quality of 3D Gaussian splatting")
VARIANTS = ("plain", "+depth", "+normal", "+L_pr", "+refine")  # cumulative chain
EXTRA = ("+refine-nogeo",)  # +refine without the depth-normal and distortion terms
ARMS = VARIANTS + EXTRA
# arm -> (depth prior, normal prior, L_pr, stage-2 refinement, depth-normal + distortion in stage 2)
_FLAGS = {"plain": (0, 0, 0, False, False), "+depth": (1, 0, 0, False, False), "+normal": (1, 1, 0, False, False),
          "+L_pr": (1, 1, 1, False, False), "+refine": (1, 1, 1, True, True), "+refine-nogeo": (1, 1, 1, True, False)}
_BASE = {"size": 32, "radius": 3.0, "elevation": 20.0, "fov": 50.0, "n_test": 6, "n_init": 300, "init_noise": 0.03,
         "init_scale": 0.06, "far": 6.0, "depth_noise": 0.05, "depth_smooth": 0.1, "normal_sigma": 0.3,
         "lr": {"means": 2e-3, "log_scales": 1e-2, "quats": 5e-3, "opacity_logits": 5e-2, "color_logits": 2e-2},
         "densify_every": 100, "densify_until": 0.0, "grad_threshold": 2e-4, "scale_threshold": 0.1,
         "rounds": 2, "n_virtual": 6, "repair_strength": 0.2, "repair_steps": 10, "pseudo_weight": 1.0,
         "ddpm_steps": 300, "ddpm_channels": [16, 32], "pr_per_pair": 10, "pr_radius_px": 1.5,
         "pr_points_per_pixel": 20, "reg_from": 0.0, "arms": list(ARMS)}
PRESETS = {
    "smoke": {**_BASE, "size": 16, "n_views": 3, "steps": 200, "steps2": 50, "ddpm_steps": 150, "seeds": [0, 1, 2]},
    "full": {**_BASE, "n_views": 8, "steps": 2000, "steps2": 1000, "rounds": 3, "n_test": 12, "n_init": 1000,
             "ddpm_steps": 2000, "seeds": [0, 1, 2], "size": 64},
}


def _views(config: dict, cams, rng, with_priors: bool = True) -> list[dict]:
    out = []
    for cam in cams:
        gt = trace_spheres(cam)
        v = {"cam": camera_arrays(cam), "rgb": jnp.asarray(gt["rgb"], jnp.float32), "gt": gt}
        if with_priors:
            v["depth_prior"] = jnp.asarray(corrupt_depth(gt["depth"], gt["mask"], rng, noise=config["depth_noise"],
                                                         smooth=config["depth_smooth"]), jnp.float32)
            v["normal_prior"] = jnp.asarray(corrupt_normals(gt["normals"], gt["mask"], rng, sigma=config["normal_sigma"]),
                                            jnp.float32)
            v["mask"] = jnp.asarray(gt["mask"])
            v["edge"] = edge_weights(v["rgb"])
        out.append(v)
    return out


def _stack(views, keys):
    return {k: jax.tree.map(lambda *a: jnp.stack(a), *[v[k] for v in views]) for k in keys}


_BATCH_KEYS = ("cam", "rgb", "depth_prior", "normal_prior", "mask", "edge")


def make_step(config: dict, tx, use_pseudo: bool, use_pr: bool = False, use_geo: bool = False):
    """Jitted Adam step on the summed LM-Gaussian stage-1 / stage-2 losses of all training views.

    ``lam = (depth, normal, L_pr, depth-normal + distortion)`` on/off factors are traced, so that a
    schedule does not recompile; ``use_pr`` / ``use_geo`` / ``use_pseudo`` (static) say whether the
    virtual point-render views, the geometry maps and the pseudo views are computed at all. ``pr``
    holds the stacked virtual cameras and point renders and ``pr_idx`` one virtual pose per training
    view for this step."""
    S, far = config["size"], config["far"]

    def view_loss(p, lam, v, pr_cam, pr_rgb):
        o = render(p, v["cam"], S, S, geometry=use_geo)
        loss = photometric_loss(o["rgb"], v["rgb"])
        loss = loss + lam[0] * LAMBDA_DEPTH * depth_prior_loss(o["depth"] + (1 - o["alpha"]) * far, v["depth_prior"])
        loss = loss + lam[1] * normal_prior_loss(o["normals"], v["normal_prior"], v["mask"])
        if use_pr:
            loss = loss + lam[2] * LAMBDA_PR * point_render_loss(render(p, pr_cam, S, S)["rgb"], pr_rgb)
        if use_geo:
            dn = depth_normal_loss(o["normals"], o["ray_depth"], o["alpha"], o["median_depth"], v["cam"]["K"])
            dist = distortion_loss(o["distortion"], o["alpha"], v["edge"])
            loss = loss + lam[3] * (LAMBDA_DEPTH_NORMAL * dn + LAMBDA_DISTORTION * dist)
        return loss

    def loss_fn(p, lam, batch, pseudo, pr, pr_idx):
        if use_pr:
            pr_cam = jax.tree.map(lambda a: a[pr_idx], pr["cam"])
            pr_rgb = pr["rgb"][pr_idx]
        else:
            pr_cam = pr_rgb = jnp.zeros(len(batch["rgb"]))
        tr = jax.vmap(view_loss, in_axes=(None, None, 0, 0, 0))(p, lam, batch, pr_cam, pr_rgb).sum()
        if use_pseudo:
            l1 = jax.vmap(lambda cam, img: jnp.abs(render(p, cam, S, S)["rgb"] - img).mean())(pseudo["cam"], pseudo["rgb"])
            tr = tr + config["pseudo_weight"] * (pseudo["w"] * l1).sum()
        return tr

    @jax.jit
    def step(p, opt, lam, batch, pseudo, pr, pr_idx):
        loss, g = jax.value_and_grad(loss_fn)(p, lam, batch, pseudo, pr, pr_idx)
        upd, opt = tx.update(g, opt, p)
        return optax.apply_updates(p, upd), opt, loss, jnp.linalg.norm(g["means"], axis=-1)

    return step


def _optimizer(config: dict, total: int):
    lr = config["lr"]
    groups = {k: optax.adam(optax.exponential_decay(v, total, 0.1) if k == "means" else v, eps=1e-15)
              for k, v in lr.items()}
    return optax.multi_transform(groups, {k: k for k in lr})


def point_render_targets(config: dict, train_cams, points, colors) -> dict:
    """L_pr targets: the point cloud rendered at the poses interpolated between consecutive training cameras."""
    vcams = interpolate_cameras(train_cams, config["pr_per_pair"])
    rgb = [point_cloud_render(points, colors, c, radius_px=config["pr_radius_px"],
                              points_per_pixel=config["pr_points_per_pixel"]) for c in vcams]
    return {"cam": jax.tree.map(lambda *a: jnp.stack(a), *[camera_arrays(c) for c in vcams]),
            "rgb": jnp.asarray(np.stack(rgb), jnp.float32)}


def train_variant(config: dict, variant: str, train, test, params0, repairer, seed: int, steps_fns, pr=None,
                  bar=None) -> dict:
    """Stage 1 (+ stage 2) for one arm; novel-view PSNR / SSIM / depth MAE."""
    d, n, use_pr, refine, geo = _FLAGS[variant]
    lam1 = jnp.asarray([d, n, use_pr, 0], jnp.float32)
    steps, steps2 = config["steps"], config["steps2"] * max(config["rounds"], 1)
    tx, get_step = steps_fns
    step = get_step(False, bool(use_pr), False)
    params = dict(params0)
    opt = tx.init(params)
    batch = _stack(train, _BATCH_KEYS)
    rng = np.random.default_rng(seed)
    V = len(train)
    n_pr = 1 if pr is None else len(pr["rgb"])
    acc = np.zeros(len(params["means"]))
    for i in range(steps):
        pr_idx = jnp.asarray(rng.integers(n_pr, size=V))
        params, opt, loss, gn = step(params, opt, lam1, batch, None, pr if use_pr else None, pr_idx)
        acc += np.asarray(gn)
        if (i + 1) % config["densify_every"] == 0 and i + 1 <= config["densify_until"] * steps:
            params = densify_and_prune(params, acc / config["densify_every"], rng,
                                       grad_threshold=config["grad_threshold"], scale_threshold=config["scale_threshold"])
            opt = tx.init(params)  # deviation: moments reset after each densification
            acc = np.zeros(len(params["means"]))
        if bar is not None:
            bar.update()
    S = config["size"]
    if refine:
        az_train = 360.0 * np.arange(config["n_views"]) / config["n_views"]
        vcams = [orbit_camera(a, radius=config["radius"], elevation_deg=config["elevation"], width=S, height=S,
                              fov_deg=config["fov"]) for a in 360.0 * (np.arange(config["n_virtual"]) + 0.37) / config["n_virtual"]]
        w = pseudo_view_weights([c.center for c in vcams],
                                [orbit_camera(a, radius=config["radius"], elevation_deg=config["elevation"]).center
                                 for a in az_train])
        cams = jax.tree.map(lambda *a: jnp.stack(a), *[camera_arrays(c) for c in vcams])
        pstep = get_step(True, False, geo)
        k = 0
        for r in range(config["rounds"]):
            renders = jax.vmap(lambda cam: render(params, cam, S, S)["rgb"])(cams)
            fixed = repair(repairer, renders, jax.random.PRNGKey(1000 * seed + r), strength=config["repair_strength"],
                           num_steps=config["repair_steps"])
            pseudo = {"cam": cams, "rgb": fixed, "w": jnp.asarray(w, jnp.float32)}
            for _ in range(config["steps2"]):
                # stage 2 (stage2_360.py): monocular depth/normal priors and L_pr off, geometry terms on from reg_from
                lam2 = jnp.asarray([0, 0, 0, float(geo and k >= config["reg_from"] * steps2)], jnp.float32)
                params, opt, loss, _ = pstep(params, opt, lam2, batch, pseudo, None, jnp.zeros(V, jnp.int32))
                k += 1
                if bar is not None:
                    bar.update()
    else:
        for _ in range(steps2):
            pr_idx = jnp.asarray(rng.integers(n_pr, size=V))
            params, opt, loss, _ = step(params, opt, lam1, batch, None, pr if use_pr else None, pr_idx)
            if bar is not None:
                bar.update()
    return {**evaluate(params, test, S), "n_gaussians": int(len(params["means"])), "final_loss": float(loss)}


def evaluate(params: dict, test: list[dict], S: int) -> dict:
    """Mean novel-view PSNR, SSIM (shared metrics) and foreground depth MAE."""
    ps, ss, dm = [], [], []
    for v in test:
        o = render(params, v["cam"], S, S)
        img = np.clip(np.asarray(o["rgb"], np.float64), 0, 1)
        ps.append(psnr(img, v["gt"]["rgb"], data_range=1.0))
        ss.append(ssim(img, v["gt"]["rgb"], data_range=1.0, channel_axis=-1))
        m = v["gt"]["mask"]
        d = np.asarray(o["depth"]) / np.maximum(np.asarray(o["alpha"]), 1e-6)
        dm.append(float(np.abs(d[m] - v["gt"]["depth"][m]).mean()))
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "depth_mae": float(np.mean(dm))}


def run(config: dict, ctx) -> dict:
    """All variants for every seed, plus the mean-colour baseline."""
    S = config["size"]
    kw = dict(radius=config["radius"], elevation_deg=config["elevation"], width=S, height=S, fov_deg=config["fov"])
    train_cams = orbit_cameras(config["n_views"], **kw)
    test_cams = orbit_cameras(config["n_test"], phase_deg=180.0 / config["n_test"] + 7.0, **kw)
    per_run = config["steps"] + config["steps2"] * max(config["rounds"], 1)
    tx = _optimizer(config, per_run)
    arms = [a for a in ARMS if a in config.get("arms", ARMS)]
    if not arms or any(a not in _FLAGS for a in config.get("arms", ARMS)):
        raise ValueError(f"arms must be a non-empty subset of {ARMS}, got {config.get('arms')}")
    cache = {}

    def get_step(pseudo, pr, geo):
        if (pseudo, pr, geo) not in cache:
            cache[pseudo, pr, geo] = make_step(config, tx, pseudo, pr, geo)
        return cache[pseudo, pr, geo]

    steps_fns = (tx, get_step)
    bar = ctx.progress(total=len(config["seeds"]) * len(arms) * per_run, desc="sparse-view splatting")
    rows = {v: [] for v in arms}
    t0 = time.perf_counter()
    base, ddpm_loss = [], []
    for seed in config["seeds"]:
        s = 1000 * ctx.seed + seed
        rng = np.random.default_rng(s)
        train = _views(config, train_cams, rng)
        test = _views(config, test_cams, rng, with_priors=False)
        pts = np.concatenate([v["gt"]["points"][v["gt"]["mask"]] for v in train])
        cols = np.concatenate([v["gt"]["rgb"][v["gt"]["mask"]] for v in train])
        cloud = pts + config["init_noise"] * rng.standard_normal(pts.shape)  # stand-in for the DUSt3R cloud
        idx = rng.choice(len(pts), min(config["n_init"], len(pts)), replace=False)
        params0 = init_gaussians(cloud[idx], cols[idx], scale=config["init_scale"])
        pr = point_render_targets(config, train_cams, cloud, cols) if any(_FLAGS[a][2] for a in arms) else None
        imgs = np.stack([np.asarray(v["rgb"]) for v in train])
        repairer = None
        if any(_FLAGS[a][3] for a in arms):  # the repair prior is needed by the refinement arms only
            repairer = train_repair_model(imgs, jax.random.PRNGKey(s), steps=config["ddpm_steps"],
                                          channels=config["ddpm_channels"], seed=s)
            ctx.log(f"[{time.perf_counter() - t0:.0f}s] repair DDPM trained")
            ddpm_loss.append(float(np.mean(repairer["losses"][-20:])))
        mean_img = np.broadcast_to(imgs.reshape(-1, 3).mean(0), imgs.shape[1:])
        base.append({"psnr": float(np.mean([psnr(mean_img, v["gt"]["rgb"], data_range=1.0) for v in test])),
                     "ssim": float(np.mean([ssim(mean_img, v["gt"]["rgb"], data_range=1.0, channel_axis=-1) for v in test]))})
        for var in arms:
            rows[var].append(train_variant(config, var, train, test, params0, repairer, s, steps_fns, pr, bar))
            r = rows[var][-1]
            ctx.log(f"[{time.perf_counter() - t0:.0f}s] seed {seed} {var}: PSNR {r['psnr']:.2f} SSIM {r['ssim']:.3f} depth MAE {r['depth_mae']:.3f} "
                    f"N={r['n_gaussians']}")
    bar.close()
    summary = {v: {k: [r[k] for r in rs] for k in rs[0]} for v, rs in rows.items()}
    baseline = {k: [b[k] for b in base] for k in base[0]}
    gains = {}
    chain = [v for v in VARIANTS if v in summary]
    pairs = list(zip(chain[:-1], chain[1:]))
    if "+refine-nogeo" in summary and "+refine" in summary:
        pairs.append(("+refine-nogeo", "+refine"))  # the depth-normal + distortion terms alone
    for prev, cur in pairs:
        d = np.asarray(summary[cur]["psnr"]) - np.asarray(summary[prev]["psnr"])
        key = cur if prev != "+refine-nogeo" else "dn+dist"
        gains[key] = {"vs": prev, "dpsnr_mean": float(d.mean()), "dpsnr_std": float(d.std()),
                      "helps": bool(d.mean() > d.std())}
    ctx.save_figure(plot(summary, baseline), "sparse_view_splatting.png")
    return {"variants": summary, "baseline": baseline, "gains": gains, "ddpm_final_loss": ddpm_loss,
            "claims": {"each_prior_helps": all(g["helps"] for k, g in gains.items() if k != "dn+dist"),
                       **({"dn_dist_help": gains["dn+dist"]["helps"]} if "dn+dist" in gains else {})}}


def plot(summary: dict, baseline: dict):
    """Novel-view PSNR and SSIM (mean and std over seeds) of each cumulative variant, with the mean-colour image."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    names = list(summary)
    for ax, key in zip(axes, ("psnr", "ssim")):
        vals = [np.asarray(summary[v][key]) for v in names]
        ax.bar(names, [v.mean() for v in vals], yerr=[v.std() for v in vals], capsize=3)
        ax.axhline(np.mean(baseline[key]), color="grey", ls="--", label="mean-colour image")
        ax.set_ylabel({"psnr": "novel-view PSNR (dB)", "ssim": "novel-view SSIM"}[key])
        ax.tick_params(axis="x", labelrotation=20)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """One README cell (from the record): novel-view PSNR per variant, increments, baseline."""
    results = results.get("metrics", results)
    v, b = results["variants"], results["baseline"]
    parts = [f"PSNR {k} {fmt_mean_std(v[k]['psnr'], 3)}" for k in ARMS if k in v]
    parts.append("dPSNR " + ", ".join(f"{k} {g['dpsnr_mean']:+.2f}±{g['dpsnr_std']:.2f}" for k, g in results["gains"].items()))
    parts.append(f"mean-colour baseline {fmt_mean_std(b['psnr'], 3)} dB")
    parts.append("each prior helps: " + ("yes" if results["claims"]["each_prior_helps"] else "no"))
    if "dn_dist_help" in results["claims"]:
        parts.append("depth-normal + distortion help: " + ("yes" if results["claims"]["dn_dist_help"] else "no"))
    return cell(*parts)
