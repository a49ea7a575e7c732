"""P18: Random Search over node masks of an over-parameterised MLP, as a baseline for sparse NAS.

Paper: "Random Search as a Baseline for Sparse Neural Network Architecture Search" (arXiv
2403.08265). **No official code was found; this is a reconstruction from the abstract** and the
project brief, every choice below marked [reconstruction]:

* Search space: one binary node mask per hidden layer of an initialised parent MLP
  (``sparsejax.nn.MLP``), exactly ``round((1 - s) * width)`` nodes kept in every hidden layer
  (at least one). A removed node loses its kernel column, its bias and the next layer's kernel row
  (:func:`node_weight_mask`); the network is masked-dense (same compute as the parent).
* All candidates share the parent's initial weights (the paper searches "initialized sparse
  sub-networks" of one parent) [reconstruction].
* Score: validation accuracy after a short training budget (default), or minus the validation
  loss at initialisation (``short_steps=0``) [reconstruction]. Random Search keeps the candidate
  of best score; the "random" baseline is candidate 0 (one random mask of the same sparsity), so
  ``N = 1`` is the random baseline for the same key.
* Candidates train simultaneously with ``jax.vmap`` over masks and optimizer states, on the same
  minibatch sequence (paired comparison).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.validation import check_array, check_int, check_number
from sparsejax.data.batching import batch_indices
from sparsejax.train.steps import cross_entropy_loss


def nodes_kept(width: int, sparsity: float) -> int:
    """Nodes kept in a hidden layer of ``width`` at node ``sparsity``: ``round((1 - s) w)``, at least 1."""
    width = check_int("width", width, minimum=1)
    check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    return max(1, int(keep_count(1.0 - float(sparsity), width)))


def random_node_masks(key: jax.Array, widths: Sequence[int], sparsity: float, n: int) -> tuple[jax.Array, ...]:
    """``n`` random node masks per hidden layer: a tuple of ``(n, width_l)`` bool arrays, each row
    keeping exactly :func:`nodes_kept` nodes, uniformly at random."""
    n = check_int("n", n, minimum=1)
    if not widths:
        raise ValueError("widths must list at least one hidden layer, got an empty sequence")
    out = []
    for layer, width in enumerate(widths):
        k = nodes_kept(width, sparsity)
        scores = jax.random.uniform(jax.random.fold_in(key, layer), (n, int(width)))
        out.append(jax.jit(jax.vmap(lambda s, k=k: top_k_mask(s, k)))(scores))
    return tuple(out)


def _hidden_names(params) -> list[str]:
    names = sorted((k for k in params if k.startswith("dense_")), key=lambda k: int(k.split("_")[1]))
    if not names or "head" not in params or set(params) != set(names) | {"head"}:
        raise ValueError(f"expected sparsejax.nn.MLP params (dense_0.. and head), got keys {sorted(params)}")
    return names


def node_weight_mask(params, node_masks: Sequence[jax.Array]):
    """Weight mask (same tree as the MLP ``params``) of one node configuration: a removed node of
    hidden layer ``l`` zeroes column ``j`` of ``dense_l/kernel``, ``dense_l/bias[j]`` and row ``j``
    of the next layer's kernel (``dense_{l+1}`` or ``head``)."""
    params = params.get("params", params)
    names = _hidden_names(params)
    if len(node_masks) != len(names):
        raise ValueError(f"node_masks has {len(node_masks)} layers, the MLP has {len(names)} hidden layers")
    rows = jnp.ones(params[names[0]]["kernel"].shape[0], bool)
    mask = {}
    for name, m in zip(names + ["head"], list(node_masks) + [None]):
        kernel = params[name]["kernel"]
        cols = jnp.ones(kernel.shape[1], bool) if m is None else jnp.asarray(m, bool)
        check_array(f"node mask of {name}", cols, shape=(kernel.shape[1],))
        mask[name] = {"kernel": rows[:, None] & cols[None, :], "bias": cols}
        rows = cols
    return mask


def masked_params(params, mask):
    """``params * mask`` leaf by leaf (masked entries exactly 0)."""
    return jax.tree_util.tree_map(lambda p, m: jnp.where(m, p, 0.0), params, mask)


class CandidateRun(NamedTuple):
    """Vmapped training of candidates: final params ``(N, ...)``, evaluation steps ``(T,)``, validation
    accuracy ``(N, T)`` and loss ``(N, T)`` at those steps (step 0 = initialisation)."""

    params: Any
    eval_steps: np.ndarray
    val_accuracy: np.ndarray
    val_loss: np.ndarray


def train_candidates(apply_fn: Callable, params, node_masks: Sequence[jax.Array], x, y, x_val, y_val, *,
                     steps: int, batch_size: int, key: jax.Array, tx: optax.GradientTransformation,
                     eval_every: int = 10) -> CandidateRun:
    """Train one copy of the parent ``params`` per row of ``node_masks`` (vmapped), all on the same
    minibatches; evaluate every ``eval_every`` steps on ``(x_val, y_val)``."""
    steps = check_int("steps", steps, minimum=0)
    eval_every = check_int("eval_every", eval_every, minimum=1)
    x, y, x_val, y_val = map(jnp.asarray, (x, y, x_val, y_val))
    check_int("batch_size", batch_size, minimum=1, maximum=len(x))
    n = int(node_masks[0].shape[0])
    masks = jax.vmap(lambda *m: node_weight_mask(params, m))(*node_masks)

    def loss_fn(p, m, xb, yb):
        return cross_entropy_loss(apply_fn(masked_params(p, m), xb), yb)

    def evaluate(p, m):
        logits = apply_fn(masked_params(p, m), x_val)
        return jnp.mean(jnp.argmax(logits, -1) == y_val), cross_entropy_loss(logits, y_val)

    def step(p, s, m, xb, yb):
        g = jax.grad(loss_fn)(p, m, xb, yb)
        u, s = tx.update(g, s, p)
        return masked_params(optax.apply_updates(p, u), m), s

    @jax.jit
    def v_step(stack, opt, masks, t):
        idx = batch_indices(key, t, len(x), batch_size)
        return jax.vmap(step, in_axes=(0, 0, 0, None, None))(stack, opt, masks, x[idx], y[idx])

    v_eval = jax.jit(jax.vmap(evaluate))
    stack = jax.vmap(lambda m: masked_params(params, m))(masks)
    opt = jax.vmap(tx.init)(stack)
    eval_steps, accs, losses = [], [], []
    for t in range(steps + 1):
        if t % eval_every == 0 or t == steps:
            a, lo = v_eval(stack, masks)
            eval_steps.append(t)
            accs.append(a)
            losses.append(lo)
        if t == steps:
            break
        stack, opt = v_step(stack, opt, masks, jnp.asarray(t, jnp.int32))
    acc, loss = np.asarray(jnp.stack(accs, 1)), np.asarray(jnp.stack(losses, 1))
    if not np.isfinite(loss).all():
        raise FloatingPointError(f"candidate training diverged (non-finite validation loss) for {n} candidates")
    return CandidateRun(stack, np.asarray(eval_steps), acc, loss)


def search_scores(run: CandidateRun, short_steps: int) -> np.ndarray:
    """Short-budget score of every candidate: validation accuracy at step ``short_steps`` (an
    evaluation step of ``run``), or minus the validation loss at initialisation when it is 0."""
    short_steps = check_int("short_steps", short_steps, minimum=0)
    where = np.flatnonzero(run.eval_steps == short_steps)
    if not len(where):
        raise ValueError(f"short_steps={short_steps} is not an evaluation step of the run ({run.eval_steps.tolist()})")
    t = int(where[0])
    return -run.val_loss[:, t] if short_steps == 0 else run.val_accuracy[:, t]


def select_best(scores) -> int:
    """Index of the best score (first on ties), the Random Search choice."""
    scores = np.asarray(scores, float)
    if scores.ndim != 1 or not len(scores) or not np.isfinite(scores).all():
        raise ValueError(f"scores must be a non-empty finite vector, got {scores!r}")
    return int(np.argmax(scores))


def steps_to_fraction(eval_steps, curve, fraction: float = 0.9) -> int:
    """First evaluation step at which ``curve`` reaches ``fraction`` of its final value."""
    check_number("fraction", fraction, minimum=0.0, maximum=1.0)
    curve = np.asarray(curve, float)
    return int(np.asarray(eval_steps)[np.argmax(curve >= fraction * curve[-1])])


def candidate_accuracy(apply_fn: Callable, stacked_params, x, y) -> np.ndarray:
    """Accuracy ``(N,)`` of every candidate of ``stacked_params`` (already masked) on ``(x, y)``."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    acc = jax.jit(jax.vmap(lambda p: jnp.mean(jnp.argmax(apply_fn(p, x), -1) == y)))(stacked_params)
    return np.asarray(acc)
