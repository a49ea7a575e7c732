"""FLoRA: fine-tuning in a Tucker low-rank core space that keeps a weight's N-D structure (P27;
Si et al.; code ``SJTU-DeepVisionLab/FLoRA``, ``flora/layers.py``).

For a weight with modes ``(d_1, ..., d_N)`` the update is the Tucker reconstruction

    dW = scale * G x_1 A_1 x_2 A_2 ... x_N A_N,   G in R^{r_1 x ... x r_N},  A_i in R^{d_i x r_i},

computed, as in the code, by successive ``tensordot`` contractions of the core's leading mode with
each factor (:func:`tucker_delta`). Initialisation as in ``FLoRALayer.init_parameters``: the core
is zero (so a fresh adapter is a no-op) and each factor is ``kaiming_normal_(a = sqrt(3))`` on the
``(d_i, r_i)`` matrix, i.e. ``N(0, 1 / (2 r_i))`` (torch's fan-in of a 2-D tensor is its second
dimension). Trainable entries: ``prod(r_i) + sum(d_i r_i)`` (:func:`flora_num_params`).

Mode order. The code orders the modes ``[in, out, k_h, k_w]`` (so the official conv default
``r = [16, 16, 2, 2]`` with ``scale = 4`` means ``r_in = r_out = 16``, ``r_kh = r_kw = 2``) and then
transposes to torch's ``(out, in, k_h, k_w)``. Flax kernels are ``(k_h, k_w, in, out)`` (conv) and
``(in, out)`` (dense), so :func:`flora` keeps the code's mode order for the ranks and the factors
(``ranks[0]`` for ``in``, ``ranks[1]`` for ``out``, then the spatial modes) and transposes the
reconstructed ``(in, out, k_h, k_w)`` tensor to ``(k_h, k_w, in, out)`` explicitly. Dense kernels
(``N = 2``) give ``dW = scale * A_1 G A_2^T``.

Deviations: the official ``Embedding`` adapter uses dims ``[1, D]`` (one learned vector added to
every token) with inconsistent asserts (``N == 1`` but two dims); here an embedding table
``(V, D)`` is a 2-mode tensor like a dense kernel (``dW = scale A_1 G A_2^T``, modes
``[vocab, dim]``). The dropout on the adapter input (``drop_rate``, 0.01 in ``example.py``)
is not applied: the update is merged into the weight (``x W + x dW`` equals the code's
``base(x) + op(x, dW)`` without dropout).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int, check_number
from sparsejax.llm.adapters import Adapter, get_leaf, match_paths

CONV_RANKS = (16, 16, 2, 2)
CONV_SCALE = 4.0


def tucker_delta(core: jax.Array, factors: Sequence[jax.Array], scale: float = 1.0) -> jax.Array:
    """``scale * core x_1 factors[0] ... x_N factors[N-1]``: a tensor of shape ``(d_1, ..., d_N)``
    for ``core`` ``(r_1, ..., r_N)`` and ``factors[i]`` ``(d_i, r_i)``."""
    if core.ndim != len(factors):
        raise ValueError(f"core has {core.ndim} modes but {len(factors)} factors were given")
    for i, a in enumerate(factors):
        if a.ndim != 2 or a.shape[1] != core.shape[i]:
            raise ValueError(f"factor {i} must have shape (d_{i}, {core.shape[i]}), got {tuple(a.shape)}")
    out = core
    for a in factors:  # contract the leading (current) mode; the new mode d_i goes last
        out = jnp.tensordot(out, a, axes=[[0], [1]])
    return scale * out


def flora_num_params(dims: Sequence[int], ranks: Sequence[int]) -> int:
    """Trainable entries of one FLoRA adapter: ``prod(ranks) + sum(d_i * r_i)``."""
    return int(math.prod(ranks) + sum(d * r for d, r in zip(dims, ranks)))


def _modes(shape: tuple[int, ...]) -> tuple[list[int], tuple[int, ...]]:
    """Code mode order ``[in, out, *spatial]`` for a flax kernel, and the transpose back to flax."""
    if len(shape) == 2:
        return [shape[0], shape[1]], (0, 1)
    if len(shape) >= 3:
        n_sp = len(shape) - 2
        dims = [shape[-2], shape[-1], *shape[:n_sp]]
        # reconstructed axes (in, out, s_1..s_k) -> flax (s_1..s_k, in, out)
        return dims, tuple(range(2, 2 + n_sp)) + (0, 1)
    raise ValueError(f"FLoRA adapts kernels of 2 or more axes, got shape {shape}")


@dataclasses.dataclass(frozen=True)
class FLoRADelta:
    """``dW = transpose(scale * G x_1 A_1 ... x_N A_N, perm)`` (a value-hashable delta function)."""

    scale: float
    perm: tuple[int, ...]

    def __call__(self, p, w):
        return jnp.transpose(tucker_delta(p["G"], p["factors"], self.scale), self.perm).astype(w.dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _init_factors(key, dims: tuple, ranks: tuple, dtype) -> list:
    keys = jax.random.split(key, len(dims))
    return [jax.random.normal(k, (d, r), dtype) / math.sqrt(2 * r) for k, d, r in zip(keys, dims, ranks)]


def flora(params, ranks: Sequence[int] | dict, targets: str | Sequence[str], key: jax.Array, *,
          scale: float = CONV_SCALE) -> Adapter:
    """FLoRA adapters on the kernels matching ``targets``. ``ranks`` is one rank list in the code's
    mode order ``[r_in, r_out, r_kh, r_kw]`` (conv) / ``[r_in, r_out]`` (dense, embedding), or a
    dict ``{ndim: ranks}`` to give conv and dense kernels their own ranks. Core zero, factors
    ``N(0, 1/(2 r_i))``."""
    scale = check_number("scale", scale)
    out, fns = {}, {}
    for i, path in enumerate(match_paths(params, targets)):
        w = get_leaf(params, path)
        dims, perm = _modes(tuple(w.shape))
        r = ranks.get(w.ndim) if isinstance(ranks, dict) else ranks
        if r is None or len(r) != len(dims):
            raise ValueError(f"{path}: kernel {tuple(w.shape)} has {len(dims)} modes {dims}, ranks {r} do not match")
        r = [check_int(f"ranks of {path}", x, minimum=1) for x in r]
        factors = _init_factors(jax.random.fold_in(key, i), tuple(dims), tuple(r), jnp.dtype(w.dtype))
        out[path] = {"G": jnp.zeros(r, w.dtype), "factors": factors}
        fns[path] = FLoRADelta(scale, perm)
    return Adapter(out, fns)
