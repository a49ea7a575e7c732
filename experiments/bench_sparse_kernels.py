"""Benchmark: Pallas sparse kernels (N:M, group-sparse, GQSA 4-bit) vs their jnp references vs dense jnp.dot.

Times ``y = x @ W`` at transformer-like shapes ``(tokens, K, N)`` for three compressed formats of
``W``: 2:4 (``sparsejax.kernels.nm_matmul``), 50% group sparsity with ``g = 16``
(``group_sparse_matmul``, P28) and GQSA W4 + 50% group sparsity (``group_sparse_dequant_matmul``, P3).
Each is compared with its plain-jnp reference (decompress + ``jnp.dot``) and with a dense ``jnp.dot``
on the uncompressed weight; ratios are ``time / dense time``. Pallas kernels only compile on a GPU
(Triton) or TPU: on CPU the kernel column is skipped at the benchmark shapes (and said so in the
results), and, when ``interpret_shapes`` is non-empty, the kernels are timed in interpret mode on
those tiny shapes, labelled ``interpret`` (a correctness path, not a performance number).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.kernels import (
    group_sparse_dequant_matmul,
    group_sparse_dequant_matmul_reference,
    group_sparse_matmul,
    group_sparse_matmul_reference,
    nm_matmul,
    nm_matmul_reference,
)
from sparsejax.quant import freeze_codes, gqsa_init, gqsa_masks, gqsa_pack
from sparsejax.structured import group_compress, group_mask, nm_compress
from sparsejax.timing import time_per_call

PRESETS = {
    "smoke": {"shapes": [[64, 512, 512], [64, 1024, 1024]], "interpret_shapes": [[16, 64, 32]], "repeats": 5,
              "group_size": 16, "block_m": 64, "block_n": 64, "block_groups": 16},
    "full": {"shapes": [[16, 4096, 4096], [128, 4096, 4096], [512, 4096, 11008], [2048, 4096, 4096]],
             "interpret_shapes": [[16, 64, 32]], "repeats": 20, "group_size": 16, "block_m": 64, "block_n": 64,
             "block_groups": 16},
}


def _operands(key, k, n, g):
    """Dense ``W`` and its three compressed formats (the dense timing uses the pruned ``W``)."""
    w = jax.random.normal(key, (k, n), jnp.float32) / np.sqrt(k)
    nm = nm_compress(w, 2, 4, axis=0)
    gmask = group_mask(w, g, 0.5, axis=0, balanced=True)
    grp = group_compress(w, g, gmask)
    params = {"w": w}
    masks = gqsa_masks(params, g, 0.5, predicate=lambda p, leaf: True)
    frozen = freeze_codes(gqsa_init(params, masks, 4, g), masks, 4, g)["w"]
    q = gqsa_pack(frozen["codes"], frozen["scale"], frozen["zero"], masks["w"], 4, g)
    return w, {
        "nm24": ((nm.values, nm.indices), {"n": 2, "m": 4}, nm_matmul, nm_matmul_reference),
        "group_s50": ((grp.values, grp.group_idx), {}, group_sparse_matmul, group_sparse_matmul_reference),
        "gqsa_w4s50": ((q.packed, q.scales, q.zeros, q.group_idx), {"bits": 4}, group_sparse_dequant_matmul,
                       group_sparse_dequant_matmul_reference),
    }


def _bench_shape(shape, config, *, kernels: bool, interpret: bool, key):
    m, k, n = shape
    x = jax.random.normal(key, (m, k), jnp.float32)
    w, ops = _operands(jax.random.fold_in(key, 1), k, n, config["group_size"])
    dense_t = time_per_call(jax.jit(jnp.dot), x, w, repeats=config["repeats"])
    rows = []
    for name, (arrays, static, kernel, reference) in ops.items():
        ref_fn = jax.jit(lambda x, *a, _r=reference, _s=static: _r(x, *a, **_s))
        ref_t = time_per_call(ref_fn, x, *arrays, repeats=config["repeats"])
        row = {"shape": list(shape), "format": name, "mode": "interpret" if interpret else ("compiled" if kernels else "no-kernel"),
               "dense_s": dense_t, "reference_s": ref_t, "reference_over_dense": ref_t / dense_t,
               "kernel_s": None, "kernel_over_dense": None, "kernel_over_reference": None}
        if kernels:
            groups = k // 4 if name == "nm24" else k // config["group_size"]
            kb = {"block_m": min(config["block_m"], m), "block_n": min(config["block_n"], n),
                  "block_groups": min(config["block_groups"], groups)}
            ker_fn = lambda x, *a, _k=kernel, _s=static, _b=kb: _k(x, *a, **_s, **_b, interpret=interpret)  # noqa
            ker_t = time_per_call(ker_fn, x, *arrays, repeats=config["repeats"] if not interpret else 1)
            row.update(kernel_s=ker_t, kernel_over_dense=ker_t / dense_t, kernel_over_reference=ker_t / ref_t)
        rows.append(row)
    return rows


def run(config: dict, ctx) -> dict:
    """Time every format at every shape; kernels compiled only off-CPU."""
    backend = jax.default_backend()
    on_cpu = backend == "cpu"
    note = ("CPU backend: Pallas kernels need a GPU/TPU to compile, so at the benchmark shapes only the jnp "
            "references and dense jnp.dot are timed; kernel rows marked 'interpret' are interpret-mode runs on "
            "tiny shapes (correctness path, not performance)") if on_cpu else f"{backend}: kernels compiled"
    ctx.log(note)
    key = jax.random.PRNGKey(ctx.seed)
    rows = []
    items = [(s, False) for s in config["shapes"]] + ([(s, True) for s in config["interpret_shapes"]] if on_cpu else [])
    for i, (shape, interp) in enumerate(ctx.progress(items, desc="bench shapes")):
        rows += _bench_shape(shape, config, kernels=(not on_cpu) or interp, interpret=interp,
                             key=jax.random.fold_in(key, i))
    for r in rows:
        ctx.log(f'{r["mode"]:10s} {str(r["shape"]):20s} {r["format"]:11s} dense {r["dense_s"] * 1e3:8.3f} ms  '
                f'ref/dense {r["reference_over_dense"]:6.2f}  kernel/dense '
                f'{"-" if r["kernel_over_dense"] is None else round(r["kernel_over_dense"], 2)}')
    ctx.save_figure(plot(rows), "ratios.png")
    return {"backend": backend, "device": str(jax.devices()[0]), "note": note, "rows": rows}


def plot(rows):
    """Time / dense time per (shape, format) for the reference and (when timed) the kernel."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4))
    labels = [f'{r["format"]}\n{"x".join(map(str, r["shape"]))}\n{r["mode"]}' for r in rows]
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [r["reference_over_dense"] for r in rows], 0.4, label="jnp reference / dense")
    ax.bar(xs + 0.2, [r["kernel_over_dense"] or np.nan for r in rows], 0.4, label="Pallas kernel / dense")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("time relative to dense jnp.dot")
    ax.legend(fontsize=8)
    return fig
