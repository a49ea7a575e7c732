"""flax.linen layers that serve compressed weights with the Pallas kernels.

* `SparseDense`: a block-sparse ``Dense`` (`BlockSparse` weight, `block_sparse_matmul`);
* `QuantDense`: a W4/W8 ``Dense``, dense (`QuantizedWeight`, `quantized_matmul`) or block-sparse
  (`QuantBlockSparse`, `block_sparse_quantized_matmul`, GQSA W4 + S%).

Variables: the float arrays a fine-tune may train live in ``"params"`` (block values, or the
quantization scales, and the bias); the integer arrays (block indices, packed codes, zero points)
live in the ``"compressed"`` collection, so optax never sees them. Build a layer from a trained
(masked) flax ``Dense`` with ``from_dense``; it returns ``(module, variables)``.

``use_kernel=None`` runs the kernel on GPU/TPU and the plain-jnp reference on CPU; ``True`` forces the
kernel (interpret mode on CPU), ``False`` the reference. `apply_with_layers` runs an existing flax model
with some of its ``Dense`` layers served by such layers (no model code changes).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_choice
from sparsejax.kernels.block_sparse import (
    BlockSparse,
    block_sparse_matmul,
    block_sparse_matmul_reference,
    to_block_sparse,
)
from sparsejax.kernels.quantized import (
    QuantBlockSparse,
    QuantizedWeight,
    block_sparse_quantized_matmul,
    block_sparse_quantized_matmul_reference,
    quantized_from_codes,
    quantized_matmul,
    quantized_matmul_reference,
    to_quant_block_sparse,
)

__all__ = ["SparseDense", "QuantDense", "apply_with_layers"]


def _use_kernel(flag: bool | None) -> bool:
    return jax.default_backend() != "cpu" if flag is None else bool(flag)


def _dense_params(params, name: str = "params"):
    if not isinstance(params, dict) or "kernel" not in params:
        raise ValueError(f"{name} must be a flax Dense params dict with a 'kernel' (and optional 'bias'), "
                         f"got {type(params).__name__} {list(params) if isinstance(params, dict) else ''}")
    kernel = params["kernel"]
    check_array(f"{name}['kernel']", kernel, ndim=2, dtype_kind="f")
    bias = params.get("bias")
    if bias is not None:
        check_array(f"{name}['bias']", bias, shape=(kernel.shape[1],), dtype_kind="f")
    return kernel, bias


def _bias_out(y, bias):
    return y if bias is None else y + bias.astype(y.dtype)


def _default_pattern(kb: int, nb: int, nnzb: int, max_per_col: int):
    """A valid pattern for ``init`` (real ones come from ``from_dense``): blocks dealt round-robin over
    the column tiles, rows ascending within a tile."""
    if not 0 <= nnzb <= kb * nb:
        raise ValueError(f"nnzb must be in [0, {kb * nb}] for a {kb} x {nb} block grid, got {nnzb}")
    idx = np.arange(nnzb)
    cols, rows = idx % nb, idx // nb
    counts = np.bincount(cols, minlength=nb)
    if counts.max(initial=0) > max_per_col:
        raise ValueError(f"max_blocks_per_col={max_per_col} is below ceil(nnzb / column tiles) = {counts.max()}")
    order = np.lexsort((rows, cols))
    return rows[order].astype(np.int32), np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


class SparseDense(nn.Module):
    """``y = x @ W + b`` with a block-sparse ``W (in_features, features)`` of ``nnzb`` kept blocks."""

    in_features: int
    features: int
    block_shape: tuple[int, int]
    nnzb: int
    max_blocks_per_col: int
    use_bias: bool = True
    use_kernel: bool | None = None
    param_dtype: Any = jnp.float32

    def weight(self) -> BlockSparse:
        bk, bn = self.block_shape
        kb, nb = -(-self.in_features // bk), -(-self.features // bn)
        rows0, ptr0 = _default_pattern(kb, nb, self.nnzb, self.max_blocks_per_col)
        values = self.param("values", nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=(0,)),
                            (self.nnzb, bk, bn), self.param_dtype)
        rows = self.variable("compressed", "block_rows", lambda: jnp.asarray(rows0)).value
        ptr = self.variable("compressed", "block_ptr", lambda: jnp.asarray(ptr0)).value
        return BlockSparse(values, rows, ptr, (self.in_features, self.features), tuple(self.block_shape),
                           self.max_blocks_per_col)

    @nn.compact
    def __call__(self, x):
        bs = self.weight()
        bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype) if self.use_bias else None
        fn = block_sparse_matmul if _use_kernel(self.use_kernel) else block_sparse_matmul_reference
        return _bias_out(fn(x, bs), bias)

    @classmethod
    def from_dense(cls, params, mask, block_shape: tuple[int, int], *, use_kernel: bool | None = None,
                   dtype=None):
        """``(module, variables)`` serving ``params['kernel'] * mask`` (a whole-block mask, e.g. from
        `sparsejax.structured.block_mask`) and ``params['bias']``."""
        kernel, bias = _dense_params(params)
        check_array("mask", mask, shape=tuple(kernel.shape))
        bs = to_block_sparse(kernel, block_shape, mask, dtype=dtype)
        module = cls(int(kernel.shape[0]), int(kernel.shape[1]), tuple(bs.block_shape), bs.nnzb,
                     bs.max_blocks_per_col, use_bias=bias is not None, use_kernel=use_kernel,
                     param_dtype=bs.values.dtype)
        p = {"values": bs.values}
        if bias is not None:
            p["bias"] = jnp.asarray(bias)
        return module, {"params": p, "compressed": {"block_rows": bs.block_rows, "block_ptr": bs.block_ptr}}


class QuantDense(nn.Module):
    """``y = x @ W + b`` with a W4/W8 group-quantized ``W``: ``layout="dense"`` (groups of ``g`` rows per
    column) or ``"block"`` (kept ``block_shape`` blocks, one group per block column)."""

    in_features: int
    features: int
    bits: int
    layout: str = "dense"
    g: int = 128
    block_shape: tuple[int, int] = (32, 32)
    nnzb: int = 0
    max_blocks_per_col: int = 0
    padded_shape: tuple[int, int] = (0, 0)
    use_bias: bool = True
    use_kernel: bool | None = None
    scale_dtype: Any = jnp.float16

    def weight(self):
        check_choice("layout", self.layout, ("dense", "block"))
        shape = (self.in_features, self.features)
        if self.layout == "dense":
            kp, np_ = self.padded_shape
            ppb = 8 // self.bits
            scales = self.param("scales", nn.initializers.ones, (kp // self.g, np_), self.scale_dtype)
            packed = self.variable("compressed", "packed", lambda: jnp.zeros((kp // ppb, np_), jnp.uint8)).value
            zeros = self.variable("compressed", "zeros", lambda: jnp.zeros((kp // self.g, np_), jnp.uint8)).value
            return QuantizedWeight(packed, scales, zeros, self.bits, self.g, shape)
        bk, bn = self.block_shape
        kb, nb = -(-self.in_features // bk), -(-self.features // bn)
        rows0, ptr0 = _default_pattern(kb, nb, self.nnzb, self.max_blocks_per_col)
        scales = self.param("scales", nn.initializers.ones, (self.nnzb, bn), self.scale_dtype)
        packed = self.variable("compressed", "packed",
                               lambda: jnp.zeros((self.nnzb, bk, bn // (8 // self.bits)), jnp.uint8)).value
        zeros = self.variable("compressed", "zeros", lambda: jnp.zeros((self.nnzb, bn), jnp.uint8)).value
        rows = self.variable("compressed", "block_rows", lambda: jnp.asarray(rows0)).value
        ptr = self.variable("compressed", "block_ptr", lambda: jnp.asarray(ptr0)).value
        return QuantBlockSparse(packed, scales, zeros, rows, ptr, self.bits, shape, tuple(self.block_shape),
                                self.max_blocks_per_col)

    @nn.compact
    def __call__(self, x):
        w = self.weight()
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32) if self.use_bias else None
        kernel = _use_kernel(self.use_kernel)
        if self.layout == "dense":
            fn = quantized_matmul if kernel else quantized_matmul_reference
        else:
            fn = block_sparse_quantized_matmul if kernel else block_sparse_quantized_matmul_reference
        return _bias_out(fn(x, w), bias)

    @classmethod
    def from_format(cls, w, *, bias=None, use_kernel: bool | None = None):
        """``(module, variables)`` serving an existing `QuantizedWeight` or `QuantBlockSparse`."""
        if isinstance(w, QuantizedWeight):
            return cls._wrap(w, bias, use_kernel, layout="dense", g=w.g, padded_shape=w.padded_shape)
        if isinstance(w, QuantBlockSparse):
            return cls._wrap(w, bias, use_kernel, layout="block", block_shape=tuple(w.block_shape), nnzb=w.nnzb,
                             max_blocks_per_col=w.max_blocks_per_col)
        raise TypeError(f"w must be a QuantizedWeight or a QuantBlockSparse, got {type(w).__name__}")

    @classmethod
    def _wrap(cls, w, bias, use_kernel, **fields):
        if bias is not None:
            check_array("bias", bias, shape=(w.shape[1],), dtype_kind="f")
        module = cls(int(w.shape[0]), int(w.shape[1]), w.bits, use_bias=bias is not None, use_kernel=use_kernel,
                     scale_dtype=w.scales.dtype, **fields)
        p = {"scales": w.scales}
        if bias is not None:
            p["bias"] = jnp.asarray(bias, jnp.float32)
        comp = {"packed": w.packed, "zeros": w.zeros}
        if isinstance(w, QuantBlockSparse):
            comp.update(block_rows=w.block_rows, block_ptr=w.block_ptr)
        return module, {"params": p, "compressed": comp}

    @classmethod
    def from_codes(cls, codes, scale, zero, bits: int, g: int, *, bias=None, mask=None,
                   use_kernel: bool | None = None, scale_dtype=jnp.float16):
        """``(module, variables)`` for frozen integer ``codes (K, N)`` with per-group ``scale``/``zero``
        ``(K/g, N)`` (dense layout). Entries where ``mask`` is False get the code ``zero`` and so
        dequantize to exactly 0 (GQSA's pruned groups)."""
        if mask is not None:
            check_array("mask", mask, shape=tuple(codes.shape))
            z_full = np.repeat(np.round(np.asarray(zero)), g, axis=0).astype(np.asarray(codes).dtype)
            codes = np.where(np.asarray(mask), np.asarray(codes), z_full)
        w = quantized_from_codes(codes, scale, zero, bits, g, scale_dtype=scale_dtype)
        return cls.from_format(w, bias=bias, use_kernel=use_kernel)

    @classmethod
    def from_dense(cls, params, bits: int, *, g: int = 128, mask=None, block_shape: tuple[int, int] | None = None,
                   use_kernel: bool | None = None, scale_dtype=jnp.float16):
        """``(module, variables)`` quantizing ``params['kernel'] * mask`` with min/max group parameters:
        dense layout with groups of ``g`` rows, or, with ``block_shape``, the kept blocks of ``mask``."""
        kernel, bias = _dense_params(params)
        if block_shape is None:
            from sparsejax.quant.group_quant import minmax_params, quantize

            w = jnp.asarray(kernel, jnp.float32)
            if mask is not None:
                check_array("mask", mask, shape=tuple(kernel.shape))
                w = jnp.where(jnp.asarray(mask), w, 0.0)
            scale, zero = minmax_params(w, bits, g)
            return cls.from_codes(quantize(w, scale, zero, bits, g), scale, zero, bits, g, bias=bias,
                                  use_kernel=use_kernel, scale_dtype=scale_dtype)
        q = to_quant_block_sparse(kernel, block_shape, bits, mask, scale_dtype=scale_dtype)
        return cls.from_format(q, bias=bias, use_kernel=use_kernel)


def apply_with_layers(model: nn.Module, variables, *args, layers: dict, **kwargs):
    """``model.apply(variables, *args)`` with every ``nn.Dense`` whose module path (tuple of names,
    e.g. ``("block_0", "mlp", "dense_0")``) is a key of ``layers`` computed by ``layers[path] =
    (module, module_variables)`` instead (e.g. a `SparseDense` or `QuantDense` from ``from_dense``).
    Raises ``ValueError`` if some path of ``layers`` is never called."""
    if not isinstance(layers, dict):
        raise TypeError(f"layers must be a dict {{path tuple: (module, variables)}}, got {type(layers).__name__}")
    used = set()

    def intercept(next_fun, a, kw, context):
        if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
            key = tuple(context.module.path)
            if key in layers:
                used.add(key)
                module, module_vars = layers[key]
                return module.apply(module_vars, a[0])
        return next_fun(*a, **kw)

    with nn.intercept_methods(intercept):
        out = model.apply(variables, *args, **kwargs)
    missing = set(layers) - used
    if missing:
        raise ValueError(f"layers has paths that the model never calls as nn.Dense: {sorted(missing)}")
    return out
