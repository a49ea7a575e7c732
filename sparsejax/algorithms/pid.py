"""Partial information decomposition (PID) of a discrete target and two sources, BROJA measure (for P35).

P35 (Hamman & Dutta, "Demystifying Local and Global Fairness Trade-offs in Federated Learning Using
Partial Information Decomposition", ICLR 2024) decomposes the information two sources ``X1, X2`` carry
about a target ``T`` with the BROJA measure (Bertschinger, Rauh, Olbrich, Jost, Ay 2014):

* ``Uni(T: X1 \\ X2) = min_{Q in Delta_P} I_Q(T; X1 | X2)``, where ``Delta_P`` is the set of joint
  distributions with the same pair marginals ``Q(t, x1) = P(t, x1)`` and ``Q(t, x2) = P(t, x2)``;
* ``Red = I(T; X1) - Uni(T: X1 \\ X2)``, ``Syn = I(T; X1 | X2) - Uni(T: X1 \\ X2)``,
  ``Uni(T: X2 \\ X1) = I(T; X2) - Red``;

so ``Uni1 + Red = I(T;X1)``, ``Uni1 + Syn = I(T;X1|X2)`` and the four terms sum to ``I(T; X1, X2)``.
In P35 the target is the sensitive attribute Z and the sources are the prediction Ŷ and the client S
(the official code, FaisalHamman/FairFL-PID ``utils.py``, calls ``dit.pid.PID_BROJA`` with sources
``[S, Y]`` and target ``Z``).

Solver: with ``Q(t, x2) = P(t, x2)`` fixed, ``I_Q(T;X1|X2) = sum Q log(Q / Q(x1, x2)) + H_P(T|X2)``, a
sum of ``rel_entr(Q, linear(Q))`` terms: a convex exponential-cone program, solved exactly with cvxpy
(Clarabel interior point, DPP-parametrised so each shape compiles once). dit (the reference) uses
its own scipy optimiser; the tests check this module against it. All information is in bits.
Arrays are numpy (the optimiser is not JAX-traceable). Terms are returned as solved: interior-point
noise of order 1e-8 is not clipped.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

from sparsejax.core.validation import check_array, check_finite_array, check_int

__all__ = ["PID", "joint_distribution", "entropy", "mutual_information", "conditional_mutual_information",
           "broja_unique", "pid_broja"]

_LN2 = np.log(2.0)
_TOL = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9}  # Clarabel tolerances (tighter ones stall)


class PID(NamedTuple):
    """BROJA decomposition (bits) of the information sources X1, X2 carry about a target T."""

    unique_1: float  # Uni(T: X1 \ X2)
    unique_2: float  # Uni(T: X2 \ X1)
    redundant: float
    synergistic: float
    mi_1: float  # I(T; X1)
    mi_2: float  # I(T; X2)
    mi_1_given_2: float  # I(T; X1 | X2)
    mi_joint: float  # I(T; X1, X2)


def _check_joint(name: str, p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    check_finite_array(name, check_array(name, p, ndim=3))
    if (p < 0).any():
        raise ValueError(f"{name} must be non-negative, got min {p.min()!r}")
    if abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1, got {p.sum()!r}")
    return p


def joint_distribution(t, x1, x2, sizes: tuple[int, int, int] | None = None) -> np.ndarray:
    """Empirical joint ``P[t, x1, x2]`` of three integer label arrays (values in ``[0, size)``).

    ``sizes`` defaults to ``max + 1`` of each array; pass it to keep absent values as zero rows.
    """
    arrays = []
    for name, a in (("t", t), ("x1", x1), ("x2", x2)):
        a = np.asarray(check_array(name, a, ndim=1, dtype_kind="iu"))
        if a.size == 0:
            raise ValueError(f"{name} must be non-empty")
        if a.min() < 0:
            raise ValueError(f"{name} must be non-negative integers, got min {a.min()!r}")
        arrays.append(a)
    if not arrays[0].size == arrays[1].size == arrays[2].size:
        raise ValueError(f"t, x1, x2 must have the same length, got {[a.size for a in arrays]}")
    if sizes is None:
        sizes = tuple(int(a.max()) + 1 for a in arrays)
    sizes = tuple(check_int(f"sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes))
    for name, a, s in zip(("t", "x1", "x2"), arrays, sizes):
        if a.max() >= s:
            raise ValueError(f"{name} has value {a.max()} >= its size {s}")
    counts = np.zeros(sizes)
    np.add.at(counts, tuple(arrays), 1.0)
    return counts / counts.sum()


def entropy(p) -> float:
    """Shannon entropy (bits) of a probability array of any shape."""
    p = np.asarray(p, dtype=np.float64)
    return float(-xlogy(p, p).sum() / _LN2)


def mutual_information(p_ab) -> float:
    """``I(A; B)`` in bits of a 2-D joint probability table ``p_ab[a, b]``."""
    p_ab = np.asarray(p_ab, dtype=np.float64)
    return entropy(p_ab.sum(1)) + entropy(p_ab.sum(0)) - entropy(p_ab)


def conditional_mutual_information(p) -> float:
    """``I(A; B | C)`` in bits of a 3-D joint ``p[a, b, c]``."""
    p = np.asarray(p, dtype=np.float64)
    return entropy(p.sum(1)) + entropy(p.sum(0)) - entropy(p) - entropy(p.sum((0, 1)))


@functools.lru_cache(maxsize=16)
def _broja_problem(shape: tuple[int, int, int]):
    """The DPP cvxpy problem ``min_Q sum rel_entr(Q, Q(x1, x2))`` over ``Delta_P`` for one shape."""
    import cvxpy as cp

    nt, n1, n2 = shape
    q = cp.Variable(nt * n1 * n2, nonneg=True)
    idx = np.arange(nt * n1 * n2).reshape(shape)
    # marginal maps: Q(t, x1) and Q(t, x2) as matrices acting on vec(Q), and Q(x1, x2) broadcast back over t
    m_t1 = np.zeros((nt * n1, q.size))
    m_t2 = np.zeros((nt * n2, q.size))
    b_12 = np.zeros((q.size, q.size))
    for t in range(nt):
        for a in range(n1):
            for b in range(n2):
                m_t1[t * n1 + a, idx[t, a, b]] = 1.0
                m_t2[t * n2 + b, idx[t, a, b]] = 1.0
                b_12[idx[t, a, b], idx[:, a, b]] = 1.0
    p_t1 = cp.Parameter(nt * n1, nonneg=True)
    p_t2 = cp.Parameter(nt * n2, nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum(cp.rel_entr(q, b_12 @ q))), [m_t1 @ q == p_t1, m_t2 @ q == p_t2])
    return problem, q, p_t1, p_t2


def broja_unique(p) -> tuple[float, np.ndarray]:
    """``Uni(T: X1 \\ X2)`` (bits) of the joint ``p[t, x1, x2]`` and the minimising ``Q`` in ``Delta_P``."""
    p = _check_joint("p", p)
    problem, q, p_t1, p_t2 = _broja_problem(p.shape)
    p_t1.value = p.sum(2).ravel()
    p_t2.value = p.sum(1).ravel()
    problem.solve(solver="CLARABEL", **_TOL)
    if problem.status not in ("optimal", "optimal_inaccurate") or q.value is None:
        raise RuntimeError(f"BROJA optimisation failed with status {problem.status!r}")
    h_t_given_2 = entropy(p.sum(1)) - entropy(p.sum((0, 1)))
    return float(problem.value / _LN2 + h_t_given_2), np.asarray(q.value).reshape(p.shape)


def pid_broja(p) -> PID:
    """BROJA PID of the joint ``p[t, x1, x2]``: target T (axis 0), sources X1 (axis 1) and X2 (axis 2)."""
    p = _check_joint("p", p)
    uni_1, _ = broja_unique(p)
    mi_1 = mutual_information(p.sum(2))
    mi_2 = mutual_information(p.sum(1))
    mi_1_given_2 = conditional_mutual_information(p)
    mi_joint = mutual_information(p.reshape(p.shape[0], -1))
    red = mi_1 - uni_1
    return PID(unique_1=uni_1, unique_2=mi_2 - red, redundant=red, synergistic=mi_1_given_2 - uni_1,
               mi_1=mi_1, mi_2=mi_2, mi_1_given_2=mi_1_given_2, mi_joint=mi_joint)
