"""QuickSelection (P50; Atashgahi et al., "Quick and robust feature selection: the strength of
energy-efficient sparse training for autoencoders"), after ``zahraatashgahi/QuickSelection``
(``Sparse_DAE.py``, ``train_sparse_DAE.py``, ``fs_utils.py``).

A sparse denoising autoencoder ``d -> hidden (sigmoid) -> d (linear)`` is trained with the
QuickSelection variant of SET and the input features are ranked by the *strength* of their input
neuron, ``s_i = sum_j |W1_ij|`` over its existing connections (``fs_strength_w``). Defaults of the
code: Erdős–Rényi init with ``epsilon = 13`` (density ``epsilon (n_in + n_out) / (n_in n_out)``
per layer; the code draws ``epsilon (n_in + n_out)`` positions with replacement, here the count
is exact), weights ``N(0, 1) / 10``, input noise ``0.2 N(0, 1)`` drawn once, dropout 0.2 on the
hidden layer, MSE to the clean input, SGD lr 0.01 with momentum 0.9, decoupled weight decay 1e-5
(``w += v - wd * w``), batch 100, ``zeta = 0.2``, 100 epochs. After every epoch except the last,
every sparse layer drops the ``ceil(zeta * n_pos)`` smallest positive and ``ceil(zeta * n_neg)``
largest negative weights (``weightsEvolution_II``; the code's threshold index rounds slightly
differently) and regrows as many at random positions not kept (a just-dropped position may be
drawn again, as in the code) with random values ``N(0, 1) / 10``; the momentum of regrown
weights starts at zero.

Why not :mod:`sparsejax.pruning.dst`: its SET drops the ``zeta * nnz`` smallest ``|w|`` (not the
sign-split sets), regrows at zero (RigL convention) and evolves every ``update_every`` optimizer
steps inside the optax update; QuickSelection needs the sign split, random-valued regrowth and a
once-per-epoch schedule, so :func:`evolve` is a small function applied between epochs of
:func:`sparsejax.train.fit`. The masks are simulated with dense arrays (``sparsejax.masked``):
this cannot reproduce the paper's running-time, memory or energy advantages, which come from a
truly sparse implementation.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.masks import random_mask, top_k_mask
from sparsejax.core.tree import is_none
from sparsejax.core.validation import check_array, check_choice, check_int, check_number, check_finite_array


class DAE(nn.Module):
    """Denoising autoencoder ``d -> hidden (sigmoid) -> d`` with dropout on the hidden layer;
    kernels initialised ``N(0, 0.1^2)`` as ``createSparseWeights``, biases 0."""

    n_features: int
    hidden: int = 1000
    dropout: float = 0.2
    output: str = "linear"

    def __post_init__(self):
        check_int("n_features", self.n_features, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_number("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_choice("output", self.output, ("linear", "tanh"))
        super().__post_init__()

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        init = nn.initializers.normal(0.1)
        h = nn.sigmoid(nn.Dense(self.hidden, kernel_init=init, name="encoder")(x))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        out = nn.Dense(self.n_features, kernel_init=init, name="decoder")(h)
        return jnp.tanh(out) if self.output == "tanh" else out


def er_densities_epsilon(params, epsilon: float):
    """Per-kernel Erdős–Rényi density ``min(1, epsilon (n_in + n_out) / (n_in n_out))`` (SET's epsilon
    rule), ``None`` for biases."""
    epsilon = check_number("epsilon", epsilon, minimum=0.0, min_inclusive=False)
    return jax.tree_util.tree_map(
        lambda w: None if w.ndim < 2 else min(1.0, epsilon * (w.shape[-2] + w.shape[-1]) / (w.shape[-2] * w.shape[-1])),
        params)


def evolve(key: jax.Array, w: jax.Array, mask: jax.Array, zeta: float) -> tuple[jax.Array, jax.Array]:
    """One QuickSelection connectivity update of a layer: drop the ``ceil(zeta n_pos)`` smallest
    positive and ``ceil(zeta n_neg)`` largest negative active weights, regrow as many at uniformly
    random positions outside the kept set with values ``N(0, 1) / 10``. Returns ``(w, mask)``;
    the number of connections is unchanged and inactive entries of ``w`` are zero."""
    check_array("mask", mask, shape=tuple(np.shape(w)), dtype_kind="b")
    check_number("zeta", zeta, minimum=0.0, maximum=1.0, allow_traced=True)
    k_pos_key, k_val_key = jax.random.split(key)
    pos = mask & (w >= 0)
    neg = mask & (w < 0)
    k_pos = jnp.ceil(zeta * jnp.sum(pos) - 1e-6).astype(jnp.int32)
    k_neg = jnp.ceil(zeta * jnp.sum(neg) - 1e-6).astype(jnp.int32)
    drop_pos = top_k_mask(jnp.where(pos, -w, -jnp.inf), k_pos)
    drop_neg = top_k_mask(jnp.where(neg, w, -jnp.inf), k_neg)
    kept = mask & ~drop_pos & ~drop_neg
    grown = top_k_mask(jnp.where(kept, -jnp.inf, jax.random.uniform(k_pos_key, w.shape)), k_pos + k_neg)
    values = jax.random.normal(k_val_key, w.shape, w.dtype) / 10
    new_w = jnp.where(kept, w, jnp.where(grown, values, 0.0))
    return new_w, kept | grown


def neuron_strength(kernel: jax.Array) -> np.ndarray:
    """Strength of each input neuron: ``s_i = sum_j |W_ij|`` (rows of a flax ``(in, out)`` kernel);
    pruned connections are zeros and do not count."""
    check_array("kernel", kernel, ndim=2)
    check_finite_array("kernel", kernel)
    return np.asarray(jnp.abs(kernel).sum(axis=1))


def select_features(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``scores`` (highest first)."""
    scores = np.asarray(scores)
    check_array("scores", scores, ndim=1)
    k = check_int("k", k, minimum=1, maximum=scores.size)
    return np.argsort(-scores, kind="stable")[:k]


class QSResult(NamedTuple):
    """Trained params and mask, input-neuron strengths, per-epoch losses and connection counts."""

    params: dict
    mask: dict
    strength: np.ndarray
    losses: list
    connections: list


def train_quickselection(key: jax.Array, x, *, epochs: int = 100, hidden: int = 1000, epsilon: float | None = 13.0,
                         zeta: float = 0.2, learning_rate: float = 0.01, momentum: float = 0.9,
                         weight_decay: float = 1e-5, batch_size: int = 100, noise: float = 0.2,
                         dropout: float = 0.2, output: str = "linear", evolve_connections: bool = True,
                         progress: Callable | None = None) -> QSResult:
    """Train the (sparse) DAE of QuickSelection on standardised data ``x`` (n, d) and return the
    input-neuron strengths. ``epsilon=None`` trains a dense DAE (the "strength of a dense DAE"
    baseline); ``evolve_connections=False`` keeps the initial sparse topology."""
    from sparsejax.core.transforms import masked
    from sparsejax.train import TrainState, fit

    x = np.asarray(check_array("x", x, ndim=2, dtype_kind="f"), np.float32)
    check_finite_array("x", x)
    epochs = check_int("epochs", epochs, minimum=1)
    zeta = check_number("zeta", zeta, minimum=0.0, maximum=1.0)
    check_choice("output", output, ("linear", "tanh"))
    n, d = x.shape
    k_init, k_mask, k_noise, k_drop, k_data, k_evo = jax.random.split(key, 6)
    model = DAE(d, hidden, dropout, output)
    params = model.init(k_init, x[:1])
    if epsilon is None:
        mask = jax.tree_util.tree_map(lambda w: None if w.ndim < 2 else jnp.ones(w.shape, bool), params)
    else:
        mask = random_mask(k_mask, params, er_densities_epsilon(params, epsilon))
    params = jax.tree_util.tree_map(lambda m, w: w if m is None else jnp.where(m, w, 0.0), mask, params,
                                    is_leaf=is_none)
    inner = optax.chain(optax.sgd(learning_rate, momentum), optax.add_decayed_weights(-weight_decay))
    tx = masked(inner, mask)
    x_noisy = x + noise * np.asarray(jax.random.normal(k_noise, x.shape))

    def loss_fn(p, xb, yb, step):
        out = model.apply(p, xb, train=True, rngs={"dropout": jax.random.fold_in(k_drop, step)})
        return jnp.mean(jnp.sum((out - yb) ** 2, axis=-1))

    @jax.jit
    def step(state, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(state.params, xb, yb, state.step)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss

    @jax.jit
    def rewire(state, key):
        leaves, treedef = jax.tree_util.tree_flatten(state.opt_state.mask, is_leaf=is_none)
        keys = jax.tree_util.tree_unflatten(treedef, list(jax.random.split(key, len(leaves))))
        pairs = jax.tree_util.tree_map(lambda m, w, k: (w, None) if m is None else evolve(k, w, m, zeta),
                                       state.opt_state.mask, state.params, keys, is_leaf=is_none)
        is_pair = lambda t: isinstance(t, tuple)  # noqa: E731
        new_params = jax.tree_util.tree_map(lambda t: t[0], pairs, is_leaf=is_pair)
        new_mask = jax.tree_util.tree_map(lambda t: t[1], pairs, is_leaf=is_pair)
        keep = jax.tree_util.tree_map(lambda m_old, m_new, w: jnp.ones(w.shape, bool) if m_old is None else m_old & m_new,
                                      state.opt_state.mask, new_mask, state.params, is_leaf=is_none)
        inner_state = optax.tree_utils.tree_map_params(
            inner, lambda v, k: jnp.where(k, v, 0.0), state.opt_state.inner_state, keep,
            transform_non_params=lambda v: v)
        opt_state = state.opt_state._replace(mask=new_mask, inner_state=inner_state)
        return TrainState(new_params, opt_state, state.step)

    state = TrainState.create(params, tx)
    steps_per_epoch = n // batch_size
    losses, connections = [], []
    epoch_range = progress(range(epochs), desc="QuickSelection epochs") if progress else range(epochs)
    for epoch in epoch_range:
        state, ls = fit(step, state, x_noisy, x, steps=steps_per_epoch, batch_size=batch_size,
                        key=jax.random.fold_in(k_data, epoch))
        losses.append(float(np.mean(ls)))
        if evolve_connections and epsilon is not None and epoch < epochs - 1:
            state = rewire(state, jax.random.fold_in(k_evo, epoch))
        connections.append(int(sum(int(jnp.sum(m)) for m in jax.tree_util.tree_leaves(state.opt_state.mask))))
    strength = neuron_strength(state.params["params"]["encoder"]["kernel"])
    return QSResult(state.params, state.opt_state.mask, strength, losses, connections)


__all__ = ["DAE", "er_densities_epsilon", "evolve", "neuron_strength", "select_features", "train_quickselection",
           "QSResult"]
