"""P3 GQSA: W4 + 50% group sparsity vs 2:4 pruning vs W2 quantization on a small decoder LM (perplexity, bytes/weight).

Paper: "GQSA: Group Quantization and Sparsity for Accelerating Large Language Model Inference"
(Zeng et al., 2024). A `sparsejax.nn.DecoderLM` is trained on text sampled from the probabilistic
grammar of `sparsejax.data.grammar`; then the Dense kernels of its transformer blocks are
compressed three ways with the same pipeline (`sparsejax.quant`):

* ``gqsa``: 4-bit group quantization (group size ``g``, float16 scale + uint8 zero point per group)
  with 50% of the groups of every output column removed (Hessian-diagonal group salience);
* ``nm24``: 2:4 pruning along the input axis (salience ``|w| sqrt(diag X^T X)``), float16 values;
* ``w2``: 2-bit group quantization, no sparsity.

Stage 0 is one-shot (min/max quantizer, salience mask); stage 1 is BQPO (block-wise reconstruction
of each transformer block's full-precision output on calibration windows, training the kept weights
and the quantization parameters); stage 2 is E2E-OQP (integer codes frozen, scales / zero points
trained on the LM loss; not applicable to 2:4). The final perplexity is measured from the packed
storage itself (float16 scales, packed codes), whose exact size gives the bytes per weight.
Claim checked: under W4S50% the model is more accurate (lower perplexity) than under 2:4 and W2.

Serving: the W4S50 model is also evaluated with its compressed Dense layers replaced (through
``flax.linen.intercept_methods``) by `sparsejax.kernels.QuantDense`, which runs the Pallas W4 kernel
(interpret mode on CPU) on the frozen codes; ``ppl_served`` must equal ``ppl_final`` (the jnp
reference path). Deviation from the paper's engine: GQSA's per-column group lists cannot feed an
MMA, so QuantDense serves the dense W4 layout with the pruned groups coded as their zero point
(exact zeros); its bytes are reported as ``served_bits_per_weight``. Speed is not measured here
(see ``bench_sparse_kernels``).

Extra method ``gqsa_tile`` (not in the paper): the variant the kernels can accelerate, where a kept
group of ``g`` rows is shared by a tile of 32 output columns (``(g, 32)`` blocks, ranked layer-wise by
the same salience summed over the block, `sparsejax.structured.block_mask`), run through the same
BQPO / E2E-OQP pipeline, stored as `sparsejax.kernels.QuantBlockSparse` and served by the
block-sparse W4 kernel. Its perplexity against ``gqsa`` measures the accuracy cost of the coarser
pattern that buys MMA work proportional to the kept blocks.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.tree import path_str
from sparsejax.kernels import (
    QuantDense,
    apply_with_layers,
    dequantize_block_sparse,
    from_block_sparse,
    quantized_nbytes,
    to_quant_block_sparse,
)
from sparsejax.structured import block_mask
from sparsejax.data import VOCAB, batch_indices, grammar_corpus, lm_windows
from sparsejax.nn.transformer import DecoderLM, TransformerBlock
from sparsejax.quant import (
    GroupQuantized,
    bqpo,
    freeze_codes,
    frozen_weights,
    gqsa_init,
    gqsa_masks,
    gqsa_nbytes,
    gqsa_pack,
    gqsa_unpack,
    gqsa_weights,
    group_dequantize,
    group_quant_nbytes,
    join_frozen,
    make_e2e_oqp_step,
    merge,
    pack_codes,
    split_frozen,
)
from sparsejax.structured import nm_compress, nm_decompress, nm_mask, nm_nbytes
from sparsejax.train import LoopCheckpointer, TrainState, cross_entropy_loss, fit, make_train_step

PRESETS = {
    "smoke": {"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 32, "n_sentences": 20000, "train_steps": 800,
              "batch_size": 32, "learning_rate": 3e-3, "calib_windows": 128, "group_size": 16, "bqpo_steps": 150,
              "bqpo_lr": 3e-4, "bqpo_qparam_lr": 3e-5, "e2e_steps": 100, "e2e_lr": 2e-5,
              "methods": ["gqsa", "nm24", "w2", "gqsa_tile"], "checkpoint_every": 0},
    "full": {"d_model": 128, "n_layers": 4, "n_heads": 4, "seq_len": 64, "n_sentences": 20000, "train_steps": 4000,
             "batch_size": 64, "learning_rate": 1e-3, "calib_windows": 256, "group_size": 16, "bqpo_steps": 600,
             "bqpo_lr": 2e-4, "bqpo_qparam_lr": 2e-5, "e2e_steps": 600, "e2e_lr": 1e-5,
             "methods": ["gqsa", "nm24", "w2", "gqsa_tile"], "checkpoint_every": 500},
}

PAPERS = ("P3",)
CLAIM = ("W4 + 50% group sparsity (GQSA) keeps an LLM more accurate than 2:4 pruning or W2 quantization at "
         "similar compression, with real speedups")

METHODS = {"gqsa": {"bits": 4, "sparsity": 0.5}, "nm24": {"bits": None, "sparsity": 0.5},
           "w2": {"bits": 2, "sparsity": 0.0}, "gqsa_tile": {"bits": 4, "sparsity": 0.5}}
TILE = 32  # gqsa_tile: kept groups shared by tiles of 32 output columns, blocks (g, 32) feed an MMA


def _in_block(path: str, leaf) -> bool:
    """Compressed leaves: the 2-D Dense kernels inside the transformer blocks."""
    return getattr(leaf, "ndim", 0) == 2 and "/block_" in f"/{path}" and path.endswith("kernel")


def dense_input_energy(model, params, tokens):
    """``diag(X^T X)`` of the input of every Dense layer (calibration statistics), as a tree like
    ``params`` with ``None`` at the leaves that are not compressed."""
    @jax.jit
    def collect(params, tokens):
        energy = {}

        def record(next_fun, args, kwargs, context):
            if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
                x = args[0]
                energy["/".join(context.module.path)] = jnp.sum(jnp.square(x.reshape(-1, x.shape[-1])), axis=0)
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            model.apply(params, tokens)
        return energy

    energy = {tuple(k.split("/")): v for k, v in collect(params, tokens).items()}
    return jax.tree_util.tree_map_with_path(
        lambda p, leaf: energy[tuple(k.key for k in p[1:-1])] if _in_block(path_str(p), leaf) else None, params)


def _masks(method, params, feat, g):
    spec = METHODS[method]
    if method == "gqsa":
        return gqsa_masks(params, g, spec["sparsity"], feat_sq=feat, predicate=_in_block)
    if method == "gqsa_tile":  # the same salience, summed over (g, TILE) blocks, ranked layer-wise
        return jax.tree_util.tree_map(
            lambda h, w: None if h is None else block_mask(w, (g, TILE), spec["sparsity"],
                                                            score=jnp.abs(w) * jnp.sqrt(h)[:, None]),
            feat, params, is_leaf=lambda x: x is None)
    if method == "nm24":
        return jax.tree_util.tree_map(
            lambda h, w: None if h is None else nm_mask(jnp.abs(w) * jnp.sqrt(h)[:, None], 2, 4, axis=0),
            feat, params, is_leaf=lambda x: x is None)
    return jax.tree_util.tree_map(lambda h, w: None if h is None else jnp.ones(w.shape, bool), feat, params,
                                  is_leaf=lambda x: x is None)


def _pack_leaf(method, mask, weight, frozen, g):
    """Packed storage of one compressed kernel: ``(dense weight decoded from storage, bytes)``."""
    if method == "gqsa":
        c = gqsa_pack(frozen["codes"], frozen["scale"], frozen["zero"], mask, 4, g)
        return gqsa_unpack(c), gqsa_nbytes(c)
    if method == "gqsa_tile":
        c = _tile_format(mask, frozen, g)
        return from_block_sparse(c.index_view(dequantize_block_sparse(c))), quantized_nbytes(c)
    if method == "w2":
        zero = jnp.clip(jnp.round(frozen["zero"]), 0, 3).astype(jnp.uint8)
        c = GroupQuantized(pack_codes(frozen["codes"], 2, axis=0), frozen["scale"].astype(jnp.float16), zero, 2, g)
        return group_dequantize(c), group_quant_nbytes(c)
    c = nm_compress(jnp.where(mask, weight, 0).astype(jnp.float16), 2, 4, axis=0)
    return nm_decompress(c).astype(jnp.float32), nm_nbytes(c, index_bits=2)


def _tile_format(mask, frozen, g):
    """`QuantBlockSparse` (kept (g, TILE) blocks, W4 codes frozen by E2E-OQP, float16 scales)."""
    zero = jnp.clip(jnp.round(frozen["zero"]), 0, 15)
    return to_quant_block_sparse(jnp.zeros(mask.shape), (g, TILE), 4, mask, codes=frozen["codes"],
                                 scale=frozen["scale"], zero=zero)


def _served_layers(params, masks, frozen, g, method="gqsa"):
    """QuantDense (Pallas W4 kernel) for every compressed kernel: dense W4 layout for ``gqsa``,
    block-sparse W4 layout for ``gqsa_tile``."""
    layers, nbytes = {}, 0
    for path, m in jax.tree_util.tree_leaves_with_path(masks, is_leaf=lambda x: x is None):
        if m is None:
            continue
        f = _get(frozen, path)
        dense_params = _get(params, path[:-1])
        if method == "gqsa_tile":
            module, variables = QuantDense.from_format(_tile_format(m, f, g), bias=dense_params.get("bias"),
                                                       use_kernel=True)
        else:
            zero = jnp.clip(jnp.round(f["zero"]), 0, 15)
            module, variables = QuantDense.from_codes(f["codes"], f["scale"], zero, 4, g, mask=m,
                                                      bias=dense_params.get("bias"), use_kernel=True)
        layers[tuple(k.key for k in path[1:-1])] = (module, variables)
        stored = (variables["compressed"], variables["params"]["scales"])  # codes, zero points, scales
        nbytes += sum(int(v.nbytes) for v in jax.tree_util.tree_leaves(stored))
    return layers, nbytes


def run(config: dict, ctx) -> dict:
    """Train the LM, compress it with every method (stage 0 / BQPO / E2E-OQP), tabulate."""
    unknown = set(config["methods"]) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; valid: {sorted(METHODS)}")
    g, T = config["group_size"], config["seq_len"]
    corpus = grammar_corpus(config["n_sentences"], seed=0, max_len=T)
    windows = jnp.asarray(lm_windows(corpus, T))
    n_test = max(16, len(windows) // 10)
    train, test = windows[:-n_test], windows[-n_test:]
    model = DecoderLM(len(VOCAB), d_model=config["d_model"], n_layers=config["n_layers"],
                      n_heads=config["n_heads"], max_len=T)
    key = jax.random.PRNGKey(ctx.seed)
    k_init, k_data, k_calib, k_e2e = jax.random.split(key, 4)
    params = model.init(k_init, train[:1, :-1])
    tx = optax.adam(config["learning_rate"])
    ckpt = LoopCheckpointer(ctx.checkpoint_dir("lm"), config["checkpoint_every"] or 1,
                            enabled=config["checkpoint_every"] > 0)
    state, train_losses = fit(make_train_step(model.apply, tx), TrainState.create(params, tx), train[:, :-1],
                              train[:, 1:], steps=config["train_steps"], batch_size=config["batch_size"],
                              key=k_data, checkpointer=ckpt, progress=lambda it, **kw: ctx.progress(it, desc="train LM", **kw))
    ckpt.close()
    params = state.params

    @jax.jit
    def test_loss(p):
        return cross_entropy_loss(model.apply(p, test[:, :-1]), test[:, 1:])

    def ppl(p):
        return float(jnp.exp(test_loss(p)))

    calib = train[jax.random.choice(k_calib, len(train), (config["calib_windows"],), replace=False), :-1]
    feat = dense_input_energy(model, params, calib)
    n_weights = sum(int(np.size(w)) for w, h in zip(jax.tree_util.tree_leaves(params),
                                                    jax.tree_util.tree_leaves(feat, is_leaf=lambda x: x is None))
                    if h is not None)
    fp_ppl = ppl(params)
    ctx.log(f"full-precision test perplexity {fp_ppl:.3f}; compressing {n_weights} weights")
    rows = [{"method": "fp32", "bits": 32, "sparsity": 0.0, "bytes_per_weight": 4.0, "bits_per_weight": 32.0,
             "ppl_stage0": fp_ppl, "ppl_bqpo": fp_ppl, "ppl_e2e": fp_ppl, "ppl_final": fp_ppl}]
    block = TransformerBlock(config["d_model"], config["n_heads"], causal=True)
    block_apply = lambda bp, x: block.apply({"params": bp}, x)  # noqa: E731
    embed = lambda p, t: p["params"]["tok_embed"]["embedding"][t] + p["params"]["pos_embedding"][: t.shape[1]]  # noqa

    def lm_loss(p, batch):
        return cross_entropy_loss(model.apply(p, batch[:, :-1]), batch[:, 1:])

    weights_of = jax.jit(gqsa_weights, static_argnums=(2, 3))
    frozen_of = jax.jit(frozen_weights, static_argnums=(2, 3))
    for method in ctx.progress(config["methods"], desc="methods"):
        bits = METHODS[method]["bits"]
        masks = _masks(method, params, feat, g)
        q = gqsa_init(params, masks, bits, g)
        row = {"method": method, "bits": bits, "sparsity": METHODS[method]["sparsity"]}
        row["ppl_stage0"] = ppl(merge(params, weights_of(q, masks, bits, g)))
        # stage 1: BQPO, block by block, inputs from the already-compressed blocks
        x_fp = x_c = embed(params, calib)
        bqpo_losses = []
        for i in range(config["n_layers"]):
            name = f"block_{i}"
            bp = params["params"][name]
            y_fp = block_apply(bp, x_fp)
            qi, losses = bqpo(block_apply, bp, q["params"][name], masks["params"][name], x_c, y_fp, bits=bits, g=g,
                              steps=config["bqpo_steps"], lr=config["bqpo_lr"], qparam_lr=config["bqpo_qparam_lr"],
                              key=jax.random.fold_in(k_calib, i))
            q = {**q, "params": {**q["params"], name: qi}}
            bqpo_losses.append([losses[0], losses[-1]])
            x_c = block_apply(merge(bp, weights_of(qi, masks["params"][name], bits, g)), x_c)
            x_fp = y_fp
        row["bqpo_block_mse_first_last"] = bqpo_losses
        row["ppl_bqpo"] = ppl(merge(params, weights_of(q, masks, bits, g)))
        # stage 2: E2E-OQP (quantization parameters only, integer codes frozen)
        if bits is not None:
            codes, qp = split_frozen(freeze_codes(q, masks, bits, g))
            e2e_tx = optax.adam(config["e2e_lr"])
            step = make_e2e_oqp_step(lm_loss, masks, bits, g, e2e_tx)
            opt = e2e_tx.init(qp)
            for t in range(config["e2e_steps"]):
                batch = train[batch_indices(k_e2e, t, len(train), config["batch_size"])]
                qp, opt, _ = step(qp, opt, codes, params, batch)
            frozen = join_frozen(codes, qp)
            row["ppl_e2e"] = ppl(merge(params, frozen_of(frozen, masks, bits, g)))
        else:
            frozen = jax.tree_util.tree_map(lambda m: None, masks, is_leaf=lambda x: x is None)
            row["ppl_e2e"] = None
        # packed storage: exact bytes, and the perplexity of the weights decoded from it
        eff = weights_of(q, masks, bits, g) if bits is None else None
        total_bytes, decoded = 0, {}
        flat_masks = jax.tree_util.tree_leaves_with_path(masks, is_leaf=lambda x: x is None)
        for path, m in flat_masks:
            if m is None:
                continue
            f = None if bits is None else _get(frozen, path)
            w = _get(eff, path) if eff is not None else None
            dense, nbytes = _pack_leaf(method, m, w, f, g)
            decoded[path_str(path)] = dense
            total_bytes += nbytes
        stored = jax.tree_util.tree_map_with_path(lambda p, w: decoded.get(path_str(p), w), params)
        row["ppl_final"] = ppl(stored)
        if method in ("gqsa", "gqsa_tile"):  # the same model served by the Pallas W4 kernels (QuantDense)
            layers, served_bytes = _served_layers(params, masks, frozen, g, method)
            logits = jax.jit(lambda p, t: apply_with_layers(model, p, t, layers=layers))(params, test[:, :-1])
            row["ppl_served"] = float(jnp.exp(cross_entropy_loss(logits, test[:, 1:])))
            row["served_bits_per_weight"] = 8 * served_bytes / n_weights
            row["served_matches_reference"] = abs(row["ppl_served"] - row["ppl_final"]) <= 1e-3 * row["ppl_final"]
            ctx.log(f"{method} served through QuantDense (Pallas W4 kernel): ppl {row['ppl_served']:.4f} "
                    f"(reference {row['ppl_final']:.4f})")
        row["bytes_per_weight"] = total_bytes / n_weights
        row["bits_per_weight"] = 8 * total_bytes / n_weights
        rows.append(row)
        ctx.log(f"{method}: ppl stage0 {row['ppl_stage0']:.3f} bqpo {row['ppl_bqpo']:.3f} "
                f"final {row['ppl_final']:.3f} at {row['bits_per_weight']:.3f} bits/weight")
    ctx.save_figure(plot(rows), "ppl_vs_bits.png")
    by = {r["method"]: r for r in rows}
    claim = None
    if {"gqsa", "nm24", "w2"} <= set(by):
        claim = by["gqsa"]["ppl_final"] < min(by["nm24"]["ppl_final"], by["w2"]["ppl_final"])
    return {"rows": rows, "fp_ppl": fp_ppl, "compressed_weights": n_weights, "final_train_loss": train_losses[-1]
            if train_losses else None, "claim_w4s50_beats_2of4_and_w2": claim}


def summarize(results: dict) -> str:
    """One markdown cell: final perplexities and bits/weight per method, the served check, the verdict."""
    m = results["metrics"]
    by = {r["method"]: r for r in m["rows"]}
    cfg = results.get("config", {})
    parts = [f"decoder LM d={cfg.get('d_model')}, {cfg.get('n_layers')} layers, seed {results.get('seed')}: "
             f"test ppl FP {m['fp_ppl']:.3f}"]
    names = {"gqsa": "GQSA W4S50", "nm24": "2:4", "w2": "W2", "gqsa_tile": "W4S50 with groups shared by 32-column tiles"}
    for key, label in names.items():
        if key in by:
            parts.append(f"{label} {by[key]['ppl_final']:.3f} @ {by[key]['bits_per_weight']:.2f} bits/w")
    for key, kernel in (("gqsa", "W4"), ("gqsa_tile", "block-sparse W4")):
        g = by.get(key, {})
        if "ppl_served" in g:
            parts.append(f"{names[key]} served by the Pallas {kernel} kernel (QuantDense, interpret mode) ppl "
                         f"{g['ppl_served']:.3f} ({'equal to' if g['served_matches_reference'] else 'DIFFERS from'} "
                         f"the reference path) @ {g['served_bits_per_weight']:.2f} bits/w")
    claim = m.get("claim_w4s50_beats_2of4_and_w2")
    verdict = "not evaluated" if claim is None else ("claim held" if claim else "did not hold")
    parts.append(f"{verdict} (accuracy part; speed not measured on a GPU)")
    return "; ".join(parts)


def _get(tree, path):
    for k in path:
        tree = tree[k.key]
    return tree


def plot(rows):
    """Perplexity per stage (bars) and final perplexity vs bits per weight."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    comp = [r for r in rows if r["method"] != "fp32"]
    xs = np.arange(len(comp))
    for j, stage in enumerate(["ppl_stage0", "ppl_bqpo", "ppl_e2e", "ppl_final"]):
        a.bar(xs + 0.2 * j, [r[stage] or np.nan for r in comp], 0.2, label=stage)
    a.axhline(rows[0]["ppl_final"], color="k", ls="--", label="fp32")
    a.set_xticks(xs + 0.3, [r["method"] for r in comp])
    a.set_ylabel("test perplexity")
    a.set_yscale("log")
    a.legend(fontsize=8)
    for r in comp:
        b.scatter(r["bits_per_weight"], r["ppl_final"], label=r["method"])
    b.axhline(rows[0]["ppl_final"], color="k", ls="--", label="fp32")
    b.set_xlabel("stored bits per compressed weight (exact)")
    b.set_ylabel("final test perplexity")
    b.legend(fontsize=8)
    return fig
