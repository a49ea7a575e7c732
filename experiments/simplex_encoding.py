"""Simplex-grid vs hash-grid field encodings: speed against dimension, fitting quality at equal parameters (P40).

Library: :mod:`generative.reconstruction.fields` (both encodings share levels, hash and gather code).

* K1 encoding time: jit-compiled encode of ``n_points`` random points in ``[0, 1]^d``, d = 2..7,
  forward and forward+backward (gradient w.r.t. the tables), median of ``repeats`` runs after
  compilation, both lattices timed in the same process; ratio simplex / grid and the vertices
  touched per point and level (2^d vs d + 1).
  Equal-quality criterion of the verdict (ours, not the paper's): simplex image PSNR at most 0.5 dB
  below the grid's and SDF band MAE at most 10% above it.
* K2 image fitting: ``skimage.data.camera()`` resized to ``image_size``^2 (smoke: 128^2 pixels for
  ~9.8k parameters, so the fit is capacity-limited), pixel centres -> grey value, the same field (tables + ReLU MLP, identical parameter count) with either lattice, Adam
  (0.9, 0.99, eps 1e-15, Instant-NGP's), full-batch L2; PSNR on the image it was fitted to.
* K3 3D SDF fitting: analytic torus U box in the unit cube, each step ``sdf_batch`` points (half
  uniform, half in the band |sdf| < ``band``) drawn from a fixed pool, L1 loss; held-out band MAE and
  occupancy IoU (sign of the SDF) on fresh uniform points.
* K4 volume-rendering timing: a 3D field (density + RGB) rendered along ``n_rays`` parallel rays with
  ``samples`` points each (alpha compositing), time per frame for both lattices. It times rendering
  of an untrained field; no NeRF is fitted (deviation: P40 times full NeRF training).

Trivial baselines: the mean predictor (PSNR of the mean grey value; SDF MAE of the training mean;
IoU of predicting "all outside"). Seeds give mean ± std. CPU timings are not the paper's CUDA
kernels: only relative trends are meaningful.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from skimage import data as skdata
from skimage.transform import resize

from experiments._stats import cell, fmt_mean_std
from generative.reconstruction import (
    LATTICES, apply_field, encode, init_field, init_tables, level_resolutions, vertices_touched,
)
from sparsejax.core import param_count
from sparsejax.timing import time_per_call

PAPERS = ("P40",)
CLAIM = ("a simplex-based encoding (d+1 vertices instead of 2^d corners) is faster than the hash grid at equal "
         "quality, with a gap that grows with dimension")

_ADAM = {"b1": 0.9, "b2": 0.99, "eps": 1e-15}
PRESETS = {
    "smoke": {"dims": [2, 3, 4, 5, 6, 7], "n_points": 8192, "time_levels": 8, "time_table": 2 ** 14,
              "n_features": 2, "repeats": 5,
              "image_size": 128, "image_levels": 8, "image_table": 2 ** 9, "image_res": [8, 128],
              "image_steps": 300, "lr": 1e-2, "hidden": [32, 32],
              "sdf_levels": 8, "sdf_table": 2 ** 12, "sdf_res": [8, 128], "sdf_steps": 300, "sdf_batch": 4096,
              "band": 0.05, "sdf_eval": 16384, "seeds": [0, 1, 2],
              "n_rays": 1024, "samples": [16, 64]},
    "full": {"dims": [2, 3, 4, 5, 6, 7], "n_points": 65536, "time_levels": 16, "time_table": 2 ** 16,
             "n_features": 2, "repeats": 10,
             "image_size": 256, "image_levels": 12, "image_table": 2 ** 14, "image_res": [16, 256],
             "image_steps": 2000, "lr": 1e-2, "hidden": [64, 64],
             "sdf_levels": 12, "sdf_table": 2 ** 16, "sdf_res": [16, 512], "sdf_steps": 2000, "sdf_batch": 16384,
             "band": 0.05, "sdf_eval": 65536, "seeds": [0, 1, 2],
             "n_rays": 4096, "samples": [32, 64, 128, 256]},
}


def time_encodings(config: dict, key, bar) -> list[dict]:
    """K1: forward and forward+backward encode time per lattice and dimension."""
    res = jnp.asarray(level_resolutions(config["time_levels"], 16, 512), jnp.float32)
    tables = init_tables(key, config["time_levels"], config["time_table"], config["n_features"])
    rows = []
    for d in config["dims"]:
        x = jax.random.uniform(jax.random.fold_in(key, d), (config["n_points"], d))
        row = {"d": d}
        for lat in LATTICES:
            fwd = jax.jit(lambda t, p, r, lat=lat: encode(t, p, r, lat))
            bwd = jax.jit(jax.grad(lambda t, p, r, lat=lat: encode(t, p, r, lat).sum()))
            row[lat] = {"forward_s": time_per_call(fwd, tables, x, res, repeats=config["repeats"]),
                        "backward_s": time_per_call(bwd, tables, x, res, repeats=config["repeats"]),
                        "vertices": vertices_touched(d, lat)}
            bar.update()
        row["ratio_forward"] = row["simplex"]["forward_s"] / row["grid"]["forward_s"]
        row["ratio_backward"] = row["simplex"]["backward_s"] / row["grid"]["backward_s"]
        rows.append(row)
    return rows


def _fit(params, loss_fn, batches, steps: int, lr: float, name: str):
    opt = optax.adam(lr, **_ADAM)

    @jax.jit
    def step(p, s, i):
        loss, g = jax.value_and_grad(loss_fn)(p, *batches(i))
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    state = opt.init(params)
    jax.block_until_ready(step(params, state, 0))                      # compile outside the timed loop
    t0 = time.perf_counter()
    for i in range(steps):
        params, state, loss = step(params, state, i)
        if i % 50 == 0 and not np.isfinite(float(loss)):
            raise FloatingPointError(f"{name}: non-finite loss at step {i}")
    jax.block_until_ready(params)
    return params, time.perf_counter() - t0


def camera_image(size: int) -> np.ndarray:
    """scikit-image's bundled camera image resized (anti-aliased) to size x size, values in [0, 1]."""
    return resize(skdata.camera().astype(np.float64) / 255.0, (size, size), anti_aliasing=True).astype(np.float32)


def fit_image(config: dict, lattice: str, seed: int) -> dict:
    """K2: fit the camera image with one lattice; PSNR on the fitted image."""
    img = camera_image(config["image_size"])
    n = img.shape[0]
    grid = (np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) + 0.5) / n
    x, y = jnp.asarray(grid, jnp.float32), jnp.asarray(img.reshape(-1, 1))
    res = jnp.asarray(level_resolutions(config["image_levels"], *config["image_res"]), jnp.float32)
    params = init_field(jax.random.PRNGKey(seed), 2, 1, n_levels=config["image_levels"],
                        table_size=config["image_table"], n_features=config["n_features"], hidden=config["hidden"])

    def loss(p, xb, yb):
        return jnp.mean((apply_field(p, xb, res, lattice) - yb) ** 2)

    params, wall = _fit(params, loss, lambda i: (x, y), config["image_steps"], config["lr"], f"image/{lattice}")
    mse = float(loss(params, x, y))
    return {"psnr": float(10 * np.log10(1.0 / mse)), "train_s": wall, "params": param_count(params),
            "pixels": int(n * n)}


def shape_sdf(p) -> jnp.ndarray:
    """Signed distance to a torus (R 0.25, r 0.07, axis y) united with a box (half-size 0.1), centred at 0.5."""
    q = p - 0.5
    torus = jnp.sqrt((jnp.linalg.norm(q[:, [0, 2]], axis=-1) - 0.25) ** 2 + q[:, 1] ** 2) - 0.07
    e = jnp.abs(q) - 0.1
    box = jnp.linalg.norm(jnp.maximum(e, 0.0), axis=-1) + jnp.minimum(e.max(-1), 0.0)
    return jnp.minimum(torus, box)


def _band_points(key, n: int, band: float) -> jnp.ndarray:
    """n points with |sdf| < band by rejection from uniform samples."""
    out, have = [], 0
    while have < n:
        key, sub = jax.random.split(key)
        p = jax.random.uniform(sub, (8 * n, 3))
        keep = p[jnp.abs(shape_sdf(p)) < band]
        out.append(keep)
        have += keep.shape[0]
    return jnp.concatenate(out)[:n]


def fit_sdf(config: dict, lattice: str, seed: int) -> dict:
    """K3: fit the analytic SDF with one lattice (L1); held-out band MAE and occupancy IoU."""
    key = jax.random.PRNGKey(100 + seed)
    k_u, k_b, k_eu, k_eb, k_init, k_perm = jax.random.split(key, 6)
    pool_n = 8 * config["sdf_batch"]
    pool = jnp.concatenate([jax.random.uniform(k_u, (pool_n, 3)), _band_points(k_b, pool_n, config["band"])])
    pool_y = shape_sdf(pool)[:, None]
    res = jnp.asarray(level_resolutions(config["sdf_levels"], *config["sdf_res"]), jnp.float32)
    params = init_field(k_init, 3, 1, n_levels=config["sdf_levels"], table_size=config["sdf_table"],
                        n_features=config["n_features"], hidden=config["hidden"])
    half = config["sdf_batch"] // 2

    def batches(i):
        k = jax.random.fold_in(k_perm, i)
        iu = jax.random.randint(k, (half,), 0, pool_n)
        ib = jax.random.randint(jax.random.fold_in(k, 1), (half,), pool_n, 2 * pool_n)
        idx = jnp.concatenate([iu, ib])
        return pool[idx], pool_y[idx]

    def loss(p, xb, yb):
        return jnp.mean(jnp.abs(apply_field(p, xb, res, lattice) - yb))

    params, wall = _fit(params, loss, batches, config["sdf_steps"], config["lr"], f"sdf/{lattice}")
    xb = _band_points(k_eb, config["sdf_eval"], config["band"])
    xu = jax.random.uniform(k_eu, (config["sdf_eval"], 3))
    pred_b, pred_u = apply_field(params, xb, res, lattice)[:, 0], apply_field(params, xu, res, lattice)[:, 0]
    true_b, true_u = shape_sdf(xb), shape_sdf(xu)
    inside_p, inside_t = pred_u < 0, true_u < 0
    iou = float((inside_p & inside_t).sum() / jnp.maximum((inside_p | inside_t).sum(), 1))
    mean_val = float(pool_y.mean())
    return {"band_mae": float(jnp.abs(pred_b - true_b).mean()), "iou": iou, "train_s": wall,
            "params": param_count(params), "mean_band_mae": float(jnp.abs(mean_val - true_b).mean()),
            "mean_iou": float(inside_t.sum() / inside_t.size) if mean_val < 0 else 0.0}


def time_rendering(config: dict, key, bar) -> list[dict]:
    """K4: alpha-composited rendering of a 3D density+RGB field along parallel rays (untrained field)."""
    res = jnp.asarray(level_resolutions(config["sdf_levels"], *config["sdf_res"]), jnp.float32)
    params = init_field(key, 3, 4, n_levels=config["sdf_levels"], table_size=config["sdf_table"],
                        n_features=config["n_features"], hidden=config["hidden"])
    side = int(np.sqrt(config["n_rays"]))
    xy = (np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2) + 0.5) / side
    rows = []
    for s in config["samples"]:
        z = (np.arange(s) + 0.5) / s
        pts = jnp.asarray(np.concatenate([np.repeat(xy, s, 0), np.tile(z, len(xy))[:, None]], 1), jnp.float32)
        row = {"samples": s, "rays": len(xy)}
        for lat in LATTICES:
            def render(p, pts=pts, lat=lat):
                out = apply_field(p, pts, res, lat).reshape(len(xy), s, 4)
                alpha = 1.0 - jnp.exp(-jax.nn.softplus(out[..., 0]) / s)
                trans = jnp.cumprod(jnp.concatenate([jnp.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
                return ((trans * alpha)[..., None] * jax.nn.sigmoid(out[..., 1:])).sum(1)
            row[lat] = time_per_call(jax.jit(render), params, repeats=config["repeats"])
        row["ratio"] = row["simplex"] / row["grid"]
        rows.append(row)
        bar.update()
    return rows


def run(config: dict, ctx) -> dict:
    """K1 timing, K2 image and K3 SDF fits for both lattices and all seeds, K4 rendering timing."""
    key = jax.random.PRNGKey(ctx.seed)
    n_fits = 2 * len(LATTICES) * len(config["seeds"])
    bar = ctx.progress(total=len(config["dims"]) * 2 + n_fits + len(config["samples"]), desc="simplex encoding")
    timing = time_encodings(config, key, bar)
    for r in timing:
        ctx.log(f"d={r['d']}: grid fwd {r['grid']['forward_s'] * 1e3:.1f} ms, simplex {r['simplex']['forward_s'] * 1e3:.1f}"
                f" ms (ratio {r['ratio_forward']:.2f}); fwd+bwd ratio {r['ratio_backward']:.2f}")
    fits = {"image": {lat: [] for lat in LATTICES}, "sdf": {lat: [] for lat in LATTICES}}
    for seed in config["seeds"]:
        for lat in LATTICES:
            fits["image"][lat].append(fit_image(config, lat, 1000 * ctx.seed + seed))
            bar.update()
            fits["sdf"][lat].append(fit_sdf(config, lat, 1000 * ctx.seed + seed))
            bar.update()
            ctx.log(f"seed {seed} {lat}: image PSNR {fits['image'][lat][-1]['psnr']:.2f} dB, SDF band MAE "
                    f"{fits['sdf'][lat][-1]['band_mae']:.4f} IoU {fits['sdf'][lat][-1]['iou']:.3f}")
    render = time_rendering(config, jax.random.fold_in(key, 7), bar)
    bar.close()
    img = camera_image(config["image_size"])
    sdf0 = fits["sdf"]["grid"][0]
    baseline = {"image_psnr": float(10 * np.log10(1.0 / np.mean((img - img.mean()) ** 2))),
                "sdf_band_mae": sdf0["mean_band_mae"], "sdf_iou": sdf0["mean_iou"]}
    summary = {task: {lat: {k: [r[k] for r in rows] for k in rows[0] if not k.startswith("mean_")}
                      for lat, rows in per.items()} for task, per in fits.items()}
    ctx.save_figure(plot(timing, render), "simplex_encoding.png")
    return {"timing": timing, "fits": summary, "render": render, "baseline": baseline,
            "claims": _claims(timing, summary)}


def _claims(timing, fits) -> dict:
    ratios = [r["ratio_forward"] for r in timing]
    img = {lat: float(np.mean(fits["image"][lat]["psnr"])) for lat in LATTICES}
    faster_from = None                                      # smallest d from which the simplex is faster at every d
    for r in reversed(timing):
        if r["ratio_forward"] >= 1.0:
            break
        faster_from = r["d"]
    return {"simplex_faster_from_d": faster_from,
            "ratio_decreases_with_d": bool(ratios[-1] < ratios[0]),
            "image_psnr_gap_db": img["simplex"] - img["grid"],
            "sdf_mae_ratio": float(np.mean(fits["sdf"]["simplex"]["band_mae"]) / np.mean(fits["sdf"]["grid"]["band_mae"]))}


def plot(timing, render):
    """Forward / forward+backward time against d for both lattices, and the render-time ratio."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ds = [r["d"] for r in timing]
    for lat, style in (("grid", "-"), ("simplex", "--")):
        axes[0].plot(ds, [r[lat]["forward_s"] * 1e3 for r in timing], style, marker="o", label=f"{lat} forward")
        axes[0].plot(ds, [r[lat]["backward_s"] * 1e3 for r in timing], style, marker="s", label=f"{lat} fwd+bwd")
    axes[0].set_yscale("log"), axes[0].set_xlabel("dimension d"), axes[0].set_ylabel("ms (median)")
    axes[0].legend(fontsize=7)
    axes[1].plot([r["samples"] for r in render], [r["ratio"] for r in render], marker="o")
    axes[1].axhline(1.0, color="grey", lw=0.5)
    axes[1].set_xlabel("samples per ray"), axes[1].set_ylabel("render time simplex / grid")
    return fig


def summarize(results: dict) -> str:
    """One README cell: time ratios against d, image/SDF quality beside the mean predictor, the verdict."""
    m, cfg = results["metrics"], results["config"]
    f, b, cl = m["fits"], m["baseline"], m["claims"]
    parts = [f"shared 2-core CPU (noisy timings), jit; K1 {cfg['n_points']} pts, L={cfg['time_levels']}, T=2^{int(np.log2(cfg['time_table']))}, "
             f"F={cfg['n_features']}",
             "simplex/grid fwd time by d: " + ", ".join(f"{r['d']}: {r['ratio_forward']:.2f}" for r in m["timing"]),
             "fwd+bwd: " + ", ".join(f"{r['d']}: {r['ratio_backward']:.2f}" for r in m["timing"]),
             "vertices " + ", ".join(f"{r['d']}: {r['grid']['vertices']} vs {r['simplex']['vertices']}"
                                     for r in m["timing"]),
             f"camera {cfg['image_size']}^2, {f['image']['grid']['params'][0]} params each, {cfg['image_steps']} steps: "
             f"PSNR grid {fmt_mean_std(f['image']['grid']['psnr'])}, simplex {fmt_mean_std(f['image']['simplex']['psnr'])}"
             f" dB (mean predictor {b['image_psnr']:.2f})",
             f"SDF torus+box {cfg['sdf_steps']} steps: band MAE grid {fmt_mean_std(f['sdf']['grid']['band_mae'])}, "
             f"simplex {fmt_mean_std(f['sdf']['simplex']['band_mae'])} (mean {b['sdf_band_mae']:.3f}); IoU grid "
             f"{fmt_mean_std(f['sdf']['grid']['iou'])}, simplex {fmt_mean_std(f['sdf']['simplex']['iou'])}",
             "render ratio by samples/ray: " + ", ".join(f"{r['samples']}: {r['ratio']:.2f}" for r in m["render"])]
    faster = cl["simplex_faster_from_d"]
    worse = [name for name, bad in (("image", cl["image_psnr_gap_db"] < -0.5), ("SDF", cl["sdf_mae_ratio"] > 1.1)) if bad]
    parts.append(f"claim: speed {'held at every d >= ' + str(faster) if faster is not None else 'did not hold at the largest d'}"
                 f", gap grows with d: {'yes' if cl['ratio_decreases_with_d'] else 'no'}; simplex quality "
                 f"{'on par or better' if not worse else 'worse on ' + ' and '.join(worse)} "
                 "(criterion: dPSNR >= -0.5 dB, MAE ratio <= 1.1) "
                 f"(image dPSNR {cl['image_psnr_gap_db']:+.2f} dB, SDF MAE ratio {cl['sdf_mae_ratio']:.2f}); paper: "
                 "CUDA, 9.4% faster gigapixel, up to 41% faster rendering")
    return cell(*parts)
