"""PΘNITA (P2) on the charged 5-body system: predict positions 1000 steps ahead; vs EGNN and an e3nn-jax baseline.

The data are simulated here with the EGNN/SEGNN generator (charges ±1, Coulomb, dt = 0.001, frame 30
-> frame 40). Inputs: positions, velocities (vector feature) and charges (scalar feature); every
model predicts one equivariant vector per particle, added to its position. Reports test MSE,
parameter count and training / inference time per batch, beside the paper's table
(EGNN 0.0070, SEGNN 0.0043, PΘNITA 0.0043 test MSE with 3000 training systems).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geometry.ponita import calibrate, count_params, make_model
from geometry.ponita.data import simulate_charged_nbody
from geometry.ponita.training import fit, random_rotations
from sparsejax.timing import time_per_call

PAPER_MSE = {"egnn": 0.0070, "segnn (e3nn)": 0.0043, "ponita": 0.0043}

PRESETS = {
    "smoke": {
        "n_train": 300, "n_val": 100, "n_test": 200, "steps": 250, "batch_size": 32, "lr": 1e-3,
        "warmup": 20, "weight_decay": 1e-10, "augment": True, "models": ["ponita", "egnn", "e3nn"],
        "ponita_hidden": 32, "ponita_layers": 3, "num_ori": 8, "basis_dim": 32, "layer_scale": 1e-6,
        "egnn_hidden": 32, "egnn_layers": 4, "e3nn_hidden": 16, "e3nn_layers": 3, "l_max": 1,
    },
    "full": {
        "n_train": 3000, "n_val": 2000, "n_test": 2000, "steps": 30000, "batch_size": 100, "lr": 1e-3,
        "warmup": 300, "weight_decay": 1e-10, "augment": True, "models": ["ponita", "egnn", "e3nn"],
        "ponita_hidden": 128, "ponita_layers": 5, "num_ori": 16, "basis_dim": 256, "layer_scale": 1e-6,
        "egnn_hidden": 64, "egnn_layers": 4, "e3nn_hidden": 64, "e3nn_layers": 4, "l_max": 1,
    },
}


def model_settings(name: str, config: dict) -> dict:
    """Width/depth of each model from the config (one scalar-free vector output)."""
    common = {"out_scalars": 0, "out_vectors": 1}
    if name == "ponita":
        return {**common, "hidden_dim": config["ponita_hidden"], "num_layers": config["ponita_layers"],
                "num_ori": config["num_ori"], "basis_dim": config["basis_dim"],
                "layer_scale": config["layer_scale"] or None}
    if name == "egnn":
        return {**common, "hidden_dim": config["egnn_hidden"], "num_layers": config["egnn_layers"]}
    if name == "e3nn":
        return {**common, "hidden_dim": config["e3nn_hidden"], "num_layers": config["e3nn_layers"],
                "l_max": config["l_max"]}
    raise ValueError(f"unknown model {name!r}")


def _predict(model, params, batch):
    pos = batch["pos"]
    mask = jnp.ones(pos.shape[:2], bool)
    _, vec = model.apply(params, pos, mask, batch["charges"], batch["vel"][:, :, None, :])
    return pos + vec[:, :, 0]


def _rotate_batch(batch, key):
    rots = random_rotations(key, batch["pos"].shape[0])
    rot = lambda x: jnp.einsum("bij,bnj->bni", rots, x)
    return {**batch, "pos": rot(batch["pos"]), "vel": rot(batch["vel"]), "target": rot(batch["target"])}


def mse(model, params, data: dict, batch_size: int = 500) -> float:
    """Mean squared error of predicted positions over a whole split."""
    pred_fn = jax.jit(lambda p, b: _predict(model, p, b))
    n = len(data["pos"])
    total = 0.0
    for i in range(0, n, batch_size):
        b = {k: jnp.asarray(v[i : i + batch_size]) for k, v in data.items()}
        total += float(jnp.sum((pred_fn(params, b) - b["target"]) ** 2)) / 3 / 5
    return total / n


def run(config: dict, ctx) -> dict:
    """Simulate, train every model with the same loop, evaluate and time it."""
    sizes = (config["n_train"], config["n_val"], config["n_test"])
    sims = simulate_charged_nbody(sum(sizes), seed=1000 + ctx.seed)
    bounds = np.cumsum((0,) + sizes)
    splits = {name: {k: v[a:b] for k, v in sims.items()} for name, a, b in zip(("train", "val", "test"), bounds[:-1], bounds[1:])}
    test = splits["test"]
    rows = [
        {"model": "zero motion", "test_mse": float(np.mean((test["pos"] - test["target"]) ** 2))},
        {"model": "constant velocity", "test_mse": float(np.mean((test["pos"] + test["vel"] - test["target"]) ** 2))},
    ]
    curves = {}
    key = jax.random.PRNGKey(ctx.seed)
    bs = config["batch_size"]
    for name in config["models"]:
        model = make_model(name, **model_settings(name, config))
        example = {k: jnp.asarray(v[:bs]) for k, v in splits["train"].items()}
        params = jax.jit(model.init)(key, example["pos"], jnp.ones(example["pos"].shape[:2], bool),
                                     example["charges"], example["vel"][:, :, None, :])
        if name == "ponita":  # the official one-off kernel calibration on the first batch
            params = calibrate(model, params, example["pos"], jnp.ones(example["pos"].shape[:2], bool),
                               example["charges"], example["vel"][:, :, None, :])

        def loss_fn(p, batch, k, model=model):
            if config["augment"]:
                batch = _rotate_batch(batch, k)
            return jnp.mean((_predict(model, p, batch) - batch["target"]) ** 2)

        params, losses = fit(
            loss_fn, params, splits["train"], steps=config["steps"], batch_size=bs, lr=config["lr"],
            key=jax.random.fold_in(key, 1), warmup=config["warmup"], weight_decay=config["weight_decay"],
            progress=ctx.progress, checkpoint_dir=ctx.checkpoint_dir(name), desc=name,
        )
        curves[name] = losses
        tx = optax.adam(1e-3)
        opt_state = tx.init(params)

        @jax.jit
        def train_step(p, s, b, model=model):
            loss, g = jax.value_and_grad(lambda q: jnp.mean((_predict(model, q, b) - b["target"]) ** 2))(p)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s, loss

        infer = jax.jit(lambda p, b, model=model: _predict(model, p, b))
        row = {
            "model": name,
            "params": count_params(params),
            "val_mse": mse(model, params, splits["val"]) if config["n_val"] else None,
            "test_mse": mse(model, params, test),
            "train_ms_per_batch": 1e3 * time_per_call(train_step, params, opt_state, example),
            "infer_ms_per_batch": 1e3 * time_per_call(infer, params, example),
            "final_train_loss": float(np.mean(losses[-20:])),
        }
        rows.append(row)
        ctx.log(f"[{name}] params={row['params']} test MSE={row['test_mse']:.5f} "
                f"train {row['train_ms_per_batch']:.1f} ms/batch, infer {row['infer_ms_per_batch']:.1f} ms/batch")

    _plot(ctx, rows, curves)
    ctx.log("paper (3000 train, 10k epochs): " + ", ".join(f"{k} {v}" for k, v in PAPER_MSE.items()))
    return {"rows": rows, "paper_test_mse": PAPER_MSE, "batch_size_timed": bs}


def _plot(ctx, rows, curves):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["model"] for r in rows]
    axes[0].bar(names, [r["test_mse"] for r in rows], color=["0.7", "0.7"] + ["C0", "C1", "C2"][: len(rows) - 2])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("test MSE")
    axes[0].tick_params(axis="x", rotation=30)
    for name, c in curves.items():
        k = max(1, len(c) // 50)
        smooth = np.convolve(c, np.ones(k) / k, mode="valid")
        axes[1].plot(smooth, label=name)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("train MSE")
    axes[1].legend()
    fig.suptitle("charged 5-body, 1000-step position prediction")
    ctx.save_figure(fig, "nbody.png")
