"""Datasets of padded graph spectra with regression targets, and a resumable training loop.

Batches are a pure function of (key, step) (:func:`sparsejax.data.batch_indices`) and the whole
loop state is one :class:`sparsejax.train.TrainState`, so :class:`sparsejax.train.LoopCheckpointer`
resumes to exactly the uninterrupted result.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import optax

from geometry.spe.gnn import batched_apply, init_params
from geometry.spe.graphs import count_cycles, pad_adjacency
from geometry.spe.spectral import GraphSpectrum, batch_spectra, normalized_laplacian
from sparsejax.core.validation import check_int, check_number
from sparsejax.data import batch_indices
from sparsejax.train import LoopCheckpointer, TrainState, make_train_step
from sparsejax.train.divergence import check_finite_loss
from sparsejax.train.tracking import log_scalars

LOG_EVERY = 50


class GraphDataset(NamedTuple):
    """Batched spectra (leading axis = graphs) and targets ``(B, T)``."""

    spectra: GraphSpectrum
    targets: jax.Array


def cycle_count_dataset(
    graphs: Sequence[nx.Graph], n_max: int, k: int, lengths: Sequence[int] = (3, 4, 5, 6)
) -> GraphDataset:
    """Pad ``graphs`` to ``n_max`` nodes, take ``k`` Laplacian eigenpairs and count cycles by brute force."""
    adj, mask = pad_adjacency(graphs, n_max)
    spectra = batch_spectra(jnp.asarray(adj), jnp.asarray(mask), k=k)
    targets = np.stack([count_cycles(g, lengths) for g in graphs])
    return GraphDataset(spectra, jnp.asarray(targets))


def take(data: GraphDataset, idx) -> GraphDataset:
    """The sub-dataset at indices ``idx``."""
    return jax.tree_util.tree_map(lambda a: a[idx], data)


def l1_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean absolute error (the substructure-counting loss of the official code)."""
    return jnp.mean(jnp.abs(pred - target))


def train_regressor(
    model: nn.Module,
    data: GraphDataset,
    *,
    key: jax.Array,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 1e-4,
    checkpointer: LoopCheckpointer | None = None,
    progress: Callable = lambda it, **kw: it,
):
    """Train ``model`` with AdamW (warmup + cosine) on L1 loss against standardized targets.

    Returns ``(params, info)``; ``info`` has the target ``mean``/``std`` used for standardization,
    ``final_loss`` (the loss of the last step) and ``ms_per_step`` (wall time per step, excluding
    the first, compiling, step of each session). Both live in the checkpointed loop state, so a run
    resumed after a kill (even one killed after this loop finished) reports them too. Losses are
    checked for NaN/inf every ``LOG_EVERY`` steps (:class:`sparsejax.train.divergence.DivergenceError`)
    and logged with :func:`sparsejax.train.tracking.log_scalars`.
    """
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, min_inclusive=False)
    n = data.targets.shape[0]
    if n < 1:
        raise ValueError("data must hold at least one graph")
    mean, std = data.targets.mean(0), data.targets.std(0) + 1e-6
    y_all = (data.targets - mean) / std
    init_key, data_key, flip_key = jax.random.split(key, 3)
    params = init_params(model, init_key, data.spectra)
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(100, steps // 10 + 1), steps, lr * 0.01)
    tx = optax.adamw(schedule, weight_decay=weight_decay)
    apply = batched_apply(model)
    step_fn = make_train_step(lambda p, x: apply(p, x[0], x[1]), tx, l1_loss)
    # loop state: train state, loss per step, [seconds timed, steps timed]
    carry = (TrainState.create(params, tx), jnp.zeros((steps,), jnp.float32), np.zeros((2,), np.float64))
    start = 0
    if checkpointer is not None:
        start, carry = checkpointer.restore(carry)
    state, losses, timing = carry
    timing = np.asarray(timing, np.float64)
    t_mark, since_mark, checked, last_saved = None, 0, start, start or None

    def clock():
        """Add the wall time since the mark (excluding each session's compiling first step)."""
        nonlocal t_mark, since_mark, timing
        jax.block_until_ready(state.params)
        now = time.perf_counter()
        if t_mark is not None:
            timing = timing + np.array([now - t_mark, since_mark])
        t_mark, since_mark = now, 0

    for step in progress(range(start, steps), total=steps, initial=start):
        idx = batch_indices(data_key, step, n, batch_size)
        batch = take(data.spectra, idx)
        state, loss = step_fn(state, (batch, jax.random.fold_in(flip_key, step)), y_all[idx])
        losses = losses.at[step].set(loss)
        if t_mark is None:
            clock()
        else:
            since_mark += 1
        if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
            chunk = np.asarray(losses[checked : step + 1])
            for i, value in enumerate(chunk):
                check_finite_loss(checked + i + 1, value, name="train loss", last_checkpoint=last_saved)
            log_scalars(step + 1, {"loss": float(chunk.mean())}, prefix=type(model.pe).__name__)
            checked = step + 1
        if checkpointer is not None and ((step + 1) % checkpointer.every == 0 or step + 1 == steps):
            clock()
            if checkpointer.maybe_save(step + 1, (state, losses, timing), force=step + 1 == steps):
                last_saved = step + 1
    clock()
    seconds, timed = float(timing[0]), float(timing[1])
    ms = 1e3 * seconds / timed if timed else None
    return state.params, {"mean": mean, "std": std, "final_loss": float(losses[steps - 1]), "ms_per_step": ms}


def predict(model: nn.Module, params, spectra: GraphSpectrum, mean, std, batch_size: int = 256) -> np.ndarray:
    """De-standardized predictions of ``model`` on all graphs of ``spectra`` (evaluation mode)."""
    apply = jax.jit(batched_apply(model))
    n = spectra.adj.shape[0]
    outs = [apply(params, take(spectra, slice(i, i + batch_size))) for i in range(0, n, batch_size)]
    return np.asarray(jnp.concatenate(outs) * std + mean)


def pe_sensitivity(model: nn.Module, params, a: GraphSpectrum, b: GraphSpectrum) -> np.ndarray:
    """Per-graph relative sensitivity of the PE inside a trained regressor to a Laplacian change:

        (||PE(G_b) - PE(G_a)||_F / ||PE(G_a)||_F) / (||L_b - L_a||_F / ||L_a||_F),

    the empirical counterpart of the stability constant of Definition 3.1 made scale free (PEs of
    different methods have different magnitudes). ``a`` and ``b`` are batched spectra of the same
    node sets (e.g. graphs and their edge-perturbed copies) padded to the same size.
    """
    pe = model.pe
    pe_params = params.get("pe", {})
    encode = jax.jit(jax.vmap(lambda g: pe.apply({"params": pe_params}, g)))
    pe_a, pe_b = encode(a), encode(b)
    lap = jax.vmap(normalized_laplacian)
    lap_a, lap_b = lap(a.adj, a.node_mask), lap(b.adj, b.node_mask)

    def norm(x):
        return jnp.sqrt(jnp.sum(x**2, axis=(1, 2)))

    rel_pe = norm(pe_b - pe_a) / jnp.maximum(norm(pe_a), 1e-12)
    rel_lap = norm(lap_b - lap_a) / jnp.maximum(norm(lap_a), 1e-12)
    return np.asarray(rel_pe / jnp.maximum(rel_lap, 1e-12))
