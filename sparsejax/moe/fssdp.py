"""Fully sharded sparse data parallelism (FSSDP, Hecate; P49) for the MoE FFN on ``jax.sharding`` /
``shard_map``, its per-iteration placement planner, and a cost model.

Paper: "Hecate: Unlocking Efficient Sparse Model Training via Fully Sharded Sparse Data Parallelism"
(arXiv 2502.02581; no official code found). Reconstruction from the abstract [abs + guess]:

* **Sharding** (`shard_experts`): every expert's parameters (``w1, b1, w2, b2`` flattened and
  zero-padded to a multiple of ``D``) are split into ``D`` equal shards, device ``d`` owning shard
  ``d`` of every expert (FSDP-style), array ``(E, D, S)`` sharded on its second axis. Optimizer state
  lives on the shards (Adam is elementwise, so it is the same as on full parameters).
* **Placement** (``hosted (D, E)`` bool): which devices materialise which experts this iteration;
  `plan_placement` replicates hot experts (replicas proportional to the load, every expert at least
  once, ``slots`` experts per device) and balances the per-device load greedily;
  `random_placement` draws one for the tests. Tokens routed to expert ``e`` go to its hosts in turn
  (token ``t`` to host number ``t mod r_e``; `assignment`).
* **SparseAllGather** (`gather_experts`): inside ``shard_map`` each device all-gathers the shards and
  keeps only its hosted experts; **SparseReduceScatter**: the gradient of the gathered parameters
  flows back through the transpose of the all-gather (a reduce-scatter), so every shard owner receives
  the sum over all replicas of its shard's gradient. The token all-to-all (dispatch and combine) is
  emulated with an all-gather of the routed tokens and a reduce-scatter of the partial outputs.

JAX's collectives are dense: the masks give FSSDP's *semantics* (who computes what, which gradients
are summed where), not its byte savings; every device even runs every expert on every token and
masks the result. The bytes and times the real system would spend are counted by `iteration_cost`
(modelled, not measured).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from sparsejax.core.validation import check_array, check_int
from sparsejax.moe.moe import EXPERT_KEYS, _ln, expert_ffn, moe_lm_logits, route

__all__ = ["ExpertSpec", "shard_experts", "unshard_experts", "random_placement", "plan_placement", "assignment",
           "gather_experts", "scatter_expert_grads", "make_fssdp_step", "make_reference_step", "iteration_cost", "STRATEGIES"]


class ExpertSpec(tuple):
    """Static layout of one expert's flattened parameters: ``((name, shape), ...)``."""


def _expert_spec(params) -> ExpertSpec:
    return ExpertSpec((k, tuple(params[k].shape[1:])) for k in EXPERT_KEYS)


def shard_experts(params: dict, n_devices: int):
    """``(rest, shards (E, D, S), spec)``: the non-expert params and the expert shards (module doc)."""
    n_devices = check_int("n_devices", n_devices, minimum=1)
    spec = _expert_spec(params)
    e = params["w1"].shape[0]
    flat = jnp.concatenate([params[k].reshape(e, -1) for k, _ in spec], axis=1)
    size = -(-flat.shape[1] // n_devices) * n_devices
    flat = jnp.pad(flat, ((0, 0), (0, size - flat.shape[1])))
    rest = {k: v for k, v in params.items() if k not in EXPERT_KEYS}
    return rest, flat.reshape(e, n_devices, size // n_devices), spec


def unshard_experts(full, spec: ExpertSpec) -> dict:
    """Expert dict from gathered ``(E, D, S)`` (or ``(E, D*S)``) shards."""
    e = full.shape[0]
    full = full.reshape(e, -1)
    out, off = {}, 0
    for k, shape in spec:
        n = int(np.prod(shape))
        out[k] = full[:, off: off + n].reshape(e, *shape)
        off += n
    return out


def random_placement(rng: np.random.Generator, n_experts: int, n_devices: int, slots: int) -> np.ndarray:
    """A random ``(D, E)`` placement: each device hosts ``slots`` distinct experts, every expert >= 1 host."""
    if slots * n_devices < n_experts or slots > n_experts:
        raise ValueError(f"slots={slots} per device on {n_devices} devices cannot host {n_experts} experts")
    hosted = np.zeros((n_devices, n_experts), bool)
    order = rng.permutation(n_experts)
    for i, e in enumerate(order):  # cover every expert once, round-robin
        hosted[i % n_devices, e] = True
    for d in range(n_devices):
        free = np.flatnonzero(~hosted[d])
        need = slots - hosted[d].sum()
        if need > 0:
            hosted[d, rng.choice(free, need, replace=False)] = True
    return hosted


def plan_placement(loads, n_devices: int, slots: int) -> np.ndarray:
    """Hecate-style plan [guess]: replicas ``r_e`` proportional to the load (>= 1, <= D, summing to
    ``D * slots``), then replicas placed hottest-first on the least-loaded device that has a free slot
    and does not yet host the expert (each replica takes ``load_e / r_e``). Returns ``(D, E)`` bool."""
    loads = np.asarray(loads, np.float64)
    check_array("loads", loads, ndim=1)
    e = loads.size
    if slots * n_devices < e or slots > e:
        raise ValueError(f"slots={slots} per device on {n_devices} devices cannot host {e} experts")
    total = slots * n_devices
    reps = np.ones(e, int)
    share = loads / max(loads.sum(), 1e-12)
    for _ in range(total - e):  # give the next replica to the expert with the largest load per replica
        score = np.where(reps < n_devices, share / reps, -1.0)
        reps[int(np.argmax(score))] += 1
    hosted = np.zeros((n_devices, e), bool)
    dev_load = np.zeros(n_devices)
    for ex in np.argsort(-share / reps, kind="stable"):
        for _ in range(reps[ex]):
            ok = (~hosted[:, ex]) & (hosted.sum(1) < slots)
            d = int(np.flatnonzero(ok)[np.argmin(dev_load[ok])])
            hosted[d, ex] = True
            dev_load[d] += share[ex] / reps[ex]
    return hosted


def assignment(hosted: np.ndarray, n_tokens: int) -> np.ndarray:
    """``(D, E, N)`` bool: token ``t`` of expert ``e`` is computed by the ``(t mod r_e)``-th host of ``e``."""
    hosted = np.asarray(hosted, bool)
    if not hosted.any(0).all():
        raise ValueError(f"every expert needs a host; experts {np.flatnonzero(~hosted.any(0)).tolist()} have none")
    d, e = hosted.shape
    out = np.zeros((d, e, n_tokens), bool)
    t = np.arange(n_tokens)
    for ex in range(e):
        hosts = np.flatnonzero(hosted[:, ex])
        out[hosts[t % hosts.size], ex, t] = True
    return out


def gather_experts(local_shards, hosted_row, spec: ExpertSpec, axis: str) -> dict:
    """SparseAllGather (inside ``shard_map``): all-gather the ``(E, 1, S)`` local shards, keep the hosted
    experts (zeros elsewhere)."""
    full = jax.lax.all_gather(local_shards, axis, axis=1, tiled=True)  # (E, D, S)
    return unshard_experts(full * hosted_row[:, None, None].astype(full.dtype), spec)


def scatter_expert_grads(local_grads, hosted_row, axis: str):
    """SparseReduceScatter (inside ``shard_map``): each device's ``(E, D, S)`` gradient of its hosted
    experts (others masked to zero) summed over devices, device ``d`` receiving shard ``d``:
    ``(E, 1, S)``. In `make_fssdp_step` the same collective arises as the transpose of the gather."""
    masked = local_grads * hosted_row[:, None, None].astype(local_grads.dtype)
    return jax.lax.psum_scatter(masked, axis, scatter_dimension=1, tiled=True)


def _fssdp_loss(rest, shards, tokens, targets, hosted, assign, *, spec, k, aux_coef, axis, n_global):
    """One device's share of the global loss (sums to the single-device loss over devices)."""
    x = rest["embed"][tokens.reshape(-1)]
    h = _ln(x, rest["ln_scale"])
    combine, probs, chosen = route(rest["router"], h, k)
    h_all = jax.lax.all_gather(h, axis, tiled=True)  # token dispatch (all-to-all, emulated)
    c_all = jax.lax.all_gather(combine, axis, tiled=True)
    experts = gather_experts(shards, hosted[0], spec, axis)
    out = expert_ffn(experts, h_all)  # (E, N, d); only hosted experts are non-zero
    partial = jnp.einsum("ne,en,end->nd", c_all, assign[0].astype(c_all.dtype), out)
    y = jax.lax.psum_scatter(partial, axis, scatter_dimension=0, tiled=True)  # combine (all-to-all back)
    logits = _ln(x + y, rest["ln_scale"]) @ rest["head"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets.reshape(-1)).sum() / n_global
    n_dev = jax.lax.psum(1, axis)
    f = jax.lax.psum(chosen.sum(0).astype(jnp.float32), axis) / (n_global * k)
    pm = jax.lax.psum(probs.sum(0), axis) / n_global
    aux = probs.shape[-1] * jnp.sum(f * pm)
    return ce + aux_coef * aux / n_dev


def make_fssdp_step(mesh, spec: ExpertSpec, tx: optax.GradientTransformation, *, k: int, aux_coef: float,
                    axis: str = "data"):
    """Jitted ``step(rest, shards, opt_state, tokens, targets, hosted, assign) -> (rest, shards, opt_state,
    loss)``: tokens sharded by batch row over ``axis``, expert shards on their device axis, ``hosted``
    ``(D, E)`` and ``assign`` ``(D, E, N)`` split by device; Adam (any elementwise optax) on the shards."""

    def step(rest, shards, opt_state, tokens, targets, hosted, assign):
        n_global = tokens.size
        loss_fn = functools.partial(_fssdp_loss, spec=spec, k=k, aux_coef=aux_coef, axis=axis, n_global=n_global)

        def local(rest, shards, tokens, targets, hosted, assign):
            loss, (g_rest, g_shards) = jax.value_and_grad(loss_fn, argnums=(0, 1))(
                rest, shards, tokens, targets, hosted, assign)
            return jax.lax.psum(loss, axis), g_rest, g_shards

        loss, g_rest, g_shards = jax.shard_map(
            local, mesh=mesh,
            in_specs=(P(), P(None, axis, None), P(axis), P(axis), P(axis), P(axis)),
            out_specs=(P(), P(), P(None, axis, None)))(rest, shards, tokens, targets, hosted, assign)
        updates, opt_state = tx.update((g_rest, g_shards), opt_state, (rest, shards))
        rest, shards = optax.apply_updates((rest, shards), updates)
        return rest, shards, opt_state, loss

    return jax.jit(step)


def make_reference_step(tx: optax.GradientTransformation, *, k: int, aux_coef: float):
    """Single-device ``step(params, opt_state, tokens, targets) -> (params, opt_state, loss, load)``;
    ``load (E,)`` counts the tokens routed to each expert (the routing trace)."""

    def loss_fn(params, tokens, targets):
        logits, aux, load = moe_lm_logits(params, tokens, k)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
        return ce + aux_coef * aux, load

    def step(params, opt_state, tokens, targets):
        (loss, load), g = jax.value_and_grad(loss_fn, has_aux=True)(params, tokens, targets)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, load

    return jax.jit(step)


# ---------------------------------------------------------------------------------------------
# cost model (modelled, not measured)

STRATEGIES = ("static_ep", "ep_rearrange", "fssdp")


def _lpt(loads, n_devices, per_device):
    """Longest-processing-time placement of single experts, ``per_device`` each: ``(D, E)`` bool."""
    hosted = np.zeros((n_devices, loads.size), bool)
    dev = np.zeros(n_devices)
    for ex in np.argsort(-loads, kind="stable"):
        ok = hosted.sum(1) < per_device
        d = int(np.flatnonzero(ok)[np.argmin(dev[ok])])
        hosted[d, ex] = True
        dev[d] += loads[ex]
    return hosted


def iteration_cost(trace, *, n_devices: int, tokens_per_device: int, k: int, d_model: int, d_hidden: int,
                   flops_per_s: float, bytes_per_s: float, rearrange_every: int = 10, slots: int | None = None,
                   dtype_bytes: int = 2) -> dict:
    """Modelled per-iteration time, straggler ratio and peak memory per device of each strategy on a
    routing ``trace (iterations, E)`` (fractions of the (token, slot) assignments per expert).

    Model [ours]: ``t = max_d compute_d / flops_per_s + comm / bytes_per_s`` with no overlap
    (``time_s``), and a second bound ``time_overlap_s`` where the parameter collectives (FSSDP's
    gathers / reduce-scatter, EP's migrations) hide behind the expert compute, as FSDP prefetching
    does, while the token all-to-all stays on the critical path;
    compute = 3 (fwd + bwd) * 2 * 2 * d_model * d_hidden FLOPs per routed token, a replicated expert's
    tokens split evenly over its replicas. Token all-to-all (all strategies): dispatch + combine,
    forward and backward, ``4 * (D-1)/D`` of the device's routed tokens of ``d_model`` values. Static EP:
    ``E/D`` experts per device, fixed (expert ``e`` on device ``e mod D``). EP + rearrangement: every
    ``rearrange_every`` iterations an LPT placement on the previous iteration's loads, and moving an
    expert costs its parameters + Adam state (3x params). FSSDP: `plan_placement` on the current loads
    with ``slots`` experts per device (default ``2E/D``); gathers ``(D-1)/D`` of each hosted expert
    twice (forward and re-materialisation for backward) and reduce-scatters its gradient once.
    Memory: EP keeps ``E/D`` experts with gradient and Adam state (4x params); FSSDP keeps ``1/D`` of
    every expert with Adam state (3x) plus its hosted experts and their gradients (2x)."""
    trace = np.asarray(trace, np.float64)
    check_array("trace", trace, ndim=2)
    it, e = trace.shape
    n_devices = check_int("n_devices", n_devices, minimum=1)
    if e % n_devices:
        raise ValueError(f"E={e} experts must be divisible by n_devices={n_devices} for expert parallelism")
    slots = 2 * e // n_devices if slots is None else slots
    per = e // n_devices
    routed = tokens_per_device * n_devices * k
    flop_tok = 3 * 2 * 2 * d_model * d_hidden
    p_bytes = 2 * d_model * d_hidden * dtype_bytes
    a2a = 4 * (n_devices - 1) / n_devices * tokens_per_device * k * d_model * dtype_bytes
    static = np.zeros((n_devices, e), bool)
    static[np.arange(e) % n_devices, np.arange(e)] = True
    out = {s: {"time_s": [], "time_overlap_s": [], "straggler": []} for s in STRATEGIES}
    placement = static
    for t in range(it):
        loads = trace[t] * routed
        if t and t % rearrange_every == 0:
            new = _lpt(trace[t - 1], n_devices, per)
            moved = int((new & ~placement).sum())
            migrate = moved * 3 * p_bytes / n_devices
            placement = new
        else:
            migrate = 0.0
        plans = {"static_ep": (static, 0.0), "ep_rearrange": (placement, migrate)}
        hosted = plan_placement(trace[t], n_devices, slots)
        plans["fssdp"] = (hosted, 3 * hosted.sum(1).max() * p_bytes * (n_devices - 1) / n_devices)
        for s, (h, extra) in plans.items():
            compute = (h * (loads / h.sum(0))[None]).sum(1) * flop_tok
            out[s]["time_s"].append(compute.max() / flops_per_s + (a2a + extra) / bytes_per_s)
            out[s]["time_overlap_s"].append(max(compute.max() / flops_per_s, extra / bytes_per_s) + a2a / bytes_per_s)
            out[s]["straggler"].append(compute.max() / compute.mean())
    mem = {"static_ep": 4 * per * p_bytes, "ep_rearrange": 4 * per * p_bytes,
           "fssdp": 3 * e * p_bytes / n_devices + 2 * slots * p_bytes}
    return {s: {"mean_time_s": float(np.mean(v["time_s"])), "mean_time_overlap_s": float(np.mean(v["time_overlap_s"])),
                "mean_straggler": float(np.mean(v["straggler"])),
                "peak_memory_bytes": float(mem[s])} for s, v in out.items()}
