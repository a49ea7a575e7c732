"""P43 ISS-P: sparse x2 super-resolution from scratch: soft shrinkage vs hard-threshold pruning.

Paper: "Iterative Soft Shrinkage Learning for Efficient Image Super-Resolution" (Wang et al.,
ICCV 2023; code ``Jiamian-Wang/Iterative-Soft-Shrinkage-SR``). An EDSR-lite x2 network is trained
from random init on HR patches of scikit-learn's ``china.jpg`` (LR by bicubic downsampling,
``jax.image.resize``) and tested on the whole ``flower.jpg``: PSNR on the Y channel with a
``scale``-pixel border shaved. At each sparsity ``p`` every method gets the same steps: a prune
stage of ``prune_steps`` and a fine-tune stage of ``finetune_steps`` with the mask fixed.

* ISS-P (``sparsejax.pruning.iss_p``) with alpha 0.95 and 0.99, and IHT (alpha 0): every step the
  layer's bottom-``p`` weights (after the Adam step) are scaled by alpha; then the mask freezes;
* a static random mask (uniform ``p`` per layer) for both stages;
* gradual magnitude pruning (Zhu & Gupta cubic schedule over the prune stage, ``sj.gradual_pruning``);
* the dense network, and bicubic upsampling (the trivial baseline).

As in the code, the upsampling tail is not pruned (``*tail*`` skipped; there is no mean-shift
layer). "Gradient throughput": per-layer norm and variance of ``|grad|`` (the statistics of the
code's ``grad_prune_dict``) on a fixed probe batch at the end of each prune-stage chunk.

Deviations: EDSR-lite (``channels`` x ``blocks`` residual blocks, pixel shuffle) instead of
EDSR-L / SwinIR / CAT; the network predicts a residual over the bicubic image (EDSR has no
image-space skip; this makes short CPU runs meaningful); Adam at constant ``learning_rate``
instead of 2e-4 with MultiStepLR; hundreds instead of 100k+200k iterations; unstructured masks
only (no ``min_N:M``).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.pruning import frozen_mask, gradient_stats, iss_p
from sparsejax.train import TrainState, fit, make_train_step
from sparsejax.train.divergence import check_finite_loss
from sparsejax.train.tracking import log_scalars

PAPERS = ("P43",)
CLAIM = "ISS-P (soft shrinkage of the bottom-p weights) beats hard-threshold pruning (IHT, magnitude, random) at equal sparsity for SR (P43)"

PRESETS = {
    "smoke": {"sparsities": [0.9, 0.95, 0.99], "channels": 16, "blocks": 2, "patch": 32, "n_patches": 1024,
              "batch_size": 16, "prune_steps": 150, "finetune_steps": 100, "learning_rate": 1e-3, "seeds": [0],
              "chunks": 3},
    "full": {"sparsities": [0.9, 0.95, 0.99], "channels": 32, "blocks": 4, "patch": 48, "n_patches": 4096,
             "batch_size": 16, "prune_steps": 1500, "finetune_steps": 1500, "learning_rate": 1e-3,
             "seeds": [0, 1, 2], "chunks": 10},
}
SCALE = 2
METHODS = ("iss_p_0.95", "iss_p_0.99", "iht", "random", "gradual_magnitude")


def pixel_shuffle(x, r: int):
    """``(B, h, w, c r^2) -> (B, h r, w r, c)`` (depth-to-space)."""
    b, h, w, c = x.shape
    c_out = c // (r * r)
    return x.reshape(b, h, w, r, r, c_out).transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, c_out)


def bicubic_up(x, scale: int = SCALE):
    """Bicubic upsampling of a batch ``(B, h, w, c)`` by ``scale``."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, h * scale, w * scale, c), "bicubic")


class EDSRLite(nn.Module):
    """EDSR-style x2 SR network: head conv, residual blocks (conv-ReLU-conv), body conv + long skip,
    ``tail_up`` conv + pixel shuffle, ``tail_out`` conv (zero-initialised, so training starts at bicubic);
    output added to the bicubic upsampling."""

    channels: int = 32
    blocks: int = 4
    scale: int = SCALE

    @nn.compact
    def __call__(self, x):
        conv = lambda c, name: nn.Conv(c, (3, 3), padding="SAME", name=name)  # noqa: E731
        head = conv(self.channels, "head")(x)
        h = head
        for i in range(self.blocks):
            r = nn.relu(conv(self.channels, f"body_{i}_conv1")(h))
            h = h + conv(self.channels, f"body_{i}_conv2")(r)
        h = conv(self.channels, "body_out")(h) + head
        up = pixel_shuffle(conv(self.channels * self.scale ** 2, "tail_up")(h), self.scale)
        out = nn.Conv(x.shape[-1], (3, 3), padding="SAME", kernel_init=nn.initializers.zeros, name="tail_out")(up)
        return out + bicubic_up(x, self.scale)


def prunable(path: str, leaf) -> bool:
    """Conv kernels except the upsampling tail (the official code skips ``*tail*`` and ``*mean*``)."""
    return getattr(leaf, "ndim", 0) >= 2 and "tail" not in path


def l1_loss(pred, target):
    """Mean absolute error (EDSR's loss)."""
    return jnp.mean(jnp.abs(pred - target))


def psnr_y(pred, target, shave: int = SCALE) -> float:
    """PSNR (dB) on the BT.601 luma channel, ``shave`` border pixels removed, images in [0, 1]."""
    coef = np.array([65.481, 128.553, 24.966]) / 255.0
    y_p = 16 / 255 + np.clip(np.asarray(pred), 0, 1) @ coef
    y_t = 16 / 255 + np.asarray(target) @ coef
    if shave:
        y_p, y_t = y_p[:, shave:-shave, shave:-shave], y_t[:, shave:-shave, shave:-shave]
    mse = np.mean((y_p - y_t) ** 2, axis=(1, 2))
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12))))


def make_data(config, seed: int = 0):
    """HR/LR training patches of china.jpg and the whole flower.jpg (HR/LR) as the test image."""
    from sklearn.datasets import load_sample_images

    china, flower = [im.astype(np.float32) / 255.0 for im in load_sample_images().images]
    rng = np.random.default_rng(seed)

    def crops(img, n, size):
        ys = rng.integers(0, img.shape[0] - size, n)
        xs = rng.integers(0, img.shape[1] - size, n)
        return np.stack([img[y:y + size, x:x + size] for y, x in zip(ys, xs)])

    def down(hr):
        b, h, w, c = hr.shape
        return np.asarray(jax.image.resize(hr, (b, h // SCALE, w // SCALE, c), "bicubic"))

    hr_tr = crops(china, config["n_patches"], config["patch"])
    h, w = (flower.shape[0] // SCALE) * SCALE, (flower.shape[1] // SCALE) * SCALE
    hr_te = flower[None, :h, :w]
    return down(hr_tr), hr_tr, down(hr_te), hr_te


def run(config: dict, ctx) -> dict:
    """Train every method at every sparsity and seed; PSNR on the held-out image and gradient statistics."""
    lr_tr, hr_tr, lr_te, hr_te = make_data(config)
    model = EDSRLite(config["channels"], config["blocks"])
    predict = jax.jit(model.apply)
    bicubic = psnr_y(np.asarray(bicubic_up(jnp.asarray(lr_te))), hr_te)
    probe_x, probe_y = jnp.asarray(lr_tr[:16]), jnp.asarray(hr_tr[:16])
    grad_fn = jax.jit(jax.grad(lambda p: l1_loss(model.apply(p, probe_x), probe_y)))
    adam = optax.adam(config["learning_rate"])
    template = model.init(jax.random.PRNGKey(0), lr_tr[:1])
    ft_tx = sj.masked(adam, sj.magnitude_mask(template, 0.5, predicate=prunable))
    ft_step = make_train_step(model.apply, ft_tx, l1_loss)
    kp, kf, bs, chunks = config["prune_steps"], config["finetune_steps"], config["batch_size"], config["chunks"]
    steps_cache = {}

    def stage(step, state, steps, key, probe=False):
        stats = []
        per = [steps // chunks + (1 if i < steps % chunks else 0) for i in range(chunks)] if probe else [steps]
        for i, n in enumerate(per):
            state, losses = fit(step, state, lr_tr, hr_tr, steps=n, batch_size=bs, key=jax.random.fold_in(key, i))
            if losses:
                check_finite_loss(int(state.step), losses[-1])
            if probe:
                g = gradient_stats(grad_fn(state.params), prunable)
                stats.append({"norm": float(np.mean([v[0] for v in g.values()])),
                              "var": float(np.mean([v[1] for v in g.values()]))})
        return state, stats

    def finetune(params, mask, key):
        params = sj.apply_mask(params, mask)
        state = TrainState.create(params, ft_tx)
        state = state._replace(opt_state=state.opt_state._replace(mask=mask))
        state, _ = stage(ft_step, state, kf, key)
        return sj.apply_mask(state.params, mask)

    def prune_tx(method, p):
        if method.startswith("iss_p_"):
            return iss_p(adam, p, float(method.split("_")[-1]), predicate=prunable)
        if method == "iht":
            return iss_p(adam, p, 0.0, predicate=prunable)
        return sj.gradual_pruning(adam, p, 0, max(kp - 1, 1), max(1, kp // 10), predicate=prunable)

    def get_step(method, p):
        if (method, p) not in steps_cache:
            tx = prune_tx(method, p)
            steps_cache[(method, p)] = (tx, make_train_step(model.apply, tx, l1_loss))
        return steps_cache[(method, p)]

    rows = []
    total = len(config["seeds"]) * (1 + len(config["sparsities"]) * len(METHODS))
    bar = ctx.progress(total=total, desc="SR runs")
    for seed in config["seeds"]:
        key = jax.random.PRNGKey(1000 * ctx.seed + seed)
        params0 = model.init(jax.random.fold_in(key, 0), lr_tr[:1])
        dense_tx = adam
        dense_state, dense_stats = stage(make_train_step(model.apply, dense_tx, l1_loss),
                                         TrainState.create(params0, dense_tx), kp + kf, key, probe=True)
        rows.append({"seed": seed, "method": "dense", "sparsity": 0.0,
                     "psnr": psnr_y(np.asarray(predict(dense_state.params, lr_te)), hr_te), "grad": dense_stats})
        bar.update()
        for p in config["sparsities"]:
            for method in METHODS:
                k = jax.random.fold_in(key, 100 * config["sparsities"].index(p) + METHODS.index(method) + 1)
                if method == "random":
                    dens = sj.uniform_densities(params0, p, predicate=prunable)
                    mask = sj.random_mask(jax.random.fold_in(key, 7), params0, dens)
                    state = TrainState.create(sj.apply_mask(params0, mask), ft_tx)
                    state = state._replace(opt_state=state.opt_state._replace(mask=mask))
                    state, stats = stage(ft_step, state, kp, k, probe=True)
                else:
                    tx, step = get_step(method, p)
                    state, stats = stage(step, TrainState.create(params0, tx), kp, k, probe=True)
                    mask = frozen_mask(state.opt_state) if method != "gradual_magnitude" else state.opt_state.mask
                params = finetune(state.params, mask, jax.random.fold_in(k, 1))
                row = {"seed": seed, "method": method, "sparsity": p, "measured_sparsity": sj.sparsity(mask),
                       "psnr": psnr_y(np.asarray(predict(params, lr_te)), hr_te), "grad": stats}
                rows.append(row)
                log_scalars(int(1000 * p), {"psnr": row["psnr"]}, prefix=f"sr/{method}/seed{seed}")
                ctx.log(f"seed {seed} p={p} {method}: PSNR {row['psnr']:.2f} dB (sparsity {row['measured_sparsity']:.3f})")
                bar.update()
    bar.close()
    table = _table(rows, config)
    ctx.save_figure(plot(rows, table, bicubic, config), "sr_psnr.png")
    return {"rows": rows, "table": table, "bicubic_psnr": bicubic, "claims": _claims(table)}


def _table(rows, config):
    out = {"dense": [float(np.mean([r["psnr"] for r in rows if r["method"] == "dense"])),
                     float(np.std([r["psnr"] for r in rows if r["method"] == "dense"]))]}
    for p in config["sparsities"]:
        for m in METHODS:
            v = [r["psnr"] for r in rows if r["method"] == m and r["sparsity"] == p]
            out[f"{m}@{p}"] = [float(np.mean(v)), float(np.std(v))]
    return out


def _claims(table):
    res = {}
    for key in table:
        if key.startswith("iss_p_0.95@"):
            p = key.split("@")[1]
            hard = max(table[f"{m}@{p}"][0] for m in ("iht", "random", "gradual_magnitude"))
            res[p] = table[key][0] > hard
    return res


def plot(rows, table, bicubic, config):
    """PSNR vs sparsity per method (left) and mean per-layer gradient norm over the prune stage (right)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ps = config["sparsities"]
    for m in METHODS:
        ax[0].errorbar(ps, [table[f"{m}@{p}"][0] for p in ps], yerr=[table[f"{m}@{p}"][1] for p in ps],
                       marker="o", label=m, capsize=3)
    ax[0].axhline(table["dense"][0], color="k", ls="--", label="dense")
    ax[0].axhline(bicubic, color="grey", ls=":", label="bicubic")
    ax[0].set(xlabel="sparsity p", ylabel="PSNR-Y (dB), flower.jpg", title="x2 SR, EDSR-lite")
    ax[0].legend(fontsize=7)
    p_mid = ps[len(ps) // 2]
    for m in ("dense",) + METHODS:
        sel = [r for r in rows if r["method"] == m and (m == "dense" or r["sparsity"] == p_mid)]
        if sel:
            ax[1].plot(np.mean([[g["norm"] for g in r["grad"]] for r in sel], 0), marker="o", label=m)
    ax[1].set(xlabel="prune-stage chunk", ylabel="mean per-layer |grad| norm", yscale="log",
              title=f"gradient throughput at p={p_mid}")
    ax[1].legend(fontsize=7)
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: PSNR per method and sparsity, dense and bicubic, and whether ISS-P won."""
    cfg, m = results["config"], results["metrics"]
    t = m["table"]
    fmt = lambda k: f"{t[k][0]:.2f}" + (f"±{t[k][1]:.2f}" if len(cfg["seeds"]) > 1 else "")  # noqa: E731
    parts = [f"EDSR-lite {cfg['channels']}ch x{cfg['blocks']} blocks, x2, {cfg['prune_steps']}+{cfg['finetune_steps']} "
             f"steps, {len(cfg['seeds'])} seed(s), PSNR-Y on flower.jpg: bicubic {m['bicubic_psnr']:.2f}, dense "
             f"{fmt('dense')}"]
    for p in cfg["sparsities"]:
        parts.append(f"p={p}: " + ", ".join(f"{k} {fmt(f'{k}@{p}')}" for k in METHODS))
    sparse_best = max(v[0] for k, v in t.items() if k != "dense")
    won = [p for p, v in m["claims"].items() if v]
    notes = [] if t["dense"][0] > m["bicubic_psnr"] else ["dense below bicubic at this budget"]
    if sparse_best <= m["bicubic_psnr"]:
        verdict = "did not learn (no sparse model above bicubic)"
    elif len(won) == len(m["claims"]):
        verdict = "claim held"
    else:
        verdict = f"did not hold (ISS-P 0.95 best only at p in {won})" if won else "did not hold"
    parts += notes
    return "; ".join(parts) + f"; {verdict}"
