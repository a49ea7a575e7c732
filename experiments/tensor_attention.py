"""P21 tensor attention: error of the polynomial (Khatri-Rao) fast version against the entry bound B
and the degree, time against n with log-log slopes, and Match3 with one softmax vs one tensor layer.

Paper: Alman & Song, "How to Capture Higher-order Correlations? Generalizing Matrix Softmax Attention
to Kronecker Computation" (ICLR 2024; theory, no official code). Library: `sparsejax.llm.tensor_attention`
(exact ``O(n^3 d)`` and the degree-g Taylor / Khatri-Rao ``O(n r d)`` version, r = C(d+g, g)).

(a) Error: inputs uniform in [-B, B]^{n x d} (n = ``n_error``, d = ``d``), max |fast - exact| over
    the output per (B, g), beside the Taylor bound ``R^{g+1} e^R / (g+1)!`` with ``R = B^3`` (the
    largest logit at scale 1/d). Claim: the error vanishes with g when B is small, and needs a
    degree growing with B^3 otherwise.
(b) Time: exact at ``n_exact``, fast (``time_degree``) at ``n_fast``, median wall time on this CPU
    (``time_per_call``); log-log slopes with a 95 % bootstrap CI beside the exponents 3 and 1.
(c) Match3 (Sanford, Hsu & Telgarsky 2023): tokens in [0, M), per-position label "some j, k with
    x_i + x_j + x_k = 0 mod M"; one layer of softmax self-attention (`sparsejax.nn.SelfAttention`,
    4 heads) vs one layer of exact tensor attention (`TensorSelfAttention`, 1 head), both of width
    ``width`` (equal width, not equal parameters: tensor attention has 5 projections to 3; both counts
    are reported), each followed by the same per-position MLP classifier, learned token embeddings and
    one appended "sink" token (a constant the attention can fall back on when no pair matches). Same
    steps, optimizer and data; trivial baseline: the majority class. Seeds as in the preset.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._stats import fmt_mean_std, loglog_slope
from sparsejax.core import param_count
from sparsejax.data.synthetic_tasks import match3
from sparsejax.llm.tensor_attention import TensorSelfAttention, fast_tensor_attention, tensor_attention
from sparsejax.nn import SelfAttention
from sparsejax.timing import time_per_call
from sparsejax.train import TrainState, fit, make_train_step

PAPERS = ("P21",)
CLAIM = ("Tensor attention has an n^{1+o(1)} approximation when entries are o(cbrt(log n)) (polynomial method + "
         "Khatri-Rao), and captures triple-wise correlations (Match3) that one softmax attention layer cannot (P21)")

PRESETS = {
    "smoke": {"d": 3, "n_error": 32, "bounds": [0.5, 1.0, 1.5, 2.0], "degrees": [0, 2, 4, 6, 8, 10, 12],
              "n_exact": [32, 48, 64, 96, 128, 192], "n_fast": [512, 1024, 2048, 4096, 8192, 16384], "time_degree": 6,
              "repeats": 3, "match3": {"n": 16, "modulus": 128, "width": 32, "steps": 400, "batch_size": 64,
                                       "n_train": 8192, "n_test": 1024, "learning_rate": 3e-3, "seeds": [0]}},
    "full": {"d": 3, "n_error": 64, "bounds": [0.5, 1.0, 1.5, 2.0, 2.5], "degrees": [0, 2, 4, 6, 8, 10, 12, 14, 16],
             "n_exact": [32, 48, 64, 96, 128, 192, 256], "n_fast": [256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
             "time_degree": 6, "repeats": 5,
             "match3": {"n": 16, "modulus": 128, "width": 32, "steps": 3000, "batch_size": 64, "n_train": 32768,
                        "n_test": 4096, "learning_rate": 3e-3, "seeds": [0, 1, 2]}},
}


def error_grid(config, seed) -> list[dict]:
    """Max abs error of the fast version per entry bound and degree, with the Taylor bound."""
    rng = np.random.default_rng(seed)
    n, d = config["n_error"], config["d"]
    rows = []
    for b in config["bounds"]:
        x = [jnp.asarray(rng.uniform(-b, b, (n, d)), jnp.float32) for _ in range(5)]
        exact = np.asarray(tensor_attention(*x), np.float64)
        r = b ** 3
        for g in config["degrees"]:
            err = float(np.abs(np.asarray(fast_tensor_attention(*x, degree=g), np.float64) - exact).max())
            rows.append({"bound": b, "degree": g, "rank": math.comb(d + g, g), "max_abs_error": err,
                         "taylor_bound": r ** (g + 1) * math.exp(r) / math.factorial(g + 1)})
    return rows


def timings(config, seed, ctx) -> dict:
    """Median seconds of exact and fast tensor attention vs n; log-log slopes with bootstrap CIs."""
    rng = np.random.default_rng(seed)
    d = config["d"]
    exact_fn = jax.jit(tensor_attention)
    fast_fn = jax.jit(lambda *a: fast_tensor_attention(*a, degree=config["time_degree"]))
    out = {}
    for name, fn, ns in (("exact", exact_fn, config["n_exact"]), ("fast", fast_fn, config["n_fast"])):
        secs = []
        for n in ctx.progress(ns, desc=f"time {name}"):
            x = [jnp.asarray(rng.uniform(-1, 1, (n, d)), jnp.float32) for _ in range(5)]
            secs.append(time_per_call(fn, *x, repeats=config["repeats"]))
        slope, lo, hi = loglog_slope(ns, secs, seed=seed)
        out[name] = {"n": list(ns), "seconds": secs, "slope": slope, "slope_ci95": [lo, hi],
                     "expected_exponent": 3 if name == "exact" else 1}
        ctx.log(f"{name}: slope {slope:.2f} [{lo:.2f}, {hi:.2f}] (expected {out[name]['expected_exponent']})")
    return out


class Match3Model(nn.Module):
    """Embedding -> one attention layer (softmax or tensor) with a residual -> per-position MLP -> logit."""

    vocab: int
    width: int
    kind: str

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.width, name="embed")(tokens)
        h = nn.LayerNorm(name="ln")(x)
        att = (SelfAttention(self.width, 4, name="attn")(h) if self.kind == "softmax"
               else TensorSelfAttention(self.width, name="attn")(h))
        x = x + att
        h = nn.gelu(nn.Dense(2 * self.width, name="fc1")(nn.LayerNorm(name="ln2")(x)))
        return nn.Dense(2, name="head")(h)


def _with_sink(x, modulus):
    return np.concatenate([x, np.full((len(x), 1), modulus, np.int32)], axis=1)


def match3_run(cfg, seed, ctx) -> dict:
    """Train the softmax and tensor layers on Match3; test accuracy (real positions only)."""
    m = cfg["modulus"]
    x_tr, y_tr = match3(cfg["n_train"], cfg["n"], m, seed=seed)
    x_te, y_te = match3(cfg["n_test"], cfg["n"], m, seed=seed + 1)
    x_tr, x_te = _with_sink(x_tr, m), _with_sink(x_te, m)

    def loss(logits, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], y).mean()

    out = {"majority_accuracy": float(max(y_te.mean(), 1 - y_te.mean()))}
    for kind in ("softmax", "tensor"):
        model = Match3Model(m + 1, cfg["width"], kind)
        params = model.init(jax.random.key(seed), jnp.asarray(x_tr[:2]))
        tx = optax.adam(cfg["learning_rate"])
        state, losses = fit(make_train_step(model.apply, tx, loss), TrainState.create(params, tx), x_tr, y_tr,
                            steps=cfg["steps"], batch_size=cfg["batch_size"], key=jax.random.key(seed + 7),
                            log_prefix=f"match3/{kind}/{seed}", progress=ctx.progress)
        apply = jax.jit(model.apply)
        pred = np.concatenate([np.asarray(apply(state.params, jnp.asarray(x_te[i:i + 256]))[:, :-1].argmax(-1))
                               for i in range(0, len(x_te), 256)])
        out[kind] = {"accuracy": float((pred == y_te).mean()), "final_loss": losses[-1],
                     "params": param_count(state.params)}
        ctx.log(f"match3 seed {seed} {kind}: accuracy {out[kind]['accuracy']:.3f} (majority "
                f"{out['majority_accuracy']:.3f}), params {out[kind]['params']}")
    return out


def run(config: dict, ctx) -> dict:
    """(a) error grid, (b) timing slopes, (c) Match3 per seed."""
    errors = error_grid(config, ctx.seed)
    for r in errors:
        ctx.log(f"B={r['bound']:.1f} g={r['degree']:2d} r={r['rank']:4d}: err {r['max_abs_error']:.2e} "
                f"(Taylor bound {r['taylor_bound']:.1e})")
    times = timings(config, ctx.seed, ctx)
    m3 = [match3_run(config["match3"], 1000 * ctx.seed + s, ctx) for s in config["match3"]["seeds"]]
    ctx.save_figure(plot(errors, times), "tensor_attention.png")
    return {"errors": errors, "timings": times, "match3": m3}


def summarize(results: dict) -> str:
    """Error at the highest degree per bound, timing slopes with CIs, Match3 accuracies; verdicts."""
    m = results["metrics"]
    top = max(r["degree"] for r in m["errors"])
    errs = ", ".join(f"B={r['bound']:g}: {r['max_abs_error']:.1e}" for r in m["errors"] if r["degree"] == top)
    t = m["timings"]
    slopes = "; ".join(f"{k} time slope {v['slope']:.2f} [{v['slope_ci95'][0]:.2f}, {v['slope_ci95'][1]:.2f}] "
                       f"(theory {v['expected_exponent']})" for k, v in t.items())
    m3 = m["match3"]
    acc = {k: [r[k]["accuracy"] for r in m3] for k in ("softmax", "tensor")}
    maj = np.mean([r["majority_accuracy"] for r in m3])
    near_linear = t["fast"]["slope_ci95"][0] <= 1.2
    verdict = [f"fast version near-linear in n: {'held' if near_linear else 'did not hold'}"]
    learned = {k: np.mean(v) > maj + 0.02 for k, v in acc.items()}
    if not learned["tensor"]:
        verdict.append("Match3: tensor layer did not learn (<= majority + 2 pts)")
    else:
        verdict.append("Match3: tensor > softmax " + ("held" if np.mean(acc["tensor"]) > np.mean(acc["softmax"])
                                                       else "did not hold"))
    if not learned["softmax"]:
        verdict.append("softmax layer did not learn")
    return (f"max err at degree {top}: {errs}; {slopes}; Match3 accuracy softmax {fmt_mean_std(acc['softmax'], 3)}, "
            f"tensor {fmt_mean_std(acc['tensor'], 3)}, majority {maj:.3f}. " + "; ".join(verdict)
            + f" (fast n <= {max(t['fast']['n'])}, exact n <= {max(t['exact']['n'])} on CPU; Match3 "
              f"{len(m3)} run(s); smoke scale)")


def plot(errors, times):
    """Error vs degree per bound (with the Taylor bound) and time vs n (log-log)."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for bound in sorted({r["bound"] for r in errors}):
        rs = [r for r in errors if r["bound"] == bound]
        line = a.semilogy([r["degree"] for r in rs], [max(r["max_abs_error"], 1e-12) for r in rs], marker="o",
                          label=f"B={bound:g}")[0]
        a.semilogy([r["degree"] for r in rs], [r["taylor_bound"] for r in rs], ls=":", color=line.get_color())
    a.set_xlabel("polynomial degree g")
    a.set_ylabel("max |fast - exact| (dotted: Taylor bound)")
    a.set_ylim(1e-9, 1e3)
    a.legend(fontsize=7)
    for k, v in times.items():
        b.loglog(v["n"], v["seconds"], marker="o", label=f"{k} (slope {v['slope']:.2f})")
    b.set_xlabel("n")
    b.set_ylabel("seconds")
    b.legend(fontsize=7)
    return fig
