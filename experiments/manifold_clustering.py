"""Manifold linearizing and clustering (MLC, P20) against K-means, spectral and sparse subspace clustering.

Data: (i) a synthetic union of curved manifolds (:func:`geometry.clustering.union_of_manifolds`: images of
random latent 2-D subspaces under one random tanh map, a reconstruction); (ii) scikit-learn digits (a
stratified subset), with random affine warps (:func:`geometry.lie.images.warp_image`: rotation,
scale, shift) as the augmentation of the self-supervised warm-up; the synthetic set uses small Gaussian
jitter as its augmentation.

MLC (:mod:`geometry.clustering.mlc`): an MLP with a feature and a cluster head, ``warmup_steps`` of the
reconstructed self-supervised warm-up (total coding rate + view invariance), the one-shot copy of the
feature head into the cluster head, then ``steps`` full-batch steps of the MLC loss with CPP's defaults
(SGD momentum 0.9, lr 3e-3 / 2e-3, eps^2 = 0.1, gamma = 0.05, eta = 0.175). Clusters come from spectral
clustering of the membership of all points.

Baselines on the raw inputs: K-means (10 inits), spectral clustering with a kNN affinity (10 neighbours),
and sparse subspace clustering (SSC: each unit-normalised point is a Lasso combination of the others,
scikit-learn ``Lasso(alpha)``, affinity ``|C| + |C|^T``, spectral clustering). Linearity: mean numerical
rank (95% energy) of each true cluster and the mean |cos| of the principal angles between cluster
subspaces, for the raw inputs and for the MLC features. The trivial baseline for ACC is the largest class
fraction (one cluster).
Not done: CIFAR / TinyImageNet, the paper's ResNet backbones and its own self-supervised initialisation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments._stats import cell, fmt_mean_std
from geometry.clustering import (
    MLCNet, clustering_accuracy, cluster_membership, copy_feature_head, doubly_stochastic_membership,
    make_mlc_step, make_warmup_step, mlc_optimizer, normalized_mutual_info, subspace_statistics,
    union_of_manifolds,
)
from geometry.lie.images import warp_image

PAPERS = ("P20",)
CLAIM = ("MLC clusters data on a union of nonlinear manifolds more accurately than K-means, spectral and "
         "subspace clustering, and maps each cluster to a low-dimensional linear subspace")

_COMMON = {"curvature": 5.0, "n_clusters_synthetic": 4, "ambient_dim": 32, "noise": 0.05, "hidden": [256, 256],
           "z_dim": 32, "invariance": 1.0, "ssc_alpha": 0.01, "eps2": 0.1, "gamma": 0.05, "eta": 0.175}
PRESETS = {
    "smoke": {**_COMMON, "n_per_cluster": 100, "digits_n": 400, "warmup_steps": 40, "steps": 150,
              "seeds": [0, 1, 2]},
    "full": {**_COMMON, "n_per_cluster": 250, "digits_n": 1000, "warmup_steps": 200, "steps": 1000,
             "seeds": [0, 1, 2]},
}


def _ssc_labels(x, k, alpha, seed):
    from sklearn.linear_model import Lasso

    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(xn)
    coef = np.zeros((n, n))
    for i in range(n):
        others = np.r_[0:i, i + 1:n]
        coef[i, others] = Lasso(alpha=alpha, fit_intercept=False, max_iter=2000).fit(xn[others].T, xn[i]).coef_
    return cluster_membership(np.abs(coef) + np.abs(coef).T, k, seed)


def _baselines(x, y, k, cfg, seed) -> dict:
    from sklearn.cluster import KMeans, SpectralClustering

    preds = {"kmeans": KMeans(k, n_init=10, random_state=seed).fit_predict(x),
             "spectral_knn": SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=10,
                                                random_state=seed).fit_predict(x),
             "ssc": _ssc_labels(x, k, cfg["ssc_alpha"], seed)}
    return {m: {"acc": clustering_accuracy(y, p.astype(np.int32)), "nmi": normalized_mutual_info(y, p.astype(np.int32))}
            for m, p in preds.items()}


def _digit_views(key, images):
    """Two random affine warps (rotation +-10 deg, scale 0.9-1.1, shift +-1 px) of every 8x8 image."""
    def one(k, img):
        k1, k2, k3 = jax.random.split(k, 3)
        th = jax.random.uniform(k1, (), minval=-np.pi / 18, maxval=np.pi / 18)
        s = jax.random.uniform(k2, (), minval=0.9, maxval=1.1)
        a = s * jnp.array([[jnp.cos(th), -jnp.sin(th)], [jnp.sin(th), jnp.cos(th)]])
        return warp_image(img, a, jax.random.uniform(k3, (2,), minval=-1.0, maxval=1.0)).reshape(-1)
    keys = jax.random.split(key, 2 * images.shape[0]).reshape(2, images.shape[0], -1)
    return jax.vmap(lambda ks: jax.vmap(one)(ks, images))(keys)


def _steps(cfg, cache, shape):
    """The model, optimiser and jitted steps, built once per input shape (seeds reuse the compilation)."""
    if shape not in cache:
        model = MLCNet(hidden=tuple(cfg["hidden"]), z_dim=cfg["z_dim"])
        tx = mlc_optimizer()
        cache[shape] = (model, tx, make_warmup_step(model, tx, eps2=cfg["eps2"], invariance=cfg["invariance"]),
                        make_mlc_step(model, tx, eps2=cfg["eps2"], gamma=cfg["gamma"], eta=cfg["eta"]))
    return cache[shape]


def _train_mlc(x, views_fn, cfg, key, bar, cache):
    model, tx, warm, step = _steps(cfg, cache, tuple(x.shape))
    params = model.init(key, x[:2])
    state = tx.init(params)
    for i in range(cfg["warmup_steps"]):
        params, state, loss = warm(params, state, views_fn(jax.random.fold_in(key, i)))
        bar.update()
    params = copy_feature_head(params)
    state = tx.init(params)
    trace = []
    for i in range(cfg["steps"]):
        params, state, m = step(params, state, x)
        if i % 25 == 0 or i == cfg["steps"] - 1:
            if not np.isfinite(float(m["loss"])):
                raise FloatingPointError(f"MLC loss non-finite at step {i}")
            trace.append({"step": i, **{kk: float(v) for kk, v in m.items()}})
        bar.update()
    z, c = model.apply(params, x)
    g = doubly_stochastic_membership(c, cfg["eta"])
    return np.asarray(z), np.asarray(g), trace


def _dataset(name, cfg, seed):
    if name == "manifolds":
        x, y = union_of_manifolds(cfg["n_per_cluster"], cfg["n_clusters_synthetic"], cfg["ambient_dim"],
                                  curvature=cfg["curvature"], noise=cfg["noise"], seed=seed)
        return x, y, None
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx = np.arange(len(d.target))
    if cfg["digits_n"] < len(idx):
        idx, _ = train_test_split(idx, train_size=cfg["digits_n"], stratify=d.target, random_state=seed)
    images = (d.images[idx] / 16.0).astype(np.float32)
    return images.reshape(len(idx), -1), d.target[idx].astype(np.int32), images[..., None]


def run(config: dict, ctx) -> dict:
    """Every dataset x seed: the three baselines and MLC; accuracy, NMI and linearity."""
    rows, cache = [], {}
    per_run = config["warmup_steps"] + config["steps"]
    bar = ctx.progress(total=2 * len(config["seeds"]) * per_run, desc="MLC steps")
    for name in ("manifolds", "digits"):
        for seed in config["seeds"]:
            x, y, images = _dataset(name, config, 1000 * ctx.seed + seed)
            k = int(y.max() + 1)
            key = jax.random.PRNGKey(1000 * ctx.seed + seed)
            xj = jnp.asarray(x)
            if images is None:
                jitter = config["noise"] / np.sqrt(x.shape[1])
                views_fn = lambda kk: xj[None] + jitter * jax.random.normal(kk, (2,) + xj.shape)
            else:
                views_fn = jax.jit(lambda kk: _digit_views(kk, jnp.asarray(images)))
            z, g, trace = _train_mlc(xj, views_fn, config, key, bar, cache)
            pred = cluster_membership(g, k, seed)
            res = {"mlc": {"acc": clustering_accuracy(y, pred), "nmi": normalized_mutual_info(y, pred)},
                   **_baselines(x, y, k, config, seed)}
            row = {"dataset": name, "seed": seed, "n": int(len(y)), "k": k, "scores": res,
                   "trivial_acc": float(np.bincount(y).max() / len(y)),
                   "linearity_raw": subspace_statistics(x, y), "linearity_mlc": subspace_statistics(z, y),
                   "trace": trace}
            rows.append(row)
            ctx.log(f"{name} seed {seed}: " + ", ".join(f"{m} acc {v['acc']:.3f} nmi {v['nmi']:.3f}"
                                                       for m, v in res.items())
                    + f"; rank raw {row['linearity_raw']['mean_rank']:.1f} mlc {row['linearity_mlc']['mean_rank']:.1f}")
    bar.close()
    table = {}
    for name in ("manifolds", "digits"):
        rs = [r for r in rows if r["dataset"] == name]
        table[name] = {m: {s: [r["scores"][m][s] for r in rs] for s in ("acc", "nmi")} for m in rs[0]["scores"]}
        for which in ("raw", "mlc"):
            table[name][f"rank_{which}"] = [r[f"linearity_{which}"]["mean_rank"] for r in rs]
            table[name][f"cos_{which}"] = [r[f"linearity_{which}"]["mean_abs_cos"] for r in rs]
        table[name]["trivial_acc"] = [r["trivial_acc"] for r in rs]
    claims = {name: {"mlc_best_acc": all(np.mean(t["mlc"]["acc"]) > np.mean(t[m]["acc"])
                                         for m in ("kmeans", "spectral_knn", "ssc")),
                     "mlc_lower_rank_than_raw": float(np.mean(t["rank_mlc"])) < float(np.mean(t["rank_raw"]))}
              for name, t in table.items()}
    ctx.save_figure(plot(table), "manifold_clustering.png")
    return {"rows": rows, "table": table, "claims": claims}


def plot(table):
    """Clustering accuracy per method and dataset."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    methods = ["mlc", "kmeans", "spectral_knn", "ssc"]
    for i, (name, t) in enumerate(table.items()):
        ax.bar(np.arange(len(methods)) + 0.4 * i, [np.mean(t[m]["acc"]) for m in methods], 0.4, label=name)
    ax.set_xticks(np.arange(len(methods)) + 0.2, methods)
    ax.set_ylabel("clustering accuracy"), ax.legend()
    return fig


def summarize(results: dict) -> str:
    """One README cell: ACC/NMI per method and dataset, linearity, and whether the claim held."""
    m, cfg = results["metrics"], results["config"]
    parts = [f"union of {cfg['n_clusters_synthetic']} curved 2-D manifolds in R^{cfg['ambient_dim']} "
             f"(n={cfg['n_clusters_synthetic'] * cfg['n_per_cluster']}) and {cfg['digits_n']} digits; "
             f"{cfg['warmup_steps']} warm-up + {cfg['steps']} MLC steps, {len(cfg['seeds'])} seed(s)"]
    for name, t in m["table"].items():
        parts.append(f"{name}: " + ", ".join(
            f"{meth} ACC {fmt_mean_std(t[meth]['acc'], 2)} NMI {fmt_mean_std(t[meth]['nmi'], 2)}"
            for meth in ("mlc", "kmeans", "spectral_knn", "ssc"))
            + f", one-cluster ACC {fmt_mean_std(t['trivial_acc'], 2)}; cluster rank raw "
            f"{fmt_mean_std(t['rank_raw'], 2)} -> MLC {fmt_mean_std(t['rank_mlc'], 2)}, mean abs cos "
            f"{fmt_mean_std(t['cos_raw'], 2)} -> {fmt_mean_std(t['cos_mlc'], 2)}")
    cl = m["claims"]
    parts.append("MLC most accurate: " + ", ".join(f"{n} {'yes' if c['mlc_best_acc'] else 'no'}" for n, c in cl.items())
                 + "; MLC features lower-rank than the inputs: "
                 + ", ".join(f"{n} {'yes' if c['mlc_lower_rank_than_raw'] else 'no'}" for n, c in cl.items())
                 + " (paper: CIFAR-10/100, TinyImageNet with ResNets; not run)")
    return cell(*parts)
