"""P5 Sparse Model Soups: IMP vs soups of retrained ingredients on a digits CNN, clean and shifted.

Paper: "Sparse Model Soups: A Recipe for Improved Pruning via Model Averaging" (Zimmer et al.,
ICLR 2024; code ``ZIB-IOL/SMS``). Start: the zoo's dense ``cnn_digits``. For each goal sparsity
(90 %, 95 %) and seed, ``phases`` prune–retrain phases at the IMP rate ``1 - (1 - s)^(1/P)``
with global magnitude pruning and the LLR retrain schedule (10 % warm-up to the original max LR,
linear to 0; SGD momentum 0.9, Nesterov, weight decay 1e-4 as the SMS defaults). Compared:

* IMP (one retrain per phase), and IMP with ``m`` times the retrain steps (equal compute);
* SMS: ``m`` ingredients retrained from the same pruned model with different batch orders
  (``ensemble_by='pruned_seed'``), trained in parallel with ``jax.vmap``, averaged uniformly or
  greedily (validation accuracy on a held-out 20 % of the training set); each phase starts from
  the soup;
* the best final-phase ingredient of the uniform-SMS run and the prediction ensemble of its
  final-phase ingredients (``m`` times the inference cost: an upper bound, not a sparse model);
* the dense model (the trivial reference for pruning).

Shift (out of distribution): test digits rotated by a uniform angle in ±15° and with Gaussian
pixel noise σ = 0.3 (``scipy.ndimage.rotate``), fixed seed. Seeds change the ingredients' batch
orders and the IMP data order; the dense model is the same for all seeds (one zoo entry).

Deviations: CIFAR/ImageNet ResNets → an 8x8-digits CNN; retrain length a few dozen to a hundred
steps per phase; no BatchNorm in the model, hence no BN recalibration; ingredients differ only in
batch order (the paper also splits by weight decay / retrain length).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.pruning import (
    average, greedy_soup, prune_magnitude, retrain_schedule, stack_trees, train_ingredients, unstack_tree,
)
from sparsejax.pruning.imp import phase_sparsity
from sparsejax.train import TrainState, evaluate, make_eval_step, make_train_step
from sparsejax.train.divergence import check_finite_loss
from sparsejax.train.tracking import log_scalars
from sparsejax.train.zoo import pretrained

PAPERS = ("P5",)
CLAIM = ("Averaging models retrained from one pruned model (same mask) beats each ingredient and IMP at the "
         "same sparsity, in and out of distribution (P5)")

PRESETS = {
    "smoke": {"targets": [0.9, 0.95], "phases": 3, "ingredients": 3, "retrain_steps": 40, "seeds": [0, 1, 2],
              "batch_size": 64, "val_fraction": 0.2, "zoo_overrides": {}},
    "full": {"targets": [0.9, 0.95], "phases": 3, "ingredients": 4, "retrain_steps": 120, "seeds": [0, 1, 2],
             "batch_size": 64, "val_fraction": 0.2, "zoo_overrides": {}},
}
METHODS = ("imp", "imp_mx", "best_ingredient", "uniform_soup", "greedy_soup", "ensemble")


def shifted_digits(x: np.ndarray, seed: int = 0, max_angle: float = 15.0, noise: float = 0.3) -> np.ndarray:
    """Rotate each image by a uniform angle in ``[-max_angle, max_angle]`` and add N(0, noise^2)."""
    from scipy.ndimage import rotate

    rng = np.random.default_rng(seed)
    out = np.stack([rotate(img[..., 0], rng.uniform(-max_angle, max_angle), reshape=False, order=1, mode="constant")
                    for img in x])[..., None]
    return (out + noise * rng.normal(size=out.shape)).astype(np.float32)


def _split(x, y, frac, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    n_val = int(frac * len(x))
    return x[idx[n_val:]], y[idx[n_val:]], x[idx[:n_val]], y[idx[:n_val]]


def run(config: dict, ctx) -> dict:
    """Run IMP / IMP-mx / SMS (uniform, greedy) / ensemble for every goal sparsity and seed."""
    from sparsejax.data import load_digits

    zoo = pretrained("cnn_digits", overrides=config["zoo_overrides"], log=ctx.log, progress=not ctx.quiet)
    model, dense = zoo.model, zoo.params
    zcfg = zoo.info["config"]
    split = load_digits(seed=0)
    x_tr, y_tr, x_val, y_val = _split(split.x_train, split.y_train, config["val_fraction"])
    x_ood = shifted_digits(split.x_test)
    eval_step = make_eval_step(model.apply)
    acc = lambda p, x, y: evaluate(eval_step, p, x, y)["accuracy"]  # noqa: E731
    logits_fn = jax.jit(model.apply)

    def ensemble_acc(params_list, x, y):
        probs = np.mean([np.asarray(jax.nn.softmax(logits_fn(p, x))) for p in params_list], 0)
        return float(np.mean(probs.argmax(-1) == y))

    m, steps, phases = config["ingredients"], config["retrain_steps"], config["phases"]
    template_mask = prune_magnitude(dense, None, 0.5)
    makers = {}

    def tools(n_steps):
        """(tx, jitted step) of one retrain length (the LLR schedule depends on it); built once."""
        if n_steps not in makers:
            sched = retrain_schedule("LLR", n_steps, max_lr=zcfg["learning_rate"])
            tx = sj.masked(optax.chain(optax.add_decayed_weights(zcfg["weight_decay"]),
                                       optax.sgd(sched, momentum=0.9, nesterov=True)), template_mask)
            makers[n_steps] = (tx, make_train_step(model.apply, tx))
        return makers[n_steps]

    def retrain(params, mask, n_models, n_steps, key):
        tx, step = tools(n_steps)
        state = TrainState.create(params, tx)
        state = state._replace(opt_state=state.opt_state._replace(mask=mask))
        states, losses = train_ingredients(step, stack_trees([state] * n_models), x_tr, y_tr, steps=n_steps,
                                           batch_size=config["batch_size"], key=key)
        check_finite_loss(n_steps, losses[-1])
        return [sj.apply_mask(p, mask) for p in unstack_tree(states.params, n_models)]

    def run_phases(seed_key, n_models, n_steps, soup_kind, target):
        current, mask, final_ingredients = dense, None, None
        for phase in range(1, phases + 1):
            mask = prune_magnitude(current, mask, phase_sparsity(target, phases, phase))
            ingredients = retrain(sj.apply_mask(current, mask), mask, n_models, n_steps,
                                  jax.random.fold_in(seed_key, phase))
            if soup_kind == "greedy":
                current = greedy_soup(ingredients, lambda p: acc(p, x_val, y_val), mask)[0].params
            else:
                current = average(ingredients, mask).params
            final_ingredients = ingredients
        return current, mask, final_ingredients

    rows = []
    dense_row = {"test": acc(dense, split.x_test, split.y_test), "ood": acc(dense, x_ood, split.y_test)}
    bar = ctx.progress(total=len(config["targets"]) * len(config["seeds"]) * 4, desc="SMS runs")
    for target in config["targets"]:
        for seed in config["seeds"]:
            key = jax.random.PRNGKey(1000 * ctx.seed + seed)
            models = {}
            models["imp"], mask_imp, _ = run_phases(jax.random.fold_in(key, 1), 1, steps, "uniform", target)
            bar.update()
            models["imp_mx"], _, _ = run_phases(jax.random.fold_in(key, 2), 1, m * steps, "uniform", target)
            bar.update()
            models["uniform_soup"], mask_u, ingr = run_phases(jax.random.fold_in(key, 3), m, steps, "uniform", target)
            bar.update()
            models["greedy_soup"], _, _ = run_phases(jax.random.fold_in(key, 3), m, steps, "greedy", target)
            bar.update()
            val = [acc(p, x_val, y_val) for p in ingr]
            models["best_ingredient"] = ingr[int(np.argmax(val))]
            row = {"target": target, "seed": seed}
            for name, p in models.items():
                row[f"{name}_test"] = acc(p, split.x_test, split.y_test)
                row[f"{name}_ood"] = acc(p, x_ood, split.y_test)
                row[f"{name}_sparsity"] = sj.sparsity(p)
            row["ensemble_test"] = ensemble_acc(ingr, split.x_test, split.y_test)
            row["ensemble_ood"] = ensemble_acc(ingr, x_ood, split.y_test)
            row["mean_ingredient_test"] = float(np.mean([acc(p, split.x_test, split.y_test) for p in ingr]))
            row["mean_ingredient_ood"] = float(np.mean([acc(p, x_ood, split.y_test) for p in ingr]))
            log_scalars(seed, {k: v for k, v in row.items() if isinstance(v, float)}, prefix=f"sms/s{target}")
            rows.append(row)
            ctx.log(f"target {target} seed {seed}: " + ", ".join(f"{k}={row[k + '_test']:.3f}" for k in METHODS))
    bar.close()
    table = _table(rows, config["targets"])
    ctx.save_figure(plot(table, dense_row, config), "sms_accuracy.png")
    return {"rows": rows, "table": table, "dense": dense_row, "dense_zoo": zoo.info["metrics"],
            "claims": _claims(table)}


def _table(rows, targets):
    out = {}
    for t in targets:
        sel = [r for r in rows if r["target"] == t]
        out[str(t)] = {f"{k}_{split}": [float(np.mean([r[f"{k}_{split}"] for r in sel])),
                                         float(np.std([r[f"{k}_{split}"] for r in sel]))]
                       for k in METHODS + ("mean_ingredient",) for split in ("test", "ood")}
        out[str(t)]["achieved_sparsity"] = float(np.mean([r["uniform_soup_sparsity"] for r in sel]))
    return out


def _claims(table):
    res = {}
    for t, row in table.items():
        for split in ("test", "ood"):
            soup = max(row[f"uniform_soup_{split}"][0], row[f"greedy_soup_{split}"][0])
            res[f"{t}_{split}_soup_beats_best_ingredient"] = soup > row[f"best_ingredient_{split}"][0]
            res[f"{t}_{split}_soup_beats_imp"] = soup > row[f"imp_{split}"][0]
            res[f"{t}_{split}_soup_beats_imp_mx"] = soup > row[f"imp_mx_{split}"][0]
    res["all"] = all(v for k, v in res.items() if not k.endswith("imp_mx"))
    return res


def plot(table, dense_row, config):
    """Test and shifted-test accuracy per method (mean ± std over seeds), one panel per goal sparsity."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(6 * len(table), 3.8), squeeze=False)
    labels = ["IMP", f"IMP {config['ingredients']}x", "best ingr.", "uniform soup", "greedy soup", "ensemble"]
    x = np.arange(len(METHODS))
    for ax, (t, row) in zip(axes[0], table.items()):
        for off, split, color in ((-0.2, "test", "tab:blue"), (0.2, "ood", "tab:orange")):
            means = [row[f"{k}_{split}"][0] for k in METHODS]
            stds = [row[f"{k}_{split}"][1] for k in METHODS]
            ax.bar(x + off, means, 0.4, yerr=stds, color=color, label=f"{split}")
            ax.axhline(dense_row[split], color=color, ls="--", lw=0.8)
        lo = min(min(row[f"{k}_ood"][0] for k in METHODS), dense_row["ood"]) - 0.05
        ax.set(title=f"goal sparsity {float(t):.0%} (dashed: dense)", ylim=(max(lo, 0), 1.0), xticks=x)
        ax.set_xticklabels(labels, rotation=30, fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle("Sparse Model Soups on digits (P5)")
    return fig


def summarize(results: dict) -> str:
    """One markdown cell: test/OOD accuracy of IMP, IMP-mx, best ingredient, soups, ensemble per goal sparsity."""
    cfg, met = results["config"], results["metrics"]
    parts = [f"digits CNN, {cfg['phases']} phases, m={cfg['ingredients']}, {cfg['retrain_steps']} retrain "
             f"steps/phase, {len(cfg['seeds'])} seeds; dense test {met['dense']['test']:.3f} / shifted "
             f"{met['dense']['ood']:.3f}"]
    for t, row in met["table"].items():
        f = lambda k: f"{row[k][0]:.3f}±{row[k][1]:.3f}"  # noqa: E731
        parts.append(f"{float(t):.0%} (test / shifted): IMP {f('imp_test')} / {f('imp_ood')}, IMP "
                     f"{cfg['ingredients']}x {f('imp_mx_test')} / {f('imp_mx_ood')}, best ingredient "
                     f"{f('best_ingredient_test')} / {f('best_ingredient_ood')}, uniform soup {f('uniform_soup_test')}"
                     f" / {f('uniform_soup_ood')}, greedy soup {f('greedy_soup_test')} / {f('greedy_soup_ood')}, "
                     f"ensemble {f('ensemble_test')} / {f('ensemble_ood')}")
    claims = met["claims"]
    verdict = "claim held" if claims["all"] else "did not hold"
    failed = [k for k, v in claims.items() if k != "all" and not k.endswith("imp_mx") and not v]
    mx = all(v for k, v in claims.items() if k.endswith("imp_mx"))
    tail = f" (failed: {', '.join(failed)})" if failed else ""
    return ("; ".join(parts) + f"; soup vs equal-compute IMP: {'soup better everywhere' if mx else 'not always better'}"
            f"; {verdict}{tail}")
