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

Layer structure as in the official code (``CerebrasResearch/Sparse-IFT``,
``ComputerVision/CIFAR/models/cifar_resnet18.py``), with LayerNorm in place of BatchNorm (the
models here carry no batch statistics):

* every transformed (and dense) hidden layer is followed by a normalisation, then ReLU, as the
  official conv -> BN -> ReLU blocks (``norm=True``);
* **Sparse Parallel** normalises every branch before the sum, ``y = sum_b LN_b(x W_b)`` (official
  ``BlockISOFlopParallel``: one BN per branch, RepVGG style); without it the branches would merge
  into one linear layer ``x sum_b W_b``;
* **Sparse Factorized** puts LayerNorm + ReLU between ``U`` and ``V`` (official ``uv_layer:
  "nonlinear_relu"`` of the CIFAR configs; ``uv_layer="linear"`` gives ``x U V``);
* **Sparse Doped** is ``x S + x U V`` with no inner nonlinearity (official ``DopedConv3x3``);
* the stem (first layer) stays a dense layer of the dense width and the classifier head stays
  dense (official ``resnet_should_sparsify`` / ``conv_stem``, ``fc``); for **Sparse Wide** the head
  is dense and wider (its input is the widened last hidden layer), as official.

To make the FLOPs match *exactly*, :func:`isoflop_plan` fixes the number of non-zeros of every
sparse kernel so that (sparse MACs + dense MACs) equals the dense layer's MACs; the sparsity of
each kernel is then ``s`` up to rounding. The modules create dense parameter arrays plus an
``"nnz"`` collection with those counts; :func:`sparse_ift_mask` draws the matching exact-count
random mask (train it with :func:`sparsejax.keep_mask` or SET/RigL from :mod:`sparsejax.pruning`,
which keep every count and therefore the FLOPs), and :func:`count_flops` counts ``2 * MACs`` per
example from the mask (normalisations, biases and activations excluded, as in P14).

Deviations and reconstructions (named): (1) LayerNorm instead of BatchNorm; (2) the official Sparse
Wide network widens the stem's output too (``base_width * k_sw``) and is then *not* exactly
iso-FLOP (the dense stem and head grow by ``k_sw``, about 1 % of ResNet-18's FLOPs); at the tiny
widths here that excess would exceed the dense budget, so the stem keeps its dense width and the
dense, wider head's extra MACs are taken off the non-zero budget of the last hidden layer
(``budget``), which keeps every network exactly iso-FLOP; (3) sparse kernels are initialised with
variance scaled by ``1 / density`` (LeCun normal; the official code uses Kaiming fan-out with no
density rescale); (4) no folded-``UV`` weight decay (official ``compute_weight_norm``); (5) RigL
drops on each branch's own weights (the official cbsparse drops on the fused weight); (6)
``B = round(1 / (1 - s))`` (banker's rounding: s = 0.6 gives B = 2).
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
                 kernel_size: Sequence[int] = (), *, actual_in: int | None = None, widen_out: bool = False,
                 budget: int | None = None) -> IsoFLOPPlan:
    """Kernel shapes and non-zero counts of the ``family`` transform of a dense layer
    ``in_features -> out_features`` (kernel ``kernel_size + (in, out)``) at ``sparsity``.

    ``actual_in`` is the (possibly widened) input width the layer receives (default
    ``in_features``); ``widen_out`` widens the output (Sparse Wide). The non-zero counts sum to the
    dense MACs ``prod(kernel_size) * in_features * out_features`` exactly (for ``doped`` with the
    dense low-rank MACs included). ``budget`` (``wide`` only) replaces that MAC count, e.g. to pay
    for a wider dense head.
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
    if budget is not None:
        if family != "wide":
            raise ValueError(f"budget applies to family='wide' only, got family={family!r}")
        if int(budget) != budget or not 1 <= budget <= macs:
            raise ValueError(f"budget must be an int in [1, {macs}] (the dense MACs), got {budget}")
        macs = int(budget)
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


UV_LAYERS = ("nonlinear_relu", "linear")


class IsoFLOPLayer(nn.Module):
    """Drop-in Sparse-IFT replacement of ``nn.Dense(features)`` (``kernel_size=()``) or of a stride-1
    ``SAME`` ``nn.Conv(features, kernel_size)`` whose dense input width is ``in_features``.

    ``family="wide"``: the input may already be widened (any width >= ``in_features``),
    ``widen_out`` widens the output by :func:`wide_factor` and ``budget`` overrides the MAC budget
    (see :func:`isoflop_plan`). ``norm`` follows the layer with LayerNorm (per branch for
    ``parallel``, and then no bias); ``uv_layer`` is ``"nonlinear_relu"`` (LayerNorm + ReLU between
    ``U`` and ``V`` of ``factorized``, official default) or ``"linear"``. Parameters are dense
    arrays; the sparse ones have a matching integer in the ``"nnz"`` collection (see
    :func:`sparse_ift_mask`). The number of output positions per example is sown into
    ``"positions"`` for :func:`count_flops`.
    """

    features: int
    in_features: int
    family: str = "dense"
    sparsity: float = 0.0
    kernel_size: Sequence[int] = ()
    widen_out: bool = False
    use_bias: bool = True
    norm: bool = False
    uv_layer: str = "nonlinear_relu"
    budget: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ks = tuple(self.kernel_size)
        if (ks and x.ndim != len(ks) + 2) or x.ndim < 2:
            raise ValueError(f"input of shape {x.shape} does not match kernel_size {ks}")
        if self.uv_layer not in UV_LAYERS:
            raise ValueError(f"uv_layer must be one of {UV_LAYERS}, got {self.uv_layer!r}")
        plan = isoflop_plan(self.family, self.in_features, self.features, self.sparsity, ks,
                            actual_in=x.shape[-1], widen_out=self.widen_out, budget=self.budget)
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
            h = _apply_kernel(x, kernels["u"])
            if self.uv_layer == "nonlinear_relu":
                h = nn.relu(nn.LayerNorm(name="uv_norm")(h))
            y = _apply_kernel(h, kernels["v"])
        elif self.family == "doped":
            y = _apply_kernel(x, kernels["s"])
            if "u" in kernels:
                y = y + _apply_kernel(_apply_kernel(x, kernels["u"]), kernels["v"])
        elif self.family == "parallel" and self.norm:
            return sum(nn.LayerNorm(name=f"norm_{name}")(_apply_kernel(x, w)) for name, w in kernels.items())
        else:
            y = sum(_apply_kernel(x, w) for w in kernels.values())
        if self.norm:
            return nn.LayerNorm(name="norm")(y)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (plan.out_features,))
        return y


def _wide_head_excess(family: str, sparsity: float, width: int, num_classes: int, flat: int = 1) -> int | None:
    """MACs a dense head gains when its input ``flat * width`` widens to ``flat * widened(width)``
    (Sparse Wide); the last hidden layer gives them up. ``None`` for the other families."""
    if family != "wide" or sparsity == 0.0:
        return None
    return flat * (widened(width, sparsity) - width) * num_classes


class SparseIFTMLP(nn.Module):
    """ReLU MLP: a dense stem ``layer_0`` (LayerNorm, ReLU), hidden layers ``layer_1..`` that are
    ``family`` transforms at ``sparsity`` (each followed by LayerNorm and ReLU when ``norm``), and a
    dense head (wider for ``wide``, paid for by the last hidden layer's budget).
    ``family="dense"`` is the plain dense MLP with the same layout."""

    num_classes: int
    hidden: Sequence[int] = (128, 128, 128)
    family: str = "dense"
    sparsity: float = 0.0
    norm: bool = True
    uv_layer: str = "nonlinear_relu"

    def __post_init__(self):
        check_int("num_classes", self.num_classes, minimum=1)
        check_sparsity(self.sparsity)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if len(self.hidden) < 2:
            raise ValueError(f"hidden needs >= 2 widths (a dense stem and a transformed layer), got {self.hidden}")
        x = x.reshape(x.shape[0], -1)
        wide = self.family == "wide"
        x = nn.relu(IsoFLOPLayer(self.hidden[0], x.shape[-1], "dense", norm=self.norm, name="layer_0")(x))
        d_in = self.hidden[0]
        excess = _wide_head_excess(self.family, self.sparsity, self.hidden[-1], self.num_classes)
        for i, h in enumerate(self.hidden[1:], start=1):
            last = i == len(self.hidden) - 1
            budget = None if excess is None or not last else d_in * h - excess
            x = nn.relu(IsoFLOPLayer(h, d_in, self.family, self.sparsity, widen_out=wide, norm=self.norm,
                                     uv_layer=self.uv_layer, budget=budget, name=f"layer_{i}")(x))
            d_in = h
        return IsoFLOPLayer(self.num_classes, x.shape[-1], "dense", name="head")(x)


class SparseIFTCNN(nn.Module):
    """A dense 3x3 conv stem ``conv_0`` then 3x3 convs ``conv_1..`` (each with LayerNorm when
    ``norm``, ReLU and 2x2 average pooling), a hidden dense layer and a dense head; every layer
    between stem and head is a ``family`` transform at ``sparsity`` (layout of
    :class:`sparsejax.nn.CNN`; Sparse Wide's wider dense head is paid for by the hidden dense layer)."""

    num_classes: int
    channels: Sequence[int] = (16, 32)
    hidden: int = 64
    family: str = "dense"
    sparsity: float = 0.0
    norm: bool = True
    uv_layer: str = "nonlinear_relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"x must be an NHWC batch (B, H, W, C) for SparseIFTCNN, got shape {x.shape}")
        wide = self.family == "wide"
        c_in = x.shape[-1]
        for i, c in enumerate(self.channels):
            family = "dense" if i == 0 else self.family
            layer = IsoFLOPLayer(c, c_in, family, self.sparsity if i else 0.0, (3, 3), widen_out=wide and i > 0,
                                 norm=self.norm, uv_layer=self.uv_layer, name=f"conv_{i}")
            x = nn.avg_pool(nn.relu(layer(x)), (2, 2), strides=(2, 2), padding="SAME")
            c_in = c
        flat_dense = c_in * x.shape[1] * x.shape[2]
        x = x.reshape(x.shape[0], -1)
        excess = _wide_head_excess(self.family, self.sparsity, self.hidden, self.num_classes)
        budget = None if excess is None else flat_dense * self.hidden - excess
        x = nn.relu(IsoFLOPLayer(self.hidden, flat_dense, self.family, self.sparsity, widen_out=wide, norm=self.norm,
                                 uv_layer=self.uv_layer, budget=budget, name="dense")(x))
        return IsoFLOPLayer(self.num_classes, x.shape[-1], "dense", name="head")(x)


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
