"""P28 fine-grained group sparsity vs unstructured vs N:M pruning of a digits MLP: accuracy and compressed size.

Paper: "SparseByteNN: A Novel Mobile Inference Acceleration Framework Based on Fine-Grained Group
Sparsity" (Xu et al., 2023). A dense MLP is trained on digits, then every Dense kernel is pruned at
the same sparsity with (a) unstructured layer-wise magnitude pruning, (b) N:M magnitude pruning
along the input axis (0.5 -> 2:4, 0.75 -> 1:4, 0.875 -> 1:8) and (c) group pruning of ``g``
consecutive weights by group L2 norm (``sparsejax.structured.group_mask``), along the input axis
("group") or the output axis ("group-out"; the 10-class head, which ``g`` does not divide, is
grouped along its input axis), each without and with the whole-network channel rearrangement
(``sparsejax.structured.rearrange_channels``: hidden channels permuted, same function, so that
important weights share groups; "+rearr"). ``balanced``: the same number of groups kept in every
output column (input groups) or input row (output groups), so the kept-groups format needs no
padding; with ``balanced=False`` the ranking is layer-wise and the padding is counted in the bytes.
Every pruned network is fine-tuned with the mask fixed (``sparsejax.keep_mask``). Reported: one-shot
and fine-tuned test accuracy, the fraction of weight energy the group masks keep, and the exact
compressed bytes of the pruned kernels in each method's storage format (float16 values):
unstructured = values + uint8 row indices + int32 column pointers (CSC), N:M = values + 2-bit (2:4,
1:4) / 3-bit (1:8) packed positions, group = kept groups + uint8 group indices (padding included).
Claim checked (paper: the group schema with the whole-network rearrangement sits between structured
and unstructured pruning, with high accuracy and a high compression rate): rearranged input-axis
group pruning is within 2 points of unstructured accuracy and stores fewer bytes than both
unstructured and N:M at equal sparsity. The rearrangement search is a reconstruction (the paper's
method text was not available; see :mod:`sparsejax.structured.rearrange`); P28's per-operator
patterns (3x3 vs 1x1 vs depthwise) do not apply to an MLP and are not run.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.data import load_digits
from sparsejax.nn import MLP
from sparsejax.structured import (group_compress, group_masks, group_nbytes, kept_energy, nm_compress, nm_mask,
                                  nm_nbytes, rearrange_channels)
from sparsejax.train import LoopCheckpointer, TrainState, evaluate, fit, make_eval_step, make_train_step

PAPERS = ("P28",)
CLAIM = ("P28: fine-grained group sparsity keeps accuracy close to unstructured pruning while its compressed "
         "weights are smaller than unstructured and N:M formats at equal sparsity")

PRESETS = {
    "smoke": {"hidden": [64, 64], "sparsities": [0.5, 0.75], "group_sizes": [4, 8], "dense_steps": 400,
              "finetune_steps": 150, "batch_size": 64, "learning_rate": 3e-3, "finetune_lr": 1e-3, "seeds": [0],
              "checkpoint_every": 0, "balanced": True, "swaps": 1000},
    "full": {"hidden": [256, 256], "sparsities": [0.5, 0.75, 0.875], "group_sizes": [2, 4, 8, 16],
             "dense_steps": 3000, "finetune_steps": 1500, "batch_size": 64, "learning_rate": 2e-3,
             "finetune_lr": 5e-4, "seeds": [0, 1, 2], "checkpoint_every": 500, "balanced": True,
             "swaps": 5000},
}

NM_FOR_SPARSITY = {0.5: (2, 4), 0.75: (1, 4), 0.875: (1, 8)}


def _kernels(tree):
    """``[(path, kernel)]`` of the pruned (2-D) leaves."""
    return [(p, w) for p, w in sj.core.tree.leaves_with_paths(tree) if getattr(w, "ndim", 0) == 2]


def csc_nbytes(w: np.ndarray, value_bytes: int = 2) -> int:
    """Exact bytes of a CSC copy of ``w``: values + row indices (uint8 if K <= 256 else uint16) +
    ``N + 1`` int32 column pointers."""
    nnz = int(np.count_nonzero(w))
    return nnz * value_bytes + nnz * (1 if w.shape[0] <= 256 else 2) + (w.shape[1] + 1) * 4


def _group_axis(w, g: int, axis: int) -> int:
    """The grouping axis of a kernel: ``axis``, or the input axis where ``g`` does not divide the
    output width (the 10-class head under output-axis groups)."""
    return axis if w.shape[axis] % g == 0 else -2


def compressed_nbytes(method: str, params, g: int | None, nm: tuple[int, int] | None, axis: int = -2) -> int:
    """Exact bytes of all pruned kernels stored in ``method``'s format with float16 values (output-axis
    groups are stored as the kept-groups format of the transposed kernel)."""
    total = 0
    for _, w in _kernels(params):
        w16 = jnp.asarray(w, jnp.float16)
        if method == "unstructured":
            total += csc_nbytes(np.asarray(w16))
        elif method == "nm":
            n, m = nm
            total += nm_nbytes(nm_compress(w16, n, m, axis=0), index_bits=int(np.ceil(np.log2(m))))
        elif method == "group":
            total += group_nbytes(group_compress(w16 if _group_axis(w, g, axis) == -2 else w16.T, g))
        else:
            total += int(w16.nbytes)
    return total


def _mask(method, params, sparsity, g, balanced, axis=-2):
    if method == "unstructured":
        return sj.magnitude_mask(params, sparsity)
    if method == "nm":
        n, m = NM_FOR_SPARSITY[sparsity]
        return nm_mask(params, n, m, axis=0)
    if axis == -2:
        return group_masks(params, g, sparsity, balanced=balanced)
    out_ok = group_masks(params, g, sparsity, balanced=balanced, axis=-1,
                         predicate=lambda path, w: getattr(w, "ndim", 0) == 2 and w.shape[-1] % g == 0)
    by_input = group_masks(params, g, sparsity, balanced=balanced,
                           predicate=lambda path, w: getattr(w, "ndim", 0) == 2 and w.shape[-1] % g != 0)
    return jax.tree_util.tree_map(lambda a, b: a if a is not None else b, out_ok, by_input,
                                  is_leaf=lambda v: v is None)


def _kept(params, g, sparsity, balanced, axis) -> float:
    """Fraction of the kernels' squared weight norm kept by group pruning (each kernel's grouping axis)."""
    kept = total = 0.0
    for _, w in _kernels(params):
        e = float(np.square(np.asarray(w, np.float64)).sum())
        kept += e * kept_energy(np.asarray(w), g, sparsity, _group_axis(w, g, axis), balanced)
        total += e
    return kept / total


def run(config: dict, ctx) -> dict:
    """Dense training, then prune + fine-tune with each method at each sparsity."""
    bad = [s for s in config["sparsities"] if s not in NM_FOR_SPARSITY]
    if bad:
        raise ValueError(f"sparsities {bad} have no N:M counterpart; use {sorted(NM_FOR_SPARSITY)}")
    split = load_digits(seed=0, flatten=True)
    model = MLP(10, hidden=tuple(config["hidden"]))
    eval_step = make_eval_step(model.apply)
    runs = [("unstructured", None, -2, False), ("nm", None, -2, False)] + [
        ("group", g, axis, rearr) for g in config["group_sizes"] for axis in (-2, -1) for rearr in (False, True)]
    chain = [f"params/dense_{i}" for i in range(len(config["hidden"]))] + ["params/head"]
    total = len(config["seeds"]) * (1 + len(config["sparsities"]) * len(runs))
    bar = ctx.progress(total=total, desc="group_sparsity runs")
    rows = []
    for seed in config["seeds"]:
        k_init, k_data, k_ft = jax.random.split(jax.random.PRNGKey(1000 * ctx.seed + seed), 3)
        params = model.init(k_init, split.x_train[:1])
        tx = optax.adam(config["learning_rate"])
        ckpt = LoopCheckpointer(ctx.checkpoint_dir(f"dense-seed{seed}"), config["checkpoint_every"] or 1,
                                enabled=config["checkpoint_every"] > 0)
        state, _ = fit(make_train_step(model.apply, tx), TrainState.create(params, tx), split.x_train,
                       split.y_train, steps=config["dense_steps"], batch_size=config["batch_size"], key=k_data,
                       checkpointer=ckpt)
        ckpt.close()
        dense = state.params
        dense_acc = evaluate(eval_step, dense, split.x_test, split.y_test)["accuracy"]
        rows.append({"seed": seed, "method": "dense", "group_size": None, "sparsity": 0.0,
                     "oneshot_accuracy": dense_acc, "finetuned_accuracy": dense_acc,
                     "compressed_bytes": compressed_nbytes("dense", dense, None, None)})
        bar.update()
        template = sj.magnitude_mask(dense, 0.0)
        ft_tx = sj.keep_mask(optax.adam(config["finetune_lr"]), template)
        ft_step = make_train_step(model.apply, ft_tx)  # one compilation: the mask lives in the state
        for sparsity in config["sparsities"]:
            for method, g, axis, rearr in runs:
                start = dense
                if rearr:  # same function, channels permuted so that important weights share groups
                    start, _ = rearrange_channels(dense, chain, g, sparsity, axis=axis, balanced=config["balanced"],
                                                  swaps=config["swaps"], seed=seed)
                    start = jax.tree_util.tree_map(jnp.asarray, start)
                mask = _mask(method, start, sparsity, g, config["balanced"], axis)
                pruned = sj.apply_mask(start, mask)
                oneshot = evaluate(eval_step, pruned, split.x_test, split.y_test)["accuracy"]
                st = TrainState.create(pruned, ft_tx)
                st = st._replace(opt_state=st.opt_state._replace(mask=mask))
                tag = f"{method}-g{g}-a{axis}-r{int(rearr)}-s{sparsity}-seed{seed}"
                ckpt = LoopCheckpointer(ctx.checkpoint_dir(tag), config["checkpoint_every"] or 1,
                                        enabled=config["checkpoint_every"] > 0)
                st, _ = fit(ft_step, st, split.x_train, split.y_train, steps=config["finetune_steps"],
                            batch_size=config["batch_size"], key=k_ft, checkpointer=ckpt)
                ckpt.close()
                final = sj.apply_mask(st.params, mask)
                nm = NM_FOR_SPARSITY[sparsity] if method == "nm" else None
                rows.append({
                    "seed": seed, "method": method if method != "nm" else f"{nm[0]}:{nm[1]}", "group_size": g,
                    "group_axis": "output" if axis == -1 else "input", "rearranged": rearr,
                    "sparsity": sparsity, "measured_sparsity": float(sj.sparsity(mask)),
                    "kept_energy": None if method != "group" else _kept(start, g, sparsity, config["balanced"], axis),
                    "oneshot_accuracy": oneshot,
                    "finetuned_accuracy": evaluate(eval_step, final, split.x_test, split.y_test)["accuracy"],
                    "compressed_bytes": compressed_nbytes(method, final, g, nm, axis),
                })
                bar.update()
    bar.close()
    ctx.save_figure(plot(rows), "accuracy_vs_bytes.png")
    return {"rows": rows, **_summary(rows)}


def _label(r):
    if r["method"] != "group":
        return r["method"]
    out = "group-out" if r.get("group_axis") == "output" else "group"
    return f'{out} g={r["group_size"]}' + (" +rearr" if r.get("rearranged") else "")


def _summary(rows) -> dict:
    """Mean accuracy / bytes per (method, sparsity) and the claim flags."""
    table = {}
    for r in rows:
        key = f'{_label(r)}@{r["sparsity"]}'
        table.setdefault(key, []).append(r)
    means = {k: {"finetuned_accuracy": float(np.mean([r["finetuned_accuracy"] for r in v])),
                 "oneshot_accuracy": float(np.mean([r["oneshot_accuracy"] for r in v])),
                 "compressed_bytes": int(np.mean([r["compressed_bytes"] for r in v])),
                 **({"kept_energy": float(np.mean([r["kept_energy"] for r in v]))}
                    if v[0].get("kept_energy") is not None else {})} for k, v in table.items()}
    claims = {}
    for s in sorted({r["sparsity"] for r in rows if r["method"] != "dense"}):
        un = means[f"unstructured@{s}"]
        nm = next(v for k, v in means.items() if k.endswith(f"@{s}") and ":" in k)
        # the paper's schema: input-axis groups after the whole-network rearrangement
        groups = {k: v for k, v in means.items() if k.startswith("group g") and "+rearr" in k and k.endswith(f"@{s}")}
        rearr = {k.replace(" +rearr", ""): v for k, v in means.items() if "+rearr" in k and k.endswith(f"@{s}")}
        claims[str(s)] = {
            "group_minus_unstructured_accuracy": {k: v["finetuned_accuracy"] - un["finetuned_accuracy"]
                                                  for k, v in groups.items()},
            "group_minus_nm_accuracy": {k: v["finetuned_accuracy"] - nm["finetuned_accuracy"]
                                        for k, v in groups.items()},
            "group_smaller_than_unstructured_and_nm": {k: v["compressed_bytes"] < min(un["compressed_bytes"],
                                                                                      nm["compressed_bytes"])
                                                       for k, v in groups.items()},
            "rearrangement_gain": {k: {"kept_energy": v["kept_energy"] - means[k]["kept_energy"],
                                       "oneshot_accuracy": v["oneshot_accuracy"] - means[k]["oneshot_accuracy"],
                                       "finetuned_accuracy": v["finetuned_accuracy"] - means[k]["finetuned_accuracy"]}
                                   for k, v in rearr.items()},
        }
    return {"summary": means, "claims": claims}


def plot(rows):
    """Fine-tuned accuracy vs compressed kilobytes, one marker per method, one colour per sparsity."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    markers = {}
    for r in rows:
        lab = _label(r)
        mk = markers.setdefault(lab, "osD^vP*X"[len(markers) % 8])
        ax.scatter(r["compressed_bytes"] / 1024, r["finetuned_accuracy"], marker=mk,
                   c=[plt.cm.viridis(r["sparsity"])], label=lab)
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.set_xlabel("compressed kernels (KiB, float16 values)")
    ax.set_ylabel("test accuracy after fine-tuning")
    ax.set_title("digits MLP: colour = sparsity (dark 0 -> light 0.9)")
    return fig


def summarize(results: dict) -> str:
    """One table cell: fine-tuned accuracy and KiB per method at each sparsity, the rearrangement
    gains, the byte claim, verdict."""
    m = results["metrics"]
    table = m["summary"]
    dense = table.get("dense@0.0", {})
    parts = []
    held = []
    for s, c in m["claims"].items():
        cells = [f"{k.split('@')[0]} {100 * v['finetuned_accuracy']:.1f}%/{v['compressed_bytes'] / 1024:.1f}KiB"
                 for k, v in table.items() if k.endswith(f"@{s}")]
        gains = [f"{k.split('@')[0]} kept energy {100 * v['kept_energy']:+.1f} pts, one-shot acc "
                 f"{100 * v['oneshot_accuracy']:+.1f}" for k, v in c.get("rearrangement_gain", {}).items()]
        parts.append(f"s={s}: " + ", ".join(cells) + ("; rearrangement: " + ", ".join(gains) if gains else ""))
        held += [bool(v) for v in c["group_smaller_than_unstructured_and_nm"].values()]
        held += [d > -0.02 for d in c["group_minus_unstructured_accuracy"].values()]
    verdict = "claim held" if held and all(held) else "did not hold"
    return (f"dense {100 * dense.get('finetuned_accuracy', float('nan')):.1f}%/"
            f"{dense.get('compressed_bytes', 0) / 1024:.1f}KiB; " + "; ".join(parts)
            + f" (accuracy/bytes, {len(results.get('config', {}).get('seeds', [0]))} seed(s); trivial baseline: chance "
            f"10%; held = rearranged input-axis groups smaller than both and within 2 pts of unstructured); {verdict}")
