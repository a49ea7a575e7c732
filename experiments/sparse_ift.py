"""P14 Sparse-IFT: dense MLP/CNN on digits vs Sparse Wide/Parallel/Factorized/Doped at equal FLOPs (RigL/SET).

Paper: "Sparse Iso-FLOP Transformations for Maximizing Training Efficiency" (Saxena et al. 2023).
Every hidden layer between the dense stem and the dense head is replaced by its Sparse-IFT family
member at sparsity ``s`` (layer structure as the official code: LayerNorm after every hidden layer,
one per branch for Sparse Parallel, LayerNorm + ReLU between U and V for Sparse Factorized, a dense
wider head for Sparse Wide; see :mod:`sparsejax.structured.sparse_ift` for the deviations). The masks
keep an exact number of non-zeros per kernel, so the forward FLOPs equal the dense network's
(checked for every run with :func:`sparsejax.structured.count_flops`, before and after training,
since SET/RigL keep every count). All seeds of a configuration share one compiled train step.
Claim checked: the sparse
iso-FLOP variants reach a higher test accuracy than the dense network, more so at higher sparsity
(gains are paired per-seed differences, mean ± std over seeds).
"""
from __future__ import annotations

import jax
import numpy as np
import optax

import sparsejax as sj
from experiments._stats import mean_std
from sparsejax.core import param_count
from sparsejax.data import load_digits
from sparsejax.pruning import rigl, sparse_evolutionary_training
from sparsejax.structured import SparseIFTCNN, SparseIFTMLP, count_flops, sparse_ift_mask
from sparsejax.train import LoopCheckpointer, TrainState, evaluate, fit, make_eval_step, make_train_step

PAPERS = ("P14",)
CLAIM = ("P14: replacing dense layers by sparse iso-FLOP transformations (Wide, Parallel, Factorized, Doped) raises "
         "accuracy at equal training FLOPs, more at higher sparsity")

PRESETS = {
    "smoke": {
        "models": ["mlp", "cnn"], "families": ["wide", "parallel", "factorized", "doped"],
        "sparsities": [0.5, 0.9], "dst": "rigl", "steps": 300, "batch_size": 64, "learning_rate": 3e-3,
        "update_every": 50, "drop_fraction": 0.3, "dst_end_frac": 0.75, "mlp_hidden": [32, 64, 64],
        "cnn_channels": [4, 16], "cnn_hidden": 64, "seeds": [0, 1, 2], "checkpoint_every": 0,
    },
    "full": {
        "models": ["mlp", "cnn"], "families": ["wide", "parallel", "factorized", "doped"],
        "sparsities": [0.5, 0.75, 0.9], "dst": "rigl", "steps": 3000, "batch_size": 64, "learning_rate": 2e-3,
        "update_every": 100, "drop_fraction": 0.3, "dst_end_frac": 0.75, "mlp_hidden": [64, 128, 128],
        "cnn_channels": [8, 32], "cnn_hidden": 128, "seeds": [0, 1, 2], "checkpoint_every": 500,
    },
}


def _model(name: str, family: str, sparsity: float, config: dict):
    if name == "mlp":
        return SparseIFTMLP(10, tuple(config["mlp_hidden"]), family, sparsity)
    if name == "cnn":
        return SparseIFTCNN(10, tuple(config["cnn_channels"]), config["cnn_hidden"], family, sparsity)
    raise ValueError(f"unknown model {name!r}; valid: mlp, cnn")


def _optimizer(config: dict, mask, key):
    adam = optax.adam(config["learning_rate"])
    if mask is None:
        return adam
    kw = dict(update_every=config["update_every"], end_step=int(config["dst_end_frac"] * config["steps"]),
              drop_fraction=config["drop_fraction"])
    if config["dst"] == "rigl":
        return rigl(adam, mask, **kw)
    if config["dst"] == "set":
        return sparse_evolutionary_training(adam, mask, key=key, **kw)
    if config["dst"] == "static":
        return sj.keep_mask(adam, mask)
    raise ValueError(f"dst must be rigl, set or static, got {config['dst']!r}")


def _train_seeds(ctx, config, split, model_name, family, sparsity):
    """Train one (model, family, sparsity) for every seed (different init, mask, DST randomness and
    batch order) with one compiled step: the DST update reads the mask from the state only, so the
    step built from the first seed's transform serves all seeds (no ``vmap``, whose batched
    ``lax.cond`` would run the connectivity update at every step)."""
    model = _model(model_name, family, sparsity, config)
    init = jax.jit(model.init)

    def apply_fn(p, x):
        return model.apply({"params": p}, x)

    step = eval_step = None
    rows = []
    for seed in config["seeds"]:
        k_init, k_mask, k_data, k_dst = jax.random.split(jax.random.PRNGKey(1000 * ctx.seed + seed), 4)
        variables = init(k_init, split.x_train[:1])
        mask = None if family == "dense" else sparse_ift_mask(k_mask, variables)
        params = variables["params"] if mask is None else sj.apply_mask(variables["params"], mask)
        flops_before = count_flops(model, variables, mask, split.x_train)
        tx = _optimizer(config, mask, k_dst)
        if step is None:
            step, eval_step = make_train_step(apply_fn, tx), make_eval_step(apply_fn)
        every = config["checkpoint_every"]
        ckpt = LoopCheckpointer(ctx.checkpoint_dir(f"{model_name}-{family}-s{sparsity}-seed{seed}"), every or 1,
                                enabled=every > 0)
        state, _ = fit(step, TrainState.create(params, tx), split.x_train, split.y_train, steps=config["steps"],
                       batch_size=config["batch_size"], key=k_data, checkpointer=ckpt,
                       progress=lambda r, **kw: ctx.progress(r, desc=f"{model_name} {family} s={sparsity}", **kw))
        ckpt.close()
        final_mask = None if mask is None else state.opt_state.mask
        metrics = evaluate(eval_step, state.params, split.x_test, split.y_test)
        rows.append({"model": model_name, "family": family, "sparsity": sparsity, "seed": seed,
                     "test_accuracy": metrics["accuracy"], "flops": flops_before,
                     "flops_after_training": count_flops(model, variables, final_mask, split.x_train),
                     "parameters": param_count(params),
                     "nonzero_parameters": int(sum(np.count_nonzero(np.asarray(w))
                                                   for w in jax.tree_util.tree_leaves(state.params)))})
    return rows


def run(config: dict, ctx) -> dict:
    """Train the dense network and every (family, sparsity) transform of it; compare at equal FLOPs."""
    split = load_digits(seed=0)
    rows = []
    for model_name in config["models"]:
        rows += _train_seeds(ctx, config, split, model_name, "dense", 0.0)
        for sparsity in config["sparsities"]:
            for family in config["families"]:
                group = _train_seeds(ctx, config, split, model_name, family, sparsity)
                rows += group
                accs = [r["test_accuracy"] for r in group]
                ctx.log(f"{model_name} {family} s={sparsity}: acc {np.mean(accs):.4f} +- {np.std(accs):.4f} "
                        f"FLOPs {group[0]['flops']} params {group[0]['parameters']}")
    summary = _summary(rows, config)
    ctx.save_figure(plot(rows, config), "sparse_ift.png")
    return {"rows": rows, **summary}


def _accs(rows, **where):
    return [r["test_accuracy"] for r in sorted(rows, key=lambda r: r["seed"])
            if all(r[k] == v for k, v in where.items())]


def _mean(rows, **where):
    vals = _accs(rows, **where)
    return float(np.mean(vals)) if vals else float("nan")


def _summary(rows, config) -> dict:
    """Accuracy gain of every (family, sparsity) over dense (mean and std over seeds of the paired
    per-seed differences), the iso-FLOP check and the claim."""
    gains, gain_std, iso = {}, {}, True
    for model_name in config["models"]:
        dense = np.asarray(_accs(rows, model=model_name, family="dense"))
        dense_flops = next(r["flops"] for r in rows if r["model"] == model_name and r["family"] == "dense")
        iso &= all(r["flops"] == r["flops_after_training"] == dense_flops for r in rows if r["model"] == model_name)
        for s in config["sparsities"]:
            for f in config["families"]:
                diff = np.asarray(_accs(rows, model=model_name, family=f, sparsity=s)) - dense
                gains[f"{model_name}/{f}/s{s}"], gain_std[f"{model_name}/{f}/s{s}"] = mean_std(diff)
    by_family = {f: float(np.mean([g for k, g in gains.items() if f"/{f}/" in k])) for f in config["families"]}
    by_sparsity = {str(s): float(np.mean([g for k, g in gains.items() if k.endswith(f"/s{s}")]))
                   for s in config["sparsities"]}
    return {
        "gain_over_dense": gains,
        "gain_over_dense_std": gain_std,
        "mean_gain_by_family": by_family,
        "mean_gain_by_sparsity": by_sparsity,
        "dense_accuracy": {m: _mean(rows, model=m, family="dense") for m in config["models"]},
        "dense_accuracy_std": {m: mean_std(_accs(rows, model=m, family="dense"))[1] for m in config["models"]},
        "all_runs_iso_flop": bool(iso),
        "fraction_of_variants_beating_dense": float(np.mean([g > 0 for g in gains.values()])),
        "fraction_beating_dense_by_more_than_1std": float(np.mean([g > gain_std[k] for k, g in gains.items()])),
        "claim_sparse_ift_beats_dense": bool(np.mean(list(gains.values())) > 0),
    }


def plot(rows, config):
    """Test accuracy vs sparsity for each family, dense as a horizontal line, one panel per model."""
    import matplotlib.pyplot as plt

    models = config["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
    for ax, m in zip(axes[0], models):
        for f in config["families"]:
            ax.plot(config["sparsities"], [_mean(rows, model=m, family=f, sparsity=s) for s in config["sparsities"]],
                    marker="o", label=f"Sparse {f.capitalize()}")
        ax.axhline(_mean(rows, model=m, family="dense"), color="grey", ls="--", label="dense (same FLOPs)")
        ax.set(title=f"{m.upper()} on digits ({config['dst']})", xlabel="sparsity", ylabel="test accuracy")
        ax.legend(fontsize=7)
    fig.suptitle("P14 Sparse-IFT at iso-FLOPs")
    fig.tight_layout()
    return fig


def summarize(results: dict) -> str:
    """One table cell: dense accuracy, mean gain by family and by sparsity, the iso-FLOP check, verdict."""
    m = results["metrics"]
    cfg = results.get("config", {})
    std = m.get("dense_accuracy_std", {})
    dense = ", ".join(f"{k} {100 * v:.1f}±{100 * std.get(k, 0.0):.1f}%" for k, v in m["dense_accuracy"].items())
    fam = ", ".join(f"{k} {100 * v:+.1f}" for k, v in m["mean_gain_by_family"].items())
    spa = ", ".join(f"s={k} {100 * v:+.1f}" for k, v in m["mean_gain_by_sparsity"].items())
    verdict = "claim held" if m["claim_sparse_ift_beats_dense"] else "did not hold"
    beyond = m.get("fraction_beating_dense_by_more_than_1std")
    beyond = "" if beyond is None else f" ({100 * beyond:.0f}% by more than 1 std over seeds)"
    return (f"dense (same FLOPs) {dense}; gain over dense in pts by family: {fam}; by sparsity: {spa}; "
            f"{100 * m['fraction_of_variants_beating_dense']:.0f}% of variants beat dense{beyond}; iso-FLOP exact: "
            f"{m['all_runs_iso_flop']}; {cfg.get('dst')}, {cfg.get('steps')} steps, {len(cfg.get('seeds', [0]))} "
            f"seed(s); trivial baseline: chance 10%; {verdict}")
