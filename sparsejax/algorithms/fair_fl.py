"""Local vs global fairness in federated learning: disparity PID, AGLFOP and a FedAvg audit (P35).

Hamman & Dutta (ICLR 2024), official code FaisalHamman/FairFL-PID. Z is the binary sensitive
attribute, S the client, Ŷ the prediction, Y the label.

* Global disparity ``I(Z; Ŷ)``, local disparity ``I(Z; Ŷ | S)``; with the BROJA PID of
  :mod:`sparsejax.algorithms.pid` (target Z, sources Ŷ and S):
  ``I(Z;Ŷ) = Uni(Z:Ŷ\\S) + Red`` and ``I(Z;Ŷ|S) = Uni(Z:Ŷ\\S) + Syn`` (Syn is the paper's "masked"
  disparity), hence ``I(Z;Ŷ) - I(Z;Ŷ|S) = Red - Syn`` and, since ``Red <= I(Z;S)``, a locally fair
  model has global disparity at most ``I(Z;S)`` (zero when Z is independent of S), while a globally
  fair model can still be locally unfair by its synergy. These limits are checked per run by
  :func:`disparities` (the theorem numbering of the paper is not reproduced here).
* AGLFOP (:func:`aglfop`): minimise the error ``P(Ŷ != Y)`` over every joint ``q[s, z, y, ŷ]`` whose
  ``ŷ``-marginal is the data's ``P(s, z, y)`` (any randomised classifier that may depend on s, z, y),
  subject to ``I(Z;Ŷ) <= eps_global`` and ``I(Z;Ŷ|S) <= eps_local`` (bits; ``eps = 0`` is imposed
  exactly as the linear independence equalities, i.e. demographic parity globally / per client). Both disparities are
  sums of ``rel_entr(linear, linear)`` in ``q`` because ``P(z)`` and ``P(z|s)`` are fixed, so the
  problem is convex. Deviation from the official code: it solves AGLFOP with scipy SLSQP from a
  random start with dit in the constraint; here the exact exponential-cone program is solved with
  cvxpy/Clarabel (any number of clients, not only two). ``eps = None`` drops a constraint.
* :func:`fedavg_logistic`: FedAvg (McMahan et al. 2017) of logistic regression in JAX (full-batch
  local gradient steps, size-weighted averaging); the official code trains an MLP in torch.
* :func:`federated_synthetic`: the official ``synth3`` generator (two Gaussian classes, Z equal to Y
  with probability ``alpha``) and its three client splits: ``iid``, ``heterogeneity`` (client 0 holds
  ``split`` of the Z=1 rows and ``1 - split`` of the Z=0 rows, official 0.92) and ``synergy`` (client 0
  holds the rows with Z = Y, client 1 the rest). The official 1% swap of rows between clients is kept.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.algorithms.pid import (
    PID, conditional_mutual_information, joint_distribution, mutual_information, pid_broja,
)
from sparsejax.core.validation import check_array, check_choice, check_int, check_number

__all__ = ["Disparities", "disparities", "AGLFOPResult", "aglfop", "szy_distribution", "fedavg_logistic",
           "predict_logistic", "federated_synthetic", "SPLITS"]

_LN2 = np.log(2.0)
SPLITS = ("iid", "heterogeneity", "synergy")


class Disparities(NamedTuple):
    """Global/local disparity (bits) of a prediction and their PID (target Z, sources Ŷ, S)."""

    global_: float  # I(Z; Ŷ)
    local: float  # I(Z; Ŷ | S)
    unique: float  # Uni(Z: Ŷ \ S)
    redundant: float
    masked: float  # synergy
    unique_client: float  # Uni(Z: S \ Ŷ)
    i_z_s: float  # I(Z; S)


def _from_pid(pid: PID) -> Disparities:
    return Disparities(global_=pid.mi_1, local=pid.mi_1_given_2, unique=pid.unique_1, redundant=pid.redundant,
                       masked=pid.synergistic, unique_client=pid.unique_2, i_z_s=pid.mi_2)


def disparities(z=None, yhat=None, s=None, *, joint=None) -> Disparities:
    """Disparity PID from integer arrays ``z, yhat, s`` or from a joint table ``joint[z, ŷ, s]``."""
    if joint is None:
        if z is None or yhat is None or s is None:
            raise ValueError("disparities needs z, yhat and s, or joint")
        joint = joint_distribution(z, yhat, s)
    return _from_pid(pid_broja(joint))


def szy_distribution(s, z, y, n_clients: int | None = None) -> np.ndarray:
    """Empirical ``P[s, z, y]`` of client ids, binary sensitive attribute and binary label."""
    n_clients = int(np.max(s)) + 1 if n_clients is None else check_int("n_clients", n_clients, minimum=1)
    return joint_distribution(s, z, y, sizes=(n_clients, 2, 2))


class AGLFOPResult(NamedTuple):
    """Optimal error, the optimal ``q[s, z, y, ŷ]`` and its disparities (bits)."""

    error: float
    q: np.ndarray
    global_disparity: float
    local_disparity: float
    status: str


@functools.lru_cache(maxsize=32)
def _aglfop_problem(n_clients: int, global_mode: str, local_mode: str):
    """cvxpy AGLFOP for one client count; each mode is ``"none"``, ``"mi"`` (``I <= eps``) or ``"zero"``
    (exact independence as linear equalities, since ``I = 0`` has no interior for the conic solver)."""
    import cvxpy as cp

    shape = (n_clients, 2, 2, 2)  # s, z, y, ŷ
    size = int(np.prod(shape))
    idx = np.arange(size).reshape(shape)
    q = cp.Variable(size, nonneg=True)
    p_szy = cp.Parameter(n_clients * 4, nonneg=True)
    marg = np.zeros((n_clients * 4, size))  # sum over ŷ
    for s in range(n_clients):
        for z in range(2):
            for y in range(2):
                marg[s * 4 + z * 2 + y, idx[s, z, y]] = 1.0
    wrong = np.zeros(size)
    wrong[idx[:, :, 0, 1].ravel()] = wrong[idx[:, :, 1, 0].ravel()] = 1.0
    cons = [marg @ q == p_szy]
    eps_g = cp.Parameter(nonneg=True)  # nats
    eps_l = cp.Parameter(nonneg=True)
    if global_mode != "none":  # I(Z;Ŷ) = sum_{z,ŷ} rel_entr(P(z,ŷ), P(z) P(ŷ)), P(z) a parameter
        p_z = cp.Parameter(2, nonneg=True)
        a_zy = np.zeros((4, size))
        a_y = np.zeros((4, size))
        for z in range(2):
            for yh in range(2):
                a_zy[z * 2 + yh, idx[:, z, :, yh].ravel()] = 1.0
                a_y[z * 2 + yh, idx[:, :, :, yh].ravel()] = 1.0
        pz_rep = cp.hstack([p_z[0], p_z[0], p_z[1], p_z[1]])
        if global_mode == "zero":
            cons.append(a_zy @ q == cp.multiply(pz_rep, a_y @ q))
        else:
            cons.append(cp.sum(cp.rel_entr(a_zy @ q, cp.multiply(pz_rep, a_y @ q))) <= eps_g)
    if local_mode != "none":  # I(Z;Ŷ|S) = sum rel_entr(P(s,z,ŷ), P(z|s) P(s,ŷ)), P(z|s) a parameter
        pz_s = cp.Parameter(n_clients * 4, nonneg=True)  # P(z|s) repeated over ŷ
        b_szy = np.zeros((n_clients * 4, size))
        b_sy = np.zeros((n_clients * 4, size))
        for s in range(n_clients):
            for z in range(2):
                for yh in range(2):
                    b_szy[s * 4 + z * 2 + yh, idx[s, z, :, yh]] = 1.0
                    b_sy[s * 4 + z * 2 + yh, idx[s, :, :, yh].ravel()] = 1.0
        if local_mode == "zero":
            cons.append(b_szy @ q == cp.multiply(pz_s, b_sy @ q))
        else:
            cons.append(cp.sum(cp.rel_entr(b_szy @ q, cp.multiply(pz_s, b_sy @ q))) <= eps_l)
    problem = cp.Problem(cp.Minimize(wrong @ q), cons)
    params = {"p_szy": p_szy, "eps_g": eps_g, "eps_l": eps_l}
    if global_mode != "none":
        params["p_z"] = p_z
    if local_mode != "none":
        params["pz_s"] = pz_s
    return problem, q, params


def aglfop(p_szy, eps_global: float | None, eps_local: float | None) -> AGLFOPResult:
    """Solve AGLFOP for the data distribution ``p_szy[s, z, y]`` (bits; ``None`` = unconstrained)."""
    p = np.asarray(p_szy, dtype=np.float64)
    check_array("p_szy", p, shape=(None, 2, 2))
    if (p < 0).any() or abs(p.sum() - 1) > 1e-9:
        raise ValueError(f"p_szy must be a probability table, got min {p.min()!r} and sum {p.sum()!r}")
    if (p.sum((1, 2)) <= 0).any():
        raise ValueError(f"every client needs positive mass, got P(s) = {p.sum((1, 2))}")
    for name, eps in (("eps_global", eps_global), ("eps_local", eps_local)):
        if eps is not None:
            check_number(name, eps, minimum=0.0)
    modes = ["none" if e is None else "zero" if e == 0 else "mi" for e in (eps_global, eps_local)]
    problem, q, params = _aglfop_problem(p.shape[0], *modes)
    params["p_szy"].value = p.ravel()
    params["eps_g"].value = 0.0 if eps_global is None else eps_global * _LN2
    params["eps_l"].value = 0.0 if eps_local is None else eps_local * _LN2
    if "p_z" in params:
        params["p_z"].value = p.sum((0, 2))
    if "pz_s" in params:
        pz_s = p.sum(2) / p.sum((1, 2))[:, None]
        params["pz_s"].value = np.repeat(pz_s, 2, axis=1).ravel()
    problem.solve(solver="CLARABEL")
    if problem.status != "optimal" or q.value is None:
        raise RuntimeError(f"AGLFOP failed with status {problem.status!r}")
    qv = np.asarray(q.value).reshape(p.shape[0], 2, 2, 2)
    if qv.min() < -1e-7:
        raise RuntimeError(f"AGLFOP solution has entries down to {qv.min()!r}")
    qv = np.maximum(qv, 0.0)  # interior-point round-off of order 1e-9
    qv = qv / qv.sum()
    zys = np.transpose(qv.sum(2), (1, 2, 0))  # [z, ŷ, s]
    return AGLFOPResult(error=float(qv[:, :, 0, 1].sum() + qv[:, :, 1, 0].sum()), q=qv,
                        global_disparity=mutual_information(zys.sum(2)),
                        local_disparity=conditional_mutual_information(zys), status=problem.status)


def _client_loss(w, x, y, mask):
    logits = x @ w[:-1] + w[-1]
    return jnp.sum(mask * (jnp.logaddexp(0.0, logits) - y * logits)) / jnp.sum(mask)


@functools.partial(jax.jit, static_argnames=("rounds", "local_steps"))
def _fedavg(x, y, mask, lr, rounds: int, local_steps: int):
    weights = mask.sum(1) / mask.sum()

    def local(w, xk, yk, mk):
        step = lambda _, v: v - lr * jax.grad(_client_loss)(v, xk, yk, mk)
        return jax.lax.fori_loop(0, local_steps, step, w)

    def one_round(w, _):
        return weights @ jax.vmap(local, in_axes=(None, 0, 0, 0))(w, x, y, mask), None

    return jax.lax.scan(one_round, jnp.zeros(x.shape[2] + 1), None, length=rounds)[0]


def fedavg_logistic(clients, rounds: int = 50, local_steps: int = 5, lr: float = 0.5) -> jax.Array:
    """FedAvg of logistic regression over ``clients = [(X_k, y_k), ...]``; returns ``[w, b]``.

    Each round every client takes ``local_steps`` full-batch gradient steps from the global weights;
    the server averages them weighted by client size. Deterministic (zero init, full batches).
    Clients are zero-padded to one power-of-two size and masked, so one compiled scan runs all rounds.
    """
    rounds = check_int("rounds", rounds, minimum=1)
    local_steps = check_int("local_steps", local_steps, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, min_inclusive=False)
    if not clients:
        raise ValueError("clients must be non-empty")
    data = []
    for k, (x, y) in enumerate(clients):
        x = np.asarray(check_array(f"clients[{k}][0]", np.asarray(x, np.float32), ndim=2))
        y = np.asarray(y, np.float32)
        if y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValueError(f"clients[{k}]: y must have shape ({x.shape[0]},) with at least one row, got {y.shape}")
        data.append((x, y))
    n_max = 1 << (max(x.shape[0] for x, _ in data) - 1).bit_length()  # power-of-two bucket: fewer compiles
    d = data[0][0].shape[1]
    xs = np.zeros((len(data), n_max, d), np.float32)
    ys = np.zeros((len(data), n_max), np.float32)
    ms = np.zeros((len(data), n_max), np.float32)
    for k, (x, y) in enumerate(data):
        xs[k, :x.shape[0]], ys[k, :x.shape[0]], ms[k, :x.shape[0]] = x, y, 1.0
    return _fedavg(jnp.asarray(xs), jnp.asarray(ys), jnp.asarray(ms), lr, rounds, local_steps)


def predict_logistic(w, x) -> np.ndarray:
    """Hard predictions ``1[x w + b > 0]`` as int array."""
    w = jnp.asarray(w)
    return np.asarray(jnp.asarray(x, jnp.float32) @ w[:-1] + w[-1] > 0).astype(np.int64)


def federated_synthetic(rng: np.random.Generator, n_per_class: int = 500, alpha: float = 0.95,
                        split: str = "iid", heterogeneity: float = 0.92, swap: float = 0.01):
    """Official ``synth3`` data split over two clients: returns ``(x, y, z, s)`` numpy arrays.

    ``x`` (2 features, without Z), ``y`` label, ``z`` sensitive attribute (equal to ``y`` w.p. ``alpha``),
    ``s`` client id. ``swap`` of the smaller client's size is exchanged between clients (official 1%).
    """
    n = check_int("n_per_class", n_per_class, minimum=2)
    alpha = check_number("alpha", alpha, minimum=0.0, maximum=1.0)
    check_choice("split", split, SPLITS)
    heterogeneity = check_number("heterogeneity", heterogeneity, minimum=0.0, maximum=1.0)
    swap = check_number("swap", swap, minimum=0.0, maximum=1.0)
    x = np.vstack([rng.multivariate_normal([2, 2], [[5, 1], [1, 5]], n),
                   rng.multivariate_normal([-2, -2], [[10, 1], [1, 3]], n)])
    y = np.r_[np.ones(n, np.int64), np.zeros(n, np.int64)]
    z = np.where(rng.random(2 * n) < alpha, y, 1 - y)
    if split == "iid":
        s = (rng.permutation(2 * n) < n).astype(np.int64)
    elif split == "heterogeneity":
        s = np.ones(2 * n, np.int64)
        for group, frac in ((1, heterogeneity), (0, 1 - heterogeneity)):
            rows = rng.permutation(np.flatnonzero(z == group))
            s[rows[:int(frac * rows.size)]] = 0
    else:
        s = (z != y).astype(np.int64)
    n_swap = int(swap * min((s == 0).sum(), (s == 1).sum()))
    if n_swap:
        a = rng.choice(np.flatnonzero(s == 0), n_swap, replace=False)
        b = rng.choice(np.flatnonzero(s == 1), n_swap, replace=False)
        s[a], s[b] = 1, 0
    return x, y, z, s
