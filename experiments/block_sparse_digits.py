"""Block-sparse MLP on digits, trained with block masks and served through `SparseDense`.

An MLP (64 -> hidden -> hidden -> 10) is trained dense on scikit-learn's digits, its two hidden
Dense kernels are pruned to block sparsity ``s`` with whole ``(bk, bn)`` blocks ranked by their L2
norm (`sparsejax.structured.block_mask`), and it is fine-tuned with the mask fixed
(`sparsejax.masked(adam)`). The fine-tuned model is then compressed (`SparseDense.from_dense`, the
`BlockSparse` format) and evaluated with those layers running the Pallas block-sparse kernel
(interpret mode on CPU), which must give the same predictions as the masked reference model.

Baselines: the dense MLP (same width, same total steps), the majority class, and an MLP with a
random block mask of the same sparsity (same fine-tuning budget). The head (10 outputs) stays dense.
Claim (SparseByteNN, P28, at the block granularity that feeds tensor-core MMAs): structured sparsity
keeps most of the dense accuracy; here "held" means block-magnitude is within 2 points of dense at
50% and beats random blocks at every sparsity. Speed is measured in ``bench_sparse_kernels``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.data import load_digits
from sparsejax.kernels import SparseDense, apply_with_layers, block_sparse_nbytes, to_block_sparse
from sparsejax.nn import MLP
from sparsejax.structured import block_mask
from sparsejax.train import TrainState, evaluate, fit, make_eval_step, make_train_step

PAPERS = ("P28",)
CLAIM = ("Structured (group / block) sparsity keeps most of the dense accuracy while the kernels run only the "
         "kept blocks")

PRESETS = {
    "smoke": {"hidden": 128, "block": [16, 16], "sparsities": [0.5, 0.75, 0.9], "seeds": [0, 1, 2],
              "dense_steps": 300, "finetune_steps": 200, "batch_size": 64, "learning_rate": 3e-3},
    "full": {"hidden": 256, "block": [32, 32], "sparsities": [0.5, 0.75, 0.9], "seeds": [0, 1, 2],
             "dense_steps": 2000, "finetune_steps": 1000, "batch_size": 64, "learning_rate": 2e-3},
}
SPARSE_LAYERS = ("dense_0", "dense_1")


def _masks(params, block, sparsity, key=None):
    """Block masks of the hidden kernels (``None`` elsewhere): magnitude, or random scores with ``key``."""
    def one(path, w):
        name = path[1].key if len(path) > 2 else None
        if name not in SPARSE_LAYERS or path[-1].key != "kernel":
            return None
        score = None if key is None else jax.random.uniform(jax.random.fold_in(key, SPARSE_LAYERS.index(name)),
                                                           w.shape)
        return block_mask(w, block, sparsity, score=score)

    return jax.tree_util.tree_map_with_path(one, params)


def served_layers(params, masks, block, use_kernel=True):
    """``{path: (SparseDense, variables)}`` for the block-sparse hidden layers."""
    layers = {}
    for name in SPARSE_LAYERS:
        p = params["params"][name]
        layers[(name,)] = SparseDense.from_dense(p, masks["params"][name]["kernel"], block, use_kernel=use_kernel)
    return layers


def run(config: dict, ctx) -> dict:
    """Dense -> block-magnitude / random-block prune + fine-tune -> SparseDense serving, per seed."""
    split = load_digits(seed=0, flatten=True)
    block = tuple(config["block"])
    model = MLP(10, hidden=(config["hidden"], config["hidden"]))
    total_steps = config["dense_steps"] + config["finetune_steps"]
    eval_step = make_eval_step(model.apply)
    majority = float(np.mean(split.y_test == np.bincount(split.y_train).argmax()))
    rows = []
    for seed in ctx.progress(config["seeds"], desc="seeds"):
        k_init, k_data, k_ft, k_rand = jax.random.split(jax.random.PRNGKey(1000 * ctx.seed + seed), 4)
        params = model.init(k_init, split.x_train[:1])
        dense_mask = jax.tree_util.tree_map(lambda w: jnp.ones(w.shape, bool), params)
        tx = sj.masked(optax.adam(config["learning_rate"]), dense_mask)
        step = make_train_step(model.apply, tx)

        def train(params, mask, steps, key):
            state = TrainState.create(sj.apply_mask(params, mask), tx)
            state = state._replace(opt_state=state.opt_state._replace(mask=mask))
            state, losses = fit(step, state, split.x_train, split.y_train, steps=steps,
                                batch_size=config["batch_size"], key=key)
            return state.params, losses

        dense_final, _ = train(params, dense_mask, total_steps, k_data)
        rows.append({"method": "dense", "sparsity": 0.0, "seed": seed,
                     "test_accuracy": evaluate(eval_step, dense_final, split.x_test, split.y_test)["accuracy"]})
        pretrained, _ = train(params, dense_mask, config["dense_steps"], k_data)
        for s in config["sparsities"]:
            for method, key in (("block_magnitude", None), ("block_random", k_rand)):
                masks = _masks(pretrained, block, s, key)
                mask_full = jax.tree_util.tree_map(lambda m, w: jnp.ones(w.shape, bool) if m is None else m, masks,
                                                   pretrained, is_leaf=lambda x: x is None)
                tuned, losses = train(pretrained, mask_full, config["finetune_steps"], k_ft)
                acc = evaluate(eval_step, tuned, split.x_test, split.y_test)["accuracy"]
                row = {"method": method, "sparsity": s, "seed": seed, "test_accuracy": acc,
                       "final_loss": losses[-1] if losses else None}
                if method == "block_magnitude":  # serve through SparseDense (Pallas kernel, interpret on CPU)
                    layers = served_layers(tuned, masks, block)
                    ref_logits = model.apply(tuned, split.x_test)
                    logits = jax.jit(lambda p, x: apply_with_layers(model, p, x, layers=layers))(tuned, split.x_test)
                    row["served_accuracy"] = float(jnp.mean(jnp.argmax(logits, -1) == split.y_test))
                    row["served_max_abs_logit_diff"] = float(jnp.max(jnp.abs(logits - ref_logits)))
                    row["served_same_predictions"] = bool(jnp.all(jnp.argmax(logits, -1) == jnp.argmax(ref_logits, -1)))
                    kernels = [tuned["params"][n]["kernel"] for n in SPARSE_LAYERS]
                    row["compressed_bytes"] = sum(block_sparse_nbytes(to_block_sparse(
                        w, block, masks["params"][n]["kernel"])) for w, n in zip(kernels, SPARSE_LAYERS))
                    row["dense_bytes"] = sum(int(w.nbytes) for w in kernels)
                rows.append(row)
                ctx.log(f"seed {seed} {method} s={s}: acc {acc:.4f}" + (
                    f" served {row['served_accuracy']:.4f} (max |dlogit| {row['served_max_abs_logit_diff']:.1e})"
                    if "served_accuracy" in row else ""))
    out = {"rows": rows, "majority_class_accuracy": majority, **_aggregate(rows, config)}
    ctx.save_figure(plot(rows, majority), "accuracy_vs_sparsity.png")
    return out


def _stats(rows, **where):
    vals = [r["test_accuracy"] for r in rows if all(r[k] == v for k, v in where.items())]
    return float(np.mean(vals)), float(np.std(vals))


def _aggregate(rows, config) -> dict:
    dense = _stats(rows, method="dense")
    table = {}
    for s in config["sparsities"]:
        table[str(s)] = {m: _stats(rows, method=m, sparsity=s) for m in ("block_magnitude", "block_random")}
    served = [r for r in rows if "served_same_predictions" in r]
    held = (table[str(config["sparsities"][0])]["block_magnitude"][0] >= dense[0] - 0.02
            and all(t["block_magnitude"][0] > t["block_random"][0] for t in table.values()))
    return {"dense_accuracy": dense, "by_sparsity": table,
            "served_identical": all(r["served_same_predictions"] for r in served),
            "served_max_abs_logit_diff": max(r["served_max_abs_logit_diff"] for r in served),
            "claim_held": bool(held)}


def summarize(results: dict) -> str:
    """One markdown cell: accuracies (mean ± std over seeds), baselines, the serving check, the verdict."""
    m = results["metrics"]
    seeds = results.get("config", {}).get("seeds", [])
    d = m["dense_accuracy"]
    parts = [f"digits MLP, {len(seeds)} seeds: dense {d[0]:.3f} ± {d[1]:.3f}, majority class "
             f"{m['majority_class_accuracy']:.3f}"]
    for s, t in m["by_sparsity"].items():
        bm, br = t["block_magnitude"], t["block_random"]
        parts.append(f"s={s}: block-magnitude {bm[0]:.3f} ± {bm[1]:.3f} vs random blocks {br[0]:.3f} ± {br[1]:.3f}")
    parts.append(("served through SparseDense (Pallas block-sparse kernel, interpret mode): identical predictions"
                  if m["served_identical"] else "served through SparseDense: predictions DIFFER")
                 + f", max abs logit difference {m['served_max_abs_logit_diff']:.1e}")
    first = next(iter(m["by_sparsity"].values()))["block_magnitude"][0]
    near_dense = first >= d[0] - 0.02
    beats_random = [s for s, t in m["by_sparsity"].items() if t["block_magnitude"][0] > t["block_random"][0]]
    parts.append(f"block-magnitude within 2 points of dense at the lowest sparsity: {'yes' if near_dense else 'no'}, "
                 f"beats random blocks at s in {beats_random or 'none'} of {list(m['by_sparsity'])}")
    parts.append("claim held" if m["claim_held"] else "did not hold")
    return "; ".join(parts)


def plot(rows, majority):
    """Test accuracy vs block sparsity (mean over seeds) for block-magnitude and random blocks."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    dense = np.mean([r["test_accuracy"] for r in rows if r["method"] == "dense"])
    for method in ("block_magnitude", "block_random"):
        ss = sorted({r["sparsity"] for r in rows if r["method"] == method})
        ax.plot(ss, [np.mean([r["test_accuracy"] for r in rows if r["method"] == method and r["sparsity"] == s])
                     for s in ss], "o-", label=method)
    ax.axhline(dense, color="k", ls="--", label="dense")
    ax.axhline(majority, color="gray", ls=":", label="majority class")
    ax.set_xlabel("block sparsity of the hidden layers")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return fig
