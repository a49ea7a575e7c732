"""A small helper over cvxpy for the semidefinite programs of P8 (iLA-SDP clustering) and P47 (LipSDP).

:func:`solve` picks the solver (``"CLARABEL"``: interior point, accurate, the default for the small
problems here; ``"SCS"``: first-order, for larger ones), checks the solver status and raises
:class:`SDPError` with the problem name, status and solver when the problem is infeasible, unbounded,
solved only inaccurately, or when the solver fails. :func:`psd` states ``M ⪰ 0`` on the symmetric part of
an expression (products such as ``A.T @ Q @ A`` are symmetric only up to rounding, and cvxpy's ``>>``
wants an exactly symmetric argument). Not JAX: cvxpy works on NumPy data, outside any jit.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np

from sparsejax.core.validation import check_choice, check_number, check_type

__all__ = ["SDPError", "SOLVERS", "psd", "solve"]

SOLVERS = ("CLARABEL", "SCS")
_OK = (cp.OPTIMAL,)


class SDPError(RuntimeError):
    """An SDP that did not solve to the requested accuracy (infeasible, unbounded, inaccurate or failed)."""


def psd(expr) -> cp.Constraint:
    """The constraint ``(expr + expr.T) / 2 ⪰ 0`` for a square cvxpy expression."""
    if len(expr.shape) != 2 or expr.shape[0] != expr.shape[1]:
        raise ValueError(f"psd needs a square matrix expression, got shape {expr.shape}")
    return (expr + expr.T) / 2 >> 0


def solve(problem: cp.Problem, *, solver: str = "CLARABEL", eps: float = 1e-7, name: str = "SDP",
          allow_inaccurate: bool = False, options: dict | None = None) -> float:
    """Solve ``problem`` with ``solver`` at tolerance ``eps`` and return its optimal value.

    Raises :class:`SDPError` naming ``name`` when the status is not ``optimal`` (``optimal_inaccurate``
    passes only with ``allow_inaccurate``), including infeasible and unbounded problems, and when the
    solver itself fails. ``options`` are passed to the solver on top of the tolerance settings.
    """
    check_type("problem", problem, cp.Problem)
    solver = check_choice("solver", solver, SOLVERS)
    eps = check_number("eps", eps, minimum=0.0, min_inclusive=False, maximum=1e-2)
    opts = ({"tol_gap_abs": eps, "tol_gap_rel": eps, "tol_feas": eps} if solver == "CLARABEL"
            else {"eps_abs": eps, "eps_rel": eps, "max_iters": 200_000})
    opts.update(options or {})
    try:
        value = problem.solve(solver=solver, **opts)
    except cp.error.SolverError as err:
        raise SDPError(f"{name}: solver {solver} failed ({err})") from err
    status = problem.status
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise SDPError(f"{name}: infeasible (solver {solver}, status {status})")
    if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
        raise SDPError(f"{name}: unbounded (solver {solver}, status {status})")
    if status not in _OK and not (allow_inaccurate and status == cp.OPTIMAL_INACCURATE):
        raise SDPError(f"{name}: not solved to tolerance {eps:g} (solver {solver}, status {status}); "
                       "try the other solver or a looser eps")
    if value is None or not np.isfinite(value):
        raise SDPError(f"{name}: solver {solver} returned a non-finite value {value!r} (status {status})")
    return float(value)
