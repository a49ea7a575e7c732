"""Training loops for the P13 encoders: the inference-free sparse document encoder and the dense
dual-encoder baseline, on (query, relevant document) pairs with in-batch negatives.

Batches are epoch-wise permutations of the training pairs; optimizer AdamW (the official
fine-tune uses AdamW, lr 2e-5, wd 0.01, 200 warm-up steps on a pre-trained model; from scratch we
use a larger constant learning rate, set by the caller). Steps are jitted once; a non-finite loss
stops the run (:func:`sparsejax.train.divergence.check_finite_loss`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.validation import check_array, check_int, check_number, check_key, check_same_length
from sparsejax.retrieval.encoder import DenseEncoder, SparseDocEncoder
from sparsejax.retrieval.objective import infonce_loss, query_vectors, retrieval_loss
from sparsejax.train.divergence import check_finite_loss
from sparsejax.train.steps import TrainState


def _batches(key, n, batch, steps):
    per_epoch = n // batch
    if per_epoch < 1:
        raise ValueError(f"batch={batch} exceeds the {n} training pairs")
    order = None
    for i in range(steps):
        if i % per_epoch == 0:
            order = np.asarray(jax.random.permutation(jax.random.fold_in(key, i), n))
        yield i, order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]


def _check_pairs(docs, queries, relevant, batch, steps, lr):
    check_array("docs", docs, ndim=2, dtype_kind="iu")
    check_array("queries", queries, ndim=2, dtype_kind="iu")
    check_array("relevant", relevant, ndim=1, dtype_kind="iu")
    check_same_length(queries=queries, relevant=relevant)
    check_int("batch", batch, minimum=2)
    check_int("steps", steps, minimum=1)
    check_number("lr", lr, minimum=0.0, min_inclusive=False)


def encode_documents(model, params, docs, batch: int = 256) -> np.ndarray:
    """Apply ``model`` to ``docs`` in chunks of ``batch``; returns a numpy array."""
    fn = jax.jit(lambda p, x: model.apply({"params": p}, x))
    return np.concatenate([np.asarray(fn(params, jnp.asarray(docs[i:i + batch])))
                           for i in range(0, docs.shape[0], batch)])


def train_sparse_encoder(key, docs, queries, relevant, idf, *, vocab_size: int, lam: float, warmup: int = 200,
                         steps: int = 300, batch: int = 32, lr: float = 1e-3, weight_decay: float = 0.01,
                         d_model: int = 64, n_heads: int = 4, mlp_ratio: int = 2, teacher=None,
                         infonce_weight: float = 1.0, kd_weight: float = 0.0, log=None):
    """Train a :class:`SparseDocEncoder` with :func:`retrieval_loss`; query vectors use ``idf``
    (ones: the standard FLOPS objective). ``teacher (n_queries, n_docs)``: ensemble teacher scores
    for distillation (the batch's sub-matrix is used). Returns ``(model, params, history)``."""
    check_key("key", key)
    _check_pairs(docs, queries, relevant, batch, steps, lr)
    model = SparseDocEncoder(vocab_size, d_model, n_heads, mlp_ratio)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init, jnp.asarray(docs[:2]))["params"]
    tx = optax.adamw(lr, weight_decay=weight_decay)
    state = TrainState.create(params, tx)
    q_all = query_vectors(jnp.asarray(queries), jnp.asarray(idf))
    teacher = None if teacher is None else jnp.asarray(teacher, jnp.float32)

    @jax.jit
    def step(state, q, d_tok, t):
        def loss_fn(p):
            return retrieval_loss(q, model.apply({"params": p}, d_tok), state.step, lam=lam, warmup=warmup,
                                  teacher=t, infonce_weight=infonce_weight, kd_weight=kd_weight)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss, aux

    history = []
    for i, idx in _batches(k_data, queries.shape[0], batch, steps):
        rel = np.asarray(relevant)[idx]
        t = None if teacher is None else teacher[idx][:, rel]
        state, loss, aux = step(state, q_all[idx], jnp.asarray(docs[rel]), t)
        if i % 50 == 0 or i == steps - 1:
            check_finite_loss(i, loss)
            history.append({"step": i, "loss": float(loss), **{k: float(v) for k, v in aux.items()}})
            if log is not None:
                log(f"step {i}: loss {float(loss):.4f} doc L0 {float(aux['doc_l0']):.1f}")
    return model, state.params, history


def train_dense_encoder(key, docs, queries, relevant, *, vocab_size: int, steps: int = 300, batch: int = 32,
                        lr: float = 1e-3, weight_decay: float = 0.01, temperature: float = 0.05, d_model: int = 64,
                        n_heads: int = 4, mlp_ratio: int = 2):
    """Train the siamese :class:`DenseEncoder` with in-batch InfoNCE on cosine scores / ``temperature``.
    Returns ``(model, params)``."""
    check_key("key", key)
    _check_pairs(docs, queries, relevant, batch, steps, lr)
    check_number("temperature", temperature, minimum=0.0, min_inclusive=False)
    model = DenseEncoder(vocab_size, max(docs.shape[1], queries.shape[1]), d_model, n_heads, mlp_ratio)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init, jnp.asarray(docs[:2]))["params"]
    tx = optax.adamw(lr, weight_decay=weight_decay)
    state = TrainState.create(params, tx)

    @jax.jit
    def step(state, q_tok, d_tok):
        def loss_fn(p):
            q, d = model.apply({"params": p}, q_tok), model.apply({"params": p}, d_tok)
            return infonce_loss(q @ d.T / temperature)
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss

    for i, idx in _batches(k_data, queries.shape[0], batch, steps):
        state, loss = step(state, jnp.asarray(queries[idx]), jnp.asarray(docs[np.asarray(relevant)[idx]]))
        if i % 50 == 0 or i == steps - 1:
            check_finite_loss(i, loss)
    return model, state.params
