"""TopK vs Feature Choice vs Mutual Choice sparse autoencoders on synthetic superposition data (P37).

Data (:mod:`sparsejax.sae.synthetic`): ``n_true`` random unit directions in ``R^d`` with Zipf
feature frequencies, a Poisson number of active features per token (token-dependent sparsity)
and Exponential(1) magnitudes. Each SAE (``n_features`` latents, unit-norm decoder columns) is
trained with Adam on the same token pool, for every allocation method (TopK, Feature Choice with
uniform capacity m = kN/F, Mutual Choice), every auxiliary loss in ``aux`` (none, Gao et al.'s
aux_k, the reconstructed aux_zipf of :mod:`sparsejax.sae.model`) and every k. All methods see the
same tokens, steps and batch size N (matched budget and parameter count).

Metrics on held-out tokens: normalised MSE under the shared inference rule (one global threshold
calibrated on the training tokens to the method's training L0, see :mod:`sparsejax.sae.model`) and under each method's own batch allocation on eval batches of
the training size; the inference L0; the dead fraction (latents that never fire on the eval
tokens) and the training-time dead fraction (no firing in the last ``dead_steps`` steps);
ground-truth recovery (mean over true directions of the max cosine with a decoder column).
Trivial baselines: the mean predictor (NMSE 1 by definition, measured on the eval set with the
training mean) and a random unit dictionary of the same size for recovery.
LM setting (``lm`` in the preset; :mod:`sparsejax.sae.lm`): a 2-layer decoder LM (:mod:`sparsejax.llm`) is
pre-trained on grammar A and every SAE (no aux loss, each k) is trained on its residual stream after block
``layer``; reported are the held-out NMSE (shared inference rule) and the loss recovered when the SAE's
reconstruction replaces the stream, ``(L_mean-ablated - L_spliced) / (L_mean-ablated - L_clean)``.
Deviation: the paper's LM is GPT-2 small; here a 2-layer d=32 LM on a synthetic grammar.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments._stats import cell, fmt_mean_std, is_finite
from sparsejax.data.grammar import VOCAB
from sparsejax.llm.train import grammar_windows, pretrain_lm
from sparsejax.sae import (
    allocate, decode, encode_inference, init_sae, init_state, make_sae_step, mean_max_cosine, nmse,
    calibrate_threshold, pre_activations, random_directions, sample_superposition,
)
from sparsejax.sae.lm import loss_recovered, next_token_loss, residual_stream

PAPERS = ("P37",)
CLAIM = ("Feature Choice and Mutual Choice SAEs have fewer (FC: zero) dead features and better reconstruction "
         "than TopK SAEs at equal sparsity")

_COMMON = {"alpha": 1.0, "lr": 3e-3, "aux_coef": 1 / 32, "dead_steps": 50, "ema": 0.99,
           "methods": ["topk", "feature_choice", "mutual_choice"], "aux": ["none", "aux_k", "aux_zipf"]}
PRESETS = {
    "smoke": {**_COMMON, "d": 32, "n_true": 64, "n_features": 256, "mean_active": 6.0, "ks": [4, 8, 16],
              "batch": 256, "steps": 300, "train_tokens": 16384, "eval_tokens": 4096, "seeds": [0],
              "lm": {"sentences": 2000, "eval_sentences": 300, "seq_len": 32, "steps": 600, "batch": 32, "lr": 3e-3,
                     "model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "max_len": 32}, "layer": 1,
                     "n_features": 256, "sae_steps": 300}},
    "full": {**_COMMON, "d": 64, "n_true": 512, "n_features": 512, "mean_active": 8.0, "ks": [4, 8, 16],
             "batch": 1024, "steps": 3000, "train_tokens": 262144, "eval_tokens": 10240, "seeds": [0, 1, 2],
             "lm": {"sentences": 20000, "eval_sentences": 1000, "seq_len": 32, "steps": 3000, "batch": 64, "lr": 2e-3,
                    "model": {"d_model": 64, "n_layers": 4, "n_heads": 4, "max_len": 32}, "layer": 2,
                    "n_features": 1024, "sae_steps": 2000}},
}


def train_sae(x_pool, config: dict, method: str, aux: str, k: int, key):
    """Train one SAE on batches drawn (epoch-wise permutations) from ``x_pool``; returns the final state."""
    opt = optax.adam(config["lr"])
    state = init_state(init_sae(key, x_pool.shape[1], config["n_features"], b_dec=x_pool.mean(0)), opt)
    step = make_sae_step(opt, method, k, aux=aux, aux_coef=config["aux_coef"], dead_steps=config["dead_steps"],
                         ema=config["ema"])
    n_batches = x_pool.shape[0] // config["batch"]
    order = None
    for i in range(config["steps"]):
        if i % n_batches == 0:
            order = jax.random.permutation(jax.random.fold_in(key, i), x_pool.shape[0])
        idx = order[(i % n_batches) * config["batch"]:(i % n_batches + 1) * config["batch"]]
        state, metrics = step(state, x_pool[idx])
        if i % 50 == 0 and not np.isfinite(float(metrics["nmse"])):
            raise FloatingPointError(f"{method}/{aux}/k={k}: non-finite loss at step {i}")
    return state


def evaluate_sae(state, x_pool, x_eval, dirs, method: str, k: int, batch: int, dead_steps: int) -> dict:
    """Held-out metrics of one trained SAE (shared inference rule and the method's own batch rule);
    ``dirs`` (the true features, for recovery) may be ``None``.

    The inference threshold is calibrated on the training pool to the method's mean training L0
    (its own allocation on training batches of size ``batch``).
    """
    params = state.params
    n_pool = (x_pool.shape[0] // batch) * batch
    train_l0 = float(jax.vmap(lambda b: (allocate(pre_activations(params, b), method, k)
                                         & (pre_activations(params, b) > 0)).sum(1).mean())(
        x_pool[:n_pool].reshape(-1, batch, x_pool.shape[1])).mean())
    threshold = calibrate_threshold(params, x_pool, train_l0)
    z = encode_inference(params, x_eval, threshold)
    n = (x_eval.shape[0] // batch) * batch
    xb = x_eval[:n].reshape(-1, batch, x_eval.shape[1])
    own = jax.vmap(lambda b: decode(params, jax.nn.relu(pre_activations(params, b))
                                    * allocate(pre_activations(params, b), method, k)))(xb)
    return {"nmse": float(nmse(x_eval, decode(params, z))),
            "nmse_batch_rule": float(nmse(x_eval[:n], own.reshape(n, -1))),
            "l0": float((z > 0).sum(1).mean()),
            "dead_fraction": float((~(z > 0).any(0)).mean()),
            "train_dead_fraction": float((state.steps_since_fired >= dead_steps).mean()),
            "recovery": None if dirs is None else float(mean_max_cosine(dirs, params["W_dec"])),
            "threshold": float(threshold)}


def _agg(rows, method, aux, k, key):
    vals = [r[key] for r in rows if r["method"] == method and r["aux"] == aux and r["k"] == k]
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}


def run(config: dict, ctx) -> dict:
    """Train every (seed, k, method, aux) SAE and evaluate it beside the trivial baselines."""
    rows, baselines = [], []
    jobs = [(s, k, m, a) for s in config["seeds"] for k in config["ks"] for m in config["methods"]
            for a in config["aux"]]
    bar = ctx.progress(total=len(jobs), desc="SAEs")
    for seed in config["seeds"]:
        key = jax.random.PRNGKey(1000 * ctx.seed + seed)
        k_dir, k_tr, k_ev, k_rand, k_init = jax.random.split(key, 5)
        dirs = random_directions(k_dir, config["n_true"], config["d"])
        x_pool, _ = sample_superposition(k_tr, dirs, config["train_tokens"], config["mean_active"], config["alpha"])
        x_eval, _ = sample_superposition(k_ev, dirs, config["eval_tokens"], config["mean_active"], config["alpha"])
        rand = random_directions(k_rand, config["n_features"], config["d"]).T
        baselines.append({"seed": seed, "mean_predictor_nmse": float(nmse(x_eval, jnp.broadcast_to(
            x_pool.mean(0), x_eval.shape))), "random_dictionary_recovery": float(mean_max_cosine(dirs, rand))})
        for k in config["ks"]:
            for method in config["methods"]:
                for aux in config["aux"]:
                    state = train_sae(x_pool, config, method, aux, k, k_init)
                    res = evaluate_sae(state, x_pool, x_eval, dirs, method, k, config["batch"], config["dead_steps"])
                    rows.append({"seed": seed, "k": k, "method": method, "aux": aux, **res})
                    ctx.log(f"seed {seed} k={k} {method}/{aux}: nmse {res['nmse']:.3f} (batch rule "
                            f"{res['nmse_batch_rule']:.3f}) L0 {res['l0']:.2f} dead {res['dead_fraction']:.3f} "
                            f"train-dead {res['train_dead_fraction']:.3f} recovery {res['recovery']:.3f}")
                    bar.update()
    bar.close()
    keys = ("nmse", "nmse_batch_rule", "l0", "dead_fraction", "train_dead_fraction", "recovery")
    table = [{"k": k, "method": m, "aux": a, **{key: _agg(rows, m, a, k, key) for key in keys}}
             for k in config["ks"] for m in config["methods"] for a in config["aux"]]
    base = {key: float(np.mean([b[key] for b in baselines])) for key in baselines[0] if key != "seed"}
    ctx.save_figure(plot(table, config), "sparse_autoencoders.png")
    out = {"rows": rows, "table": table, "baselines": baselines, "baseline": base, "claims": _claims(table, config)}
    if config.get("lm"):
        out["lm"] = run_lm(config, ctx)
    return out


def run_lm(config: dict, ctx) -> dict:
    """P37's LM setting: SAEs on the residual stream of a grammar-trained LM, NMSE and loss recovered."""
    lm = config["lm"]
    data = grammar_windows("A", lm["sentences"], lm["eval_sentences"], lm["seq_len"], seed=0)
    params, lm_cfg, _ = pretrain_lm(jax.random.PRNGKey(ctx.seed), len(VOCAB), data.train, model=lm["model"],
                                    steps=lm["steps"], batch_size=lm["batch"], learning_rate=lm["lr"])
    layer = lm["layer"]

    def stream(windows):
        x = residual_stream(params, jnp.asarray(windows[:, :-1]), lm_cfg, layer)
        return x.reshape(-1, x.shape[-1])

    x_pool, x_eval = stream(data.train), stream(data.test)
    mean = x_pool.mean(0)
    clean = next_token_loss(params, data.test, lm_cfg, layer)
    ablated = next_token_loss(params, data.test, lm_cfg, layer, replace=lambda x: jnp.broadcast_to(mean, x.shape))
    sae_cfg = {**config, "n_features": lm["n_features"], "steps": lm["sae_steps"]}
    jobs = [(k, m) for k in config["ks"] for m in config["methods"]]
    bar = ctx.progress(total=len(jobs), desc="LM SAEs")
    rows = []
    for k, method in jobs:
        state = train_sae(x_pool, sae_cfg, method, "none", k, jax.random.PRNGKey(1000 * ctx.seed + 7))
        res = evaluate_sae(state, x_pool, x_eval, None, method, k, config["batch"], config["dead_steps"])
        sae, thr = state.params, res["threshold"]
        spliced = next_token_loss(params, data.test, lm_cfg, layer,
                                  replace=lambda x: decode(sae, encode_inference(sae, x, thr)))
        rows.append({"k": k, "method": method, **res, "spliced_loss": spliced,
                     "loss_recovered": loss_recovered(clean, spliced, ablated)})
        ctx.log(f"LM k={k} {method}: nmse {res['nmse']:.3f} L0 {res['l0']:.2f} dead {res['dead_fraction']:.3f} "
                f"loss recovered {rows[-1]['loss_recovered']:.3f}")
        bar.update()
    bar.close()
    return {"rows": rows, "clean_loss": clean, "mean_ablated_loss": ablated, "tokens": [int(x_pool.shape[0]),
            int(x_eval.shape[0])], "d_model": int(x_pool.shape[1])}


def _claims(table, config) -> dict:
    """Per k, without aux loss: do FC and MC beat TopK in NMSE and dead fraction (inference rule)?"""
    out = {}
    for k in config["ks"]:
        get = {r["method"]: r for r in table if r["k"] == k and r["aux"] == "none"}
        if "topk" not in get:
            continue
        t = get["topk"]
        out[str(k)] = {m: {"lower_nmse": get[m]["nmse"]["mean"] < t["nmse"]["mean"],
                           "lower_nmse_batch_rule": get[m]["nmse_batch_rule"]["mean"] < t["nmse_batch_rule"]["mean"],
                           "no_more_dead": get[m]["dead_fraction"]["mean"] <= t["dead_fraction"]["mean"]}
                       for m in get if m != "topk"}
    return out


def plot(table, config):
    """NMSE (inference rule) and dead fraction against k for every method/aux."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m in config["methods"]:
        for a in config["aux"]:
            rs = [r for r in table if r["method"] == m and r["aux"] == a]
            ks = [r["k"] for r in rs]
            style = {"none": "-", "aux_k": "--", "aux_zipf": ":"}.get(a, "-.")
            axes[0].plot(ks, [r["nmse"]["mean"] for r in rs], style, marker="o", label=f"{m}/{a}")
            axes[1].plot(ks, [r["dead_fraction"]["mean"] for r in rs], style, marker="o", label=f"{m}/{a}")
    axes[0].set_ylabel("normalised MSE (shared inference rule)"), axes[1].set_ylabel("dead fraction (eval)")
    for ax in axes:
        ax.set_xscale("log", base=2), ax.set_xlabel("k")
    axes[0].legend(fontsize=6)
    return fig


def summarize(results: dict) -> str:
    """One README cell: NMSE / dead fraction per method at each k, the baselines, and whether the claim held."""
    m, cfg = results["metrics"], results["config"]
    parts = [f"synthetic superposition d={cfg['d']}, {cfg['n_true']} true features, SAE F={cfg['n_features']}, "
             f"{cfg['steps']} steps x {cfg['batch']} tokens, {len(cfg['seeds'])} seed(s); shared threshold inference"]
    short = {"topk": "TopK", "feature_choice": "FC", "mutual_choice": "MC"}
    for k in cfg["ks"]:
        rs = [r for r in m["table"] if r["k"] == k and r["aux"] == "none"]
        parts.append(f"k={k}: " + ", ".join(
            f"{short.get(r['method'], r['method'])} NMSE {fmt_mean_std(r['nmse']['values'])} "
            f"(batch rule {fmt_mean_std(r['nmse_batch_rule']['values'])}) dead "
            f"{fmt_mean_std(r['dead_fraction']['values'], 2)} rec {fmt_mean_std(r['recovery']['values'], 2)}"
            for r in rs))
    aux_rows = [r for r in m["table"] if r["aux"] != "none"]
    if aux_rows:
        parts.append("with aux (NMSE): " + ", ".join(
            f"{short.get(r['method'], r['method'])}/{r['aux']}/k={r['k']} {r['nmse']['mean']:.3f}" for r in aux_rows))
    b = m["baseline"]
    parts.append(f"mean predictor NMSE {b['mean_predictor_nmse']:.3f}, random-dictionary recovery "
                 f"{b['random_dictionary_recovery']:.2f}")
    learned = all(is_finite(r["nmse"]["mean"]) and r["nmse"]["mean"] < b["mean_predictor_nmse"] for r in m["table"])
    cl = m["claims"]
    def verdict(key):
        return "yes" if all(v[key] for per_k in cl.values() for v in per_k.values()) else "no"
    parts.append(("all SAEs beat the mean predictor" if learned else "some SAEs did not learn (NMSE >= mean predictor)")
                 + f"; FC/MC lower NMSE than TopK at every k: {verdict('lower_nmse')} under the shared threshold rule, "
                 f"{verdict('lower_nmse_batch_rule')} under each method's own batch rule; no more dead features: "
                 f"{verdict('no_more_dead')} (the claim holds only where both rules agree); paper: fewer dead and "
                 "better NMSE (GPT-2 scale)")
    if "lm" in m:
        parts.append(_lm_summary(m["lm"], cfg))
    return cell(*parts)


def _lm_summary(lm: dict, cfg: dict) -> str:
    """The LM-setting part of the README cell."""
    spec = cfg["lm"]
    short = {"topk": "TopK", "feature_choice": "FC", "mutual_choice": "MC"}
    text = (f"LM setting: {spec['model']['n_layers']}-layer d={lm['d_model']} grammar-A LM, residual stream after block "
            f"{spec['layer']}, {lm['tokens'][0]} train / {lm['tokens'][1]} eval tokens, F={spec['n_features']}; "
            f"clean loss {lm['clean_loss']:.3f}, mean-ablated {lm['mean_ablated_loss']:.3f}; ")
    per_k = []
    for k in cfg["ks"]:
        rs = [r for r in lm["rows"] if r["k"] == k]
        per_k.append(f"k={k}: " + ", ".join(f"{short.get(r['method'], r['method'])} NMSE {r['nmse']:.3f} dead "
                                            f"{r['dead_fraction']:.2f} loss recovered {r['loss_recovered']:.3f}" for r in rs))
    def wins(method, key, higher):
        get = {(r["k"], r["method"]): r[key] for r in lm["rows"]}
        return sum((get[(k, method)] > get[(k, "topk")]) == higher for k in cfg["ks"]
                   if (k, method) in get and (k, "topk") in get)

    others = [m for m in cfg["methods"] if m != "topk"]
    verdict = ", ".join(f"{short.get(m, m)} beats TopK in loss recovered at {wins(m, 'loss_recovered', True)}/"
                        f"{len(cfg['ks'])} k and in NMSE at {wins(m, 'nmse', False)}/{len(cfg['ks'])} k" for m in others)
    return text + "; ".join(per_k) + f"; {verdict} (1 seed)"
