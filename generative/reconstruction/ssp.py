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

Deviations: single task (no RepMode MoDE experts / task embedding, which are orthogonal to the sparse-view
claim); plain ``conv-ReLU-conv-ReLU`` blocks with max-pool down-sampling and stride-2 transposed-conv
up-sampling (instead of MoDE blocks with batch norm); channels-last layout ``(B, D, H, W, C)``; the gate kernel
is a parameter (default 3 to keep CPU cost low; the official value is 5). The official skips all fold to the
same ``w*D`` channels, which holds here too (each level halves D and doubles C).
"""
from __future__ import annotations

from typing import Sequence

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


class _Block(nn.Module):
    """Two ``conv-ReLU`` layers (3D or 2D by ``ndim``)."""
    features: int
    ndim: int = 3

    @nn.compact
    def __call__(self, x):
        for _ in range(2):
            x = nn.relu(nn.Conv(self.features, (3,) * self.ndim)(x))
        return x


class _Encoder3D(nn.Module):
    widths: Sequence[int]

    @nn.compact
    def __call__(self, x):
        skips = []
        for w in self.widths[:-1]:
            x = _Block(w, 3)(x)
            skips.append(x)
            x = nn.max_pool(x, (2, 2, 2), (2, 2, 2))
        return _Block(self.widths[-1], 3)(x), skips


def _check_input(x, levels: int):
    if x.ndim != 5:
        raise ValueError(f"expected (B, D, H, W, C) input, got shape {x.shape}")
    if any(s % 2 ** levels for s in x.shape[1:4]):
        raise ValueError(f"D, H, W = {x.shape[1:4]} must be divisible by 2**levels = {2 ** levels}")


class SparseSSP(nn.Module):
    """SparseSSP "3e2d": nearest z-upsampling, 3D encoder, depth folded into channels, 2D decoder, unfold.

    Input: the sparse TL stack ``(B, D/r, H, W, 1)``; output ``(B, depth, H, W, out_channels)``. ``width`` is the
    first level's channels (32 upstream), ``levels`` the number of down-samplings (4 upstream).
    """
    depth: int
    width: int = 8
    levels: int = 2
    gate_kernel: int = 3
    out_channels: int = 1

    @nn.compact
    def __call__(self, x_sparse):
        x = upsample_depth(x_sparse, self.depth, axis=1)
        _check_input(x, self.levels)
        widths = [self.width * 2 ** i for i in range(self.levels + 1)]
        z, skips = _Encoder3D(widths)(x)
        z = nn.relu(nn.Conv(widths[-1], (self.gate_kernel,) * 2)(fold_depth(z)))   # bottleneck gate
        for i in reversed(range(self.levels)):
            z = nn.ConvTranspose(widths[i], (2, 2), (2, 2))(z)
            s = nn.relu(nn.Conv(widths[i], (self.gate_kernel,) * 2)(fold_depth(skips[i])))  # skip gate
            z = _Block(widths[i], 2)(jnp.concatenate([z, s], axis=-1))
        y = nn.Conv(self.depth * self.out_channels, (3, 3))(z)
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


def forward_flops(model: nn.Module, params, x) -> float:
    """FLOPs of one jit-compiled forward pass by XLA's ``cost_analysis`` (NaN when the backend gives none)."""
    cost = jax.jit(model.apply).lower(params, x).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def r2_score(pred, target) -> float:
    """Coefficient of determination ``1 - SSE/SST`` over all voxels (scikit-learn's, on the flattened volumes)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    return float(sklearn.metrics.r2_score(target.ravel(), pred.ravel()))
