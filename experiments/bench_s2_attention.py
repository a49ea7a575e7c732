"""Benchmark: S2-Attention's causal block-sparse attention kernel against dense causal attention.

Work table (every preset, no GPU needed), per sequence length and pattern, for ``batch`` sequences
of ``heads`` heads of width ``head_dim`` (bf16): the attended block fraction, the kernel's MMA FLOPs
(``4 * kept blocks * block^2 * D`` per head: QK^T and PV over whole tiles, the diagonal tile
included) against dense causal flash attention (which also skips the tiles above the diagonal), the
attended token-pair fraction (the exact work), and the KV bytes a decoder keeps for the last token
(K and V of the key blocks its row keeps) against dense (the whole context). Patterns: S2 as in
Phi-3-small (block 64, 16 local blocks, vert_stride 8 [recalled]) and the local/stride of the
``s2_attention`` experiment (2 local blocks, stride 4) at block 64, plus their homogeneous (same
blocks for every head) variants.

Timings: preset ``gpu`` times, on one GPU, the compiled Triton kernel (`block_sparse_attention`)
against JAX's Pallas dense flash attention (``jax.experimental.pallas.ops.gpu.attention.mha``,
causal) and ``jax.nn.dot_product_attention`` (XLA; cuDNN where available), forward only, median of
``repeats`` after a warm-up. It has not run: this project has had no GPU so far. On CPU a tiny
interpret-mode run checks the kernel against its reference.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.kernels import block_sparse_attention, block_sparse_attention_reference
from sparsejax.llm.s2_attention import pattern_stats, s2_block_mask
from sparsejax.timing import time_per_call

PAPERS = ("P44",)
CLAIM = ("S2-Attention's kernel speeds attention up over FlashAttention-2 (up to 25.3x at long context) by "
         "skipping the blocks a head does not attend (P44)")

PATTERNS = {"phi3_small": {"block_size": 64, "local_blocks": 16, "vert_stride": 8},
            "local2_stride4": {"block_size": 64, "local_blocks": 2, "vert_stride": 4}}
PRESETS = {
    "smoke": {"seq_lens": [2048, 8192, 32768], "heads": 32, "head_dim": 128, "batch": 1, "repeats": 3,
              "time_gpu": False, "check_shape": [1, 96, 4, 16]},
    "full": {"seq_lens": [2048, 8192, 32768, 131072], "heads": 32, "head_dim": 128, "batch": 1, "repeats": 3,
             "time_gpu": False, "check_shape": [1, 96, 4, 16]},
    "gpu": {"seq_lens": [2048, 8192, 32768], "heads": 32, "head_dim": 128, "batch": 1, "repeats": 20,
            "time_gpu": True, "check_shape": [1, 96, 4, 16]},
}


def work_rows(seq_lens, heads: int, head_dim: int, batch: int) -> list[dict]:
    """FLOPs / KV bytes of each pattern and variant against dense causal attention."""
    rows = []
    for t in seq_lens:
        for name, p in PATTERNS.items():
            bs = p["block_size"]
            nb = -(-t // bs)
            for homo in (False, True):
                m = s2_block_mask(heads, nb, local_blocks=p["local_blocks"], vert_stride=p["vert_stride"],
                                  homo_head=homo)
                st = pattern_stats(m, t, bs)
                kept = st["blocks_per_head"] * heads * batch
                kernel_flops = 4.0 * kept * bs * bs * head_dim
                dense_flops = 4.0 * (nb * (nb + 1) / 2) * bs * bs * head_dim * heads * batch  # causal flash tiles
                kv_bytes = 2 * 2 * st["kv_fraction"] * t * head_dim * heads * batch  # K and V, bf16
                rows.append({"seq_len": t, "pattern": name + ("_homo" if homo else ""), **st,
                             "kernel_flops": kernel_flops, "dense_flash_flops": dense_flops,
                             "flops_vs_dense": kernel_flops / dense_flops, "kv_bytes": kv_bytes,
                             "dense_kv_bytes": 2 * 2 * t * head_dim * heads * batch})
    return rows


def check_kernel(shape) -> float:
    """Max |kernel - reference| of a tiny interpret-mode run (f32, block 16)."""
    b, t, h, d = shape
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal((b, t, h, d)), jnp.float32) for _ in range(3))
    m = s2_block_mask(h, -(-t // 16), local_blocks=1, vert_stride=4)
    y = block_sparse_attention(q, k, v, m, block_size=16, interpret=True)
    return float(jnp.max(jnp.abs(y - block_sparse_attention_reference(q, k, v, m, block_size=16))))


def gpu_timings(config, ctx) -> list[dict]:
    """Kernel vs dense Pallas flash attention vs XLA attention on the GPU (forward, bf16)."""
    from jax.experimental.pallas.ops.gpu.attention import mha

    rng = np.random.default_rng(ctx.seed)
    h, d, b = config["heads"], config["head_dim"], config["batch"]
    out = []
    for t in ctx.progress(config["seq_lens"], desc="gpu timing"):
        q, k, v = (jnp.asarray(rng.standard_normal((b, t, h, d)), jnp.bfloat16) for _ in range(3))
        flash = time_per_call(jax.jit(lambda q, k, v: mha(q, k, v, None, sm_scale=d ** -0.5, causal=True)), q, k, v,
                              repeats=config["repeats"])
        xla = time_per_call(jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True)), q, k, v,
                            repeats=config["repeats"])
        for name, p in PATTERNS.items():
            m = s2_block_mask(h, -(-t // p["block_size"]), local_blocks=p["local_blocks"],
                              vert_stride=p["vert_stride"])
            fn = jax.jit(lambda q, k, v, m=m, bs=p["block_size"]: block_sparse_attention(
                q, k, v, m, block_size=bs, backend="triton", interpret=False))
            kern = time_per_call(fn, q, k, v, repeats=config["repeats"])
            out.append({"seq_len": t, "pattern": name, "kernel_s": kern, "dense_flash_s": flash, "xla_s": xla,
                        "speedup_vs_flash": flash / kern, "speedup_vs_xla": xla / kern})
            ctx.log(f"T={t} {name}: kernel {kern * 1e3:.2f} ms, flash {flash * 1e3:.2f} ms "
                    f"({flash / kern:.2f}x), xla {xla * 1e3:.2f} ms")
    return out


def run(config: dict, ctx) -> dict:
    """Work table; GPU timings with preset ``gpu``; interpret-mode kernel check."""
    if config["time_gpu"] and jax.default_backend() != "gpu":
        raise ValueError(f"preset 'gpu' needs a GPU (jax.default_backend() is {jax.default_backend()!r}); "
                         "use 'smoke' on CPU")
    rows = work_rows(config["seq_lens"], config["heads"], config["head_dim"], config["batch"])
    for r in rows:
        ctx.log(f"T={r['seq_len']:6d} {r['pattern']:16s} blocks {100 * r['block_fraction']:5.1f}%  "
                f"kernel FLOPs/dense flash {r['flops_vs_dense']:.3f}  pairs {100 * r['pair_fraction']:5.1f}%  "
                f"KV {100 * r['kv_fraction']:5.1f}%  covers {r['covers_causal']}")
    timings = gpu_timings(config, ctx) if config["time_gpu"] else []
    err = check_kernel(config["check_shape"])
    ctx.log(f"interpret-mode kernel vs reference max |err| {err:.2e}")
    return {"work": rows, "timings": timings, "interpret_max_abs_err": err, "gpu_measured": bool(timings),
            "backend": jax.default_backend()}


def summarize(results: dict) -> str:
    """FLOPs and KV fractions at the longest length; GPU speedups when measured."""
    m = results["metrics"]
    t = max(r["seq_len"] for r in m["work"])
    parts = [f"T={t} {r['pattern']}: kernel FLOPs {r['flops_vs_dense']:.3f}x dense flash, KV "
             f"{100 * r['kv_fraction']:.1f}% (modelled upper bound on speedup {1 / r['flops_vs_dense']:.1f}x)"
             for r in m["work"] if r["seq_len"] == t and not r["pattern"].endswith("_homo")]
    parts.append(f"kernel = reference in interpret mode (max err {m['interpret_max_abs_err']:.1e})")
    if m["gpu_measured"]:
        best = max(m["timings"], key=lambda r: r["speedup_vs_flash"])
        parts.append(f"measured on GPU: best {best['speedup_vs_flash']:.2f}x over Pallas flash attention "
                     f"(T={best['seq_len']}, {best['pattern']}; paper up to 25.3x over FlashAttention-2)")
    else:
        parts.append("not timed on a GPU (no GPU so far; preset gpu is ready)")
    return "; ".join(parts)
