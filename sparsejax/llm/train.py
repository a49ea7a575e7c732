"""Training the functional LM: pre-training on the grammar corpus, adapter fine-tuning, and the
n-gram perplexity baselines every LM result is compared with."""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.validation import check_int, check_number
from sparsejax.llm.adapters import Adapter, make_adapter_train_step
from sparsejax.llm.model import LMConfig, forward, init_lm
from sparsejax.train import TrainState, fit, make_train_step
from sparsejax.train.checkpoint import LoopCheckpointer


@functools.lru_cache(maxsize=None)
def _adamw_unit(steps: int, weight_decay: float, warmup_frac: float) -> optax.GradientTransformation:
    sched = optax.warmup_cosine_decay_schedule(0.0, 1.0, max(1, int(warmup_frac * steps)), steps)
    return optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(weight_decay), optax.scale_by_schedule(sched),
                       optax.inject_hyperparams(optax.scale)(step_size=-1.0))


def adamw_state(params, learning_rate: float, steps: int, weight_decay: float = 0.0,
                warmup_frac: float = 0.1) -> tuple[optax.GradientTransformation, TrainState]:
    """AdamW (``optax.adamw``'s update) with linear warm-up over ``warmup_frac`` of ``steps`` and cosine
    decay to 0, and its fresh :class:`TrainState` for ``params``. The peak ``learning_rate`` lives in
    the optimizer state (an injected step size), so runs that differ only in it share one
    transformation object and hence one compiled step."""
    check_number("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    tx = _adamw_unit(check_int("steps", steps, minimum=1), float(weight_decay), float(warmup_frac))
    state = TrainState.create(params, tx)
    state.opt_state[-1].hyperparams["step_size"] = jnp.asarray(-learning_rate, jnp.float32)
    return tx, state


@functools.lru_cache(maxsize=None)
def _apply(config: LMConfig):
    return lambda p, x: forward(p, x, config)


class LMData(NamedTuple):
    """LM windows ``(N, T + 1)`` of one grammar: ``train``, ``val`` and ``test``."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def grammar_windows(grammar: str, n_train: int, n_eval: int, seq_len: int, seed: int = 0) -> LMData:
    """Train/val/test windows of ``grammar`` (``"A"``/``"B"``) from disjoint seeds, ``n_train`` and
    ``n_eval`` sentences."""
    from sparsejax.data.grammar import grammar_corpus, lm_windows

    offset = {"A": 0, "B": 50_000}[grammar]
    make = lambda n, s: lm_windows(grammar_corpus(n, seed=offset + s, grammar=grammar), seq_len)  # noqa: E731
    return LMData(make(n_train, seed), make(n_eval, 20_000 + seed), make(n_eval, 30_000 + seed))


def train_lm(params: dict, config: LMConfig, windows: np.ndarray, *, steps: int, batch_size: int,
             learning_rate: float, key: jax.Array, weight_decay: float = 0.0,
             checkpointer: LoopCheckpointer | None = None) -> tuple[dict, list[float]]:
    """Train every weight of the LM on next-token prediction (AdamW, warm-up + cosine)."""
    tx, state = adamw_state(params, learning_rate, steps, weight_decay)
    step = make_train_step(_apply(config), tx)
    state, losses = fit(step, state, windows[:, :-1], windows[:, 1:], steps=steps,
                        batch_size=batch_size, key=key, checkpointer=checkpointer)
    return state.params, losses


def pretrain_lm(key: jax.Array, vocab_size: int, windows: np.ndarray, *, model: dict, steps: int, batch_size: int,
                learning_rate: float, weight_decay: float = 1e-4,
                checkpointer: LoopCheckpointer | None = None) -> tuple[dict, LMConfig, list[float]]:
    """Initialise :func:`~sparsejax.llm.model.init_lm` with ``model`` kwargs and :func:`train_lm` it."""
    k_init, k_data = jax.random.split(key)
    params, config = init_lm(k_init, vocab_size, **model)
    params, losses = train_lm(params, config, windows, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                              key=k_data, weight_decay=weight_decay, checkpointer=checkpointer)
    return params, config, losses


def finetune(base: dict, config: LMConfig, adapter: Adapter, windows: np.ndarray, *, steps: int, batch_size: int,
             learning_rate: float, key: jax.Array, apply_fn=None, checkpointer: LoopCheckpointer | None = None):
    """Train only ``adapter``'s params on ``windows`` (base frozen); returns ``(adapter params, losses)``.
    ``apply_fn(params, x)`` defaults to the LM's :func:`~sparsejax.llm.model.forward` (windows are
    then LM windows; otherwise ``windows`` is an ``(x, y)`` pair)."""
    tx, state = adamw_state(adapter.params, learning_rate, steps)
    step = make_adapter_train_step(apply_fn or _apply(config), base, adapter, tx)
    x, y = (windows[:, :-1], windows[:, 1:]) if apply_fn is None else windows
    state, losses = fit(step, state, x, y, steps=steps, batch_size=batch_size,
                        key=key, checkpointer=checkpointer)
    return state.params, losses


def ngram_perplexity(train: np.ndarray, test: np.ndarray, vocab_size: int, order: int, add_k: float = 0.1) -> float:
    """Perplexity of an add-``k`` smoothed unigram (``order=1``) or bigram (``order=2``) model fitted
    on the train windows, on the same target positions as the LM (``w[:, 1:]``, context ``w[:, :-1]``)."""
    check_int("order", order, minimum=1, maximum=2)
    check_number("add_k", add_k, minimum=0.0, min_inclusive=False)
    train, test = np.asarray(train), np.asarray(test)
    if order == 1:
        counts = np.bincount(train[:, 1:].ravel(), minlength=vocab_size) + add_k
        logp = np.log(counts / counts.sum())[test[:, 1:]]
    else:
        counts = np.full((vocab_size, vocab_size), add_k)
        np.add.at(counts, (train[:, :-1].ravel(), train[:, 1:].ravel()), 1.0)
        logp = np.log(counts / counts.sum(axis=1, keepdims=True))[test[:, :-1], test[:, 1:]]
    return float(np.exp(-logp.mean()))


__all__ = ["adamw_state", "LMData", "grammar_windows", "train_lm", "pretrain_lm", "finetune", "ngram_perplexity"]
