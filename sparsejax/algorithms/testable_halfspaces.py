"""Tester-learner for homogeneous halfspaces under Gaussian marginals (P1), a reconstruction.

P1: Gollakota, Klivans, Stavropoulos, Vasilyan, "An Efficient Tester-Learner for Halfspaces" (ICLR
2024, arXiv 2302.14853). A tester-learner either rejects or outputs a halfspace; (completeness)
samples from the target marginal N(0, I_d) with Massart or adversarial labels are accepted with
probability >= 1 - delta, and (soundness) whenever it accepts, its error is at most opt + eps
(Massart) or O(opt) + eps (adversarial). The learner simulates the non-convex SGD of DKTZ20 on the
smoothed surrogate and the tests make use of the labels besides moment matching (GKK23).

No official code exists and the paper body was not available here, so the tests and thresholds
below are RECONSTRUCTED from the abstract and the DKTZ20 analysis, not copied from the paper:

* Learner (DKTZ20): projected SGD on the unit sphere for ``L_sigma(w) = E S_sigma(-y <w, x> / |w|)``
  with ``S_sigma(t) = 1 / (1 + exp(-t / sigma))`` (:func:`surrogate_loss`); ``restarts`` runs from
  random starts plus one from the Chow vector ``E[y x]``, constant step ``lr`` then ``polish``
  full-batch steps; candidates are the final iterates and their negations; the candidate with the
  smallest training 0-1 error is tested. The paper's theory constants (T ~ d/eps^4 ...) are replaced
  by these practical defaults.
* Tests, on a fresh half of the sample (sample splitting, so w is independent of it), each a
  statistic normalised to O(1) under the null (:func:`tester_statistics`):
  ``mean``: ``sqrt(n) norm(mean x)``; ``cov``: ``sqrt(n) norm_op(E xx^T - I)`` (degree-1/2 moment
  matching); ``band_mass``: the z-score of ``P(abs(<w,x>) <= sigma)`` against ``2 Phi(sigma) - 1``;
  ``band_cov``: ``sqrt(n_band) norm_op(P_perp (E[xx^T ; band] - I) P_perp)`` (the localised second
  moments the DKTZ angle argument uses); ``strips``: the max over t in ``strip_widths`` of the one-sided
  z-score of ``P(abs(<w,x>) <= t)`` (anti-concentration: disagreement with w* costs O(angle));
  ``gradient``: the label-dependent stationarity test
  ``norm(P_perp grad L_sigma(w)) / sqrt(tr Cov(per-sample grad) / n)``.
* Thresholds: the five label-free statistics are calibrated by Monte Carlo on N(0, I_d) samples of
  the test size (rotation invariance makes w = e_1 representative), each at the 1 - delta/5
  quantile (Bonferroni: acceptance >= 1 - delta up to Monte Carlo error). The gradient threshold is a
  fixed constant (``grad_threshold``, default 4), not derived in the paper's terms.
* Error of a hypothesis, given the label-noise rate eta(x) of each point:
  ``err(w) = E[eta(x) 1{agree with w*} + (1 - eta(x)) 1{disagree}]``; for Massart labels around w*
  (eta < 1/2) opt = E[eta(x)] on any marginal.

Numpy is used for the tests and generators (band subsets have data-dependent sizes); the learner
is JAX (``lax.scan`` over steps, ``vmap`` over restarts).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import expit
from scipy.stats import norm

from sparsejax.core.validation import check_array, check_choice, check_int, check_number

__all__ = ["massart_eta", "adversarial_eta", "sample_labels", "expected_error", "gaussian_error",
           "surrogate_loss", "surrogate_gradients", "psgd_candidates", "chow_vector", "zero_one_error",
           "tester_statistics", "calibrate_thresholds", "TestResult", "tester_learner", "TEST_NAMES"]

TEST_NAMES = ("mean", "cov", "band_mass", "band_cov", "strips", "gradient")
_LABEL_FREE = TEST_NAMES[:-1]


def _unit(name: str, w) -> np.ndarray:
    w = np.asarray(check_array(name, np.asarray(w, np.float64), ndim=1))
    norm_w = np.linalg.norm(w)
    if not np.isfinite(norm_w) or norm_w == 0:
        raise ValueError(f"{name} must be a finite non-zero vector, got norm {norm_w!r}")
    return w / norm_w


def massart_eta(t, eta_max: float, kind: str = "constant", width: float = 0.5) -> np.ndarray:
    """Massart flip rate as a function of ``t = <w*, x>``: ``eta_max`` (``constant``) or
    ``eta_max * exp(-|t| / width)`` (``boundary``: noise concentrated at the decision boundary)."""
    eta_max = check_number("eta_max", eta_max, minimum=0.0, maximum=0.5, max_inclusive=False)
    check_choice("kind", kind, ("constant", "boundary"))
    t = np.asarray(t, np.float64)
    if kind == "constant":
        return np.full(t.shape, eta_max)
    return eta_max * np.exp(-np.abs(t) / check_number("width", width, minimum=0.0, min_inclusive=False))


def adversarial_eta(t, opt: float, start: float = 1.0) -> np.ndarray:
    """Adversarial (deterministic) flips: eta = 1 on the two slabs ``start <= |t| <= b`` of Gaussian
    mass ``opt`` and 0 elsewhere (w* stays the best halfspace; its error is ``opt``)."""
    opt = check_number("opt", opt, minimum=0.0, maximum=2 * norm.sf(start))
    b = norm.isf(norm.sf(start) - opt / 2)
    t = np.abs(np.asarray(t, np.float64))
    return ((t >= start) & (t <= b)).astype(np.float64)


def sample_labels(rng: np.random.Generator, x, w_star, eta) -> np.ndarray:
    """Labels ``sign(<w*, x>)`` (0 counted as +1), each flipped independently with probability ``eta``."""
    clean = np.where(np.asarray(x) @ _unit("w_star", w_star) >= 0, 1.0, -1.0)
    return np.where(rng.random(clean.shape) < eta, -clean, clean)


def expected_error(w, x, w_star, eta) -> float:
    """Error of ``sign(<w, x>)`` averaged over the label noise exactly and over the rows of ``x``."""
    agree = (np.asarray(x) @ _unit("w", w) >= 0) == (np.asarray(x) @ _unit("w_star", w_star) >= 0)
    return float(np.mean(np.where(agree, eta, 1.0 - eta)))


@functools.lru_cache(maxsize=2)
def _plane_sample(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 2))


def gaussian_error(w, w_star, eta_fn, n_mc: int = 1_000_000, seed: int = 12345) -> float:
    """Error of ``w`` under x ~ N(0, I_d) with flip rate ``eta_fn(<w*, x>)``, by Monte Carlo in the
    2-D plane spanned by w and w* (the only directions the error depends on)."""
    w, w_star = _unit("w", w), _unit("w_star", w_star)
    c = float(np.clip(w @ w_star, -1.0, 1.0))
    g = _plane_sample(check_int("n_mc", n_mc, minimum=1), seed)
    t_star = g[:, 0]
    t_w = c * g[:, 0] + np.sqrt(1.0 - c * c) * g[:, 1]
    eta = np.broadcast_to(np.asarray(eta_fn(t_star), np.float64), t_star.shape)
    return float(np.mean(np.where((t_w >= 0) == (t_star >= 0), eta, 1.0 - eta)))


def surrogate_loss(w, x, y, sigma: float):
    """``L_sigma(w) = mean S_sigma(-y <w, x> / |w|)`` (JAX; scale invariant in w)."""
    margin = y * (x @ w) / jnp.linalg.norm(w)
    return jnp.mean(jax.nn.sigmoid(-margin / sigma))


def surrogate_gradients(w, x, y, sigma: float) -> np.ndarray:
    """Per-sample gradients of ``S_sigma(-y <w, x>/|w|)`` at unit ``w``: ``-s(1-s)/sigma * y * P_perp x``."""
    w = _unit("w", w)
    x = np.asarray(x, np.float64)
    s = expit(-y * (x @ w) / sigma)
    x_perp = x - np.outer(x @ w, w)
    return -(s * (1 - s) * y / sigma)[:, None] * x_perp


def chow_vector(x, y) -> np.ndarray:
    """Chow parameters ``mean(y x)`` (the averaging baseline)."""
    return np.asarray(x).T @ np.asarray(y) / len(y)


def zero_one_error(w, x, y) -> float:
    """Empirical 0-1 error of ``sign(<w, x>)`` on labels ``y`` in {-1, +1}."""
    return float(np.mean(np.where(np.asarray(x) @ np.asarray(w) >= 0, 1.0, -1.0) != y))


@functools.partial(jax.jit, static_argnames=("steps", "batch", "polish"))
def _psgd(key, w0, x, y, sigma, lr, steps: int, batch: int, polish: int):
    n = x.shape[0]
    grad = jax.grad(surrogate_loss)

    def run(k, w):
        def sgd(w, kk):
            i = jax.random.randint(kk, (batch,), 0, n)
            w = w - lr * grad(w, x[i], y[i], sigma)
            return w / jnp.linalg.norm(w), None

        w = jax.lax.scan(sgd, w / jnp.linalg.norm(w), jax.random.split(k, steps))[0]

        def full(w, _):
            w = w - lr * grad(w, x, y, sigma)
            return w / jnp.linalg.norm(w), None

        return jax.lax.scan(full, w, None, length=polish)[0]

    return jax.vmap(run)(jax.random.split(key, w0.shape[0]), w0)


def psgd_candidates(key, x, y, sigma: float = 0.1, steps: int = 2000, batch: int = 64, lr: float = 0.05,
                    restarts: int = 4, polish: int = 50) -> np.ndarray:
    """Candidate unit vectors (rows) from projected SGD on ``L_sigma``: each restart's final iterate
    and its negation; restart 0 starts at the Chow vector, the others at random directions."""
    x = np.asarray(check_array("x", np.asarray(x, np.float32), ndim=2))
    y = np.asarray(y, np.float32)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
    sigma = check_number("sigma", sigma, minimum=0.0, min_inclusive=False)
    lr = check_number("lr", lr, minimum=0.0, min_inclusive=False)
    restarts = check_int("restarts", restarts, minimum=1)
    k_init, k_run = jax.random.split(key)
    w0 = np.array(jax.random.normal(k_init, (restarts, x.shape[1])))
    chow = chow_vector(x, y)
    if np.linalg.norm(chow) > 0:
        w0[0] = chow
    w = np.asarray(_psgd(k_run, jnp.asarray(w0, jnp.float32), jnp.asarray(x), jnp.asarray(y), sigma, lr,
                         check_int("steps", steps, minimum=1), check_int("batch", batch, minimum=1),
                         check_int("polish", polish, minimum=0)), np.float64)
    return np.concatenate([w, -w])


def tester_statistics(x, y, w, sigma: float = 0.1, strip_widths=(0.05, 0.1, 0.2, 0.4, 0.8)) -> dict:
    """The six test statistics of candidate ``w`` on the sample ``(x, y)`` (see the module docstring).

    ``y`` may be ``None``: the label-dependent ``gradient`` statistic is then omitted.
    """
    x = np.asarray(check_array("x", np.asarray(x, np.float64), ndim=2))
    n, d = x.shape
    w = _unit("w", w)
    if w.shape != (d,):
        raise ValueError(f"w must have shape ({d},), got {w.shape}")
    sigma = check_number("sigma", sigma, minimum=0.0, min_inclusive=False)
    t = x @ w
    p_perp = np.eye(d) - np.outer(w, w)
    stats = {"mean": float(np.sqrt(n) * np.linalg.norm(x.mean(0))),
             "cov": float(np.sqrt(n) * np.abs(np.linalg.eigvalsh(x.T @ x / n - np.eye(d))).max())}
    band = np.abs(t) <= sigma
    p0 = 2 * norm.cdf(sigma) - 1
    stats["band_mass"] = float(abs(band.mean() - p0) / np.sqrt(p0 * (1 - p0) / n))
    nb = int(band.sum())
    if nb < d:
        stats["band_cov"] = float("inf")
    else:
        xb = x[band]
        c = p_perp @ (xb.T @ xb / nb - np.eye(d)) @ p_perp
        stats["band_cov"] = float(np.sqrt(nb) * np.abs(np.linalg.eigvalsh(c)).max())
    widths = np.asarray(strip_widths, np.float64)
    pt = 2 * norm.cdf(widths) - 1
    emp = (np.abs(t)[:, None] <= widths[None, :]).mean(0)
    stats["strips"] = float(np.max((emp - pt) / np.sqrt(pt * (1 - pt) / n)))
    if y is not None:
        g = surrogate_gradients(w, x, np.asarray(y, np.float64), sigma)
        scale = np.sqrt(np.trace(np.cov(g, rowvar=False)) / n)
        stats["gradient"] = float(np.linalg.norm(g.mean(0)) / scale) if scale > 0 else float("inf")
    return stats


def calibrate_thresholds(rng: np.random.Generator, n: int, d: int, sigma: float = 0.1, delta: float = 0.05,
                         draws: int = 200, grad_threshold: float = 4.0) -> dict:
    """Monte Carlo thresholds of the label-free tests for N(0, I_d) samples of size ``n``: each at
    the ``1 - delta/5`` quantile of ``draws`` null draws; ``gradient`` gets ``grad_threshold``."""
    n = check_int("n", n, minimum=2)
    d = check_int("d", d, minimum=2)
    delta = check_number("delta", delta, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
    draws = check_int("draws", draws, minimum=10)
    e1 = np.eye(d)[0]
    null = [tester_statistics(rng.standard_normal((n, d)), None, e1, sigma) for _ in range(draws)]
    q = 1 - delta / len(_LABEL_FREE)
    out = {k: float(np.quantile([s[k] for s in null], q)) for k in _LABEL_FREE}
    out["gradient"] = check_number("grad_threshold", grad_threshold, minimum=0.0, min_inclusive=False)
    out.update(n=n, d=d, sigma=sigma, delta=delta)
    return out


class TestResult(NamedTuple):
    """Outcome of :func:`tester_learner`: ``accepted``, the output ``w`` (also when rejected, for
    auditing), the statistics, the names of the failed tests and all candidates."""

    accepted: bool
    w: np.ndarray
    statistics: dict
    failed: tuple
    candidates: np.ndarray


TestResult.__test__ = False  # not a pytest class


def tester_learner(key, x, y, thresholds: dict, **learner_kwargs) -> TestResult:
    """Learn on the first half of ``(x, y)``, test the chosen candidate on the second half.

    ``thresholds`` comes from :func:`calibrate_thresholds` for ``n = len(x) - len(x) // 2`` (the test
    half) and the same ``d`` and ``sigma``; ``learner_kwargs`` go to :func:`psgd_candidates`.
    """
    x = np.asarray(check_array("x", np.asarray(x, np.float64), ndim=2))
    y = np.asarray(y, np.float64)
    if y.shape != (x.shape[0],) or not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError(f"y must be {x.shape[0]} labels in {{-1, +1}}, got shape {y.shape}")
    half = x.shape[0] // 2
    n_test = x.shape[0] - half
    if thresholds.get("n") != n_test or thresholds.get("d") != x.shape[1]:
        raise ValueError(f"thresholds were calibrated for n={thresholds.get('n')}, d={thresholds.get('d')}, "
                         f"but the test half has n={n_test}, d={x.shape[1]}")
    sigma = thresholds["sigma"]
    cands = psgd_candidates(key, x[:half], y[:half], sigma=sigma, **learner_kwargs)
    w = cands[int(np.argmin([zero_one_error(c, x[:half], y[:half]) for c in cands]))]
    stats = tester_statistics(x[half:], y[half:], w, sigma)
    failed = tuple(k for k in TEST_NAMES if not stats[k] <= thresholds[k])
    return TestResult(accepted=not failed, w=w, statistics=stats, failed=failed, candidates=cands)
