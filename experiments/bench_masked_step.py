"""Benchmark: jitted train step time of dense Adam vs every sparse algorithm x sparsity type, built with ``sj.create``.

Each variant is one config dict for :func:`sparsejax.create` (jaxpruner's key names) around the same
``optax.adam``; all train the same model on the same batch in the same process. Every step is
compiled first; then the variants are timed *interleaved*: each of ``repeats`` rounds times one
block of ``steps`` steps of every variant (in a rotated order), so a change of machine load hits all
variants alike. Reported per variant: the median seconds per step over the rounds, and the ratio to
dense as the median over rounds of the paired per-round ratio (the robust number on a loaded
machine). A block holds ``steps = update_freq`` steps, so every timed block contains exactly one
pruning / connectivity-update step (its cost amortised over ``update_freq`` steps, as in training).
The first and last layer stay dense (``filter_fn``), as is common. Goal: a masked step at most 1.10x
the dense step; the masks are dense boolean arrays (no sparse kernel), so a sparse step does
strictly more work than dense: the ratio measures the overhead of keeping the mask, not a speed-up.
STE magnitude pruning recomputes an exact top-k mask of every layer at *every* step (the algorithm,
as in jaxpruner), which no mask-keeping trick removes.
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

PAPERS = ("P4",)
CLAIM = ("Masked sparse training (P4 and every sparsity algorithm) should cost no more than dense training: "
         "goal masked step <= 1.10x dense")

SMOKE_VARIANTS = [  # every algorithm and every sparsity type at least once
    ("static_sparse", "unstructured"), ("static_sparse", "nm_2,4"), ("static_sparse", "block_4,4"),
    ("static_sparse", "channel_-1"), ("static_sparse", "group_4"), ("magnitude", "unstructured"),
    ("magnitude", "nm_2,4"), ("global_magnitude", "unstructured"), ("saliency", "unstructured"),
    ("rigl", "unstructured"), ("rigl", "block_4,4"), ("set", "unstructured"), ("magnitude_ste", "unstructured"),
]
ALGORITHMS = ("static_sparse", "magnitude", "global_magnitude", "saliency", "rigl", "set", "magnitude_ste")
TYPES = ("unstructured", "nm_2,4", "block_4,4", "channel_-1", "group_4")

PRESETS = {
    "smoke": {"model": "mlp", "width": 2, "batch_size": 128, "steps": 25, "repeats": 15, "sparsity": 0.9,
              "update_freq": 25, "variants": [list(v) for v in SMOKE_VARIANTS]},
    "full": {"model": "cnn", "width": 4, "batch_size": 256, "steps": 100, "repeats": 15, "sparsity": 0.9,
             "update_freq": 100,
             "variants": [[a, t] for a in ALGORITHMS for t in TYPES if not (a.startswith("global") and t != "unstructured")
                          and not (a == "set" and t != "unstructured")]},
}


def inner_layers(path: str, leaf) -> bool:
    """Sparsify every kernel but the first (``conv_0``/``dense_0``) and the head."""
    return sj.default_predicate(path, leaf) and not any(f"/{n}/" in f"/{path}" for n in ("head", "conv_0", "dense_0"))


def interleaved_times(steps: dict, states: dict, x, y, block: int, repeats: int, reference: str):
    """Per variant: median seconds per step over ``repeats`` rounds (each round times one block of
    ``block`` steps of every variant, order rotated per round) and the median over rounds of the
    paired ratio to ``reference``. Every step is compiled before the first round."""
    for name, step in steps.items():
        states[name], loss = step(states[name], x, y)
        jax.block_until_ready(loss)
    names = list(steps)
    times = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            state, step = states[name], steps[name]
            start = time.perf_counter()
            for _ in range(block):
                state, loss = step(state, x, y)
            jax.block_until_ready(state)
            times[name].append((time.perf_counter() - start) / block)
            states[name] = state
    ref = np.asarray(times[reference])
    return ({n: float(np.median(t)) for n, t in times.items()},
            {n: float(np.median(np.asarray(t) / ref)) for n, t in times.items()})


def config_for(algorithm: str, sparsity_type: str, config: dict) -> dict:
    """The ``sj.create`` config of one variant."""
    total = config["steps"] * (config["repeats"] + 1) + 1
    return {"algorithm": algorithm, "sparsity": config["sparsity"], "dist_type": "erk", "sparsity_type": sparsity_type,
            "update_freq": config["update_freq"], "update_start_step": 0, "update_end_step": total,
            "filter_fn": inner_layers, "rng_seed": 1}


def run(config: dict, ctx) -> dict:
    """Time dense Adam and every (algorithm, sparsity type) variant; report ratios to dense."""
    import matplotlib.pyplot as plt

    split = load_digits()
    model = {"mlp": MLP(10, hidden=(256, 256), width=config["width"]),
             "cnn": CNN(10, width=config["width"])}[config["model"]]
    x, y = split.x_train[: config["batch_size"]], split.y_train[: config["batch_size"]]
    params = model.init(jax.random.PRNGKey(ctx.seed), x[:1])
    variants = {"dense_adam": optax.adam(1e-3)}
    for algorithm, stype in config["variants"]:
        variants[f"{algorithm}/{stype}"] = sj.create(config_for(algorithm, stype, config), optax.adam(1e-3))
    if config["steps"] % config["update_freq"]:
        raise ValueError(f"steps ({config['steps']}) must be a multiple of update_freq ({config['update_freq']}) so "
                         f"that every timed block holds the same number of update steps")
    steps = {name: make_train_step(model.apply, tx) for name, tx in variants.items()}
    states = {name: TrainState.create(params, tx) for name, tx in variants.items()}
    timings, ratios = interleaved_times(steps, states, x, y, config["steps"], config["repeats"], "dense_adam")
    for name in timings:
        ctx.log(f"{name:28s} {1e3 * timings[name]:8.3f} ms/step   x{ratios[name]:.3f} vs dense")
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(ratios)), 3.6))
    names = list(ratios)
    ax.bar(range(len(names)), [ratios[n] for n in names],
           color=["grey"] + ["tab:blue" if ratios[n] <= 1.10 else "tab:red" for n in names[1:]])
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=7)
    ax.axhline(1.10, color="red", ls="--", label="goal 1.10x")
    ax.set(ylabel="step time / dense", title=f"{config['model']} x{config['width']} on {jax.default_backend()}")
    ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, "step_time_ratios.png")
    return {"seconds_per_step": timings, "ratio_to_dense": ratios, "timing": "interleaved rounds, paired median ratio",
            "within_target_1_10": {k: v <= 1.10 for k, v in ratios.items()}, "backend": jax.default_backend()}


def summarize(results: dict) -> str:
    """One table cell: the worst and median ratio to dense, how many variants met the goal, the backend."""
    m = results["metrics"]
    cfg = results.get("config", {})
    ratios = {k: v for k, v in m["ratio_to_dense"].items() if k != "dense_adam"}
    worst = max(ratios, key=ratios.get)
    best = min(ratios, key=ratios.get)
    ok = sum(v <= 1.10 for v in ratios.values())
    verdict = "claim held" if ok == len(ratios) else "did not hold"
    return (f"{cfg.get('model')} x{cfg.get('width')}, batch {cfg.get('batch_size')}, {m['backend']}: dense "
            f"{1e3 * m['seconds_per_step']['dense_adam']:.2f} ms/step; {ok}/{len(ratios)} variants <= 1.10x; median "
            f"x{float(np.median(list(ratios.values()))):.2f}, best {best} x{ratios[best]:.2f}, worst {worst} "
            f"x{ratios[worst]:.2f}; {verdict}")
