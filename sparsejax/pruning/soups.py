"""Sparse Model Soups (P5; Zimmer et al., "Sparse Model Soups: a recipe for improved pruning via
model averaging"), after the official code ``ZIB-IOL/SMS`` (``strategies/ensembleStrategies.py``).

* :func:`average` is the uniform soup: the mean of the ingredients' weights. Ingredients that
  share a mask average to a model with exactly that mask (zeros average to zeros); averaging
  models with *different* masks would lower the sparsity, so it raises unless ``union=True``
  (then the union mask is returned, documenting the loss of sparsity).
* :func:`greedy_soup` sorts the ingredients by validation score and adds one only if the soup's
  score does not drop (SMS ``GreedySoup``: ``>=``).
* :func:`train_ingredients` retrains ``m`` copies of one pruned model in parallel with
  ``jax.vmap`` (one jitted step for all ingredients), each with its own batch order and, through
  the optimizer state (``optax.inject_hyperparams``), its own weight decay.
* :func:`sparse_model_soup` runs ``P`` phases of prune (IMP rate) → ``m`` retrains → soup; each
  phase starts from the previous soup.

No model in ``sparsejax.nn`` has BatchNorm, so the BN recalibration step of SMS
(``bn_recalibration_frac=0.2``) is not needed and not implemented.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.masks import apply_mask
from sparsejax.core.tree import Predicate, check_like, is_none
from sparsejax.core.validation import check_choice, check_int, check_number, check_same_length
from sparsejax.pruning.imp import phase_sparsity, prune_magnitude


class Soup(NamedTuple):
    """An averaged model and its mask (``None`` when no masks were given)."""

    params: Any
    mask: Any


def stack_trees(trees: Sequence[Any]):
    """Stack a list of pytrees with equal structure into one tree with a leading axis."""
    if not trees:
        raise ValueError("need at least one tree to stack")
    first = jax.tree_util.tree_structure(trees[0])
    for i, tree in enumerate(trees[1:], 1):
        if jax.tree_util.tree_structure(tree) != first:
            raise ValueError(f"trees[{i}] has structure {jax.tree_util.tree_structure(tree)}, trees[0] has {first}")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree, n: int | None = None) -> list:
    """Inverse of :func:`stack_trees`: the ``n`` trees along the leading axis."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError("tree must be a stacked tree (every leaf with a leading axis), got a scalar leaf")
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(lengths) > 1:
        raise ValueError(f"tree leaves have different leading lengths {sorted(lengths)}")
    length = lengths.pop()
    n = length if n is None else check_int("n", n, minimum=1)
    if n != length:
        raise ValueError(f"n={n} differs from the leading axis length {length} of tree")
    return [jax.tree_util.tree_unflatten(treedef, [leaf[i] for leaf in leaves]) for i in range(n)]


def _masks_equal(a, b) -> bool:
    la = jax.tree_util.tree_leaves(a, is_leaf=is_none)
    lb = jax.tree_util.tree_leaves(b, is_leaf=is_none)
    return all((x is None and y is None) or (x is not None and y is not None and bool(np.array_equal(x, y)))
               for x, y in zip(la, lb))


def _union(masks):
    return jax.tree_util.tree_map(lambda *ms: None if ms[0] is None else jnp.any(jnp.stack(ms), 0), *masks,
                                  is_leaf=is_none)


def average(params_list: Sequence[Any], masks=None, *, weights: Sequence[float] | None = None,
            union: bool = False) -> Soup:
    """Weighted (default uniform) average of ``params_list`` (SMS ``average_models``).

    ``masks`` is one mask shared by all models or a list with one mask per model. With different
    masks it raises ``ValueError`` (the average would not be sparse) unless ``union=True``, which
    returns the union mask. The averaged params are masked with the returned mask.
    """
    params_list = list(params_list)
    if not params_list:
        raise ValueError("params_list is empty: a soup needs at least one ingredient")
    treedef = jax.tree_util.tree_structure(params_list[0])
    for i, p in enumerate(params_list[1:], 1):
        if jax.tree_util.tree_structure(p) != treedef:
            raise ValueError(f"ingredient {i} has a different tree structure from ingredient 0")
    n = len(params_list)
    if weights is None:
        weights = [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"weights has {len(weights)} entries for {n} ingredients")
    for i, w in enumerate(weights):
        check_number(f"weights[{i}]", w, minimum=0.0)
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, got {sum(weights)}")
    if n == 1:
        avg = params_list[0]
    else:
        avg = jax.tree_util.tree_map(lambda *xs: sum(float(w) * x for w, x in zip(weights, xs)), *params_list)
    if masks is None:
        return Soup(avg, None)
    mask_list = list(masks) if isinstance(masks, (list, tuple)) else [masks] * n
    if len(mask_list) != n:
        raise ValueError(f"masks has {len(mask_list)} entries for {n} ingredients")
    for m in mask_list:
        check_like(params_list[0], m)
    if not all(_masks_equal(mask_list[0], m) for m in mask_list[1:]):
        if not union:
            raise ValueError("the ingredients have different masks: their average is denser than each of them; "
                             "retrain the ingredients from one pruned model (shared mask) or pass union=True "
                             "to accept the union mask")
        mask = _union(mask_list)
    else:
        mask = mask_list[0]
    return Soup(apply_mask(avg, mask), mask)


def greedy_soup(params_list: Sequence[Any], score_fn: Callable[[Any], float], masks=None, *,
                scores: Sequence[float] | None = None) -> tuple[Soup, list[int]]:
    """Greedy soup (SMS ``GreedySoup``): visit ingredients by decreasing ``score_fn`` (validation
    accuracy; higher is better) and keep each one whose addition does not lower the uniform soup's
    score. Returns the soup and the indices of the chosen ingredients (the best one first)."""
    params_list = list(params_list)
    if not params_list:
        raise ValueError("params_list is empty: a soup needs at least one ingredient")
    scores = [float(score_fn(p)) for p in params_list] if scores is None else [float(s) for s in scores]
    if len(scores) != len(params_list):
        raise ValueError(f"scores has {len(scores)} entries for {len(params_list)} ingredients")
    order = sorted(range(len(params_list)), key=lambda i: -scores[i])
    chosen, best = [order[0]], scores[order[0]]
    mask_of = (lambda i: masks[i]) if isinstance(masks, (list, tuple)) else (lambda i: masks)
    for i in order[1:]:
        trial = chosen + [i]
        soup = average([params_list[j] for j in trial], None if masks is None else [mask_of(j) for j in trial])
        s = float(score_fn(soup.params))
        if s >= best:
            chosen, best = trial, s
    soup = average([params_list[j] for j in chosen], None if masks is None else [mask_of(j) for j in chosen])
    return soup, chosen


def train_ingredients(train_step: Callable, states, x, y, *, steps: int, batch_size: int, key: jax.Array,
                      progress: Callable | None = None, checkpointer=None):
    """Train ``m`` stacked states in parallel: ``jax.vmap(train_step)`` inside :func:`sparsejax.train.fit`.

    ``states`` is a stacked ``TrainState`` (leading axis ``m``, e.g. :func:`stack_trees` of states
    built with different ``optax.inject_hyperparams`` weight decays); ``train_step(state, xb, yb)``
    is the (unjitted or jitted) single-model step. Ingredient ``i`` sees the data in its own order:
    a fixed permutation drawn from ``fold_in(key, i)`` composed with ``fit``'s per-epoch shuffle.
    Returns the stacked final states and the per-step mean loss.
    """
    from sparsejax.train import fit

    m = int(jax.tree_util.tree_leaves(states)[0].shape[0])
    n = check_same_length(x=x, y=y)
    perms = jnp.stack([jax.random.permutation(jax.random.fold_in(key, i), n) for i in range(m)])
    x, y = jnp.asarray(x), jnp.asarray(y)
    vstep = _vmapped_step(train_step)
    index = jnp.arange(n)
    return fit(lambda state, idx, _: vstep(state, idx, x, y, perms), states, index, index,
               steps=check_int("steps", steps, minimum=0), batch_size=batch_size, key=key, progress=progress,
               checkpointer=checkpointer)


_VMAPPED: dict = {}


def _vmapped_step(train_step: Callable) -> Callable:
    """One jitted ``(states, idx, x, y, perms) -> (states, mean loss)`` per ``train_step`` (compiled
    once per shape; the data are arguments, not constants baked into the program)."""
    if train_step not in _VMAPPED:
        vstep = jax.vmap(train_step)

        @jax.jit
        def step(state, idx, x, y, perms):
            rows = perms[:, idx]
            state, loss = vstep(state, x[rows], y[rows])
            return state, loss.mean()

        _VMAPPED[train_step] = step
    return _VMAPPED[train_step]


class SMSResult(NamedTuple):
    """Per phase: the soup, its mask, the ingredients (list of params) and the target sparsity."""

    soups: list
    masks: list
    ingredients: list
    sparsities: list


def sparse_model_soup(params, retrain_ingredients: Callable[[Any, Any, int], Sequence[Any]], *,
                      target_sparsity: float, phases: int, method: str = "uniform",
                      score_fn: Callable[[Any], float] | None = None, scope: str = "global",
                      predicate: Predicate | None = None) -> SMSResult:
    """SMS: for each of ``phases`` phases prune the current model by magnitude to the IMP
    sparsity of that phase, retrain ``m`` ingredients from it
    (``retrain_ingredients(pruned, mask, phase) -> list of params``, e.g. with
    :func:`train_ingredients`), and average them (``method="uniform"`` or ``"greedy"`` by
    ``score_fn``); the soup starts the next phase."""
    check_choice("method", method, ("uniform", "greedy"))
    if method == "greedy" and score_fn is None:
        raise ValueError("method='greedy' needs score_fn (validation accuracy of a params tree)")
    phases = check_int("phases", phases, minimum=1)
    current, mask = params, None
    out = SMSResult([], [], [], [])
    for phase in range(1, phases + 1):
        s = phase_sparsity(target_sparsity, phases, phase)
        mask = prune_magnitude(current, mask, s, scope=scope, predicate=predicate)
        ingredients = [apply_mask(p, mask) for p in retrain_ingredients(apply_mask(current, mask), mask, phase)]
        soup = average(ingredients, mask) if method == "uniform" else greedy_soup(ingredients, score_fn, mask)[0]
        current = soup.params
        out.soups.append(soup.params)
        out.masks.append(mask)
        out.ingredients.append(ingredients)
        out.sparsities.append(s)
    return out


__all__ = ["Soup", "average", "greedy_soup", "stack_trees", "unstack_tree", "train_ingredients",
           "sparse_model_soup", "SMSResult"]
