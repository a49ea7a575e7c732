"""GQSA (P3): group quantization + group sparsity with a two-stage optimisation.

Weights ``(K, N)`` (flax ``Dense`` layout) are pruned in groups of ``g`` consecutive input weights
per output column (the same groups carry one scale and one zero point, GQSA Sec. 3), the pruned
fraction being ``sparsity`` of the groups of every column (equal row lengths in the BSR layout).
Groups are ranked by the Hessian-diagonal salience ``sum_{i in group} w_i^2 [X^T X]_ii`` of the
layer-wise reconstruction ``||X W - X W_hat||^2`` (the second-order criterion GQSA inherits from
OBS / SparseGPT, restricted to its diagonal).

Stage 1, BQPO (block-wise quantization-pruning optimisation): for each transformer block in turn,
the kept weights and their group scales / zero points are trained (straight-through rounding, fixed
sparsity pattern) to minimise the MSE between the compressed block's output on the compressed
model's activations and the full-precision block's output (block reconstruction loss).
Stage 2, E2E-OQP (end-to-end optimised quantization-pruning): the integer codes are frozen and only
the quantization parameters (scales, zero points) are trained on the end-to-end task loss.

Storage (`GQSAWeight`): per output column the kept groups' packed codes (``g * bits / 8`` bytes each),
a float16 scale, a uint8 zero point and a group index (uint8 for up to 256 groups); its footprint
is the exact byte count of these arrays (`gqsa_nbytes`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.core.tree import select, check_like
from sparsejax.core.validation import (
    check_array, check_index_range, check_int, check_choice, check_callable, check_type,
)
from sparsejax.quant.group_quant import fake_quantize, minmax_params, quantize, round_ste
from sparsejax.quant.packing import pack_codes, unpack_codes, SUPPORTED_BITS
from sparsejax.structured.group import group_mask, index_dtype, is_group_sparse, kept_group_slots

_is_none = lambda x: x is None  # noqa: E731


def group_salience(w: jax.Array, feat_sq: jax.Array | None, g: int) -> jax.Array:
    """Per-group salience ``sum_{i in group} w_i^2 h_i`` with ``h = diag(X^T X)`` (``feat_sq``, shape
    ``(K,)``; ``None`` -> plain group norm squared). Shape ``(N, G)`` as `group_norms`."""
    w = jnp.asarray(w, jnp.float32)
    h = jnp.ones(w.shape[0]) if feat_sq is None else jnp.asarray(feat_sq, jnp.float32)
    if h.shape != (w.shape[0],):
        raise ValueError(f"feat_sq shape {h.shape} != (K,) = {(w.shape[0],)}")
    if w.shape[0] % g:
        raise ValueError(f"K={w.shape[0]} is not divisible by the group size g={g}")
    s = (jnp.square(w) * h[:, None]).reshape(w.shape[0] // g, g, w.shape[1]).sum(1)
    return s.T


def gqsa_masks(params, g: int, sparsity: float, feat_sq=None, predicate=None):
    """Balanced group masks (``sparsity`` of the groups of every output column pruned) for the 2-D
    sparsifiable leaves, ranked by `group_salience`. ``feat_sq``: tree like ``params`` with
    ``diag(X^T X)`` of each layer's input (or ``None``)."""
    chosen = select(params, predicate)
    feats = jax.tree_util.tree_map(lambda _: None, params) if feat_sq is None else feat_sq

    def one(c, p, h):
        if c is None:
            return None
        if p.ndim != 2:
            raise ValueError(f"GQSA compresses 2-D (K, N) kernels, got shape {p.shape}")
        return group_mask(p, g, sparsity, 0, balanced=True, scores=group_salience(p, h, g))

    return jax.tree_util.tree_map(one, chosen, params, feats, is_leaf=_is_none)


def gqsa_init(params, masks, bits: int | None, g: int):
    """Trainable state for BQPO: ``{"w", "scale", "zero"}`` at masked leaves (min/max parameters of
    the masked weight), ``{"w"}`` only when ``bits is None`` (pruning without quantization)."""
    def one(m, p):
        if m is None:
            return None
        w = jnp.where(m, p, 0.0)
        if bits is None:
            return {"w": w}
        scale, zero = minmax_params(w, bits, g)
        return {"w": w, "scale": scale, "zero": zero}

    _check_qbits(bits)
    check_like(params, masks, what="masks")
    return _map_like(one, masks, params, ("masks", "params"))


def gqsa_weights(qstate, masks, bits: int | None, g: int):
    """Effective (fake-quantized, masked) weights from a BQPO state; differentiable (STE)."""
    def one(m, q):
        if m is None:
            return None
        w = q["w"] if bits is None else fake_quantize(q["w"], q["scale"], q["zero"], bits, g)
        return jnp.where(m, w, 0.0)

    _check_qbits(bits)
    return _map_like(one, masks, qstate, ("masks", "qstate"))


def merge(params, weights):
    """``params`` with the non-``None`` leaves of ``weights`` substituted."""
    try:
        return jax.tree_util.tree_map(lambda p, w: p if w is None else w, params, weights, is_leaf=_is_none)
    except ValueError as e:
        raise ValueError(f"weights must have the tree structure of params: {str(e).splitlines()[0]}") from e


def bqpo(block_apply: Callable, block_params, qstate, masks, inputs, targets, *, bits: int | None, g: int,
         steps: int, lr: float = 1e-4, qparam_lr: float | None = None, batch_size: int = 32, key=None):
    """Stage 1 (BQPO) for one block: Adam on ``mean((block_apply(W_hat, inputs) - targets)**2)`` over
    the kept weights (learning rate ``lr``) and their scales / zero points (``qparam_lr``, default
    ``lr``), the sparsity pattern fixed. ``inputs`` are the compressed model's activations entering
    the block, ``targets`` the full-precision block outputs. Returns ``(qstate, losses)``."""
    steps = check_int("steps", steps, minimum=0)
    check_int("batch_size", batch_size, minimum=1)
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs ({inputs.shape[0]}) and targets ({targets.shape[0]}) differ in length")
    labels = jax.tree_util.tree_map_with_path(
        lambda path, _: "w" if getattr(path[-1], "key", None) == "w" else "q", qstate)
    tx = optax.multi_transform({"w": optax.adam(lr), "q": optax.adam(lr if qparam_lr is None else qparam_lr)},
                               labels)
    key = jax.random.PRNGKey(0) if key is None else key

    def loss_fn(q, x, y):
        out = block_apply(merge(block_params, gqsa_weights(q, masks, bits, g)), x)
        return jnp.mean(jnp.square(out - y))

    @jax.jit
    def step(q, opt, i):
        idx = jax.random.choice(jax.random.fold_in(key, i), inputs.shape[0], (min(batch_size, inputs.shape[0]),),
                                replace=False)
        loss, grads = jax.value_and_grad(loss_fn)(q, inputs[idx], targets[idx])
        updates, opt = tx.update(grads, opt, q)
        return optax.apply_updates(q, updates), opt, loss

    opt = tx.init(qstate)
    losses = []
    for i in range(steps):
        qstate, opt, loss = step(qstate, opt, i)
        losses.append(float(loss))
    return qstate, losses


def freeze_codes(qstate, masks, bits: int, g: int):
    """End of stage 1: integer codes fixed; ``{"codes", "scale", "zero"}`` per compressed leaf."""
    def one(m, q):
        if m is None:
            return None
        zero = jnp.clip(jnp.round(q["zero"]), 0, 2**bits - 1)  # integer start: STE rounding is centred
        return {"codes": quantize(q["w"], q["scale"], zero, bits, g), "scale": q["scale"], "zero": zero}

    _check_qbits(bits, allow_none=False)
    return _map_like(one, masks, qstate, ("masks", "qstate"))


def frozen_weights(frozen, masks, bits: int, g: int):
    """Weights ``(q - z) * s`` from frozen codes, differentiable in scale and (STE) zero point."""
    def one(m, f):
        if m is None:
            return None
        if f["codes"].shape[0] % g:
            raise ValueError(f"g={g} does not divide K={f['codes'].shape[0]} of the frozen codes")
        z = jnp.clip(round_ste(f["zero"]), 0, 2**bits - 1)
        w = (f["codes"].astype(jnp.float32) - jnp.repeat(z, g, 0)) * jnp.repeat(f["scale"], g, 0)
        return jnp.where(m, w, 0.0)

    _check_qbits(bits, allow_none=False)
    check_int("g", g, minimum=1)
    return _map_like(one, masks, frozen, ("masks", "frozen"))


def make_e2e_oqp_step(loss_fn: Callable, masks, bits: int, g: int, tx: optax.GradientTransformation):
    """Stage 2 (E2E-OQP): jitted ``step(qparams, opt_state, codes, params, batch) -> (qparams,
    opt_state, loss)`` training only ``qparams = {"scale", "zero"}`` trees on ``loss_fn(params, batch)``
    with the integer ``codes`` tree frozen. Split a frozen tree with `split_frozen`."""
    check_callable("loss_fn", loss_fn)
    _check_qbits(bits, allow_none=False)
    check_int("g", g, minimum=1)
    check_type("tx", tx, optax.GradientTransformation, "optax GradientTransformation")
    def loss_of(qp, codes, params, batch):
        frozen = join_frozen(codes, qp)
        return loss_fn(merge(params, frozen_weights(frozen, masks, bits, g)), batch)

    @jax.jit
    def step(qp, opt, codes, params, batch):
        loss, grads = jax.value_and_grad(loss_of)(qp, codes, params, batch)
        updates, opt = tx.update(grads, opt, qp)
        return optax.apply_updates(qp, updates), opt, loss

    return step


def split_frozen(frozen):
    """``(codes tree, {"scale", "zero"} tree)`` from a frozen tree."""
    check_type("frozen", frozen, dict, "frozen tree (dict) from freeze_codes")
    is_leaf = lambda x: x is None or (isinstance(x, dict) and "codes" in x)  # noqa: E731
    codes = jax.tree_util.tree_map(lambda f: None if f is None else f["codes"], frozen, is_leaf=is_leaf)
    qp = jax.tree_util.tree_map(lambda f: None if f is None else {"scale": f["scale"], "zero": f["zero"]},
                                frozen, is_leaf=is_leaf)
    return codes, qp


def join_frozen(codes, qparams):
    """Inverse of `split_frozen`."""
    return _map_like(lambda c, q: None if c is None else {"codes": c, **q}, codes, qparams, ("qparams", "codes"))


def _map_like(fn, first, second, names: tuple[str, str]):
    """``tree_map(fn, first, second)`` (``None`` leaves of ``first`` kept) with a message naming both
    trees when their structures differ."""
    try:
        return jax.tree_util.tree_map(fn, first, second, is_leaf=_is_none)
    except ValueError as e:
        raise ValueError(f"{names[0]} must have the tree structure of {names[1]}: {str(e).splitlines()[0]}") from e


def _check_qbits(bits, allow_none: bool = True):
    if bits is None and allow_none:
        return None
    check_int("bits", bits)
    return check_choice("bits", bits, SUPPORTED_BITS)


class GQSAWeight(NamedTuple):
    """Packed GQSA ``(K, N)`` weight: per output column ``slots`` kept groups with codes ``packed
    (slots, g*bits/8, N)`` uint8, ``scales (slots, N)`` float16, ``zeros (slots, N)`` uint8 and
    ``group_idx (slots, N)`` (uint8 up to 256 groups)."""

    packed: jax.Array
    scales: jax.Array
    zeros: jax.Array
    group_idx: jax.Array
    bits: int
    g: int
    shape: tuple[int, int]


def gqsa_pack(codes: jax.Array, scale: jax.Array, zero: jax.Array, mask: jax.Array, bits: int, g: int,
              scale_dtype=jnp.float16) -> GQSAWeight:
    """Pack one layer's frozen codes ``(K, N)``, group parameters ``(G, N)`` and group mask (host side).

    Codes must lie in ``[0, 2**bits)`` (else ``ValueError``, nothing is masked) and ``mask`` must be a
    group mask of ``g`` rows (whole groups kept or pruned). Zero points are the trained, continuous
    parameters of `frozen_weights`; they are stored as ``clip(round(zero), 0, 2**bits - 1)``, exactly
    the value `frozen_weights` uses, so the packed weight equals the trained one."""
    from sparsejax.quant.group_quant import _check, _check_params

    check_array("codes", codes, ndim=2, dtype_kind="iu")
    _check(codes, bits, g)
    k, n = codes.shape
    _check_params((k, n), scale, zero, bits, g)
    check_array("mask", mask, shape=(k, n))
    check_index_range("codes", codes, 2**bits)
    if not jnp.issubdtype(scale_dtype, jnp.floating):
        raise TypeError(f"scale_dtype must be a floating dtype, got {jnp.dtype(scale_dtype)}")
    if not bool(is_group_sparse(jnp.asarray(mask), g, axis=0)):
        raise ValueError(f"mask is not a group mask: some group of g={g} rows is partly kept")
    idx, _ = kept_group_slots(mask, g)
    valid = jnp.asarray(idx >= 0)
    safe = jnp.asarray(np.where(idx >= 0, idx, 0))
    grouped = jnp.asarray(codes).reshape(k // g, g, n)
    kept = jnp.take_along_axis(grouped, safe[:, None, :], axis=0)  # (slots, g, n)
    zeros = jnp.clip(jnp.round(jnp.take_along_axis(jnp.asarray(zero), safe, 0)), 0, 2**bits - 1)
    scales = jnp.where(valid, jnp.take_along_axis(jnp.asarray(scale), safe, 0), 0.0)  # padded slots -> 0
    return GQSAWeight(pack_codes(kept.astype(jnp.uint8), bits, axis=1), scales.astype(scale_dtype),
                      zeros.astype(jnp.uint8), safe.astype(index_dtype(k // g)), bits, g, (k, n))


def _check_gqsa(c) -> GQSAWeight:
    check_type("c", c, GQSAWeight)
    _check_qbits(c.bits, allow_none=False)
    k, n = c.shape
    if k % c.g:
        raise ValueError(f"c.g={c.g} does not divide K={k}")
    check_array("c.group_idx", c.group_idx, shape=(None, n), dtype_kind="iu")
    check_index_range("c.group_idx", c.group_idx, k // c.g)
    return c


def gqsa_unpack(c: GQSAWeight) -> jax.Array:
    """Dense float32 ``(K, N)`` weight (zeros in pruned groups)."""
    _check_gqsa(c)
    k, n = c.shape
    vals = (unpack_codes(c.packed, c.bits, axis=1).astype(jnp.float32) - c.zeros[:, None, :].astype(jnp.float32)) \
        * c.scales[:, None, :].astype(jnp.float32)
    onehot = c.group_idx.astype(jnp.int32)[:, None, :] == jnp.arange(k // c.g)[None, :, None]
    dense = jnp.einsum("tGn,trn->Grn", onehot.astype(jnp.float32), vals, precision=jax.lax.Precision.HIGHEST)
    return dense.reshape(k, n)


def gqsa_nbytes(c: GQSAWeight) -> int:
    """Exact bytes of the stored arrays (codes, scales, zero points, group indices; padding included)."""
    _check_gqsa(c)
    return int(c.packed.nbytes + c.scales.nbytes + c.zeros.nbytes + c.group_idx.nbytes)


def gqsa_to_quantized(c: GQSAWeight):
    """The same weight as a dense-layout `sparsejax.kernels.QuantizedWeight` (pruned groups get the
    code of their zero point, so they dequantize to exactly 0). GQSA's per-column group lists cannot
    feed an MMA (every kept group meets one output column), so the kernels serve this layout, or the
    block-shared variant `sparsejax.kernels.QuantBlockSparse`. Host side."""
    _check_gqsa(c)
    from sparsejax.kernels import quantized_from_codes

    k, n = c.shape
    slots = c.packed.shape[0]
    codes = np.asarray(unpack_codes(c.packed, c.bits, axis=1))  # (slots, g, n)
    gidx = np.asarray(c.group_idx).astype(np.int64)
    scales = np.asarray(c.scales, np.float32)
    full_codes = np.zeros((k // c.g, c.g, n), np.uint8)
    full_scale = np.zeros((k // c.g, n), np.float32)
    full_zero = np.zeros((k // c.g, n), np.uint8)
    cols = np.arange(n)
    for t in range(slots):  # padded slots (scale 0) are skipped: the group stays all-zero
        live = scales[t] != 0
        full_codes[gidx[t, live], :, cols[live]] = codes[t][:, live].T
        full_scale[gidx[t, live], cols[live]] = scales[t, live]
        full_zero[gidx[t, live], cols[live]] = np.asarray(c.zeros)[t, live]
    return quantized_from_codes(full_codes.reshape(k, n), jnp.asarray(full_scale, jnp.float32),
                                jnp.asarray(full_zero), c.bits, c.g, scale_dtype=c.scales.dtype)


def gqsa_matmul(x: jax.Array, c: GQSAWeight, *, use_kernel: bool = True, interpret: bool | None = None,
                backend: str | None = None) -> jax.Array:
    """``x (..., K) @ W``: the W4/W8 Pallas kernel on `gqsa_to_quantized` (``use_kernel``), or the jnp
    reference ``x @ gqsa_unpack(c)``. Raises ``ValueError`` when ``x``'s last axis is not ``K``."""
    from sparsejax.kernels import quantized_matmul
    from sparsejax.kernels._util import check_activations

    if not isinstance(c, GQSAWeight):
        raise TypeError(f"c must be a GQSAWeight, got {type(c).__name__}")
    check_activations(x, c.shape[0])
    if use_kernel:
        return quantized_matmul(x, gqsa_to_quantized(c), interpret=interpret, backend=backend)
    w = gqsa_unpack(c).astype(x.dtype)
    return jnp.dot(x, w, preferred_element_type=jnp.float32).astype(x.dtype)
