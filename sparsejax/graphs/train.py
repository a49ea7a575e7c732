"""Full-batch node-classification training for P32, batched over models with ``jax.vmap``.

:func:`train_node_classifiers` trains M models at once (one jit, ``lax.scan`` over epochs): model
``m`` has its own init/dropout key, per-edge 0/1 weights (its edge mask), distillation weight and
l0 keep count. Each epoch (official ``run_fix_mask``): one Adam step on the train cross-entropy
plus ``kd_weight * distillation_loss(logits, teacher)`` over all nodes, Adam with coupled L2 weight
decay (torch ``Adam(weight_decay=5e-4)``), then the l0 projection of all parameters (a keep count
equal to the parameter count is no projection), then an evaluation without dropout; the reported
test accuracy and logits are those of the epoch with the best validation accuracy (``>=``, the
later epoch on ties). Defaults: lr 0.01, weight decay 5e-4, 200 epochs (official).

:func:`ugs_edge_scores` is the iterative learned-edge-mask baseline (UGS-lite, our reduced
reconstruction of UGS, Chen et al. 2021): a trainable per-edge mask ``m`` (init 1) multiplies the
edge weights (``|m|`` inside the GCN normalisation, so degrees stay positive), trained jointly with
the weights on cross-entropy ``+ l1 * sum |m|``; the edge score is ``|m|``. :func:`ugs_masks` prunes
iteratively: at each level it re-learns ``m`` on the current sparse graph and removes the lowest
``|m|`` edges among those still present. Weight masks of UGS are not learned here: weights are
handled by the same l0 recipe as every edge method.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core import param_count
from sparsejax.core.masks import top_k_mask
from sparsejax.core.validation import check_array, check_int, check_number
from sparsejax.graphs.gnn import Graph, directed_messages, masked_graph
from sparsejax.graphs.synthetic import NodeGraph
from sparsejax.graphs.teddy import distillation_loss, l0_project, n_pruned_edges


def _optimizer(lr, weight_decay):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(lr))


def _ce(logits, y, mask):
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(jnp.where(mask, ce, 0.0)) / jnp.maximum(mask.sum(), 1)


def _acc(logits, y, mask):
    return jnp.sum(jnp.where(mask, jnp.argmax(logits, -1) == y, False)) / jnp.maximum(mask.sum(), 1)


def n_parameters(model, data: NodeGraph) -> int:
    """Number of parameters of ``model`` on ``data``."""
    adj = model.adjacency(masked_graph(data.edges, data.n_nodes))
    params = jax.eval_shape(lambda k: model.init(k, jnp.asarray(data.x), adj)["params"], jax.random.PRNGKey(0))
    return param_count(params)


def train_node_classifiers(model, data: NodeGraph, keys, edge_weights, *, kd_weight=None, teacher=None,
                           l0_keep=None, epochs: int = 200, lr: float = 0.01, weight_decay: float = 5e-4) -> dict:
    """Train ``M = len(keys)`` models (module doc). ``edge_weights (M, E)``; ``kd_weight (M,)``
    (default 0); ``teacher (M, n, C)`` logits (needed when any ``kd_weight > 0``); ``l0_keep (M,)``
    ints (default: all parameters). Returns numpy ``test_acc``, ``val_acc``, ``best_epoch`` (M,),
    ``logits (M, n, C)`` at the best epoch and ``weight_density`` (M,) after training."""
    check_int("epochs", epochs, minimum=1)
    check_number("lr", lr, minimum=0.0, min_inclusive=False)
    check_number("weight_decay", weight_decay, minimum=0.0)
    m = len(keys)
    check_array("edge_weights", edge_weights, shape=(m, data.edges.shape[0]))
    n, c = data.n_nodes, data.n_classes
    kd = jnp.zeros(m) if kd_weight is None else jnp.asarray(kd_weight, jnp.float32)
    check_array("kd_weight", kd, shape=(m,))
    if bool((kd > 0).any()) and teacher is None:
        raise ValueError("kd_weight > 0 needs teacher logits")
    teacher = jnp.zeros((m, n, c)) if teacher is None else jnp.asarray(teacher, jnp.float32)
    check_array("teacher", teacher, shape=(m, n, c))
    total = n_parameters(model, data)
    keep = jnp.full(m, total, jnp.int32) if l0_keep is None else jnp.asarray(l0_keep, jnp.int32)
    check_array("l0_keep", keep, shape=(m,))
    if int(keep.min()) < 0 or int(keep.max()) > total:
        raise ValueError(f"l0_keep must lie in [0, {total}], got [{int(keep.min())}, {int(keep.max())}]")
    s_, r_, eid = directed_messages(data.edges, n)
    best, density = _fit_batch(model, epochs, n, total, jnp.asarray(lr, jnp.float32),
                               jnp.asarray(weight_decay, jnp.float32), jnp.asarray(data.x), jnp.asarray(data.y),
                               jnp.asarray(data.train), jnp.asarray(data.val), jnp.asarray(data.test), s_, r_, eid,
                               jnp.stack(list(keys)), jnp.asarray(edge_weights, jnp.float32), kd, teacher, keep)
    for i, v in enumerate(np.asarray(best["val"])):
        if not np.isfinite(v):
            raise FloatingPointError(f"model {i}: non-finite validation accuracy")
    return {"test_acc": np.asarray(best["test"]), "val_acc": np.asarray(best["val"]),
            "best_epoch": np.asarray(best["epoch"]),
            "logits": np.asarray(best["logits"]), "weight_density": np.asarray(density)}


def ugs_edge_scores(model, data: NodeGraph, keys, edge_weights, *, l1: float = 1e-3, epochs: int = 200,
                    lr: float = 0.01, weight_decay: float = 5e-4) -> np.ndarray:
    """``|m|`` learned per edge for each of ``M`` models (module doc); ``(M, E)``."""
    check_number("l1", l1, minimum=0.0)
    check_int("epochs", epochs, minimum=1)
    check_number("lr", lr, minimum=0.0, min_inclusive=False)
    check_number("weight_decay", weight_decay, minimum=0.0)
    m = len(keys)
    check_array("edge_weights", edge_weights, shape=(m, data.edges.shape[0]))
    s_, r_, eid = directed_messages(data.edges, data.n_nodes)
    out = _ugs_batch(model, epochs, data.n_nodes, jnp.float32(l1), jnp.float32(lr), jnp.float32(weight_decay),
                     jnp.asarray(data.x), jnp.asarray(data.y), jnp.asarray(data.train), s_, r_, eid,
                     jnp.stack(list(keys)), jnp.asarray(edge_weights, jnp.float32))
    return np.asarray(out)


def ugs_masks(model, data: NodeGraph, keys, sparsities, **kwargs) -> np.ndarray:
    """Iterative UGS-lite edge masks ``(M, L, E)`` at increasing ``sparsities`` (nested per model)."""
    levels = np.asarray(sparsities, float)
    if np.any(np.diff(levels) <= 0):
        raise ValueError(f"sparsities must increase, got {list(levels)}")
    n_e = data.edges.shape[0]
    current = np.ones((len(keys), n_e), np.float32)
    out = []
    for p in levels:
        score = ugs_edge_scores(model, data, keys, current, **kwargs)
        ranked = np.where(current > 0, score, -np.inf)
        keep = n_e - n_pruned_edges(float(p), n_e)
        current = np.stack([np.asarray(top_k_mask(jnp.asarray(r, jnp.float32), keep)) for r in ranked]).astype(np.float32)
        out.append(current)
    return np.stack(out, axis=1)


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _fit_batch(model, epochs, n, total, lr, weight_decay, x, y, tr, va, te, senders, receivers, eid, keys, edge_weights,
               kd, teacher, keep):
    """The vmapped, scanned training of :func:`train_node_classifiers` (compiled once per shape)."""
    tx = _optimizer(lr, weight_decay)

    def one(key, ew, kd_w, t, k_keep):
        adj = model.adjacency(Graph(senders, receivers, ew[eid], n))
        k_init, k_drop = jax.random.split(key)
        params = model.init(k_init, x, adj)["params"]
        opt_state = tx.init(params)

        def epoch(carry, inp):
            params, opt_state, best = carry
            k, step = inp

            def loss_fn(p):
                logits = model.apply({"params": p}, x, adj, train=True, rngs={"dropout": k})
                return _ce(logits, y, tr) + kd_w * distillation_loss(logits, t)

            grads = jax.grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = l0_project(optax.apply_updates(params, updates), k_keep)[0]
            logits = model.apply({"params": params}, x, adj, train=False)
            val, test = _acc(logits, y, va), _acc(logits, y, te)
            better = val >= best["val"]
            best = jax.tree_util.tree_map(lambda new, old: jnp.where(better, new, old),
                                          {"val": val, "test": test, "logits": logits, "epoch": step}, best)
            return (params, opt_state, best), None

        init_best = {"val": jnp.float32(-1.0), "test": jnp.float32(0.0), "logits": jnp.zeros(t.shape),
                     "epoch": jnp.int32(0)}
        inputs = (jax.random.split(k_drop, epochs), jnp.arange(epochs, dtype=jnp.int32))
        (params, _, best), _ = jax.lax.scan(epoch, (params, opt_state, init_best), inputs)
        nnz = sum(jnp.sum(p != 0) for p in jax.tree_util.tree_leaves(params))
        return best, nnz / total

    return jax.vmap(one)(keys, edge_weights, kd, teacher, keep)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _ugs_batch(model, epochs, n, l1, lr, weight_decay, x, y, tr, senders, receivers, eid, keys, edge_weights):
    """The vmapped, scanned edge-mask learning of :func:`ugs_edge_scores`."""
    tx = _optimizer(lr, weight_decay)

    def one(key, ew):
        k_init, k_drop = jax.random.split(key)
        adj0 = model.adjacency(Graph(senders, receivers, ew[eid], n))
        params = {"net": model.init(k_init, x, adj0)["params"], "edge": jnp.ones(ew.shape[0])}
        opt_state = tx.init(params)

        def epoch(carry, k):
            params, opt_state = carry

            def loss_fn(p):
                adj = model.adjacency(Graph(senders, receivers, (ew * jnp.abs(p["edge"]))[eid], n))
                logits = model.apply({"params": p["net"]}, x, adj, train=True, rngs={"dropout": k})
                return _ce(logits, y, tr) + l1 * jnp.sum(jnp.abs(p["edge"]) * ew)

            grads = jax.grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(epoch, (params, opt_state), jax.random.split(k_drop, epochs))
        return jnp.abs(params["edge"])

    return jax.vmap(one)(keys, edge_weights)
