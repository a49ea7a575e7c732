"""Shared pieces of the Pallas kernels: backend selection, tile sizes, padding, export for lowering checks.

Backends (argument ``backend`` of every kernel):

* ``"triton"``: the kernel body for NVIDIA GPUs, lowered by Pallas -> Triton with explicit
  ``pallas.triton.CompilerParams(num_warps, num_stages)`` (the default GPU backend of jax 0.10 is
  Mosaic GPU, which these kernels do not target: its ``pl.pallas_call`` path is deprecated and
  needs warpgroup-shaped layouts; see the kernels' docstrings);
* ``"tpu"``: the Mosaic TPU body (block-sparse kernels use ``PrefetchScalarGridSpec``);
* ``None``: ``"tpu"`` on a TPU host, ``"triton"`` otherwise.

``interpret=None`` runs the chosen body in Pallas interpret mode on a CPU host and compiles it
elsewhere; ``interpret=True`` forces interpret mode (tests), ``False`` forces compilation (lowering
checks with ``jax.export(..., platforms=["cuda"])`` on a CPU host).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_choice, check_int

BACKENDS = ("triton", "tpu")
# Triton's tl.dot needs every tile dimension >= 16 and a power of two.
MIN_TILE = 16
TILES = (16, 32, 64, 128)
TRITON_CUSTOM_CALL = "__gpu$xla.gpu.triton"
TPU_CUSTOM_CALL = "tpu_custom_call"


def resolve_backend(backend: str | None) -> str:
    """``backend`` or the host default (``"tpu"`` on TPU, ``"triton"`` elsewhere)."""
    if backend is None:
        return "tpu" if jax.default_backend() == "tpu" else "triton"
    return check_choice("backend", backend, BACKENDS)


def resolve_interpret(interpret: bool | None) -> bool:
    """``interpret=None`` means: interpret on a CPU host (Pallas cannot compile there), compile elsewhere."""
    if interpret is None:
        return jax.default_backend() == "cpu"
    if not isinstance(interpret, (bool, np.bool_)):
        raise TypeError(f"interpret must be a bool or None, got {interpret!r}")
    return bool(interpret)


def compiler_params(backend: str, *, num_warps: int = 4, num_stages: int = 2, tpu_semantics=None):
    """Explicit compiler parameters of ``backend`` (Triton on GPU, Mosaic on TPU)."""
    if backend == "triton":
        from jax.experimental.pallas import triton as pltriton

        return pltriton.CompilerParams(num_warps=num_warps, num_stages=num_stages)
    from jax.experimental.pallas import tpu as pltpu

    return pltpu.CompilerParams(dimension_semantics=tpu_semantics)


def is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def check_tile(name: str, value, *, minimum: int = MIN_TILE) -> int:
    """A tile size: an int, a power of two and ``>= minimum`` (16 for Triton's ``tl.dot``)."""
    value = check_int(name, value, minimum=minimum)
    if not is_pow2(value):
        raise ValueError(f"{name} must be a power of two, got {value}")
    return value


def default_block_m(m: int) -> int:
    """Rows of x per program: the next power of two of ``M`` clipped to [16, 128]. Decode (M <= 16)
    gets one 16-row tile (the smallest tensor-core tile); prefill gets 128-row tiles."""
    return int(min(128, max(MIN_TILE, 1 << max(0, int(m - 1).bit_length()))))


def check_compiled_tiles(backend: str, interpret: bool, **tiles: int) -> None:
    """Tile constraints of the compiled backends (interpret mode takes any size): Triton's ``tl.dot``
    needs every MMA dimension >= 16; Mosaic TPU needs the lane (last) dimensions to be multiples of 128.
    ``tiles`` maps a name to a size; names ending in ``_lane`` are TPU lane dimensions."""
    if interpret:
        return
    for name, size in tiles.items():
        label = name.removesuffix("_lane")
        if backend == "triton" and size < MIN_TILE:
            raise ValueError(f"{label}={size}: the Triton kernel needs MMA tiles >= {MIN_TILE}")
        if backend == "tpu" and name.endswith("_lane") and size % 128:
            raise ValueError(f"{label}={size}: the TPU kernel needs lane tiles that are multiples of 128")


def pick_block_m(m: int, block_m: int | None) -> int:
    return default_block_m(m) if block_m is None else check_tile("block_m", block_m)


def largest_tile(n: int, cap: int = 128) -> int:
    """Largest power of two ``<= cap`` that divides ``n`` (``n`` a multiple of 16)."""
    t = cap
    while t > MIN_TILE and n % t:
        t //= 2
    return t


def block_grid(shape: tuple[int, int], block_shape: tuple[int, int]) -> tuple[int, int]:
    """Number of ``block_shape`` blocks along each axis of ``shape`` after padding to whole blocks."""
    return (-(-shape[0] // block_shape[0]), -(-shape[1] // block_shape[1]))


def round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def pad_axis(x: jax.Array, axis: int, size: int) -> jax.Array:
    """Zero-pad ``axis`` of ``x`` to length ``size``."""
    extra = size - x.shape[axis]
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths)


def check_activations(x, k: int, name: str = "x") -> jax.Array:
    """``x`` of shape ``(..., K)`` with a floating dtype (bf16/f16/f32)."""
    check_array(name, x, dtype_kind="f")
    if x.ndim < 1 or x.shape[-1] != k:
        raise ValueError(f"{name} must have shape (..., {k}) to match the weight's K={k}, got {tuple(x.shape)}")
    if x.dtype not in (jnp.bfloat16, jnp.float16, jnp.float32):
        raise TypeError(f"{name} must be bfloat16, float16 or float32, got {x.dtype}")
    return x


def export_text(fn, *args, platform: str) -> str:
    """StableHLO text of ``jax.export(jax.jit(fn), platforms=[platform])`` on abstract ``args``.

    This runs the real Pallas -> Triton / Mosaic lowering on a CPU host (not the final PTX or TPU
    compile). The Pallas custom calls carry no export compatibility guarantee, so that check is off.
    """
    from jax import export

    checks = [export.DisabledSafetyCheck.custom_call(t) for t in (TRITON_CUSTOM_CALL, TPU_CUSTOM_CALL,
                                                                 "mosaic_gpu", "mosaic_gpu_v2")]
    exp = export.export(jax.jit(fn), platforms=[platform], disabled_checks=checks)(*args)
    return exp.mlir_module()
