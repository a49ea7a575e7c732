"""Timing SNS against ott-jax's Sinkhorn on the same problem, in the same process, after compilation."""
from __future__ import annotations

import time

import jax
import numpy as np
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

from generative.ot.sns import SinkhornNewtonSparse, marginal_error
from sparsejax.core.validation import check_int


def _timed(fn, *args, repeats: int = 1):
    """Compile (first call), then the best wall time of ``repeats`` calls; returns ``(output, seconds)``."""
    out = fn(*args)
    jax.block_until_ready(out.f)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        jax.block_until_ready(out.f)
        best = min(best, time.perf_counter() - start)
    return out, best


def compare_with_sinkhorn(prob: linear_problem.LinearProblem, sns: SinkhornNewtonSparse, *,
                          max_iterations: int = 100_000, repeats: int = 3) -> dict:
    """Run ott-jax ``Sinkhorn(threshold=sns.threshold)`` and ``sns`` on ``prob``; iterations, times, histories.

    Both are jit-compiled first; each time is the minimum of ``repeats`` calls. Final errors are
    re-measured on both outputs with the same metric ``||P1 - a||_1 + ||P^T 1 - b||_1``. The
    iteration and time ratios (Sinkhorn / SNS) are ``None`` unless *both* solvers reached the
    threshold on that metric ("did not converge" rows). Histories: ``(iteration, error, seconds)``,
    seconds interpolated from the per-iteration cost of each stage (the Sinkhorn stage of SNS is
    timed separately); SNS's history is ott's Sinkhorn-stage record followed by the Newton steps.
    """
    repeats = check_int("repeats", repeats, minimum=1)
    max_iterations = check_int("max_iterations", max_iterations, minimum=1)
    inner = 10
    ref_solver = jax.jit(sinkhorn.Sinkhorn(threshold=sns.threshold, max_iterations=max_iterations,
                                           inner_iterations=inner))
    ref, t_ref = _timed(ref_solver, prob, repeats=repeats)
    out, t_sns = _timed(sns, prob, repeats=repeats)
    stage, t_stage = _timed(jax.jit(lambda p: sns.sinkhorn_stage(p, None)), prob, repeats=repeats)
    n_ref, n_sink, n_newton = int(ref.n_iters), int(out.n_sinkhorn_iters), int(out.n_newton_iters)
    ref_errs = np.asarray(ref.errors).reshape(-1)
    ref_its = (np.arange(len(ref_errs)) + 1) * inner
    keep = ref_errs >= 0
    ref_hist = [(int(i), float(e), float(i) * t_ref / max(n_ref, 1)) for i, e in zip(ref_its[keep], ref_errs[keep])]
    per_sink = t_stage / max(int(stage.n_iters), 1)
    per_newton = max(t_sns - per_sink * n_sink, 0.0) / max(n_newton, 1)
    sink_errs = np.asarray(out.sinkhorn_errors)
    sns_hist = [(int((i + 1) * out.inner_iterations), float(e), per_sink * (i + 1) * out.inner_iterations)
                for i, e in enumerate(sink_errs) if e >= 0]
    sns_hist += [(n_sink + j + 1, float(e), per_sink * n_sink + per_newton * (j + 1))
                 for j, e in enumerate(np.asarray(out.newton_errors)) if e >= 0]
    ref_err = float(marginal_error(prob.geom, prob.a, prob.b, ref.f, ref.g))
    sns_err = float(out.marginal_error)
    both = ref_err <= sns.threshold and sns_err <= sns.threshold
    return {
        "sinkhorn_iters": n_ref, "sinkhorn_seconds": t_ref, "sinkhorn_converged": ref_err <= sns.threshold,
        "sinkhorn_final_error": ref_err,
        "sns_sinkhorn_iters": n_sink, "sns_newton_iters": n_newton, "sns_iters": n_sink + n_newton,
        "sns_seconds": t_sns, "sns_converged": sns_err <= sns.threshold, "sns_final_error": sns_err,
        "both_converged": both,
        "iteration_ratio": n_ref / max(n_sink + n_newton, 1) if both else None,
        "time_ratio": t_ref / t_sns if both else None,
        "seconds_per_sinkhorn_iter": t_ref / max(n_ref, 1), "seconds_per_newton_iter": per_newton,
        "newton_step_in_sinkhorn_iters": per_newton / max(t_ref / max(n_ref, 1), 1e-30),
        "timing_repeats": repeats,
        "plan_max_abs_diff": float(np.max(np.abs(np.asarray(ref.matrix) - np.asarray(out.matrix)))),
        "sinkhorn_history": ref_hist, "sns_history": sns_hist,
    }
