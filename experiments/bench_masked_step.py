"""Benchmark: jitted train step time of dense Adam vs masked(Adam) vs gradual_pruning(Adam) (target <= 1.10x).

All three steps train the same model on the same batch in the same process; each is compiled
first, then timed over ``repeats`` blocks of ``steps`` steps (median reported). For
``gradual_pruning`` the timed steps include pruning steps at the configured frequency.
"""
from __future__ import annotations

import time

import jax
import numpy as np
import optax

import sparsejax as sj
from sparsejax.data import load_digits
from sparsejax.nn import CNN, MLP
from sparsejax.train import TrainState, make_train_step

PRESETS = {
    "smoke": {"model": "mlp", "width": 4, "batch_size": 128, "steps": 50, "repeats": 5, "sparsity": 0.9,
              "prune_frequency": 100},
    "full": {"model": "cnn", "width": 4, "batch_size": 256, "steps": 200, "repeats": 7, "sparsity": 0.9,
             "prune_frequency": 100},
}


def _time_steps(step, state, x, y, steps, repeats):
    state, loss = step(state, x, y)  # compile
    jax.block_until_ready(loss)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            state, loss = step(state, x, y)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def run(config: dict, ctx) -> dict:
    """Time the three steps and report their ratios to dense."""
    import matplotlib.pyplot as plt

    split = load_digits()
    model = {"mlp": MLP(10, hidden=(256, 256), width=config["width"]),
             "cnn": CNN(10, width=config["width"])}[config["model"]]
    x, y = split.x_train[: config["batch_size"]], split.y_train[: config["batch_size"]]
    params = model.init(jax.random.PRNGKey(ctx.seed), x[:1])
    mask = sj.random_mask(jax.random.PRNGKey(1), params, sj.erk_densities(params, config["sparsity"]))
    total = config["steps"] * (config["repeats"] + 1)
    variants = {
        "dense_adam": optax.adam(1e-3),
        "masked_adam": sj.masked(optax.adam(1e-3), mask),
        "gradual_pruning_adam": sj.gradual_pruning(optax.adam(1e-3), config["sparsity"], 0, total,
                                                   config["prune_frequency"], distribution="erk"),
    }
    timings = {}
    for name in ctx.progress(list(variants), desc="bench_masked_step"):
        tx = variants[name]
        step = make_train_step(model.apply, tx)
        timings[name] = _time_steps(step, TrainState.create(params, tx), x, y, config["steps"], config["repeats"])
    ratios = {name: t / timings["dense_adam"] for name, t in timings.items()}
    for name in timings:
        ctx.log(f"{name:24s} {1e3 * timings[name]:8.3f} ms/step   x{ratios[name]:.3f} vs dense")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(ratios), list(ratios.values()), color=["grey", "tab:blue", "tab:orange"])
    ax.axhline(1.10, color="red", ls="--", label="target 1.10x")
    ax.set(ylabel="step time / dense", title=f"{config['model']} x{config['width']} on {jax.default_backend()}")
    ax.legend()
    ctx.save_figure(fig, "step_time_ratios.png")
    return {"seconds_per_step": timings, "ratio_to_dense": ratios,
            "within_target_1_10": {k: v <= 1.10 for k, v in ratios.items()}, "backend": jax.default_backend()}
