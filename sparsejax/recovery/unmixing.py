"""Robust hyperspectral unmixing with an l2,1 loss and learning-based (per-pixel l_p) sparsity (P22: Zhu,
Wang, Fan, Meng & Pan, "Effective Spectral Unmixing via Robust Representation and Learning-based Sparsity",
arXiv 1409.0685, "RRLbS"), with the baselines VCA + FCLS and L1/2-NMF.

No official code exists and only the abstract and introduction were available to us. VERIFIED from them:
an NMF model ``Y ~ M A`` (Y: L bands x N pixels, M >= 0 endmembers, A >= 0 abundances), the representation
error measured by the l2,1 norm over channels (so outlier channels cannot dominate), a per-pixel sparsity
constraint ``||a_n||_{p_n}^{p_n}``, ``0 < p_n <= 1``, set by a guidance map learnt jointly with the
unmixing, and an iterative algorithm with a convergence proof. RECONSTRUCTED (ours):

* objective ``J(M, A) = sum_l ||Y_l - M_l A||_2 + (delta / 2) ||1^T - 1^T A||^2 + lam sum_n sum_k A_kn^{p_n}``
  with ``p_n = 1 - h_n`` (the sum-to-one penalty replaces the usual augmented row ``delta 1^T`` of L1/2-NMF);
* majorise-minimise updates: the l2,1 term by ``sum_l w_l ||e_l||^2 + const``, ``w_l = 1 / (2 ||e_l||)`` (tight at
  the current point), ``A^p`` by its tangent; then one multiplicative step of each block:
  ``M <- M * (W Y A^T) / (W M A A^T)`` (row-wise the weights cancel) and
  ``A <- A * (2 M^T W Y + delta 1 1^T) / (2 M^T W M A + delta 1 1^T A + lam p A^(p-1))``.
  For a fixed guidance map J does not increase (tested); the floor ``A >= 1e-9`` keeps ``A^(p-1)`` finite.
* guidance map update (every ``h_every`` iterations): ``h_n = h_max (1 - ent(a_n) / log K)``, smoothed by a
  ``3 x 3`` mean filter on the image grid when the pixels form a square image (pure pixels -> strong
  sparsity ``p`` near ``1 - h_max``, mixed pixels -> ``p`` near 1). The paper's actual h-step is unknown: J is
  only monotone between h-updates.
* initialisation with VCA + FCLS; stop when the relative change of J < ``tol`` or after ``max_iter``.

``loss="fro"`` with ``p = 1/2`` is L1/2-NMF (Qian et al. 2011; here with the same sum-to-one penalty).
VCA (Nascimento & Bioucas-Dias 2005) is written here in its projective form (SVD subspace of dimension
K, random directions orthogonal to the current endmembers); FCLS is ``scipy.optimize.nnls`` with an augmented
sum-to-one row. scikit-learn's NMF is used directly by the experiment. numpy throughout (small dense
matrices, per-pixel NNLS).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.optimize import nnls

from sparsejax.core.validation import check_array, check_choice, check_finite_array, check_int, check_number
from sparsejax.recovery.generators import as_rng

FLOOR = 1e-9


def _check_y(y):
    check_array("Y", y, ndim=2)
    check_finite_array("Y", y)
    if (np.asarray(y) < 0).any():
        raise ValueError(f"Y must be nonnegative, got min {float(np.min(y))}")
    return np.asarray(y, np.float64)


def vca(y, k: int, rng) -> np.ndarray:
    """Vertex component analysis: ``(L, k)`` endmembers chosen among the pixels (columns of ``Y``)."""
    y = _check_y(y)
    k = check_int("k", k, minimum=1, maximum=min(y.shape))
    rng = as_rng(rng)
    u = np.linalg.svd(y, full_matrices=False)[0][:, :k]
    x = u.T @ y                                   # k x N projected data
    scale = x.T @ x.mean(1)                       # projective scaling onto the hyperplane through the mean
    x = x / np.where(np.abs(scale) > 1e-12, scale, 1e-12)[None, :]
    e = np.zeros((k, k))
    e[-1, 0] = 1.0
    idx = []
    for i in range(k):
        f = rng.standard_normal(k)
        f = f - e @ (np.linalg.pinv(e) @ f)       # orthogonal to the span of the current columns
        f /= np.linalg.norm(f)
        j = int(np.argmax(np.abs(f @ x)))
        idx.append(j)
        e[:, i] = x[:, j]
    return y[:, idx]


def fcls(y, m, delta: float = 1e3) -> np.ndarray:
    """Fully constrained least squares abundances (nonnegative, sum-to-one via an augmented row of
    weight ``delta``), one ``scipy.optimize.nnls`` per pixel. Returns ``(K, N)``."""
    y = _check_y(y)
    check_array("M", m, shape=(y.shape[0], None))
    check_finite_array("M", m)
    check_number("delta", delta, minimum=0.0, min_inclusive=False)
    aug = np.vstack([np.asarray(m, np.float64), delta * np.ones((1, m.shape[1]))])
    rhs = np.vstack([y, delta * np.ones((1, y.shape[1]))])
    return np.stack([nnls(aug, rhs[:, j])[0] for j in range(y.shape[1])], axis=1)


def guidance_map(a, h_max: float = 0.9, image_shape=None) -> np.ndarray:
    """``h_n = h_max (1 - ent(a_n) / log K)`` from the current abundances, 3x3-smoothed on ``image_shape``."""
    check_number("h_max", h_max, minimum=0.0, maximum=1.0, max_inclusive=False)
    a = np.maximum(np.asarray(a, np.float64), 0.0)
    k = a.shape[0]
    if k == 1:
        return np.zeros(a.shape[1])
    pn = a / np.maximum(a.sum(0, keepdims=True), 1e-300)
    ent = -np.sum(pn * np.log(np.maximum(pn, 1e-300)), axis=0) / np.log(k)
    h = h_max * (1.0 - np.clip(ent, 0.0, 1.0))
    if image_shape is not None:
        h = uniform_filter(h.reshape(image_shape), size=3, mode="nearest").reshape(-1)
    return h


def objective(y, m, a, p, lam: float, delta: float, loss: str = "l21") -> float:
    """``J(M, A)`` of the module docstring (``loss="fro"``: ``1/2 ||Y - M A||_F^2`` in place of the l2,1 term)."""
    e = np.asarray(y) - np.asarray(m) @ np.asarray(a)
    fit = np.sum(np.linalg.norm(e, axis=1)) if loss == "l21" else 0.5 * np.sum(e ** 2)
    return float(fit + 0.5 * delta * np.sum((1.0 - a.sum(0)) ** 2) + lam * np.sum(np.maximum(a, FLOOR) ** p[None, :]))


def unmix(y, k: int, rng, loss: str = "l21", p="learned", lam: float = 0.05, delta: float = 1.0,
          max_iter: int = 500, tol: float = 1e-6, h_max: float = 0.9, h_every: int = 10, image_shape=None,
          init=None, eps: float = 1e-8) -> dict:
    """RRLbS (defaults) or a fixed-``p`` / Frobenius variant. ``p``: ``"learned"`` (guidance map) or a float
    in ``(0, 1]``. ``init``: ``(M0, A0)``; default VCA + FCLS. Returns ``dict(M, A, h, history)``
    (``history``: the objective after every iteration, for the current guidance map)."""
    y = _check_y(y)
    k = check_int("k", k, minimum=1, maximum=min(y.shape))
    check_choice("loss", loss, ("l21", "fro"))
    check_number("lam", lam, minimum=0.0)
    check_number("delta", delta, minimum=0.0)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    check_number("tol", tol, minimum=0.0)
    h_every = check_int("h_every", h_every, minimum=1)
    learned = isinstance(p, str)
    if learned:
        check_choice("p", p, ("learned",))
    else:
        check_number("p", p, minimum=0.0, maximum=1.0, min_inclusive=False)
    if init is None:
        m = vca(y, k, rng)
        a = fcls(y, m)
    else:
        m, a = (np.array(v, np.float64) for v in init)
        check_array("init[0]", m, shape=(y.shape[0], k))
        check_array("init[1]", a, shape=(k, y.shape[1]))
    m, a = np.maximum(m, FLOOR), np.maximum(a, FLOOR)
    n = y.shape[1]
    h = guidance_map(a, h_max, image_shape) if learned else np.full(n, 1.0 - p)
    history = []
    for it in range(max_iter):
        if learned and it and it % h_every == 0:
            h = guidance_map(a, h_max, image_shape)
        pv = 1.0 - h
        e = y - m @ a
        w = 1.0 / (2.0 * np.linalg.norm(e, axis=1) + eps) if loss == "l21" else np.full(y.shape[0], 0.5)
        m = np.maximum(m * (y @ a.T) / np.maximum(m @ (a @ a.T), 1e-300), FLOOR)
        wm = w[:, None] * m
        num = 2.0 * (wm.T @ y) + delta
        den = 2.0 * (wm.T @ m) @ a + delta * a.sum(0, keepdims=True) + lam * pv[None, :] * a ** (pv[None, :] - 1.0)
        a = np.maximum(a * num / den, FLOOR)
        history.append(objective(y, m, a, pv, lam, delta, loss))
        if not np.isfinite(history[-1]):
            raise FloatingPointError(f"unmixing objective became non-finite at iteration {it}")
        if it and abs(history[-2] - history[-1]) <= tol * abs(history[-2]) and (not learned or it % h_every):
            break
    return {"M": m, "A": a, "h": h, "history": np.asarray(history)}
