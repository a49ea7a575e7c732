"""Speed of PΘNITA (several grid sizes) vs EGNN vs the e3nn-jax tensor-product baseline at equal width.

All models get the same random 3D point-cloud batches (fully connected or radius graphs), the same
channel width and depth, one scalar and one vector input and output. Forward and forward+backward
(gradient of a scalar loss w.r.t. the parameters) are jitted and timed after compilation; times
are reported in ms and as ratios to the e3nn baseline with l_max = 1. The paper claims PΘNITA is
fast compared with steerable tensor-product networks (README: "much faster than the typical
steerable/tensor field network").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from geometry.ponita import count_params, make_model
from sparsejax.timing import time_per_call

PRESETS = {
    "smoke": {"batch_size": 8, "num_nodes": 16, "width": 16, "layers": 2, "grid_sizes": [4, 8, 16],
              "l_max": [1, 2], "radius": 0.0, "repeats": 3},
    "full": {"batch_size": 32, "num_nodes": 32, "width": 64, "layers": 4, "grid_sizes": [4, 8, 16, 32, 64],
             "l_max": [1, 2], "radius": 0.0, "repeats": 10},
}


def _configs(config: dict) -> list[tuple[str, str, dict]]:
    common = {"hidden_dim": config["width"], "num_layers": config["layers"], "out_scalars": 1, "out_vectors": 1,
              "radius": config["radius"] or None}
    out = [(f"ponita O={o}", "ponita", {**common, "num_ori": o, "grid_method": "fibonacci"}) for o in config["grid_sizes"]]
    out.append(("egnn", "egnn", common))
    out += [(f"e3nn l_max={l}", "e3nn", {**common, "l_max": l}) for l in config["l_max"]]
    return out


def run(config: dict, ctx) -> dict:
    """Time forward and forward+backward passes of every model on the same batch."""
    key = jax.random.PRNGKey(ctx.seed)
    k1, k2, k3 = jax.random.split(key, 3)
    b, n = config["batch_size"], config["num_nodes"]
    pos = jax.random.normal(k1, (b, n, 3)) * (n ** (1 / 3)) / 2
    mask = jnp.ones((b, n), bool)
    scal = jax.random.normal(k2, (b, n, 1))
    vec = jax.random.normal(k3, (b, n, 1, 3))
    rows = []
    for label, name, settings in ctx.progress(_configs(config), desc="models"):
        model = make_model(name, **settings)
        params = jax.jit(model.init)(key, pos, mask, scal, vec)

        def loss(p, model=model):
            s, v = model.apply(p, pos, mask, scal, vec)
            return jnp.mean(s**2) + jnp.mean(v**2)

        fwd = jax.jit(lambda p, model=model: model.apply(p, pos, mask, scal, vec))
        bwd = jax.jit(jax.grad(loss))
        rows.append({"model": label, "params": count_params(params),
                     "forward_ms": 1e3 * time_per_call(fwd, params, repeats=config["repeats"]),
                     "fwd_bwd_ms": 1e3 * time_per_call(bwd, params, repeats=config["repeats"])})
        ctx.log(f"{label:16s} fwd {rows[-1]['forward_ms']:.2f} ms  fwd+bwd {rows[-1]['fwd_bwd_ms']:.2f} ms")
    ref = next(r for r in rows if r["model"].startswith("e3nn"))
    for r in rows:
        r["forward_ratio_vs_e3nn_l1"] = r["forward_ms"] / ref["forward_ms"]
        r["fwd_bwd_ratio_vs_e3nn_l1"] = r["fwd_bwd_ms"] / ref["fwd_bwd_ms"]
    _plot(ctx, rows)
    return {"rows": rows, "reference": ref["model"], "backend": jax.default_backend()}


def _plot(ctx, rows):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["forward_ms"] for r in rows], 0.4, label="forward")
    ax.bar(x + 0.2, [r["fwd_bwd_ms"] for r in rows], 0.4, label="forward + backward")
    ax.set_xticks(x, [r["model"] for r in rows], rotation=30)
    ax.set_ylabel("ms per batch")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"equal width, same graphs ({jax.default_backend()})")
    ctx.save_figure(fig, "bench_ponita.png")
