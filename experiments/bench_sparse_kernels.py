"""Benchmark: the Pallas sparse / quantized kernels against dense bf16 ``jnp.dot``.

Formats (``y = x @ W``, ``W`` is ``K x N``): block-sparse bf16 at 50/75/90% block sparsity
(`block_sparse_matmul`, blocks ``block``), W4 and W8 with groups of ``group_size`` rows
(`quantized_matmul`), W4 + 50% block sparsity (`block_sparse_quantized_matmul`, GQSA W4S50 with
column-tile-shared groups, P3) and 2:4 with packed 2-bit indices (`nm24_matmul`, P7).

Roofline table (every preset, no GPU needed): for each format and ``M`` the counted HBM bytes
(the exact stored bytes of the format, ``x`` read and ``y`` written once) and MMA FLOPs (the
kernel's real MMA count: kept blocks only for block sparsity, dense for W4/W8 and 2:4 since Pallas
has no sparse tensor cores, ``M`` padded to the 16-row tile), and the predicted time
``max(bytes / HBM, FLOPs / peak)`` on an H100 (3.35 TB/s) and an H200 (4.8 TB/s), both 990 TFLOP/s
dense bf16, as a speedup over dense bf16 (which moves the dense weight and does 2·M·K·N FLOPs).
The model ignores dequantization and select work, launch overhead and caches: it is an upper bound
for memory-bound shapes and a rough guide elsewhere.

Timings: on CPU the jnp reference of each format and dense ``jnp.dot`` are timed at the shapes of
``cpu_time_ms`` (the kernels cannot compile on CPU; a tiny interpret-mode run checks each kernel
against its reference). Preset ``gpu`` times kernel vs reference vs dense on the GPU, in one
process, as ratios, median of ``repeats`` runs after a warm-up (``time_per_call``). GPU ratios have
not been measured yet: this project has had no GPU so far.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.kernels import (
    block_sparse_matmul,
    block_sparse_matmul_reference,
    block_sparse_nbytes,
    block_sparse_quantized_matmul,
    block_sparse_quantized_matmul_reference,
    nm24_matmul,
    nm24_matmul_reference,
    nm24_nbytes,
    quantize_weight,
    quantized_matmul,
    quantized_matmul_reference,
    quantized_nbytes,
    to_block_sparse,
    to_nm24,
    to_quant_block_sparse,
)
from sparsejax.kernels._util import MIN_TILE, round_up
from sparsejax.structured import block_mask, nm_mask
from sparsejax.timing import time_per_call

PAPERS = ("P3", "P7", "P28")
CLAIM = ("Sparse / quantized kernels beat dense: GQSA W4S50 gives real LLM inference speedups; 2:4 and "
         "block sparsity run faster than dense on GPUs")

HARDWARE = {"H100": {"hbm_bytes_per_s": 3.35e12, "bf16_flops": 990e12},
            "H200": {"hbm_bytes_per_s": 4.8e12, "bf16_flops": 990e12}}
FORMATS = ("bsr50", "bsr75", "bsr90", "w4", "w8", "w4_bsr50", "nm24")
GOALS = {("bsr90", 4096): 5.0, ("bsr75", 4096): 2.5, ("w4", 1): 3.0, ("nm24", 1): 1.4}

PRESETS = {
    "smoke": {"ms": [1, 16, 256, 4096], "k": 4096, "n": 4096, "block": [64, 64], "group_size": 128,
              "cpu_time_ms": [1, 16], "repeats": 3, "check_shape": [16, 256, 128], "time_gpu": False},
    "full": {"ms": [1, 16, 256, 4096], "k": 4096, "n": 4096, "block": [64, 64], "group_size": 128,
             "cpu_time_ms": [1, 16, 256], "repeats": 5, "check_shape": [16, 256, 128], "time_gpu": False},
    "gpu": {"ms": [1, 16, 256, 4096], "k": 4096, "n": 4096, "block": [64, 64], "group_size": 128,
            "cpu_time_ms": [], "repeats": 20, "check_shape": [16, 256, 128], "time_gpu": True},
}


def make_formats(w: np.ndarray, block, g: int, dtype=jnp.bfloat16) -> dict:
    """Every benchmarked format of ``w``: ``{name: (compressed, kernel, reference, nbytes)}``."""
    block = tuple(block)
    out = {}
    for s in (50, 75, 90):
        bs = to_block_sparse(w, block, block_mask(w, block, s / 100), dtype=dtype)
        out[f"bsr{s}"] = (bs, block_sparse_matmul, block_sparse_matmul_reference, block_sparse_nbytes(bs))
    for bits in (4, 8):
        qw = quantize_weight(w, bits, g)
        out[f"w{bits}"] = (qw, quantized_matmul, quantized_matmul_reference, quantized_nbytes(qw))
    q = to_quant_block_sparse(w, block, 4, block_mask(w, block, 0.5))
    out["w4_bsr50"] = (q, block_sparse_quantized_matmul, block_sparse_quantized_matmul_reference, quantized_nbytes(q))
    c = to_nm24(w * np.asarray(nm_mask(jnp.asarray(w), 2, 4, axis=0)), dtype=dtype)
    out["nm24"] = (c, nm24_matmul, nm24_matmul_reference, nm24_nbytes(c))
    return out


def kernel_flops(name: str, fmt, m: int, k: int, n: int) -> float:
    """MMA FLOPs the kernel issues (``M`` padded to the 16-row tile)."""
    mp = round_up(m, MIN_TILE)
    if name.startswith("bsr") or name == "w4_bsr50":
        bk, bn = fmt.block_shape
        return 2.0 * mp * fmt.nnzb * bk * bn
    return 2.0 * mp * k * n  # W4/W8 dequantize to a dense tile; 2:4 has no sparse tensor cores in Pallas


def roofline(m: int, k: int, n: int, nbytes: float, flops: float, hw: dict) -> float:
    """Predicted seconds: ``max(bytes / HBM, FLOPs / peak)`` with ``x`` (bf16) read and ``y`` written once."""
    total = nbytes + 2.0 * m * k + 2.0 * m * n
    return max(total / hw["hbm_bytes_per_s"], flops / hw["bf16_flops"])


def roofline_rows(formats: dict, ms, k: int, n: int) -> list[dict]:
    rows = []
    dense_bytes = 2.0 * k * n
    for m in ms:
        dense = {h: roofline(m, k, n, dense_bytes, 2.0 * m * k * n, hw) for h, hw in HARDWARE.items()}
        for name, (fmt, *_, nbytes) in formats.items():
            flops = kernel_flops(name, fmt, m, k, n)
            row = {"format": name, "m": m, "k": k, "n": n, "weight_bytes": int(nbytes),
                   "bytes_vs_dense": nbytes / dense_bytes, "mma_flops": flops,
                   "flops_vs_dense": flops / (2.0 * m * k * n)}
            for h, hw in HARDWARE.items():
                row[f"predicted_speedup_{h}"] = dense[h] / roofline(m, k, n, nbytes, flops, hw)
            goal = GOALS.get((name, m))
            row["goal"] = goal
            rows.append(row)
    return rows


def check_kernels(shape, block, g) -> dict:
    """Tiny interpret-mode run of every kernel against its reference (max abs error, f32)."""
    m, k, n = shape
    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32)
    x = jnp.asarray(rng.standard_normal((m, k)), jnp.float32)
    errs = {}
    for name, (fmt, kern, ref, _) in make_formats(w, (min(block[0], 32), min(block[1], 32)), min(g, 32),
                                                  dtype=jnp.float32).items():
        errs[name] = float(jnp.max(jnp.abs(kern(x, fmt, interpret=True) - ref(x, fmt))))
    return errs


def run(config: dict, ctx) -> dict:
    """Roofline table for every format and M; CPU reference timings; GPU ratios with preset ``gpu``."""
    k, n, block, g = config["k"], config["n"], tuple(config["block"]), config["group_size"]
    backend = jax.default_backend()
    if config["time_gpu"] and backend == "cpu":
        raise ValueError("preset 'gpu' needs a GPU (jax.default_backend() is 'cpu'); use 'smoke' on CPU")
    rng = np.random.default_rng(ctx.seed)
    w = rng.standard_normal((k, n)).astype(np.float32)
    formats = make_formats(w, block, g)
    rows = roofline_rows(formats, config["ms"], k, n)
    ctx.log("format    M      bytes/dense  flops/dense  pred. H100  pred. H200  goal")
    for r in rows:
        ctx.log(f"{r['format']:9s} {r['m']:5d}  {r['bytes_vs_dense']:10.3f}  {r['flops_vs_dense']:10.3f}  "
                f"{r['predicted_speedup_H100']:9.2f}x  {r['predicted_speedup_H200']:9.2f}x  "
                f"{'' if r['goal'] is None else '>= %.1fx' % r['goal']}")
    timings = []
    time_ms = config["ms"] if config["time_gpu"] else config["cpu_time_ms"]
    for m in ctx.progress(time_ms, desc="timing"):
        x = jnp.asarray(rng.standard_normal((m, k)), jnp.bfloat16)
        wd = jnp.asarray(w, jnp.bfloat16)
        dense_s = time_per_call(jax.jit(lambda x, w: jnp.dot(x, w, preferred_element_type=jnp.float32)
                                        .astype(x.dtype)), x, wd, repeats=config["repeats"])
        for name, (fmt, kern, ref, _) in formats.items():
            ref_s = time_per_call(jax.jit(ref), x, fmt, repeats=config["repeats"])
            t = {"format": name, "m": m, "backend": backend, "dense_s": dense_s, "reference_s": ref_s,
                 "reference_over_dense": ref_s / dense_s, "kernel_s": None, "dense_over_kernel": None}
            if config["time_gpu"]:
                t["kernel_s"] = time_per_call(jax.jit(lambda x, f: kern(x, f, interpret=False)), x, fmt,
                                              repeats=config["repeats"])
                t["dense_over_kernel"] = dense_s / t["kernel_s"]
            timings.append(t)
            ctx.log(f"{backend} M={m:5d} {name:9s} dense {dense_s * 1e3:8.3f} ms  reference/dense "
                    f"{t['reference_over_dense']:6.2f}" + ("" if t["kernel_s"] is None else
                                                          f"  speedup {t['dense_over_kernel']:5.2f}x"))
    errs = check_kernels(config["check_shape"], block, g)
    ctx.log(f"interpret-mode kernel vs reference max |err|: {errs}")
    ctx.save_figure(plot(rows), "roofline.png")
    return {"backend": backend, "device": str(jax.devices()[0]), "roofline": rows, "timings": timings,
            "interpret_max_abs_err": errs, "gpu_measured": bool(config["time_gpu"])}


def summarize(results: dict) -> str:
    """One markdown cell: predicted H200 speedups at the goal points, and whether GPU ratios exist."""
    m = results["metrics"]
    rows = {(r["format"], r["m"]): r for r in m["roofline"]}
    parts = []
    for (name, mm), goal in GOALS.items():
        r = rows.get((name, mm))
        if r is not None:
            parts.append(f"{name} M={mm}: predicted {r['predicted_speedup_H200']:.2f}x on H200 "
                         f"({r['predicted_speedup_H100']:.2f}x H100; goal {goal:g}x)")
    errs = m.get("interpret_max_abs_err", {})
    if errs:
        parts.append(f"kernels equal references in interpret mode (max err {max(errs.values()):.1e})")
    if m.get("gpu_measured"):
        sp = [t for t in m["timings"] if t["dense_over_kernel"] is not None]
        parts.append("measured on GPU: " + ", ".join(f"{t['format']} M={t['m']} {t['dense_over_kernel']:.2f}x"
                                                     for t in sp if (t["format"], t["m"]) in GOALS))
        verdict = "claim held" if all(t["dense_over_kernel"] >= GOALS[(t["format"], t["m"])]
                                      for t in sp if (t["format"], t["m"]) in GOALS) else "did not hold"
    else:
        verdict = "roofline only: GPU ratios not measured yet (preset gpu is ready)"
    parts.append(verdict)
    return "; ".join(parts)


def plot(rows):
    """Predicted H200 speedup over dense bf16 per format, one group of bars per M."""
    import matplotlib.pyplot as plt

    ms = sorted({r["m"] for r in rows})
    names = list(dict.fromkeys(r["format"] for r in rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(ms)
    for i, m in enumerate(ms):
        by = {r["format"]: r for r in rows if r["m"] == m}
        ax.bar(np.arange(len(names)) + i * width, [by[nm]["predicted_speedup_H200"] for nm in names], width,
               label=f"M={m}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    ax.set_ylabel("predicted speedup over dense bf16 (H200 roofline)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return fig
