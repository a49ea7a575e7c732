"""Stationary representations (P42): class-incremental digits with a model replacement, for a learnable
classifier (ER), the fixed d-simplex with CE, and d-Simplex-HOC.

Data: scikit-learn digits split in half (stratified); training tasks add classes {0-3}, {4,5}, {6,7},
{8,9}; rehearsal memory of 20 random samples per seen class, batches half memory / half new
(:func:`geometry.compat.train_task`). Retrieval: the test half is split into a gallery and a query set;
queries get a random affine warp (rotation +-15 deg, shift +-1 px) so that 1:N search does not saturate.

Models (:class:`geometry.compat.CompatNet`): MLP 64 -> 128 -> 128 -> 15 features; the simplex arms use the
frozen d-simplex over 16 preallocated classes (class y on vertex 15 - y), the ER arm a learnable head over
the 10 classes (logits of unseen classes masked). Each task fine-tunes the previous model (Adam). HOC arm:
``0.1 CE + 0.9 L_HOC`` (mu = 10) against the frozen previous model. Replacement (IAM-CL2R) before task
``replace_at``: a model of twice the width is trained from scratch on all data of the earlier tasks (the
"better pretrained model") and takes over; as in the official ``main.py`` it is also the old model of the
HOC term during its first task, so its compatibility with the earlier gallery comes only from the shared
classifier geometry.

Metrics (:mod:`geometry.compat.metrics`): the compatibility matrix M[t, k] (queries by model t, gallery by
model k), AC (fraction of t > k with M[t, k] > M[k, k]), AM (lower-triangle mean), the fraction of pairs
meeting Definition 1 for every (t, t-1) model pair, and the final model's test accuracy. Trivial
baseline: the self-test accuracy of an untrained model.
Deviations: MLP on 8x8 digits instead of ResNet-18 on CIFAR-100 (7 tasks, 2 replacements); Adam instead of
SGD + cosine; task 0 trains from scratch (the official run starts from a pretrained checkpoint).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std
from geometry.compat import (
    CompatNet, average_compatibility, average_multimodel_accuracy, compatibility_matrix, identification_accuracy,
    make_compat_step, pairwise_compatibility, rehearsal_memory, train_task, vertex_labels,
)
from geometry.lie.images import warp_image
from sparsejax.data import load_digits

PAPERS = ("P42",)
CLAIM = ("d-Simplex-HOC learns representations that stay compatible across model updates and replacements "
         "(every new model searches the old gallery better than the old model), so a replacement improves "
         "retrieval without re-indexing")

_COMMON = {"tasks": [[0, 1, 2, 3], [4, 5], [6, 7], [8, 9]], "replace_at": 2, "preallocated": 16,
           "hidden": [128, 128], "replacement_width": 2.0, "batch_size": 128, "rehearsal": 20, "lr": 1e-3,
           "lam": 0.1, "mu": 10.0, "query_rotation_deg": 15.0, "query_shift": 1.0,
           "arms": ["er", "simplex_ce", "simplex_hoc"]}
PRESETS = {
    "smoke": {**_COMMON, "epochs": 15, "seeds": [0, 1]},
    "full": {**_COMMON, "epochs": 40, "seeds": [0, 1, 2, 3, 4]},
}


def _warp_queries(x, seed, rot_deg, shift):
    key = jax.random.PRNGKey(seed)
    n = x.shape[0]
    k1, k2 = jax.random.split(key)
    th = jax.random.uniform(k1, (n,), minval=-1.0, maxval=1.0) * np.deg2rad(rot_deg)
    t = jax.random.uniform(k2, (n, 2), minval=-shift, maxval=shift)
    a = jnp.stack([jnp.stack([jnp.cos(th), -jnp.sin(th)], -1), jnp.stack([jnp.sin(th), jnp.cos(th)], -1)], -2)
    imgs = jnp.asarray(x).reshape(n, 8, 8, 1)
    return np.asarray(jax.vmap(warp_image)(imgs, a, t).reshape(n, -1))


class _Arm:
    """One method: its model factory, targets, class mask and training step."""

    def __init__(self, name, cfg):
        self.name, self.cfg = name, cfg
        self.fixed = name != "er"
        self.hoc = name == "simplex_hoc"
        self.k = cfg["preallocated"] if self.fixed else 10
        self.tx = optax.adam(cfg["lr"])
        self._steps, self._apply = {}, {}

    def model(self, width):
        return CompatNet(num_classes=self.k, feat_dim=self.cfg["preallocated"] - 1, hidden=tuple(self.cfg["hidden"]),
                         width=width, fixed=self.fixed)

    def targets(self, y):
        return np.asarray(vertex_labels(y, self.k)) if self.fixed else y

    def mask(self, seen):
        if self.fixed:  # the official fixed classifier: CE over every preallocated vertex
            return np.ones(self.k, bool)
        m = np.zeros(self.k, bool)
        m[list(seen)] = True
        return m

    def features(self, width, params):
        """Features of ``params`` (a model of this width) as a numpy function; one jit per width."""
        if width not in self._apply:
            self._apply[width] = jax.jit(self.model(width).apply)
        apply = self._apply[width]
        return lambda x: np.asarray(apply(params, jnp.asarray(x))[0])

    def logits(self, width, params, x):
        self.features(width, params)
        return np.asarray(self._apply[width](params, jnp.asarray(x))[1])

    def step(self, width, hoc):
        if (width, hoc) not in self._steps:
            self._steps[(width, hoc)] = make_compat_step(self.model(width), self.tx, hoc=hoc, lam=self.cfg["lam"],
                                                         mu=self.cfg["mu"])
        return self._steps[(width, hoc)]


def run_arm(arm: _Arm, data, cfg, seed) -> dict:
    """Class-incremental training of one arm; returns per-task feature functions' outputs and metrics."""
    x_tr, y_tr, x_gal, y_gal, x_q, y_q, x_te, y_te = data
    key = jax.random.PRNGKey(seed)
    seen, memory, params, width, snapshots = [], None, None, 1.0, []
    untrained = arm.model(1.0)
    untrained_feats = arm.features(1.0, untrained.init(jax.random.fold_in(key, 999), x_tr[:2]))
    baseline = identification_accuracy(untrained_feats(x_gal), y_gal, untrained_feats(x_q), y_q)
    for t, classes in enumerate(cfg["tasks"]):
        sel = np.isin(y_tr, classes)
        x_new, y_new = x_tr[sel], arm.targets(y_tr[sel])
        old = None
        if t == 0 or t == cfg["replace_at"]:
            width = 1.0 if t == 0 else cfg["replacement_width"]
            model = arm.model(width)
            params = model.init(jax.random.fold_in(key, t), x_tr[:2])
            if t == cfg["replace_at"]:  # the independently trained better model, on all earlier data
                prev = np.isin(y_tr, seen)
                params, _, _ = train_task(arm.step(width, False), params, arm.tx.init(params), x_tr[prev],
                                          arm.targets(y_tr[prev]), epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                                          class_mask=arm.mask(seen), seed=seed + 100 + t)
                old = arm.features(width, params)
        else:
            old = arm.features(width, params)
        seen = seen + list(classes)
        use_hoc = arm.hoc and old is not None
        params, _, losses = train_task(arm.step(width, use_hoc), params, arm.tx.init(params), x_new, y_new,
                                       epochs=cfg["epochs"], batch_size=cfg["batch_size"], class_mask=arm.mask(seen),
                                       seed=seed + t, memory=memory,
                                       old_features=(lambda xb, f=old: jnp.asarray(f(xb))) if use_hoc else None)
        mx, my = rehearsal_memory(x_new, y_new, cfg["rehearsal"], seed=seed + t)
        memory = (mx, my) if memory is None else (np.concatenate([memory[0], mx]), np.concatenate([memory[1], my]))
        feats = arm.features(width, params)
        logits = arm.logits(width, params, x_te)
        pred = np.argmax(np.where(arm.mask(seen), logits, -np.inf), 1)
        pred = (arm.k - 1 - pred) if arm.fixed else pred
        snapshots.append({"q": feats(x_q), "g": feats(x_gal), "width": width,
                          "test_acc_seen": float(np.mean(pred[np.isin(y_te, seen)] == y_te[np.isin(y_te, seen)])),
                          "final_loss": float(np.mean(losses[-5:]))})
    m = compatibility_matrix([s["q"] for s in snapshots], [s["g"] for s in snapshots], y_q, y_gal)
    pairwise = [pairwise_compatibility(snapshots[t]["q"], snapshots[t - 1]["q"], y_q, seed=seed)
                for t in range(1, len(snapshots))]
    r = cfg["replace_at"]
    return {"matrix": m.tolist(), "ac": average_compatibility(m), "am": average_multimodel_accuracy(m),
            "pairwise": pairwise, "replacement_cross": float(m[r, r - 1]), "before_replacement_self": float(m[r - 1, r - 1]),
            "final_self": float(m[-1, -1]), "final_vs_first_gallery": float(m[-1, 0]),
            "test_acc_seen": [s["test_acc_seen"] for s in snapshots], "untrained_self": baseline}


def run(config: dict, ctx) -> dict:
    """Every seed x arm: incremental training with a replacement, then the compatibility metrics."""
    rows = []
    bar = ctx.progress(total=len(config["seeds"]) * len(config["arms"]), desc="arms")
    arms = {name: _Arm(name, config) for name in config["arms"]}
    for seed in config["seeds"]:
        s = 1000 * ctx.seed + seed
        split = load_digits(test_size=0.5, seed=s, flatten=True)
        half = len(split.y_test) // 2
        x_gal, y_gal = split.x_test[:half], split.y_test[:half]
        x_q = _warp_queries(split.x_test[half:], s, config["query_rotation_deg"], config["query_shift"])
        data = (split.x_train, split.y_train, x_gal, y_gal, x_q, split.y_test[half:], split.x_test, split.y_test)
        for name in config["arms"]:
            res = run_arm(arms[name], data, config, s)
            rows.append({"seed": seed, "arm": name, **res})
            ctx.log(f"seed {seed} {name}: AC {res['ac']:.2f} AM {res['am']:.3f} replacement M[r,r-1] "
                    f"{res['replacement_cross']:.3f} vs M[r-1,r-1] {res['before_replacement_self']:.3f}; "
                    f"pairwise {np.round(res['pairwise'], 3).tolist()}")
            bar.update()
    bar.close()
    table = {a: {k: [r[k] for r in rows if r["arm"] == a] for k in
                 ("ac", "am", "replacement_cross", "before_replacement_self", "final_self", "untrained_self")}
             for a in config["arms"]}
    for a in config["arms"]:
        table[a]["pairwise_mean"] = [float(np.mean(r["pairwise"])) for r in rows if r["arm"] == a]
        table[a]["final_test_acc"] = [r["test_acc_seen"][-1] for r in rows if r["arm"] == a]
    mean = {a: {k: float(np.mean(v)) for k, v in t.items()} for a, t in table.items()}
    claims = {"hoc_highest_ac": all(mean["simplex_hoc"]["ac"] >= mean[a]["ac"] for a in mean),
              "hoc_highest_am": all(mean["simplex_hoc"]["am"] >= mean[a]["am"] for a in mean),
              "hoc_fully_compatible": all(v == 1.0 for v in table["simplex_hoc"]["ac"]),
              "replacement_improves_without_reindexing": {
                  a: mean[a]["replacement_cross"] > mean[a]["before_replacement_self"] for a in mean}}
    ctx.save_figure(plot(rows, config), "stationary_representations.png")
    return {"rows": rows, "table": table, "mean": mean, "claims": claims}


def plot(rows, config):
    """The compatibility matrix of each arm (first seed)."""
    arms = config["arms"]
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms), 3))
    for ax, a in zip(np.atleast_1d(axes), arms):
        m = np.array(next(r["matrix"] for r in rows if r["arm"] == a))
        ax.imshow(np.where(np.tril(np.ones_like(m)) > 0, m, np.nan), vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(m):
            if j <= i:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax.set_title(a), ax.set_xlabel("gallery model k"), ax.set_ylabel("query model t")
    return fig


def summarize(results: dict) -> str:
    """One README cell: AC / AM / replacement gain per arm and whether the claim held."""
    m, cfg = results["metrics"], results["config"]
    t = m["table"]
    r = cfg["replace_at"]
    parts = [f"class-incremental digits, {len(cfg['tasks'])} tasks, replacement by a {cfg['replacement_width']:g}x "
             f"wider model before task {r + 1}, {cfg['epochs']} epochs/task, {len(cfg['seeds'])} seed(s)"]
    for a in cfg["arms"]:
        parts.append(f"{a}: AC {fmt_mean_std(t[a]['ac'], 2)}, AM {fmt_mean_std(t[a]['am'], 3)}, M[{r},{r - 1}] "
                     f"{fmt_mean_std(t[a]['replacement_cross'], 3)} vs M[{r - 1},{r - 1}] "
                     f"{fmt_mean_std(t[a]['before_replacement_self'], 3)}, Def.1 pairs "
                     f"{fmt_mean_std(t[a]['pairwise_mean'], 3)}, final test acc {fmt_mean_std(t[a]['final_test_acc'], 3)}")
    parts.append(f"untrained-model self-test {fmt_mean_std(t[cfg['arms'][0]]['untrained_self'], 2)}")
    c = m["claims"]
    parts.append(f"HOC highest AC: {'yes' if c['hoc_highest_ac'] else 'no'}, highest AM: "
                 f"{'yes' if c['hoc_highest_am'] else 'no'}, AC = 1 in every seed: "
                 f"{'yes' if c['hoc_fully_compatible'] else 'no'}; replacement beats the old model on the old "
                 "gallery: " + ", ".join(f"{a} {'yes' if v else 'no'}"
                                         for a, v in c["replacement_improves_without_reindexing"].items())
                 + " (paper: CIFAR-100 / TinyImageNet, ResNet-18; not run)")
    return cell(*parts)
