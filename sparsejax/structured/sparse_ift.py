"""Sparse Iso-FLOP Transformations (P14, Saxena et al. 2023, "Sparse-IFT: Sparse Iso-FLOP
Transformations for Maximizing Training Efficiency").

A dense layer ``W`` (``K`` = kernel positions, ``D_in x D_out``; ``K = 1`` for a matmul) costs
``K * D_in * D_out`` multiply-accumulates (MACs) per output position. Each transformation,
parameterised by one sparsity level ``s``, replaces it by a larger *sparse* layer of the same cost
(P14 Sec. 3):

* **Sparse Wide**: widen the layer by ``k_sw = 1 / sqrt(1 - s)`` (inputs and/or outputs).
* **Sparse Parallel**: ``B = 1 / (1 - s)`` sparse copies of ``W`` in parallel, outputs summed.
* **Sparse Factorized**: ``W -> U V`` with ``U: D_in x d``, ``V: d x D_out`` both sparse,
  ``d = K D_in D_out / ((1 - s)(K D_in + D_out))``.
* **Sparse Doped**: ``W -> U V + S`` with dense low-rank ``U V`` (rank
  ``d = s K D_in D_out / (K D_in + D_out)``) and a sparse ``S`` of the shape of ``W``.

To make the FLOPs match *exactly*, :func:`isoflop_plan` fixes the number of non-zeros of every
sparse kernel so that (sparse MACs + dense MACs) equals the dense layer's MACs; the sparsity of
each kernel is then ``s`` up to rounding. The modules create dense parameter arrays plus an
``"nnz"`` collection with those counts; :func:`sparse_ift_mask` draws the matching exact-count
random mask (train it with ``sparsejax.masked`` or SET/RigL from :mod:`sparsejax.pruning`, which
keep every count and therefore the FLOPs), and :func:`count_flops` counts ``2 * MACs`` per example
from the mask. Sparse kernels are initialised with variance scaled by ``1 / density`` so a layer's
output variance matches the dense layer's.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from sparsejax.core.masks import top_k_mask
from sparsejax.core.tree import check_sparsity
from sparsejax.core.validation import check_int, check_key

FAMILIES = ("dense", "wide", "parallel", "factorized", "doped")


class KernelPlan(NamedTuple):
    """One kernel of a transformed layer: ``shape`` and its non-zero count (``None`` = dense)."""

    shape: tuple[int, ...]
    nnz: int | None


class IsoFLOPPlan(NamedTuple):
    """Shapes of a transformed layer: ``kernels`` by name; ``out_features`` after widening;
    ``branches`` (parallel) and ``rank`` (factorized / doped) where they apply."""

    family: str
    kernels: dict
    out_features: int
    branches: int
    rank: int


def wide_factor(sparsity: float) -> float:
    """Sparse Wide width multiplier ``k_sw = 1 / sqrt(1 - s)`` (P14 Sec. 3)."""
    check_sparsity(sparsity)
    return 1.0 / math.sqrt(1.0 - sparsity)


def widened(features: int, sparsity: float) -> int:
    """``round(k_sw * features)``."""
    return int(round(wide_factor(sparsity) * features))


def _split(total: int, sizes: Sequence[int]) -> list[int]:
    """Split ``total`` non-zeros over kernels proportionally to their sizes (exact sum)."""
    weights = np.asarray(sizes, np.float64)
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out))[: total - out.sum()]:
        out[i] += 1
    return [int(min(o, s)) for o, s in zip(out, sizes)]


def isoflop_plan(family: str, in_features: int, out_features: int, sparsity: float,
                 kernel_size: Sequence[int] = (), *, actual_in: int | None = None, widen_out: bool = False
                 ) -> IsoFLOPPlan:
    """Kernel shapes and non-zero counts of the ``family`` transform of a dense layer
    ``in_features -> out_features`` (kernel ``kernel_size + (in, out)``) at ``sparsity``.

    ``actual_in`` is the (possibly widened) input width the layer receives (default
    ``in_features``); ``widen_out`` widens the output (Sparse Wide). The non-zero counts sum to the
    dense MACs ``prod(kernel_size) * in_features * out_features`` exactly (for ``doped`` with the
    dense low-rank MACs included).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    check_sparsity(sparsity)
    if min(in_features, out_features) < 1:
        raise ValueError(f"features must be >= 1, got in={in_features}, out={out_features}")
    ks = tuple(int(k) for k in kernel_size)
    kpos = int(np.prod(ks)) if ks else 1
    d_in = in_features if actual_in is None else actual_in
    if family != "wide" and d_in != in_features:
        raise ValueError(f"{family}: input width {d_in} must equal in_features={in_features}")
    if family == "wide" and d_in < in_features:
        raise ValueError(f"wide: input width {d_in} is smaller than the dense in_features={in_features}")
    macs = kpos * in_features * out_features
    if family == "dense" or sparsity == 0.0:
        return IsoFLOPPlan(family, {"kernel": KernelPlan(ks + (d_in, out_features), None)}, out_features, 1, 0)
    if family == "wide":
        out = widened(out_features, sparsity) if widen_out else out_features
        shape = ks + (d_in, out)
        nnz = None if macs >= int(np.prod(shape)) else macs
        return IsoFLOPPlan(family, {"kernel": KernelPlan(shape, nnz)}, out, 1, 0)
    if family == "parallel":
        b = int(round(1.0 / (1.0 - sparsity)))
        shape = ks + (in_features, out_features)
        counts = _split(macs, [macs] * b)
        kernels = {f"branch_{i}": KernelPlan(shape, c) for i, c in enumerate(counts)}
        return IsoFLOPPlan(family, kernels, out_features, b, 0)
    if family == "factorized":
        rank = int(math.ceil(macs / ((1.0 - sparsity) * (kpos * in_features + out_features))))
        u, v = ks + (in_features, rank), (rank, out_features)
        cu, cv = _split(macs, [int(np.prod(u)), int(np.prod(v))])
        return IsoFLOPPlan(family, {"u": KernelPlan(u, cu), "v": KernelPlan(v, cv)}, out_features, 1, rank)
    rank = int(math.floor(sparsity * macs / (kpos * in_features + out_features)))
    kernels = {"s": KernelPlan(ks + (in_features, out_features), macs - rank * (kpos * in_features + out_features))}
    if rank:
        kernels["u"] = KernelPlan(ks + (in_features, rank), None)
        kernels["v"] = KernelPlan((rank, out_features), None)
    return IsoFLOPPlan(family, kernels, out_features, 1, rank)


def _apply_kernel(x: jax.Array, w: jax.Array) -> jax.Array:
    if w.ndim == 2:
        return x @ w
    return jax.lax.conv_general_dilated(x, w, (1,) * (w.ndim - 2), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


class IsoFLOPLayer(nn.Module):
    """Drop-in Sparse-IFT replacement of ``nn.Dense(features)`` (``kernel_size=()``) or of a stride-1
    ``SAME`` ``nn.Conv(features, kernel_size)`` whose dense input width is ``in_features``.

    ``family="wide"``: the input may already be widened (any width >= ``in_features``) and
    ``widen_out`` widens the output by :func:`wide_factor`. Parameters are dense arrays; the sparse
    ones have a matching integer in the ``"nnz"`` collection (see :func:`sparse_ift_mask`). The
    number of output positions per example is sown into ``"positions"`` for :func:`count_flops`.
    """

    features: int
    in_features: int
    family: str = "dense"
    sparsity: float = 0.0
    kernel_size: Sequence[int] = ()
    widen_out: bool = False
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ks = tuple(self.kernel_size)
        if (ks and x.ndim != len(ks) + 2) or x.ndim < 2:
            raise ValueError(f"input of shape {x.shape} does not match kernel_size {ks}")
        plan = isoflop_plan(self.family, self.in_features, self.features, self.sparsity, ks,
                            actual_in=x.shape[-1], widen_out=self.widen_out)
        kernels = {}
        for name, kp in plan.kernels.items():
            size = int(np.prod(kp.shape))
            scale = 1.0 if kp.nnz is None or self.family == "parallel" else math.sqrt(size / max(kp.nnz, 1))
            init = (lambda s: lambda key, shape: s * nn.initializers.lecun_normal()(key, shape))(scale)
            kernels[name] = self.param(name, init, kp.shape)
            if kp.nnz is not None and (self.is_mutable_collection("nnz") or self.has_variable("nnz", name)):
                self.variable("nnz", name, lambda n=kp.nnz: jnp.int32(n))
            self.sow("positions", name, jnp.int32(np.prod(x.shape[1:-1], dtype=int) if x.ndim > 2 else 1),
                     init_fn=lambda: 0, reduce_fn=lambda _, b: b)
        if self.family == "factorized" and "u" in kernels:
            y = _apply_kernel(_apply_kernel(x, kernels["u"]), kernels["v"])
        elif self.family == "doped":
            y = _apply_kernel(x, kernels["s"])
            if "u" in kernels:
                y = y + _apply_kernel(_apply_kernel(x, kernels["u"]), kernels["v"])
        else:
            y = sum(_apply_kernel(x, w) for w in kernels.values())
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (plan.out_features,))
        return y


class SparseIFTMLP(nn.Module):
    """ReLU MLP whose hidden layers are ``family`` transforms at ``sparsity``; the classifier head
    stays dense (for ``wide`` its widened input makes it sparse at the iso-FLOP count).
    ``family="dense"`` is the plain dense MLP."""

    num_classes: int
    hidden: Sequence[int] = (128, 128)
    family: str = "dense"
    sparsity: float = 0.0

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=1)
        check_sparsity(self.sparsity)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        wide = self.family == "wide"
        d_in = x.shape[-1]
        for i, h in enumerate(self.hidden):
            x = nn.relu(IsoFLOPLayer(h, d_in, self.family, self.sparsity, widen_out=wide, name=f"layer_{i}")(x))
            d_in = h
        head_family = "wide" if wide else "dense"
        return IsoFLOPLayer(self.num_classes, d_in, head_family, self.sparsity, name="head")(x)


class SparseIFTCNN(nn.Module):
    """3x3 conv stack (ReLU, 2x2 average pool) + hidden dense layer + head, every layer but the head
    a ``family`` transform at ``sparsity`` (same layout as :class:`sparsejax.nn.CNN`)."""

    num_classes: int
    channels: Sequence[int] = (16, 32)
    hidden: int = 64
    family: str = "dense"
    sparsity: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"x must be an NHWC batch (B, H, W, C) for SparseIFTCNN, got shape {x.shape}")
        wide = self.family == "wide"
        c_in = x.shape[-1]
        for i, c in enumerate(self.channels):
            layer = IsoFLOPLayer(c, c_in, self.family, self.sparsity, (3, 3), widen_out=wide, name=f"conv_{i}")
            x = nn.avg_pool(nn.relu(layer(x)), (2, 2), strides=(2, 2), padding="SAME")
            c_in = c
        flat_dense = c_in * x.shape[1] * x.shape[2]
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(IsoFLOPLayer(self.hidden, flat_dense, self.family, self.sparsity, widen_out=wide, name="dense")(x))
        return IsoFLOPLayer(self.num_classes, self.hidden, "wide" if wide else "dense", self.sparsity, name="head")(x)


@jax.jit
def _exact_count_masks(key: jax.Array, params: dict, nnz: dict) -> dict:
    keys = jax.random.split(key, max(len(params), 1))
    return {path: None if path not in nnz else top_k_mask(jax.random.uniform(k, w.shape), nnz[path])
            for k, (path, w) in zip(keys, params.items())}


def sparse_ift_mask(key: jax.Array, variables) -> dict:
    """Random mask over ``variables["params"]`` keeping exactly the planned non-zeros (``"nnz"``
    collection) of every sparse kernel; ``None`` at dense leaves. One compiled call per model."""
    check_key("key", key)
    if "params" not in variables:
        raise ValueError("pass the full variables dict from model.init (with 'params' and 'nnz')")
    params = traverse_util.flatten_dict(variables["params"])
    nnz = traverse_util.flatten_dict(variables.get("nnz", {}))
    return traverse_util.unflatten_dict(_exact_count_masks(key, params, nnz))


def count_flops(model: nn.Module, variables, mask, x: jax.Array) -> int:
    """Forward FLOPs per example of the weight multiplications, ``2 * sum(nnz(kernel) * positions)``
    (biases and activations excluded, as in P14). ``nnz`` comes from ``mask`` when given (``None``
    leaves are dense), else from the planned ``"nnz"`` collection of ``variables``, else the kernel
    is dense. ``x`` is an input batch (only its first example is run)."""
    if not isinstance(variables, dict) or "params" not in variables:
        raise ValueError("variables must be the full variables dict from model.init (with 'params')")
    _, state = model.apply({"params": variables["params"]}, x[:1], mutable=["positions"])
    positions = traverse_util.flatten_dict(state["positions"])
    params = traverse_util.flatten_dict(variables["params"])
    if mask is not None:
        if not isinstance(mask, dict) or not set(traverse_util.flatten_dict(mask)) <= set(
                traverse_util.flatten_dict(variables["params"])):
            raise ValueError("mask must be a dict of kernel masks at paths of variables['params']")
        masks = traverse_util.flatten_dict(mask, keep_empty_nodes=True)
        nnz = {p: int(np.count_nonzero(np.asarray(m))) for p, m in masks.items() if m is not None}
    else:
        nnz = {p: int(n) for p, n in traverse_util.flatten_dict(variables.get("nnz", {})).items()}
    return sum(2 * nnz.get(path, int(np.prod(params[path].shape))) * int(pos) for path, pos in positions.items())
