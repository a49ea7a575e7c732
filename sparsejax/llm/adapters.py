"""One adapter mechanism for parameter-efficient fine-tuning (LoRA here; S²FT and FLoRA in their
modules): frozen base weights plus a small trainable pytree whose *delta* adds to chosen leaves.

An :class:`Adapter` holds the trainable ``params`` (``{leaf path: entry params}``) and the pure
``delta_fns`` (``{leaf path: f(entry params, base leaf) -> dW}``, ``dW`` of the leaf's shape).
``merge(base, params) = base`` with ``W <- W + dW`` at each target leaf and ``unmerge`` subtracts
the same ``dW``; both are pure functions of ``(tree, adapter params)``, so a merged checkpoint
can be switched back. The base is frozen by construction: a training loss is a function of the
adapter params only (``loss(merge(base, a))``, see :func:`make_adapter_train_step`), so no
gradient, optimizer state or weight decay ever reaches a base weight.

Paths are ``"/"``-joined keys (list indices as numbers), e.g. ``"blocks/0/fc2/kernel"`` of
:mod:`sparsejax.llm.model` params or ``"params/conv_0/kernel"`` of flax params; ``targets`` are
:mod:`fnmatch` patterns over those paths.

LoRA (Hu et al. 2022; the ``peft`` defaults): ``dW = (alpha / r) A B`` with ``A`` (in, r)
Kaiming-uniform (``a = sqrt(5)``, i.e. ``U(-1/sqrt(in), 1/sqrt(in))``) and ``B`` (r, out) zero,
so a fresh adapter is a no-op. A kernel of more than two axes (a conv kernel ``(kh, kw, in, out)``)
is adapted as the reshaped ``(kh * kw * in, out)`` matrix (the "LoRA on the reshaped kernel"
baseline of FLoRA).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import math
import optax

from sparsejax.core import param_count
from sparsejax.core.tree import leaves_with_paths
from sparsejax.core.validation import check_int, check_number
from sparsejax.train import TrainState, cross_entropy_loss


class Adapter(NamedTuple):
    """Trainable ``params`` ``{path: entry params}`` and the ``delta_fns`` ``{path: f(p, W) -> dW}``."""

    params: dict
    delta_fns: dict

    @property
    def structure(self) -> tuple:
        """Hashable ``((path, delta fn), ...)``: adapters with equal structure share one compiled step."""
        return tuple(sorted(self.delta_fns.items()))

    def deltas(self, base, params: dict | None = None) -> dict:
        """``{path: dW}`` for ``params`` (default: this adapter's own params)."""
        params = self.params if params is None else params
        return {path: fn(params[path], get_leaf(base, path)) for path, fn in self.delta_fns.items()}

    def merge(self, base, params: dict | None = None):
        """``base`` with every target leaf ``W`` replaced by ``W + dW``."""
        return _apply_deltas(self.structure, 1.0)(base, self.params if params is None else params)

    def unmerge(self, merged, params: dict | None = None):
        """Inverse of :meth:`merge`: every target leaf ``W`` becomes ``W - dW`` (``dW`` from ``merged``'s
        leaves, which a delta may read only for its shape)."""
        return _apply_deltas(self.structure, -1.0)(merged, self.params if params is None else params)


@functools.lru_cache(maxsize=None)
def _apply_deltas(structure: tuple, sign: float):
    """Jitted ``(tree, adapter params) -> tree`` adding ``sign * dW`` at every path of ``structure``."""

    def apply(tree, params):
        out = tree
        for path, fn in structure:
            w = get_leaf(out, path)
            dw = fn(params[path], w).astype(w.dtype)
            out = set_leaf(out, path, w + dw if sign > 0 else w - dw)
        return out

    return jax.jit(apply)


def _key(node, part: str):
    return int(part) if isinstance(node, (list, tuple)) else part


def get_leaf(tree, path: str):
    """The leaf of a nested dict/list ``tree`` at ``"a/0/b"``; ``KeyError`` names a missing path."""
    node = tree
    for part in path.split("/"):
        try:
            node = node[_key(node, part)]
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise KeyError(f"no leaf at path {path!r} (failed at {part!r})") from err
    return node


def set_leaf(tree, path: str, value):
    """A copy of ``tree`` with the leaf at ``path`` replaced by ``value`` (containers on the path are copied)."""
    part, _, rest = path.partition("/")
    k = _key(tree, part)
    child = value if not rest else set_leaf(tree[k], rest, value)
    if isinstance(tree, (list, tuple)):
        out = list(tree)
        out[k] = child
        return type(tree)(out) if isinstance(tree, tuple) else out
    out = dict(tree)
    out[k] = child
    return out


def match_paths(params, targets: str | Sequence[str], *, min_ndim: int = 2) -> list[str]:
    """Paths of the leaves (``ndim >= min_ndim``) that match any :mod:`fnmatch` pattern in ``targets``;
    raises when nothing matches."""
    patterns = [targets] if isinstance(targets, str) else list(targets)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"targets must be a pattern string or a sequence of them, got {targets!r}")
    paths = [p for p, leaf in leaves_with_paths(params)
             if getattr(leaf, "ndim", 0) >= min_ndim and any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    if not paths:
        raise ValueError(f"targets {patterns} match no leaf with ndim >= {min_ndim}; leaves: "
                         f"{[p for p, _ in leaves_with_paths(params)][:12]}...")
    return paths


def combine(*adapters: Adapter) -> Adapter:
    """One adapter from several acting on disjoint leaves (their deltas all apply)."""
    params, fns = {}, {}
    for a in adapters:
        clash = set(a.params) & set(params)
        if clash:
            raise ValueError(f"adapters overlap on leaves {sorted(clash)}")
        params.update(a.params)
        fns.update(a.delta_fns)
    return Adapter(params, fns)


@dataclasses.dataclass(frozen=True)
class LoRADelta:
    """``dW = scale * A B`` reshaped to the leaf (a value-hashable delta function)."""

    scale: float

    def __call__(self, p, w):
        return (self.scale * (p["A"] @ p["B"])).reshape(w.shape)


@dataclasses.dataclass(frozen=True)
class FullDelta:
    """``dW = P`` (a dense delta of the leaf's shape)."""

    def __call__(self, p, w):
        return p.reshape(w.shape)


@dataclasses.dataclass(frozen=True)
class SliceDelta:
    """``dW`` zero except the block ``P`` at ``start`` along ``axis``."""

    axis: int
    start: int

    def __call__(self, p, w):
        return jax.lax.dynamic_update_slice_in_dim(jnp.zeros(w.shape, p.dtype), p, self.start, self.axis)


def lora(params, rank: int, targets: str | Sequence[str], key: jax.Array, *, alpha: float | None = None) -> Adapter:
    """LoRA adapters of ``rank`` on the leaves matching ``targets``: ``dW = (alpha / rank) A B``
    (``alpha`` defaults to ``rank``, scale 1), ``A`` Kaiming-uniform, ``B = 0``. Kernels with more
    than two axes are adapted as the matrix ``(prod(shape[:-1]), shape[-1])``."""
    rank = check_int("rank", rank, minimum=1)
    alpha = float(rank) if alpha is None else check_number("alpha", alpha, minimum=0.0, min_inclusive=False)
    out_params, fns = {}, {}
    for i, path in enumerate(match_paths(params, targets)):
        w = get_leaf(params, path)
        d_in, d_out = math.prod(w.shape[:-1]), w.shape[-1]
        bound = 1.0 / math.sqrt(d_in)
        a = jax.random.uniform(jax.random.fold_in(key, i), (d_in, rank), w.dtype, -bound, bound)
        out_params[path] = {"A": a, "B": jnp.zeros((rank, d_out), w.dtype)}
        fns[path] = LoRADelta(alpha / rank)
    return Adapter(out_params, fns)


def full(params, targets: str | Sequence[str], *, min_ndim: int = 0) -> Adapter:
    """A dense zero-initialised delta on every matching leaf (``dW = P``): full fine-tuning of those
    leaves (``targets="*"``: the whole model; ``"lm_head/*"``: head-only) through the adapter API."""
    paths = match_paths(params, targets, min_ndim=min_ndim)
    return Adapter({p: jnp.zeros_like(get_leaf(params, p)) for p in paths}, {p: FullDelta() for p in paths})


def slice_adapter(params, slices: dict) -> Adapter:
    """Dense trainable slices: ``slices = {path: (axis, start, stop)}``; ``dW`` is zero outside
    ``W[..., start:stop, ...]`` (along ``axis``) and the zero-initialised trainable block inside it."""
    out, fns = {}, {}
    for path, (axis, start, stop) in slices.items():
        w = get_leaf(params, path)
        axis = check_int(f"axis of {path}", axis, minimum=0, maximum=w.ndim - 1)
        start = check_int(f"start of {path}", start, minimum=0)
        stop = check_int(f"stop of {path}", stop, minimum=start + 1, maximum=w.shape[axis])
        shape = list(w.shape)
        shape[axis] = stop - start
        out[path] = jnp.zeros(shape, w.dtype)
        fns[path] = SliceDelta(axis, start)
    return Adapter(out, fns)


def lora_num_params(shapes: Sequence[Sequence[int]], rank: int) -> int:
    """Trainable LoRA entries for kernels of ``shapes``: ``rank * (prod(shape[:-1]) + shape[-1])`` each."""
    return int(sum(rank * (math.prod(s[:-1]) + s[-1]) for s in shapes))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _adapter_step(apply_fn, structure, tx, loss_fn, state: TrainState, base, x, y):
    adapter = Adapter({}, dict(structure))

    def loss(a):
        return loss_fn(apply_fn(adapter.merge(base, a), x), y)

    value, grads = jax.value_and_grad(loss)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), value


def make_adapter_train_step(apply_fn: Callable, base, adapter: Adapter, tx: optax.GradientTransformation,
                            loss_fn: Callable = cross_entropy_loss) -> Callable:
    """``step(state, x, y) -> (state, loss)`` that trains only the adapter params (``state.params``):
    ``loss = loss_fn(apply_fn(adapter.merge(base, state.params), x), y)``; ``base`` is an input of
    the step, never differentiated (frozen). The compiled step is shared by every call with the
    same ``apply_fn``, adapter :attr:`~Adapter.structure`, ``tx`` and ``loss_fn`` objects (and shapes)."""
    structure = adapter.structure
    return lambda state, x, y: _adapter_step(apply_fn, structure, tx, loss_fn, state, base, x, y)


def num_trainable(adapter: Adapter) -> int:
    """Number of trainable entries of an adapter."""
    return param_count(adapter.params)
