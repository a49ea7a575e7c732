"""P44 S2-Attention: heterogeneous per-head context sharding vs dense, homogeneous-stride and local
attention at equal attended blocks per head, on the grammar LM and a needle-retrieval task.

Paper: "Efficient LLM Training and Serving with Heterogeneous Context Sharding among Attention Heads"
(Lin et al., 2024; code ``linxihui/dkernel``). Patterns from `sparsejax.llm.s2_attention` (the
official ``get_sparse_attn_mask``): block ``block_size`` tokens, ``local_blocks`` local blocks and a
vertical stride ``vert_stride`` shifted by one block per head, so the 4 heads jointly cover the
context. Variants (every layer uses the pattern unless said otherwise):

* ``dense``: causal attention (the quality reference; all blocks);
* ``s2``: heterogeneous S2 pattern;
* ``homo``: the same local + stride blocks for every head (``homo_head``): equal blocks per head as s2;
* ``local``: sliding window with the local width whose block count is closest to s2's;
* ``s2_dense0``: s2 with layer 0 dense (the hybrid "S2 + dense layers" design).

Tasks: (a) DecoderLM on the PCFG grammar corpus, windows of ``seq_len`` tokens (validation
perplexity; trivial baseline: the unigram distribution of the training tokens); (b)
`needle_retrieval`: one marker-value needle at a uniform depth in filler tokens, the last token asks
for the value (accuracy by needle depth quartile; trivial baseline: 1 / n_values). Models use the
jnp reference of the block-sparse attention (masking gives no CPU speed-up; the Pallas kernel is
checked against it in the tests and timed by ``bench_s2_attention``); the work is reported as the
attended block / token-pair fraction and KV fraction (`pattern_stats`). Deviations: tiny models
(d=32, 2 layers, 4 heads), a few hundred steps, seq 128 with block 8 (16 blocks); the paper's
needle test is 32K-128K tokens on 1.3B-7B models.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._stats import fmt_mean_std
from sparsejax.data import grammar_corpus, lm_windows
from sparsejax.data.grammar import VOCAB
from sparsejax.data.synthetic_tasks import needle_retrieval
from sparsejax.llm.s2_attention import (
    attention_fns,
    dense_block_mask,
    local_block_mask,
    matched_local_blocks,
    pattern_stats,
    s2_block_mask,
)
from sparsejax.nn import DecoderLM
from sparsejax.train import TrainState, fit, make_train_step

PAPERS = ("P44",)
CLAIM = ("S2-Attention (heterogeneous context sharding among heads) matches dense attention quality at a small "
         "fraction of the attention work, and retrieves perfectly when the heads jointly cover the context (P44)")
VARIANTS = ("dense", "s2", "homo", "local", "s2_dense0")

_BASE = {"seq_len": 128, "block_size": 8, "local_blocks": 2, "vert_stride": 4, "n_heads": 4, "d_model": 32,
         "n_layers": 2, "batch_size": 32, "learning_rate": 3e-3, "variants": list(VARIANTS),
         "n_filler": 32, "n_values": 16}  # 49 needle tokens within the 50-token grammar vocabulary
PRESETS = {
    "smoke": {**_BASE, "seeds": [0], "lm_steps": 80, "lm_sentences": 6000, "needle_steps": 250,
              "needle_train": 4096, "needle_test": 512},
    "full": {**_BASE, "seeds": [0, 1, 2], "lm_steps": 600, "lm_sentences": 20000, "needle_steps": 800,
             "needle_train": 16384, "needle_test": 2048, "d_model": 64},
}


def variant_masks(name: str, config: dict) -> list:
    """Per-layer block masks of a variant (``None``: built-in dense attention)."""
    h, nb, layers = config["n_heads"], -(-config["seq_len"] // config["block_size"]), config["n_layers"]
    s2 = s2_block_mask(h, nb, local_blocks=config["local_blocks"], vert_stride=config["vert_stride"])
    if name == "dense":
        return [None] * layers
    if name == "s2":
        return [s2] * layers
    if name == "homo":
        return [s2_block_mask(h, nb, local_blocks=config["local_blocks"], vert_stride=config["vert_stride"],
                              homo_head=True)] * layers
    if name == "local":
        return [local_block_mask(h, nb, matched_local_blocks(s2))] * layers
    if name == "s2_dense0":
        return [None] + [s2] * (layers - 1)
    raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")


def work(masks: list, config: dict) -> dict:
    """Attention work of a variant averaged over layers (dense layers count 1.0)."""
    t, bs, h = config["seq_len"], config["block_size"], config["n_heads"]
    stats = [pattern_stats(dense_block_mask(h, -(-t // bs)) if m is None else m, t, bs) for m in masks]
    out = {k: float(np.mean([s[k] for s in stats])) for k in ("blocks_per_head", "block_fraction",
                                                               "pair_fraction", "kv_fraction")}
    out["covers_causal"] = all(s["covers_causal"] for s in stats)
    return out


def masked_ce(logits, targets):
    """Mean cross-entropy over the positions with ``targets >= 0``."""
    keep = targets >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(targets, 0))
    return jnp.sum(ce * keep) / jnp.maximum(jnp.sum(keep), 1)


def _trainer(model, config):
    """One jitted train step and eval apply per model (shared by both tasks: same vocab and shapes)."""
    tx = optax.adam(config["learning_rate"])
    step = make_train_step(model.apply, tx, masked_ce)
    apply = jax.jit(model.apply)

    def train(x, y, steps, seed, tag):
        params = jax.jit(model.init)(jax.random.key(seed), jnp.asarray(x[:2]))
        state, losses = fit(step, TrainState.create(params, tx), x, y, steps=steps,
                            batch_size=config["batch_size"], key=jax.random.key(seed + 1), log_prefix=tag)
        return state.params, losses

    def predict(params, x, batch=64):
        return np.concatenate([np.asarray(apply(params, jnp.asarray(x[i:i + batch]))) for i in range(0, len(x), batch)])

    return train, predict


def _lm_data(config, seed):
    t = config["seq_len"]
    train = lm_windows(grammar_corpus(config["lm_sentences"], seed=seed), t)
    val = lm_windows(grammar_corpus(max(500, config["lm_sentences"] // 6), seed=10_000 + seed), t)
    return train, val


def _unigram_ppl(train, val, vocab):
    counts = np.bincount(train[:, 1:].reshape(-1), minlength=vocab) + 1.0
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[val[:, 1:].reshape(-1)].mean()))


def run(config: dict, ctx) -> dict:
    """Train every variant on both tasks for every seed; perplexity, recall by depth, attention work."""
    rows = []
    if config["n_filler"] + 1 + config["n_values"] > len(VOCAB):
        raise ValueError(f"n_filler + 1 + n_values must be <= {len(VOCAB)} (the grammar vocabulary, shared by "
                         "both tasks so that one compiled step serves both)")
    bar = ctx.progress(total=len(config["seeds"]) * len(config["variants"]) * 2, desc="s2 variants")
    baselines = {}
    for seed in config["seeds"]:
        s = 1000 * ctx.seed + seed
        lm_train, lm_val = _lm_data(config, s)
        baselines.setdefault("unigram_ppl", []).append(_unigram_ppl(lm_train, lm_val, len(VOCAB)))
        nd = needle_retrieval(config["needle_train"], config["seq_len"], n_filler=config["n_filler"],
                              n_values=config["n_values"], seed=s)
        nt = needle_retrieval(config["needle_test"], config["seq_len"], n_filler=config["n_filler"],
                              n_values=config["n_values"], seed=s + 1)
        for name in config["variants"]:
            masks = variant_masks(name, config)
            model = DecoderLM(len(VOCAB), d_model=config["d_model"], n_layers=config["n_layers"],
                              n_heads=config["n_heads"], max_len=config["seq_len"],
                              attention_fn=attention_fns(masks, config["block_size"]))
            train, predict = _trainer(model, config)
            params, _ = train(lm_train[:, :-1], lm_train[:, 1:], config["lm_steps"], s, f"lm/{name}/{seed}")
            logits = predict(params, lm_val[:, :-1])
            ppl = float(np.exp(masked_ce(jnp.asarray(logits), jnp.asarray(lm_val[:, 1:]))))
            bar.update()
            params, losses = train(nd.tokens, nd.targets, config["needle_steps"], s, f"needle/{name}/{seed}")
            pred = predict(params, nt.tokens)[:, -1].argmax(-1)
            hit = pred == nt.targets[:, -1]
            depth = nt.depth[:, -1]
            by_depth = [float(hit[(depth >= q / 4) & (depth < (q + 1) / 4)].mean()) for q in range(4)]
            bar.update()
            row = {"variant": name, "seed": seed, "val_ppl": ppl, "needle_accuracy": float(hit.mean()),
                   "needle_accuracy_by_depth_quartile": by_depth, "needle_final_loss": losses[-1],
                   **work(masks, config)}
            rows.append(row)
            ctx.log(f"seed {seed} {name:9s}: ppl {ppl:.3f}  needle {hit.mean():.3f} by depth "
                    f"{[round(a, 2) for a in by_depth]}  pairs {row['pair_fraction']:.3f}  "
                    f"blocks/head {row['blocks_per_head']:.1f}  kv {row['kv_fraction']:.3f}")
    bar.close()
    table = {}
    for name in config["variants"]:
        sel = [r for r in rows if r["variant"] == name]
        table[name] = {"val_ppl": [r["val_ppl"] for r in sel], "needle_accuracy": [r["needle_accuracy"] for r in sel],
                       "needle_by_depth": np.mean([r["needle_accuracy_by_depth_quartile"] for r in sel], 0).tolist(),
                       **{k: sel[0][k] for k in ("blocks_per_head", "block_fraction", "pair_fraction", "kv_fraction",
                                                 "covers_causal")}}
    baselines = {"unigram_ppl": float(np.mean(baselines["unigram_ppl"])), "needle_chance": 1.0 / config["n_values"]}
    ctx.save_figure(plot(table), "s2_attention.png")
    return {"rows": rows, "table": table, "baselines": baselines}


def summarize(results: dict) -> str:
    """Perplexity and needle accuracy of each variant beside its attended-pair fraction; verdict."""
    m = results["metrics"]
    t, base = m["table"], m["baselines"]
    parts = [f"{n}: ppl {fmt_mean_std(r['val_ppl'], 3)}, needle {fmt_mean_std(r['needle_accuracy'], 2)}, "
             f"{100 * r['pair_fraction']:.0f}% pairs" for n, r in t.items()]
    parts.append(f"unigram ppl {base['unigram_ppl']:.2f}, needle chance {base['needle_chance']:.2f}")
    verdict = []
    if "s2" in t and "dense" in t:
        d, s = t["dense"], t["s2"]
        learned = np.mean(s["val_ppl"]) < base["unigram_ppl"]
        on_par = np.mean(s["val_ppl"]) <= 1.05 * np.mean(d["val_ppl"])
        verdict.append(("s2 ppl on par with dense (within 5%)" if on_par else "s2 ppl NOT on par with dense")
                       + ("" if learned else " (s2 LM did not learn: ppl >= unigram)"))
        perfect = np.mean(s["needle_accuracy"]) >= 0.99
        verdict.append(f"s2 needle {'perfect' if perfect else 'not perfect'} ({np.mean(s['needle_accuracy']):.2f}, "
                       f"covers context: {s['covers_causal']})")
        if "local" in t:
            verdict.append(f"local-only needle {np.mean(t['local']['needle_accuracy']):.2f}")
    return "; ".join(parts) + ". " + "; ".join(verdict) + " (tiny models, seq 128, smoke scale)"


def plot(table):
    """Needle accuracy by depth quartile per variant, with the attended-pair fraction in the legend."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, r in table.items():
        ax.plot([12.5, 37.5, 62.5, 87.5], r["needle_by_depth"], marker="o",
                label=f"{name} ({100 * r['pair_fraction']:.0f}% pairs)")
    ax.set_xlabel("needle depth (% of context)")
    ax.set_ylabel("retrieval accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)
    return fig
