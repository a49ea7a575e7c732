"""SparseSSP (P38): 3D subcellular structure prediction from sparsely sampled transmitted-light z-stacks.

Checked against the official code (JintuZheng/SparseSSP: ``configs/sparse/repmode_3e2d_sr8.py``,
``sspengine/utils/sparse_ssp_utils.py``, ``sspengine/datasets/piplines/sparse_simu.py``):

* "sparse view" = keep every ``r``-th z-slice of the TL stack (``signal[:, ::r]``): :func:`keep_slices`;
* the sparse stack is **nearest-upsampled** back to the target depth ``D`` (one sparse slice feeds ``r`` target
  depths, the "one-to-many voxel mapping"): :func:`upsample_depth`;
* "3e2d" hybrid: a **3D encoder** (levels with channels ``w, 2w, 4w, ...``, each halving D, H and W) and a 3D
  bottleneck; the bottleneck and every skip are **folded** depth-into-channels, ``(C, D', H, W) -> (C*D', H, W)``
  with channel index ``c*D' + d`` (torch ``view``), each followed by a 2D "gate" conv (kernel 5 in the
  official config); a **2D decoder**; a 2D head with ``D`` output channels, **unfolded** back to ``(D, H, W)``:
  :func:`fold_depth`, :func:`unfold_depth`, :class:`SparseSSP`;
* baseline: a pure 3D U-Net (:class:`UNet3D`) with the same encoder and a mirrored 3D decoder.

Mixture of diverse experts (MoDE, from RepMode; official ``sspengine/modules/MoDE/commons.py``), an option of
:class:`SparseSSP` (``experts=...``, ``num_tasks=...``): every conv of the blocks, the fold gates and the head
becomes a :class:`MoDEConv`. A MoDE conv holds one kernel per expert (official set, kernel 5: ``conv5``,
``conv3``, ``conv1``, ``avg3`` = 3-average-pool then 1x1 conv, ``avg5``); a task gate ``Dense(one_hot(task)) ->
(experts, C_out)`` with a softmax over the experts per output channel; and RepMode's gated re-parameterisation:
the experts are zero-padded to the merged size ``K`` and summed with the gate weights into **one** ``K``-kernel per
task, so a MoDE conv costs one conv of size ``K`` (:meth:`MoDEConv.merged_kernel`; ``multi_branch=True`` runs
the experts as separate branches, which gives the same output). The network predicts the structure named by
``task`` (one output channel per call), as upstream.

Deviations: plain ``conv-ReLU-conv-ReLU`` blocks with max-pool down-sampling and stride-2 transposed-conv
up-sampling (upstream: MoDE blocks with batch norm, stride-2 conv down-sampling and transposed conv with batch
norm; here no batch norm anywhere, the convs have a bias instead); channels-last layout ``(B, D, H, W, C)``; the
gate kernel is a parameter (default 3 to keep CPU cost low; the official value is 5) and so is the MoDE merged size
``K`` and expert set (the experiments use ``K = 3`` with ``conv3, conv1, avg3``, the official experts that fit a
3-kernel, so that a MoDE net costs the same FLOPs as the plain one); the average-pool experts divide by ``k**d``
(upstream's 2D pool kernel divides by ``k**3``, a constant factor the 1x1 weights absorb). The official skips all
fold to the same ``w*D`` channels, which holds here too (each level halves D and doubles C).
"""
from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import sklearn.metrics



def keep_slices(volume, r: int, axis: int = 1):
    """Sparse-view sub-sampling: keep z-slices ``0, r, 2r, ...`` along ``axis`` (``signal[:, ::r]`` upstream)."""
    if int(r) != r or r < 1:
        raise ValueError(f"slice-keep ratio r must be a positive integer, got {r}")
    idx = [slice(None)] * volume.ndim
    idx[axis] = slice(None, None, int(r))
    return volume[tuple(idx)]


def upsample_depth(volume, depth: int, axis: int = 1):
    """Nearest upsampling along ``axis`` to ``depth`` slices (torch ``interpolate(mode='nearest')``: target slice
    ``i`` copies sparse slice ``floor(i * n / depth)``); ``depth`` must be a multiple of the sparse depth ``n``."""
    n = volume.shape[axis]
    if depth % n:
        raise ValueError(f"target depth {depth} must be a multiple of the sparse depth {n}")
    return jnp.repeat(volume, depth // n, axis=axis)


def fold_depth(x):
    """Fold depth into channels: ``(B, D, H, W, C) -> (B, H, W, C*D)``, channel ``c*D + d`` (official order)."""
    if x.ndim != 5:
        raise ValueError(f"fold_depth expects (B, D, H, W, C), got shape {x.shape}")
    b, d, h, w, c = x.shape
    return jnp.transpose(x, (0, 2, 3, 4, 1)).reshape(b, h, w, c * d)


def unfold_depth(y, depth: int):
    """Exact inverse of :func:`fold_depth`: ``(B, H, W, C*D) -> (B, D, H, W, C)``."""
    if y.ndim != 4 or y.shape[-1] % depth:
        raise ValueError(f"unfold_depth expects (B, H, W, C*{depth}), got shape {y.shape}")
    b, h, w, cd = y.shape
    return jnp.transpose(y.reshape(b, h, w, cd // depth, depth), (0, 4, 1, 2, 3))


OFFICIAL_EXPERTS = ("conv5", "conv3", "conv1", "avg3", "avg5")   # upstream MoDEConv, in its order (K = 5)
SMALL_EXPERTS = ("conv3", "conv1", "avg3")                          # the official experts that fit K = 3


def _parse_expert(name: str) -> tuple[str, int]:
    kind, k = name[:-1], name[-1:]
    if kind not in ("conv", "avg") or not k.isdigit() or int(k) % 2 == 0:
        raise ValueError(f"expert names are conv<k> or avg<k> with odd k, got {name!r}")
    return kind, int(k)


def _pad_to(kernel, size: int, ndim: int):
    """Zero-pad the ``ndim`` leading (spatial) axes of ``kernel`` symmetrically to ``size``."""
    p = (size - kernel.shape[0]) // 2
    return jnp.pad(kernel, [(p, p)] * ndim + [(0, 0)] * (kernel.ndim - ndim))


def _conv_same(x, kernel, ndim: int):
    """Stride-1 'SAME' convolution of channels-last ``x`` (B, *spatial, Cin) with ``kernel`` (*k, Cin, Cout)."""
    spatial = "DHW"[-ndim:]
    dn = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))
    return jax.lax.conv_general_dilated(x, kernel, (1,) * ndim, "SAME", dimension_numbers=dn)


class MoDEConv(nn.Module):
    """Mixture-of-diverse-experts conv with task-conditioned gating (RepMode / SparseSSP ``MoDEConv``).

    Gate: ``g = softmax_e(Dense(one_hot(task, num_tasks)).reshape(E, C_out))``, one weight per expert and output
    channel. Merged kernel (gated re-parameterisation): ``W_o = sum_e g[e, o] * pad_K(W_e)[..., o]``, with
    ``W_e`` the expert's ``k``-kernel (``conv<k>``) or its 1x1 weight times the uniform ``1/k**ndim`` average
    kernel (``avg<k>``: average pool with zero padding, then 1x1 conv). ``task`` is an int (one kernel for the whole
    batch) or an int array ``(B,)`` (one kernel per sample, as upstream in training). With ``multi_branch=True``
    each expert runs as its own branch (conv, or avg-pool then 1x1 conv) and the gated branch outputs are summed:
    the same function (the re-parameterisation identity), at ``E`` times the cost.
    """
    features: int
    kernel_size: int = 3
    ndim: int = 3
    num_tasks: int = 1
    experts: Sequence[str] = SMALL_EXPERTS
    use_bias: bool = True

    def _setup_params(self, in_features: int):
        if self.kernel_size % 2 == 0 or self.num_tasks < 1 or not self.experts:
            raise ValueError(f"need an odd kernel_size, num_tasks >= 1 and >= 1 expert, got {self.kernel_size}, "
                             f"{self.num_tasks}, {self.experts}")
        weights = []
        for name in self.experts:
            kind, k = _parse_expert(name)
            if k > self.kernel_size:
                raise ValueError(f"expert {name!r} is larger than the merged kernel size {self.kernel_size}")
            shape = ((k,) * self.ndim if kind == "conv" else ()) + (in_features, self.features)
            weights.append((kind, k, self.param(name, nn.initializers.lecun_normal(), shape)))
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        n_gate = len(self.experts) * self.features
        self.param("gate_kernel", nn.initializers.lecun_normal(), (self.num_tasks, n_gate))   # torch Linear gate
        self.param("gate_bias", nn.initializers.zeros, (n_gate,))
        return weights, bias

    def gates(self, task):
        """Softmax gate weights ``(..., E, C_out)`` for int task ids of any shape (call through ``apply``)."""
        task = jnp.asarray(task)
        if not jnp.issubdtype(task.dtype, jnp.integer):
            raise ValueError(f"task must hold integer task ids, got dtype {task.dtype}")
        prm = self.variables["params"]
        logits = jax.nn.one_hot(task, self.num_tasks) @ prm["gate_kernel"] + prm["gate_bias"]
        return jax.nn.softmax(logits.reshape(task.shape + (len(self.experts), self.features)), axis=-2)

    def _expert_kernels(self, weights):
        out = []
        for kind, k, w in weights:
            if kind == "avg":
                w = w * jnp.full((k,) * self.ndim + (1, 1), 1.0 / k ** self.ndim, w.dtype)
            out.append(_pad_to(w, self.kernel_size, self.ndim))
        return jnp.stack(out)                                     # (E, *K, Cin, Cout)

    def _merge(self, g, weights):
        """Gate-weighted sum of the expert kernels: ``(E, C_out)`` gates give one ``(*K, Cin, Cout)`` kernel,
        ``(B, E, C_out)`` gates one per sample."""
        sp, b = "xyz"[:self.ndim], "b" * (g.ndim - 2)
        return jnp.einsum(f"{b}eo,e{sp}io->{b}{sp}io", g, self._expert_kernels(weights))

    @nn.compact
    def __call__(self, x, task, multi_branch: bool = False):
        if x.ndim != self.ndim + 2:
            raise ValueError(f"MoDEConv(ndim={self.ndim}) expects (B, *spatial, C), got shape {x.shape}")
        weights, bias = self._setup_params(x.shape[-1])
        g = self.gates(task)
        task = jnp.asarray(task)
        if task.ndim not in (0, 1) or (task.ndim == 1 and task.shape[0] != x.shape[0]):
            raise ValueError(f"task must be a scalar or have shape (B,) = ({x.shape[0]},), got {task.shape}")
        if multi_branch:
            y = 0.0
            for e, (kind, k, w) in enumerate(weights):
                if kind == "conv":
                    branch = _conv_same(x, w, self.ndim)
                else:
                    pooled = nn.avg_pool(x, (k,) * self.ndim, (1,) * self.ndim, "SAME", count_include_pad=True)
                    branch = jnp.einsum("...i,io->...o", pooled, w)
                ge = g[..., e, :] if task.ndim == 0 else g[:, e, :].reshape((-1,) + (1,) * self.ndim + (self.features,))
                y = y + ge * branch
        else:
            merged = self._merge(g, weights)
            y = _conv_same(x, merged, self.ndim) if task.ndim == 0 else \
                jax.vmap(lambda xi, wi: _conv_same(xi[None], wi, self.ndim)[0])(x, merged)
        return y + bias if bias is not None else y

    def merged_kernel(self, task):
        """The re-parameterised single kernel ``(*K, Cin, Cout)`` for one task id (call through ``apply``)."""
        prm = self.variables["params"]
        weights = [_parse_expert(name) + (prm[name],) for name in self.experts]
        return self._merge(self.gates(jnp.asarray(task)), weights)


class _Conv(nn.Module):
    """A plain ``nn.Conv`` (``experts is None``; ``task`` ignored) or a :class:`MoDEConv` of the same size."""
    features: int
    kernel_size: int = 3
    ndim: int = 3
    experts: Optional[Sequence[str]] = None
    num_tasks: int = 1

    @nn.compact
    def __call__(self, x, task=None):
        if self.experts is None:
            return nn.Conv(self.features, (self.kernel_size,) * self.ndim)(x)
        if task is None:
            raise ValueError("a MoDE network needs a task id")
        return MoDEConv(self.features, self.kernel_size, self.ndim, self.num_tasks, tuple(self.experts))(x, task)


class _Block(nn.Module):
    """Two ``conv-ReLU`` layers (3D or 2D by ``ndim``); MoDE convs when ``experts`` is given."""
    features: int
    ndim: int = 3
    experts: Optional[Sequence[str]] = None
    num_tasks: int = 1
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x, task=None):
        for _ in range(2):
            x = nn.relu(_Conv(self.features, self.kernel_size, self.ndim, self.experts, self.num_tasks)(x, task))
        return x


class _Encoder3D(nn.Module):
    widths: Sequence[int]
    experts: Optional[Sequence[str]] = None
    num_tasks: int = 1
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x, task=None):
        skips = []
        for w in self.widths[:-1]:
            x = _Block(w, 3, self.experts, self.num_tasks, self.kernel_size)(x, task)
            skips.append(x)
            x = nn.max_pool(x, (2, 2, 2), (2, 2, 2))
        return _Block(self.widths[-1], 3, self.experts, self.num_tasks, self.kernel_size)(x, task), skips


def _check_input(x, levels: int):
    if x.ndim != 5:
        raise ValueError(f"expected (B, D, H, W, C) input, got shape {x.shape}")
    if any(s % 2 ** levels for s in x.shape[1:4]):
        raise ValueError(f"D, H, W = {x.shape[1:4]} must be divisible by 2**levels = {2 ** levels}")


class SparseSSP(nn.Module):
    """SparseSSP "3e2d": nearest z-upsampling, 3D encoder, depth folded into channels, 2D decoder, unfold.

    Input: the sparse TL stack ``(B, D/r, H, W, 1)``; output ``(B, depth, H, W, out_channels)``. ``width`` is the
    first level's channels (32 upstream), ``levels`` the number of down-samplings (4 upstream). With ``experts``
    (e.g. :data:`SMALL_EXPERTS` or :data:`OFFICIAL_EXPERTS` with ``mode_kernel=5``) every block conv, fold gate
    and the head is a :class:`MoDEConv` routed by ``task`` (int or ``(B,)`` ints below ``num_tasks``), as
    upstream; the up/down-sampling layers stay plain (as upstream).
    """
    depth: int
    width: int = 8
    levels: int = 2
    gate_kernel: int = 3
    out_channels: int = 1
    experts: Optional[Sequence[str]] = None
    num_tasks: int = 1
    mode_kernel: int = 3

    @nn.compact
    def __call__(self, x_sparse, task=None):
        x = upsample_depth(x_sparse, self.depth, axis=1)
        _check_input(x, self.levels)
        ex, nt, k = self.experts, self.num_tasks, self.mode_kernel
        gate_k = self.gate_kernel if ex is None else k
        widths = [self.width * 2 ** i for i in range(self.levels + 1)]
        z, skips = _Encoder3D(widths, ex, nt, k)(x, task)
        z = nn.relu(_Conv(widths[-1], gate_k, 2, ex, nt)(fold_depth(z), task))   # bottleneck gate
        for i in reversed(range(self.levels)):
            z = nn.ConvTranspose(widths[i], (2, 2), (2, 2))(z)
            s = nn.relu(_Conv(widths[i], gate_k, 2, ex, nt)(fold_depth(skips[i]), task))  # skip gate
            z = _Block(widths[i], 2, ex, nt, k)(jnp.concatenate([z, s], axis=-1), task)
        y = _Conv(self.depth * self.out_channels, 3 if ex is None else k, 2, ex, nt)(z, task)
        return unfold_depth(y, self.depth)


class UNet3D(nn.Module):
    """Pure 3D U-Net baseline on the nearest-upsampled stack (same encoder as :class:`SparseSSP`)."""
    depth: int
    width: int = 8
    levels: int = 2
    out_channels: int = 1

    @nn.compact
    def __call__(self, x_sparse):
        x = upsample_depth(x_sparse, self.depth, axis=1)
        _check_input(x, self.levels)
        widths = [self.width * 2 ** i for i in range(self.levels + 1)]
        z, skips = _Encoder3D(widths)(x)
        for i in reversed(range(self.levels)):
            z = nn.ConvTranspose(widths[i], (2, 2, 2), (2, 2, 2))(z)
            z = _Block(widths[i], 3)(jnp.concatenate([z, skips[i]], axis=-1))
        return nn.Conv(self.out_channels, (3, 3, 3))(z)


def forward_flops(model: nn.Module, params, *inputs) -> float:
    """FLOPs of one jit-compiled forward pass ``model.apply(params, *inputs)`` by XLA's ``cost_analysis`` (NaN when
    the backend gives none)."""
    cost = jax.jit(model.apply).lower(params, *inputs).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def r2_score(pred, target) -> float:
    """Coefficient of determination ``1 - SSE/SST`` over all voxels (scikit-learn's, on the flattened volumes)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    return float(sklearn.metrics.r2_score(target.ravel(), pred.ravel()))
