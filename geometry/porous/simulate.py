"""DOM diffusion + microbial decomposition on a pore graph (P34; authors' utils.py ``Asynchronous_Transformation``
and ``Implicit_scheme_regions``).

State per node: MB (microbial biomass), DOM, SOM, FOM, CO2 masses (ug). Per transformation step dt (days), at
every node with c = DOM / V:

* growth   g = min(v_dom c MB dt / (k_ab + c), DOM): DOM -> MB
* mortality mu MB dt: a fraction rho_m -> DOM, 1 - rho_m -> SOM
* respiration rho MB dt: MB -> CO2
* SOM -> DOM at v_som, FOM -> DOM at v_fom

then DOM diffuses over dt by ``n_sub`` implicit Euler steps of the graph heat equation in concentration form,
(V + h L) c+ = V c with L the Laplacian of theta_ij = D s_ij / d_ij. The matrix is symmetric positive definite and
conserves total DOM exactly (1^T L = 0); it is factorised once (``scipy.sparse.linalg.factorized``, SuperLU) or
solved by CG (``solver="cg"``, warm-started) for large voxel graphs.

Defaults (author code, per the project brief): rho = 0.2, mu = 0.5, rho_m = 0.55, v_fom = 0.3, v_som = 0,
v_dom = 9.6 per day; D = 100950 um^2/day = 175.3 voxel^2/day at 24 um voxels; k_ab = 1e-9 ug per voxel volume.
Deviations: the authors solve the non-symmetric mass form I + L V^-1 with CG; we solve the SPD concentration form
(same solution). The biology is the authors' explicit (forward Euler) per-node update; only diffusion is implicit.
In ``Asynchronous_Transformation`` growth is capped by a test ``MB >= growth`` (else MB takes all the DOM), which
reads like a typo for ``DOM >= growth``; we cap growth at the available DOM. The authors apply respiration to the
biomass left after mortality (rho (1 - mu dt) MB dt); we take mortality and respiration from the same MB (the two
agree to O(dt^2)). The authors put a biomass spot in the region with the nearest centroid; the experiment puts it in
the node that holds its voxel. The parameter defaults come from the authors' C code as read for the project brief,
not re-checked here (utils.py takes them as arguments).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import linalg as spla

from sparsejax.core.validation import check_choice, check_int, check_number

__all__ = ["DecompositionParams", "simulate", "well_mixed_rhs", "POOLS"]

POOLS = ("MB", "DOM", "SOM", "FOM", "CO2")


@dataclass(frozen=True)
class DecompositionParams:
    """Kinetic parameters (per day; ``diffusion`` in voxel^2/day, ``k_ab`` in ug per voxel volume)."""

    rho: float = 0.2
    mu: float = 0.5
    rho_m: float = 0.55
    v_fom: float = 0.3
    v_som: float = 0.0
    v_dom: float = 9.6
    k_ab: float = 1e-9
    diffusion: float = 100950.0 / 24.0 ** 2


def _biology(state, volume, p: DecompositionParams, dt: float):
    """One explicit transformation step (mass-conserving to rounding)."""
    mb, dom, som, fom, co2 = state
    c = dom / volume
    growth = np.minimum(p.v_dom * c * mb * dt / (p.k_ab + c), dom)
    mort = p.mu * mb * dt
    resp = p.rho * mb * dt
    s_out = p.v_som * som * dt
    f_out = p.v_fom * fom * dt
    mb = mb + growth - mort - resp
    dom = dom - growth + p.rho_m * mort + s_out + f_out
    som = som + (1 - p.rho_m) * mort - s_out
    fom = fom - f_out
    return np.stack([mb, dom, som, fom, co2 + resp])


def simulate(graph, initial, *, days: float, dt: float, n_sub: int = 1, params: DecompositionParams | None = None,
             solver: str = "direct", record_every: int = 1):
    """Run the model on ``graph`` (:class:`~geometry.porous.representations.PoreGraph`).

    ``initial``: (5, n) masses (rows ``POOLS``). Returns ``(times, totals, final)``: recorded times (days),
    (T, 5) total mass per pool, and the (5, n) final state. ``mu * dt`` and ``(mu + rho) * dt`` must be < 1.
    """
    p = params or DecompositionParams()
    dt = check_number("dt", dt, minimum=0.0, min_inclusive=False)
    days = check_number("days", days, minimum=0.0)
    n_sub = check_int("n_sub", n_sub, minimum=1)
    check_choice("solver", solver, ("direct", "cg"))
    state = np.array(initial, dtype=np.float64)
    n = graph.n_nodes
    if state.shape != (5, n):
        raise ValueError(f"initial must have shape (5, {n}), got {state.shape}")
    if (state < 0).any():
        raise ValueError("initial masses must be non-negative")
    if (p.mu + p.rho) * dt >= 1:
        raise ValueError(f"dt too large: (mu + rho) * dt = {(p.mu + p.rho) * dt} >= 1")
    volume = np.asarray(graph.volume, dtype=np.float64)
    h = dt / n_sub
    solve = None
    if n > 1 and graph.contact.nnz:
        theta = graph.conductance(p.diffusion)
        lap = sp.diags(np.asarray(theta.sum(1)).ravel()) - theta
        a = (sp.diags(volume) + h * lap).tocsc()
        if solver == "direct":
            solve = spla.factorized(a)
        else:
            diag = a.diagonal()
            precond = spla.LinearOperator(a.shape, lambda x: x / diag)

            def solve(b, _a=a, _m=precond):
                x, info = spla.cg(_a, b, x0=b / diag, rtol=1e-10, atol=0.0, M=_m)
                if info:
                    raise RuntimeError(f"CG did not converge (info={info})")
                return x
    steps = int(round(days / dt))
    times, totals = [0.0], [state.sum(1)]
    for k in range(1, steps + 1):
        state = _biology(state, volume, p, dt)
        if solve is not None:
            c = state[1] / volume
            for _ in range(n_sub):
                c = solve(volume * c)
            state[1] = np.maximum(c * volume, 0.0)
        if k % record_every == 0 or k == steps:
            times.append(k * dt), totals.append(state.sum(1))
    return np.asarray(times), np.asarray(totals), state


def well_mixed_rhs(volume: float, params: DecompositionParams | None = None):
    """Right-hand side f(t, y) of the well-mixed ODE (one node of volume ``volume``, y = POOLS masses), the
    continuous-time limit of the transformation step (for ``scipy.integrate.solve_ivp``)."""
    p = params or DecompositionParams()

    def rhs(t, y):
        mb, dom, som, fom, _ = y
        c = max(dom, 0.0) / volume
        g = p.v_dom * c * mb / (p.k_ab + c)
        return [g - (p.mu + p.rho) * mb, -g + p.rho_m * p.mu * mb + p.v_som * som + p.v_fom * fom,
                (1 - p.rho_m) * p.mu * mb - p.v_som * som, -p.v_fom * fom, p.rho * mb]

    return rhs
