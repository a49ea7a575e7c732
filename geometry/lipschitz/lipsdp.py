"""ℓ2 Lipschitz upper bounds by semidefinite programming: LipSDP for ReLU networks and LipSDP-NSR (P47).

P47: Pauli, Havens, Araujo, Garg, Khorrami, Allgöwer, Hu, "Novel Quadratic Constraints for Extending
LipSDP beyond Slope-Restricted Activations", ICLR 2024 (arXiv 2401.14033). Every bound ``L`` returned
here certifies ``‖f(x) - f(y)‖₂ <= L ‖x - y‖₂`` for the network of :mod:`geometry.lipschitz.networks`
(biases drop out of incremental quadratic constraints).

* :func:`lipsdp_relu` — LipSDP-Neuron of Fazlyab et al. (NeurIPS 2019) for activations slope-restricted
  on ``[alpha, beta]``: one network-level LMI in ``ξ = (Δx, Δσ_1, …, Δσ_{L-1})`` with a diagonal multiplier
  ``T ⪰ 0`` on all hidden neurons, ``[A; B]ᵀ [[-2αβT, (α+β)T], [(α+β)T, -2T]] [A; B] - diag(ρI, 0, -W_LᵀW_L) ⪯ 0``,
  ``L = √ρ``. Built as in the official MATLAB code (arobey1/LipSDP, ``lipschitz_multi_layer.m``, mode
  ``neuron``).
* :func:`lipsdp_nsr` — LipSDP-NSR for GroupSort / MaxMin / Householder. Each group ``g`` of a hidden layer
  satisfies the incremental QC ``Δzᵀ Λ_g Δz - Δσᵀ Λ_g Δσ >= 0`` with ``Λ_g = λ_g I + γ_g u_g u_gᵀ``,
  ``λ_g >= 0`` and ``γ_g`` of *any sign*: ``λ`` encodes 1-Lipschitzness, ``γ`` the preserved direction
  ``u_g`` (sum preservation ``u = 1`` for GroupSort/MaxMin, the component orthogonal to ``v`` for
  Householder). With no cross terms between layers the network LMI is block diagonal, i.e. the chain
  ``ρI - W_1ᵀΛ_1W_1 ⪰ 0``, ``Λ_{k-1} - W_kᵀΛ_kW_k ⪰ 0``, ``Λ_{L-1} - W_LᵀW_L ⪰ 0``.
  For MaxMin this is the official code (ppauli/QCs_MaxMin, ``LipschitzEstimation.m``, ℓ2 case).
  **Reconstruction:** the GroupSort (group size m > 2) and Householder multipliers are derived here from the
  same two properties (the paper body was not readable); they are sound (tested against sampled
  difference quotients) but may be less rich than the paper's.
* :func:`lipsdp_residual_relu` — the baseline that rewrites each pair as ``σ(z) = Hz + G relu(Fz)`` and
  applies LipSDP to the resulting residual ReLU network, layer by layer with a free symmetric ``Q_k``
  carried between layers (official code ``LipschitzEstimation_ResReLU.m``). MaxMin uses the paper's
  two-ReLU rewrite by default (followed by the output swap that turns its ``(min, max)`` into our
  ``(max, min)``); ``rewrite="one_relu"`` uses ``σ(z) = z + 2v relu(-vᵀz)`` (**derived here**, the only
  rewrite for Householder). GroupSort with ``m > 2`` has no such one-layer rewrite and is rejected.
  Observation (derived here and tested): the one-ReLU rewrite is never looser than LipSDP-NSR in the
  official chain form. With ``a = vᵀΔz``, ``s = vᵀΔσ = a + 2Δr`` one has ``a² - s² = 4Δr(-a - Δr)``, so the
  pair QC ``λ(a² - s²) >= 0`` *is* the ReLU QC with ``T = 2λ``, while the rewrite keeps ``uᵀΔσ = uᵀΔz``
  exactly (the ``γ`` term vanishes); an NSR certificate ``(ρ, Λ_k)`` is therefore a residual certificate with
  ``Q_k = Λ_k``, and the free ``Q_k`` can only do better. The paper's comparison is against the two-ReLU
  rewrite, which is looser (it gives ``√2`` for a single MaxMin layer).

Not implemented: the ℓ∞ bounds, residual and implicit (DEQ) networks of the paper.
Solved with :func:`geometry.sdp.solve` (Clarabel by default; SCS on request).
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np
from scipy.linalg import block_diag

from geometry.lipschitz.networks import check_network, maxmin_householder_vectors
from geometry.sdp import psd, solve
from sparsejax.core.validation import check_choice, check_number

__all__ = ["lipsdp_relu", "lipsdp_nsr", "lipsdp_residual_relu"]


def lipsdp_relu(weights, alpha: float = 0.0, beta: float = 1.0, *, solver: str = "CLARABEL",
                eps: float = 1e-8) -> float:
    """LipSDP-Neuron bound for activations slope-restricted on ``[alpha, beta]`` (ReLU: 0, 1)."""
    ws = check_network(weights, "relu")
    alpha = check_number("alpha", alpha)
    beta = check_number("beta", beta)
    if beta <= alpha:
        raise ValueError(f"beta must be > alpha, got alpha={alpha}, beta={beta}")
    n0, hidden = ws[0].shape[1], [w.shape[0] for w in ws[:-1]]
    n_hid, n_last = sum(hidden), hidden[-1]
    a = np.hstack([block_diag(*ws[:-1]), np.zeros((n_hid, n_last))])
    b = np.hstack([np.zeros((n_hid, n0)), np.eye(n_hid)])
    t, rho = cp.Variable(n_hid, nonneg=True), cp.Variable(nonneg=True)
    tm = cp.diag(t)
    qc = (-2 * alpha * beta * a.T @ tm @ a + (alpha + beta) * (a.T @ tm @ b + b.T @ tm @ a) - 2 * b.T @ tm @ b)
    dim = n0 + n_hid
    e0 = np.zeros((dim, dim))
    e0[:n0, :n0] = np.eye(n0)
    out = np.zeros((dim, dim))
    out[dim - n_last:, dim - n_last:] = ws[-1].T @ ws[-1]
    prob = cp.Problem(cp.Minimize(rho), [psd(rho * e0 - out - qc)])
    return float(np.sqrt(max(solve(prob, solver=solver, eps=eps, name="LipSDP-Neuron"), 0.0)))


def _group_directions(activation: str, width: int, group_size: int, v) -> tuple[np.ndarray, np.ndarray]:
    """Group indicator ``P`` (width x groups) and preserved unit directions ``U`` (width x groups)."""
    m = group_size if activation == "groupsort" else 2
    g = width // m
    p = np.kron(np.eye(g), np.ones((m, 1)))
    if activation == "householder":
        vv = np.asarray(v, dtype=np.float64)
        perp = np.stack([-vv[:, 1], vv[:, 0]], axis=1)
        u = np.zeros((width, g))
        for j in range(g):
            u[2 * j:2 * j + 2, j] = perp[j]
    else:
        u = p / np.sqrt(m)
    return p, u


def lipsdp_nsr(weights, activation: str = "maxmin", group_size: int = 2, vs=None, *,
               solver: str = "CLARABEL", eps: float = 1e-8) -> float:
    """LipSDP-NSR ℓ2 bound for a GroupSort / MaxMin / Householder network (see the module docstring)."""
    if activation == "relu":
        raise ValueError("activation 'relu' is slope-restricted: use lipsdp_relu")
    ws = check_network(weights, activation, group_size, vs)
    rho = cp.Variable(nonneg=True)
    prev = rho * np.eye(ws[0].shape[1])
    cons = []
    for k, w in enumerate(ws[:-1]):
        p, u = _group_directions(activation, w.shape[0], group_size, None if vs is None else vs[k])
        lam, gam = cp.Variable(p.shape[1], nonneg=True), cp.Variable(p.shape[1])
        mult = cp.diag(p @ lam) + u @ cp.diag(gam) @ u.T
        cons.append(psd(prev - w.T @ mult @ w))
        prev = mult
    cons.append(psd(prev - ws[-1].T @ ws[-1]))
    value = solve(cp.Problem(cp.Minimize(rho), cons), solver=solver, eps=eps, name="LipSDP-NSR")
    return float(np.sqrt(max(value, 0.0)))


def _residual_form(activation: str, width: int, v, rewrite: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H, G, F)`` with ``σ(z) = Hz + G relu(Fz)`` on a hidden layer of ``width`` neurons."""
    pairs = width // 2
    if rewrite == "two_relu":
        h, g, f = np.array([[0.0, 1], [0, 1]]), np.array([[0.0, 1], [-1, 0]]), np.array([[-1.0, 1], [1, -1]])
        return tuple(np.kron(np.eye(pairs), x) for x in (h, g, f))
    vv = maxmin_householder_vectors(width) if activation == "maxmin" else np.asarray(v, dtype=np.float64)
    g, f = np.zeros((width, pairs)), np.zeros((pairs, width))
    for j in range(pairs):
        g[2 * j:2 * j + 2, j] = 2 * vv[j]
        f[j, 2 * j:2 * j + 2] = -vv[j]
    return np.eye(width), g, f


def lipsdp_residual_relu(weights, activation: str = "maxmin", vs=None, *, rewrite: str = "two_relu",
                         solver: str = "CLARABEL", eps: float = 1e-8) -> float:
    """Baseline: LipSDP on the residual-ReLU rewrite of a MaxMin or Householder network.

    ``rewrite="two_relu"``: the paper's MaxMin rewrite (two ReLUs per pair); ``"one_relu"``:
    ``σ(z) = z + 2v relu(-vᵀz)`` (MaxMin: ``v = (1, -1)/√2``), the only one offered for Householder.
    """
    if activation not in ("maxmin", "householder"):
        raise ValueError(f"activation must be 'maxmin' or 'householder' (no one-layer residual-ReLU rewrite of "
                         f"{activation!r}), got {activation!r}")
    rewrite = check_choice("rewrite", rewrite, ("two_relu", "one_relu"))
    if activation == "householder" and rewrite == "two_relu":
        raise ValueError("rewrite 'two_relu' exists only for maxmin; use rewrite='one_relu' for householder")
    ws = check_network(weights, activation, 2, vs)
    rho = cp.Variable(nonneg=True)
    prev = rho * np.eye(ws[0].shape[1])
    cons = []
    for k, w in enumerate(ws[:-1]):
        h, g, f = _residual_form(activation, w.shape[0], None if vs is None else vs[k], rewrite)
        hw, fw = h @ w, f @ w
        t = cp.Variable(f.shape[0], nonneg=True)
        q = cp.Variable((w.shape[0], w.shape[0]), symmetric=True)
        tm = cp.diag(t)
        lmi = cp.bmat([[prev - hw.T @ q @ hw, -fw.T @ tm - hw.T @ q @ g],
                       [-tm @ fw - g.T @ q @ hw, 2 * tm - g.T @ q @ g]])
        cons.append(psd(lmi))
        prev = q
    cons.append(psd(prev - ws[-1].T @ ws[-1]))
    value = solve(cp.Problem(cp.Minimize(rho), cons), solver=solver, eps=eps, name="LipSDP residual-ReLU")
    return float(np.sqrt(max(value, 0.0)))
