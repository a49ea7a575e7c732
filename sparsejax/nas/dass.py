"""P23 DASS: differentiable architecture search with sparse operations, at digits scale.

Paper: "DASS: Differentiable Architecture Search for Sparse Neural Networks" (Mousavi, Loni,
Alibeigi, Daneshtalab; arXiv 2207.06968, ACM TECS 2023). **No official code was available here:
the method below is a reconstruction from the abstract and the project brief** (all [reconstruction]):

* Search space: a DARTS cell (Liu et al. 2019) with two inputs (the outputs of the two previous
  cells, both the stem for the first cell) and ``n_nodes`` intermediate nodes, node ``i`` summing a
  mixed op on every earlier state; the cell output is the **mean** of the intermediate nodes (DARTS
  concatenates them and adds a 1x1 preprocessing conv). All cells are normal cells sharing one
  ``alpha`` (8x8 inputs: no reduction cell). Ops (:data:`OPS`): the two parametric sparse ops of
  DASS, ``sparse_conv_3x3`` (SparseConv) and ``sparse_linear`` (a 1x1 SparseConv, i.e. a per-pixel
  SparseLinear), the dense ``sep_conv_3x3`` (depthwise 3x3 + pointwise 1x1, applied once; DARTS
  stacks it twice), ``avg_pool_3x3``, ``skip`` and ``zero``. Each parametric op is ReLU-conv
  without BatchNorm (DARTS: ReLU-conv-BN) and without bias.
* Sparse ops (:class:`Conv` with a ``density``): weights ``W`` and learned scores ``S`` (initialised
  to ``|W|``); forward with ``W * TopK(|S|, density)``, the top-k indicator passed straight through
  to ``S`` (HYDRA / edge-popup style), so ``dL/dS = dL/dW~ * W``; ``W`` and ``S`` train jointly.
* Search objective: first-order DARTS on the **sparse** supernet: alternately an ``alpha`` step on a
  validation batch (Adam, beta1 0.5, L2 1e-3 as DARTS, but learning rate 3e-3, 10x DARTS, for the
  short search) and a weight/score step on a training batch (Adam instead of DARTS' SGD); ``alpha``
  is frozen during a weight warm-up (PC-DARTS' remedy, not in DARTS).
  The "sparsity-aware objective" of the paper is read as: the validation loss of the supernet whose
  sparse ops run at the target density. DARTS' dense search is the same loop with ``density=None``.
* Derivation (DARTS): per node the two incoming edges with the largest non-zero op weight, each with
  its argmax non-zero op (:func:`derive`). The derived network is retrained from scratch; the
  experiment prunes it (gradual global magnitude pruning) to the target number of nonzeros.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.masks import keep_count, top_k_mask
from sparsejax.core.validation import check_choice, check_int, check_number, is_traced
from sparsejax.data.batching import batch_indices
from sparsejax.train.steps import cross_entropy_loss

OPS = ("sparse_conv_3x3", "sparse_linear", "sep_conv_3x3", "avg_pool_3x3", "skip", "zero")
Genotype = tuple  # per node: a tuple of (input state index, op name) edges; states 0, 1 are the cell inputs


def num_edges(n_nodes: int) -> int:
    """Edges of a DARTS cell with ``n_nodes`` intermediate nodes and two inputs: ``sum(2 + i)``."""
    return sum(2 + i for i in range(check_int("n_nodes", n_nodes, minimum=1)))


def ste_topk(scores: jax.Array, density: float) -> jax.Array:
    """Float mask of the ``round(density * size)`` largest ``|scores|`` in the forward pass, with the
    identity (straight-through) gradient to ``scores``."""
    mask = top_k_mask(jnp.abs(jax.lax.stop_gradient(scores)), keep_count(density, scores.size)).astype(scores.dtype)
    return mask + scores - jax.lax.stop_gradient(scores)


class Conv(nn.Module):
    """Bias-free SAME conv (stride 1, NHWC). ``density`` in (0, 1] makes it a sparse op (weights gated
    by :func:`ste_topk` of learned ``scores``); ``None`` is a plain conv. ``depthwise`` uses one filter
    per input channel. Sows its output positions for :func:`~sparsejax.structured.sparse_ift.count_flops`."""

    features: int
    kernel_size: int = 3
    depthwise: bool = False
    density: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        if self.depthwise and self.features != cin:
            raise ValueError(f"a depthwise conv keeps the channels: features={self.features}, input has {cin}")
        shape = (self.kernel_size, self.kernel_size, 1 if self.depthwise else cin, self.features)
        w = self.param("kernel", nn.initializers.lecun_normal(), shape)
        if self.density is not None:
            if not is_traced(self.density):
                check_number("density", self.density, minimum=0.0, maximum=1.0, min_inclusive=False)
            s = self.param("scores", lambda _key: jnp.abs(w))
            w = w * ste_topk(s, self.density)
        self.sow("positions", "kernel", jnp.int32(x.shape[1] * x.shape[2]), init_fn=lambda: 0, reduce_fn=lambda _, b: b)
        if self.depthwise:  # shifted sums: XLA's grouped conv is ~20x slower on CPU at this size
            k, (h, wd) = self.kernel_size, x.shape[1:3]
            xp = jnp.pad(x, ((0, 0), (k // 2, (k - 1) // 2), (k // 2, (k - 1) // 2), (0, 0)))
            return sum(xp[:, i:i + h, j:j + wd] * w[i, j, 0] for i in range(k) for j in range(k))
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Op(nn.Module):
    """One candidate operation of :data:`OPS` on ``channels`` channels (sparse ops at ``density``)."""

    op: str
    channels: int
    density: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, d = self.channels, self.density
        if self.op == "sparse_conv_3x3":
            return Conv(c, 3, density=d, name="conv")(nn.relu(x))
        if self.op == "sparse_linear":
            return Conv(c, 1, density=d, name="conv")(nn.relu(x))
        if self.op == "sep_conv_3x3":
            return Conv(c, 1, name="pointwise")(Conv(c, 3, depthwise=True, name="depthwise")(nn.relu(x)))
        if self.op == "avg_pool_3x3":
            return nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
        if self.op == "skip":
            return x
        if self.op == "zero":
            return jnp.zeros_like(x)
        raise ValueError(f"unknown op {self.op!r}; valid: {', '.join(OPS)}")


class MixedOp(nn.Module):
    """``sum_o weights[o] * op_o(x)`` over :data:`OPS` (``weights``: the softmax of one ``alpha`` row)."""

    channels: int
    density: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, weights: jax.Array) -> jax.Array:
        out = 0.0
        for i, name in enumerate(OPS):
            if name != "zero":
                out = out + weights[i] * Op(name, self.channels, self.density, name=name)(x)
        return out


class Cell(nn.Module):
    """A DARTS normal cell: mixed ops on every edge (``genotype=None``, needs ``weights``) or the
    discrete edges of ``genotype``. Output: mean of the intermediate nodes."""

    channels: int
    n_nodes: int = 3
    density: float | None = None
    genotype: Genotype | None = None

    @nn.compact
    def __call__(self, s0: jax.Array, s1: jax.Array, weights: jax.Array | None = None) -> jax.Array:
        states, e = [s0, s1], 0
        for i in range(self.n_nodes):
            if self.genotype is None:
                node = 0.0
                for j in range(len(states)):
                    node = node + MixedOp(self.channels, self.density, name=f"edge_{e}")(states[j], weights[e])
                    e += 1
            else:
                node = sum(Op(op, self.channels, self.density, name=f"node{i}_in{j}_{op}")(states[j])
                           for j, op in self.genotype[i])
            states.append(node)
        return sum(states[2:]) / self.n_nodes


class Network(nn.Module):
    """Stem (dense 3x3 conv to ``channels``), ``n_cells`` cells, 2x2 average pool (not DARTS' global
    pool: at 8x8 and 8-16 channels that would leave the head 8-16 features), dense head.
    Supernet when ``genotype`` is None (``__call__(x, alpha)`` with ``alpha: (num_edges, len(OPS))``),
    else the discrete network of ``genotype`` (``__call__(x)``)."""

    num_classes: int
    channels: int = 16
    n_cells: int = 2
    n_nodes: int = 3
    density: float | None = None
    genotype: Genotype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, alpha: jax.Array | None = None) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"Network expects NHWC input, got shape {x.shape}")
        weights = None
        if self.genotype is None:
            if alpha is None or alpha.shape != (num_edges(self.n_nodes), len(OPS)):
                raise ValueError(f"the supernet needs alpha of shape {(num_edges(self.n_nodes), len(OPS))}, "
                                 f"got {None if alpha is None else alpha.shape}")
            weights = jax.nn.softmax(alpha, -1)
        elif len(self.genotype) != self.n_nodes:
            raise ValueError(f"genotype has {len(self.genotype)} nodes, the cell has n_nodes={self.n_nodes}")
        s0 = s1 = Conv(self.channels, 3, name="stem")(x)
        for c in range(self.n_cells):
            s0, s1 = s1, Cell(self.channels, self.n_nodes, self.density, self.genotype, name=f"cell_{c}")(s0, s1, weights)
        pooled = nn.avg_pool(nn.relu(s1), (2, 2), strides=(2, 2), padding="SAME")
        return nn.Dense(self.num_classes, name="head")(pooled.reshape(x.shape[0], -1))


def derive(alpha, n_nodes: int, edges_per_node: int = 2) -> Genotype:
    """DARTS derivation: for each node keep the ``edges_per_node`` incoming edges of largest
    non-zero op weight (softmax of ``alpha``), each with its argmax non-zero op."""
    w = np.asarray(jax.nn.softmax(jnp.asarray(alpha), -1))
    if w.shape != (num_edges(n_nodes), len(OPS)):
        raise ValueError(f"alpha must have shape {(num_edges(n_nodes), len(OPS))}, got {w.shape}")
    nonzero = [i for i, o in enumerate(OPS) if o != "zero"]
    genotype, e = [], 0
    for i in range(n_nodes):
        block = w[e:e + 2 + i][:, nonzero]
        strength = block.max(1)
        chosen = sorted(np.argsort(-strength, kind="stable")[:edges_per_node].tolist())
        genotype.append(tuple((j, OPS[nonzero[int(block[j].argmax())]]) for j in chosen))
        e += 2 + i
    return tuple(genotype)


def random_genotype(key: jax.Array, n_nodes: int, edges_per_node: int = 2) -> Genotype:
    """A uniformly random discrete cell: per node ``edges_per_node`` distinct inputs, random non-zero ops."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    ops = [o for o in OPS if o != "zero"]
    return tuple(tuple((int(j), ops[int(rng.integers(len(ops)))])
                       for j in sorted(rng.choice(2 + i, size=min(edges_per_node, 2 + i), replace=False)))
                 for i in range(check_int("n_nodes", n_nodes, minimum=1)))


class SearchResult(NamedTuple):
    """Final supernet params and ``alpha``, the derived genotype, and the loss curves."""

    params: Any
    alpha: jax.Array
    genotype: Genotype
    train_loss: np.ndarray
    val_loss: np.ndarray


@functools.lru_cache(maxsize=8)
def _search_step(num_classes: int, channels: int, n_cells: int, n_nodes: int, batch_size: int, weight_lr: float,
                 alpha_lr: float, alpha_l2: float):
    """The jitted first-order DARTS step of one supernet shape; the density is a traced argument, so
    searches at several densities (and the dense search, density 1) share one compilation."""
    w_tx = optax.adam(weight_lr)
    a_tx = optax.chain(optax.add_decayed_weights(alpha_l2), optax.adam(alpha_lr, b1=0.5, b2=0.999))

    def loss(p, a, density, xb, yb):
        model = Network(num_classes, channels, n_cells, n_nodes, density=density)
        return cross_entropy_loss(model.apply({"params": p}, xb, a), yb)

    def step(carry, t, warmup, density, keys, x_train, y_train, x_val, y_val):
        p, a, ws, as_ = carry
        iv = batch_indices(keys[1], t, x_val.shape[0], batch_size)
        lv, ga = jax.value_and_grad(loss, argnums=1)(p, a, density, x_val[iv], y_val[iv])

        def alpha_step(a, as_):
            ua, as_ = a_tx.update(ga, as_, a)
            return optax.apply_updates(a, ua), as_

        a, as_ = jax.lax.cond(t >= warmup, alpha_step, lambda a, as_: (a, as_), a, as_)
        it = batch_indices(keys[0], t, x_train.shape[0], batch_size)
        lt, gw = jax.value_and_grad(loss)(p, a, density, x_train[it], y_train[it])
        uw, ws = w_tx.update(gw, ws, p)
        return (optax.apply_updates(p, uw), a, ws, as_), (lt, lv)

    return jax.jit(step), w_tx, a_tx


def search(model: Network, x_train, y_train, x_val, y_val, *, steps: int, batch_size: int, key: jax.Array,
           warmup_steps: int = 0, weight_lr: float = 3e-3, alpha_lr: float = 3e-3, alpha_l2: float = 1e-3,
           log_every: int = 10) -> SearchResult:
    """First-order DARTS on the supernet ``model`` (``genotype=None``): each step one Adam step on
    ``alpha`` with the validation loss, then one on the weights (and scores) with the training loss.
    ``alpha`` starts at ``1e-3 * N(0, 1)`` as DARTS and stays fixed for the first ``warmup_steps``
    (a weight warm-up as in PC-DARTS, not in DARTS: against the early collapse to parameter-free
    ops of a short search). ``model.density=None`` is DARTS' dense search
    (run as density 1: every score kept, the forward pass is the dense one)."""
    if model.genotype is not None:
        raise ValueError("search needs the supernet (genotype=None)")
    steps = check_int("steps", steps, minimum=1)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0, maximum=steps)
    x_train, y_train, x_val, y_val = map(jnp.asarray, (x_train, y_train, x_val, y_val))
    check_int("batch_size", batch_size, minimum=1, maximum=min(len(x_train), len(x_val)))
    density = 1.0 if model.density is None else check_number("density", model.density, minimum=0.0, maximum=1.0,
                                                              min_inclusive=False)
    sparse_model = model.clone(density=1.0)
    k_init, k_alpha, k_tr, k_va = jax.random.split(key, 4)
    alpha = 1e-3 * jax.random.normal(k_alpha, (num_edges(model.n_nodes), len(OPS)))
    params = sparse_model.init(k_init, x_train[:1], alpha)["params"]
    step, w_tx, a_tx = _search_step(model.num_classes, model.channels, model.n_cells, model.n_nodes, int(batch_size),
                                    float(weight_lr), float(alpha_lr), float(alpha_l2))
    carry = (params, alpha, w_tx.init(params), a_tx.init(alpha))
    keys, dens = jnp.stack([k_tr, k_va]), jnp.float32(density)
    data = (x_train, y_train, x_val, y_val)
    tr, va = [], []
    for t in range(steps):
        carry, (lt, lv) = step(carry, jnp.asarray(t, jnp.int32), jnp.int32(warmup_steps), dens, keys, *data)
        if t % log_every == 0 or t == steps - 1:
            tr.append(lt)
            va.append(lv)
    tr, va = np.asarray(jax.device_get(tr)), np.asarray(jax.device_get(va))
    if not (np.isfinite(tr).all() and np.isfinite(va).all()):
        raise FloatingPointError("DARTS search diverged (non-finite loss)")
    params, alpha = carry[0], carry[1]
    return SearchResult(params, alpha, derive(alpha, model.n_nodes), tr, va)


def cell_kernel_predicate(path: str, leaf) -> bool:
    """Prunable leaves of a derived :class:`Network`: conv kernels inside cells (stem and head stay dense)."""
    return path.startswith("cell_") and path.endswith("kernel") and getattr(leaf, "ndim", 0) >= 2


def prunable_size(params) -> int:
    """Number of entries of the cell conv kernels (:func:`cell_kernel_predicate`)."""
    from sparsejax.core.tree import leaves_with_paths

    return sum(int(np.size(v)) for p, v in leaves_with_paths(params) if cell_kernel_predicate(p, v))


def nonzeros(params, predicate: Callable = cell_kernel_predicate) -> int:
    """Nonzero entries of the leaves selected by ``predicate``."""
    from sparsejax.core.tree import leaves_with_paths

    return sum(int(np.count_nonzero(np.asarray(v))) for p, v in leaves_with_paths(params) if predicate(p, v))


def check_genotype(genotype: Sequence, n_nodes: int) -> Genotype:
    """Validate a genotype (node ``i`` reads states ``< 2 + i``, ops from :data:`OPS`); return it as tuples."""
    if len(genotype) != n_nodes:
        raise ValueError(f"genotype has {len(genotype)} nodes, expected {n_nodes}")
    out = []
    for i, node in enumerate(genotype):
        edges = []
        for j, op in node:
            check_int(f"input of node {i}", j, minimum=0, maximum=1 + i)
            edges.append((int(j), check_choice(f"op of node {i}", op, OPS)))
        if not edges:
            raise ValueError(f"node {i} of the genotype has no input edge")
        out.append(tuple(edges))
    return tuple(out)
