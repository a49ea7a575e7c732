"""P39 HESSO (Hybrid Efficient Structured Sparse Optimizer) as an optax wrapper, and CRIC.

Paper: "HESSO: Towards Automatic Efficient and User Friendly Any Neural Network Training and
Pruning" (Chen et al. 2024); official code ``microsoft/only_train_once`` (read:
``optimizer/hesso.py``, ``base_hybrid_sparse_optimizer.py``, ``base_optimizer.py``,
``importance_score/{magnitude,cosine_similarity,taylor}.py``, ``hesso_cric.py``).

:func:`hesso` wraps any optax ``base`` optimizer. Its update direction ``d = -u`` (``u`` the base
update; the code's ``grad_variant`` is ``-u / lr``, and every criterion below is invariant to that
scale after normalisation) drives the group importance, computed at the start of each of
``pruning_periods`` periods of ``T = pruning_steps // pruning_periods`` steps from ``start_step``:

* five criteria per group (the ``"out"`` and ``"shift"`` members of a
  :class:`~sparsejax.structured.coupled.GroupSpec`, i.e. OTO's zero-invariant group without the
  consumer rows): ``||θ_g||``, ``||θ_g|| / n_g`` (``n_g`` entries per group), ``cos(θ_g, d_g) + 1``,
  ``|<θ_g, d_g>|`` and ``½ <θ_g, d_g>²``; each divided by its global L2 norm over all groups
  (+1e-8, as the code) and weighted 0.2;
* the ``K // P`` lowest-scoring groups not yet pruned (the last period takes the remainder of
  ``K = int(G * min(target, 0.999))``) become the period's redundant set; as the code's
  ``group_divisible = 1`` refinement, a spec never loses its last group (``K`` then shrinks);
* every step all groups take the base step; redundant groups are then multiplied by
  ``(T - t - 1) / (T - t)`` (``t`` the step within the period) so they are exactly 0 after the
  period's last step ``t = T - 1``; they are then committed as pruned and held at 0 afterwards.

Deviations: the code computes the period's scores at its first step but counts that step as
``t = 1`` (the shrink reaches 0 one step before the period ends); here the selection step is
``t = 0``. The code picks the new groups with ``np.setdiff1d`` (index order, not score order, when
pruned groups are not among the lowest scores); here the lowest scores among unpruned groups.

CRIC (:func:`cric_scores`, from ``hesso_cric.py``, condensed): (1) per spec, project its 25/50/75 %
lowest-scored groups to zero and record ``loss / reference loss`` on a batch; the mean ratio
divided by the spec's group count is added with weight 1.0 to that spec's groups' scores (layers
whose removal hurts are protected); (2) violation cycles: from the cached parameters, shrink the
current violating set (cycle 1: the ``K`` lowest) to zero over ``sampling_steps`` with the HESSO
rule while recording scores every step; groups that enter the ``K`` lowest meanwhile and were
never violating become the next violating set; parameters are reset to the cache after each
cycle; stop when at most ``tolerance`` new violating groups appear or after ``max_cycles``;
(3) the final score is the mean of all recorded scores plus the loss term, the ``K`` lowest are
the redundant groups, and HESSO shrinks them from the cached parameters over one period
(:func:`hesso` with ``preset=True`` and :func:`with_redundant`). Condensed: the code interleaves the projection probes with
optimizer steps; here they are evaluated on fixed batches without training in between.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.masks import top_k_mask
from sparsejax.core.tree import leaves_with_paths
from sparsejax.core.validation import check_int, check_number
from sparsejax.structured.coupled import GroupSpec, group_slices, check_specs, scale_groups

CRITERIA = ("magnitude", "avg_magnitude", "cosine_similarity", "taylor_first_order", "taylor_second_order")
SCORE_ROLES = ("out", "shift")
_SAFE = 1e-8


class HESSOState(NamedTuple):
    """Step count, pruned and active-redundant group flags ``(G,)`` (specs concatenated), the sum and
    count of the scores seen and the flag of groups ever among the ``track_k`` lowest (CRIC), the
    preset redundant groups and their shrink length (``preset=True``), and the base state."""

    count: jax.Array
    pruned: jax.Array
    active: jax.Array
    score_sum: jax.Array
    score_count: jax.Array
    lowest_seen: jax.Array
    track_k: jax.Array
    preset: jax.Array
    preset_len: jax.Array
    inner_state: Any


def _flat(tree) -> dict:
    return dict(leaves_with_paths(tree))


def raw_criteria(params, direction, specs: Sequence[GroupSpec]) -> dict[str, jax.Array]:
    """The five raw criteria (:data:`CRITERIA`), each ``(G,)`` over the concatenated specs, from the
    ``out``/``shift`` member slices of ``params`` and of the update ``direction``."""
    p_flat, d_flat = _flat(params), _flat(direction)
    out = {c: [] for c in CRITERIA}
    for spec in specs:
        sq_p = sq_d = inner = 0.0
        n = 0
        for m in spec.members:
            if m.role not in SCORE_ROLES:
                continue
            sp = group_slices(p_flat[m.path], m, spec.size).astype(jnp.float32)
            sd = group_slices(d_flat[m.path], m, spec.size).astype(jnp.float32)
            sq_p, sq_d, inner = sq_p + (sp ** 2).sum(1), sq_d + (sd ** 2).sum(1), inner + (sp * sd).sum(1)
            n += sp.shape[1]
        norm_p, norm_d = jnp.sqrt(sq_p), jnp.sqrt(sq_d)
        out["magnitude"].append(norm_p)
        out["avg_magnitude"].append(norm_p / (n + 1e-6))
        out["cosine_similarity"].append(inner / (norm_p + _SAFE) / (norm_d + _SAFE) + 1.0)
        out["taylor_first_order"].append(jnp.abs(inner))
        out["taylor_second_order"].append(0.5 * inner ** 2)
    return {c: jnp.concatenate(v) for c, v in out.items()}


def importance_scores(params, direction, specs: Sequence[GroupSpec], weights: dict[str, float] | None = None):
    """HESSO's overall group score ``(G,)``: each criterion divided by ``sqrt(sum of its squares + 1e-8) + 1e-8``
    over all groups, times its weight (default 0.2 each), summed."""
    weights = {c: 0.2 for c in CRITERIA} if weights is None else weights
    raw = raw_criteria(params, direction, specs)
    return sum(w * raw[c] / (jnp.sqrt(jnp.sum(raw[c] ** 2) + _SAFE) + _SAFE) for c, w in weights.items())


def _segments(specs) -> list[tuple[int, int]]:
    out, start = [], 0
    for s in specs:
        out.append((start, start + s.size))
        start += s.size
    return out


def _keep_last_group(new, pruned, score, segments):
    """Un-select, per spec, the best newly selected group when the spec would lose every group."""
    for a, b in segments:
        seg_new, seg_left = new[a:b], ~(pruned[a:b] | new[a:b])
        best = jnp.argmax(jnp.where(seg_new, score[a:b], -jnp.inf))
        fix = (~seg_left.any()) & seg_new.any()
        new = new.at[a + best].set(jnp.where(fix, False, new[a + best]))
    return new


def _scale_all(params, specs, factors, segments):
    for spec, (a, b) in zip(specs, segments):
        params = scale_groups(params, spec, factors[a:b], roles=SCORE_ROLES)
    return params


def scale_group_slices(params, specs: Sequence[GroupSpec], factors) -> Any:
    """``params`` with the ``out``/``shift`` slices of group ``i`` (specs concatenated) times ``factors[i]``."""
    specs = tuple(specs)
    return _scale_all(params, specs, jnp.asarray(factors), _segments(specs))


def group_magnitude(params, specs: Sequence[GroupSpec]) -> jax.Array:
    """``(G,)`` L2 norm of every group's ``out``/``shift`` slices (HESSO's magnitude criterion)."""
    return raw_criteria(params, params, specs)["magnitude"]


def lowest_groups(scores, specs: Sequence[GroupSpec], target_group_sparsity: float) -> np.ndarray:
    """``(G,)`` flags of the ``int(G min(s, 0.999))`` lowest ``scores``, keeping at least one group per spec."""
    specs = tuple(specs)
    scores = jnp.asarray(scores, jnp.float32)
    g = sum(group_sizes(specs))
    if scores.shape != (g,):
        raise ValueError(f"scores must have shape ({g},) (one per group of the specs), got {scores.shape}")
    k = int(period_counts(g, target_group_sparsity, 1).sum())
    drop = top_k_mask(-scores, k)
    return np.asarray(_keep_last_group(drop, jnp.zeros(g, bool), scores, _segments(specs)))


def period_counts(num_groups: int, target_group_sparsity: float, periods: int) -> np.ndarray:
    """Groups made redundant in each period: ``K // P`` (the last takes the remainder), ``K = int(G min(s, 0.999))``."""
    k = int(num_groups * min(float(target_group_sparsity), 0.999))
    counts = np.full(periods, k // periods, np.int32)
    counts[-1] = k - counts[:-1].sum()
    return counts


def hesso(base: optax.GradientTransformation, specs: Sequence[GroupSpec], *, target_group_sparsity: float = 0.0,
          start_step: int = 0, pruning_steps: int = 1, pruning_periods: int = 1, preset: bool = False,
          track_scores: bool = False, weights: dict[str, float] | None = None) -> optax.GradientTransformation:
    """HESSO around ``base`` (see the module docstring). ``specs``: the prunable groups.

    ``preset=True``: no score selection; the groups set by :func:`with_redundant` in the state are
    shrunk to zero over the number of steps given there, from the state's step 0 (one compiled step
    serves any preset set: one-shot pruning, CRIC's cycles and its final phase). ``track_scores``
    keeps the running sum of scores and the groups ever among the ``K`` lowest in the state (CRIC).
    ``target_group_sparsity = 0`` is ``base`` (up to float rounding of ``(θ + u) - θ``)."""
    specs = tuple(specs)
    if not specs:
        raise ValueError("hesso needs at least one GroupSpec")
    check_number("target_group_sparsity", target_group_sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    start_step = 0 if preset else check_int("start_step", start_step, minimum=0)
    periods = 1 if preset else check_int("pruning_periods", pruning_periods, minimum=1)
    pruning_steps = check_int("pruning_steps", pruning_steps, minimum=periods)
    segments = _segments(specs)
    g = segments[-1][1]
    counts = jnp.asarray(period_counts(g, target_group_sparsity, periods))

    def init_fn(params):
        check_specs(params, specs)
        zeros = jnp.zeros((g,), bool)
        return HESSOState(jnp.zeros((), jnp.int32), zeros, zeros, jnp.zeros((g,), jnp.float32),
                          jnp.zeros((), jnp.int32), zeros, jnp.asarray(counts.sum(), jnp.int32), zeros,
                          jnp.asarray(pruning_steps // periods, jnp.int32), base.init(params))

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("hesso needs params: call tx.update(grads, state, params)")
        updates, inner_state = base.update(grads, state.inner_state, params)
        direction = jax.tree_util.tree_map(jnp.negative, updates)
        period_len = state.preset_len if preset else pruning_steps // periods
        c = state.count
        rel = c - start_step
        period = jnp.where(rel >= 0, rel // period_len, -1)
        t = jnp.where(rel >= 0, rel % period_len, 0)
        in_pruning = (rel >= 0) & (period < periods)
        period_start = in_pruning & (t == 0)
        score_needed = jnp.asarray(True) if track_scores else (period_start & (not preset))
        score = jax.lax.cond(score_needed, lambda _: importance_scores(params, direction, specs, weights),
                             lambda _: jnp.zeros((g,), jnp.float32), None)
        if preset:
            new = state.preset & ~state.pruned
        else:
            k = counts[jnp.clip(period, 0, periods - 1)]
            new = top_k_mask(jnp.where(state.pruned, -jnp.inf, -score), k) & ~state.pruned
            new = _keep_last_group(new, state.pruned, score, segments)
        active = jnp.where(period_start, new, state.active)
        factor = jnp.where(state.pruned, 0.0,
                           jnp.where(active & in_pruning, (period_len - t - 1.0) / (period_len - t), 1.0))
        new_params = _scale_all(optax.apply_updates(params, updates), specs, factor, segments)
        updates = jax.tree_util.tree_map(lambda n, p: n - p, new_params, params)
        period_end = in_pruning & (t == period_len - 1)
        pruned = jnp.where(period_end, state.pruned | active, state.pruned)
        active = jnp.where(period_end, jnp.zeros_like(active), active)
        score_sum, score_count, lowest = state.score_sum, state.score_count, state.lowest_seen
        if track_scores:
            score_sum, score_count = score_sum + score, score_count + 1
            lowest = lowest | top_k_mask(-score, state.track_k)
        return updates, state._replace(count=c + 1, pruned=pruned, active=active, score_sum=score_sum,
                                       score_count=score_count, lowest_seen=lowest, inner_state=inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def with_redundant(state: HESSOState, redundant, steps: int, target_group_sparsity: float | None = None) -> HESSOState:
    """A fresh-schedule copy of a ``preset=True`` HESSO ``state``: step 0, nothing pruned, the ``redundant``
    ``(G,)`` groups to shrink over ``steps`` steps; ``target_group_sparsity`` sets the ``K`` of ``track_scores``."""
    redundant = jnp.asarray(redundant)
    if redundant.shape != state.pruned.shape or redundant.dtype != jnp.bool_:
        raise ValueError(f"redundant must be a bool array of shape {state.pruned.shape}, got "
                         f"{redundant.dtype} {redundant.shape}")
    steps = check_int("steps", steps, minimum=1)
    g = state.pruned.shape[0]
    k = state.track_k if target_group_sparsity is None else int(period_counts(g, target_group_sparsity, 1).sum())
    zeros = jnp.zeros_like(state.pruned)
    return state._replace(count=jnp.zeros((), jnp.int32), pruned=zeros, active=zeros,
                          score_sum=jnp.zeros_like(state.score_sum), score_count=jnp.zeros((), jnp.int32),
                          lowest_seen=zeros, track_k=jnp.asarray(k, jnp.int32), preset=redundant,
                          preset_len=jnp.asarray(steps, jnp.int32))


def group_sizes(specs: Sequence[GroupSpec]) -> list[int]:
    """Number of groups per spec (the segment lengths of the concatenated ``(G,)`` vectors)."""
    return [s.size for s in specs]


def split_groups(vector, specs: Sequence[GroupSpec]) -> dict[str, np.ndarray]:
    """A ``(G,)`` vector over the concatenated specs as ``{spec.name: (size,)}``."""
    vector = np.asarray(vector)
    return {s.name: vector[a:b] for s, (a, b) in zip(specs, _segments(specs))}


def zero_groups(params, specs: Sequence[GroupSpec], drop) -> Any:
    """``params`` with the ``out``/``shift`` slices of the groups flagged in ``drop`` ``(G,)`` set to 0."""
    return scale_group_slices(params, specs, jnp.where(jnp.asarray(drop), 0.0, 1.0))


def cric_scores(params, specs: Sequence[GroupSpec], loss_fn: Callable[[Any, Any], jax.Array],
                train: Callable[[Any, HESSOState, int], tuple[Any, HESSOState]], tx: optax.GradientTransformation,
                probe_batch, *, target_group_sparsity: float, sampling_steps: int, max_cycles: int = 10,
                tolerance: int = 0, trial_sparsities: Sequence[float] = (0.25, 0.5, 0.75),
                loss_weight: float = 1.0) -> dict:
    """CRIC's corrected redundant set (module docstring). ``tx`` is ``hesso(base, specs, preset=True,
    track_scores=True)``; ``train(params, opt_state, steps) -> (params, opt_state)`` runs ``tx`` from
    ``params`` (the caller's loop and data); ``loss_fn(params, batch)`` is the training loss. Returns
    ``redundant`` ``(G,)`` bool, the final ``scores``, the per-spec ``loss_ratio`` and ``cycles`` run."""
    specs = tuple(specs)
    check_int("sampling_steps", sampling_steps, minimum=1)
    max_cycles = check_int("max_cycles", max_cycles, minimum=1)
    segments = _segments(specs)
    g = segments[-1][1]
    k = int(period_counts(g, target_group_sparsity, 1).sum())
    state0 = tx.init(params)
    # (1) loss probes; scores from the base optimizer's first direction at the cached parameters
    grads = jax.grad(loss_fn)(params, probe_batch)
    u, _ = tx.update(grads, with_redundant(state0, jnp.zeros(g, bool), 1), params)
    score0 = np.asarray(importance_scores(params, jax.tree_util.tree_map(jnp.negative, u), specs))
    ref = float(loss_fn(params, probe_batch))
    loss_term = np.zeros(g, np.float32)
    ratios = {}
    for spec, (a, b) in zip(specs, segments):
        vals = []
        for s in trial_sparsities:
            n = max(min(int(spec.size * s), spec.size), 1)
            drop = np.zeros(g, bool)
            drop[a + np.argsort(score0[a:b], kind="stable")[:n]] = True
            vals.append(float(loss_fn(zero_groups(params, specs, drop), probe_batch)) / ref)
        ratios[spec.name] = float(np.mean(vals))
        loss_term[a:b] = loss_weight * ratios[spec.name] / spec.size
    # (2) violation cycles, each from the cached parameters
    historical = np.zeros(g, bool)
    violating = np.asarray(top_k_mask(jnp.asarray(-score0), k))
    score_sum, score_count, cycles = np.zeros(g), 0, 0
    while True:
        cycles += 1
        historical |= violating
        _, state = train(params, with_redundant(state0, jnp.asarray(violating), sampling_steps, target_group_sparsity),
                         sampling_steps)
        score_sum += np.asarray(state.score_sum)
        score_count += int(state.score_count)
        violating = np.asarray(state.lowest_seen) & ~historical
        if violating.sum() <= tolerance or cycles >= max_cycles:
            break
    # (3) final selection on the mean score plus the loss term
    final = score_sum / max(score_count, 1) + loss_term
    return {"redundant": lowest_groups(final, specs, target_group_sparsity), "scores": final, "loss_ratio": ratios,
            "cycles": cycles}
