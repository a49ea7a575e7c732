"""SliceGPT: rotate the residual stream by PCA and delete rows and columns (P48; Ashkboos et al.,
ICLR 2024; code ``microsoft/TransformerCompression``, ``src/slicegpt/``).

Steps, following ``layernorm_fusion.py`` and ``rotate.py::rotate_and_slice`` (the sequential
variant that recomputes the signals with the already-sliced earlier blocks):

0. :func:`fold_layernorm`: LayerNorm -> RMSNorm. The embeddings are centred (token and learned
   position tables, mean over the hidden dimension), the mean over the output dimension is
   subtracted from every linear that writes to the residual stream (``out``, ``fc2``: kernel
   columns and bias), so the residual stream has zero mean; the LayerNorm ``scale``/``bias`` are
   absorbed into the following linear (``W <- diag(scale) W``, ``b <- b + bias W``), and the norms
   become parameter-free RMSNorms whose divisor stays the original width ``D`` (the code's
   ``RMSN.mean_dim``). Exact (including ``eps``): a zero-mean vector's LayerNorm variance is its
   ``sum(x^2) / D``.
1. :func:`pca_calc`: ``H = sum X^T X`` over calibration tokens (uncentred, float64), damped by 1 %
   of its mean diagonal, ``eigh``, eigenvectors sorted by decreasing eigenvalue.
2. :func:`rotate_and_slice`: ``Q_0`` from the embeddings' output; the embeddings become ``E Q_0``
   sliced to ``D' = floor((1 - s) D)`` rounded down to a multiple of 8 (:func:`sliced_dim`). In
   each block the attention inputs are rotated by the previous ``Q`` (``qkv <- Q^T qkv``, rows
   sliced); the block is run on the rotated, sliced calibration signals to get the MLP-norm input,
   whose PCA gives ``Q_mid``; ``out <- out Q_mid`` (columns sliced), the attention shortcut is
   ``Q^T Q_mid`` (sliced ``D' x D'``); ``fc1 <- Q_mid^T fc1``; the block output's PCA gives
   ``Q_next``; ``fc2 <- fc2 Q_next``, MLP shortcut ``Q_mid^T Q_next``. The last block's output and the
   head are not sliced (the code's default ``do_slice_head=False``); the head is rotated.
   (Flax kernels are ``(in, out)``: torch's ``W Q`` on an input side is ``Q^T W`` here.)

Variants (``rotation``): ``"pca"`` (the paper), ``"random"`` (a Haar-random orthogonal ``Q`` at
every point, from a seed) and ``"none"`` (no rotation: the coordinate permutation that sorts the
dimensions by their energy ``diag(H)``, so slicing drops the lowest-energy dimensions). The
current code's default ``final_orientation='random'`` (a random rotation of the kept block) is not
used. Weights are rotated in float64 (NumPy) and cast back to their dtype, as in the code.
Calibration here: windows of the grammar corpus (the code: 128 WikiText-2 sequences of 2048 tokens).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_choice, check_int, check_number
from sparsejax.llm.model import LMConfig, block_attention, block_mlp, embed

ROTATIONS = ("pca", "random", "none")
_attention_branch = jax.jit(block_attention, static_argnames=("config", "attention_fn"))
_mlp_branch = jax.jit(block_mlp, static_argnames=("config",))
_embed = jax.jit(embed, static_argnames=("config",))


def sliced_dim(d: int, sparsity: float, round_to: int = 8) -> int:
    """``floor((1 - sparsity) * d)`` rounded down to a multiple of ``round_to`` (at least ``round_to``)."""
    check_int("d", d, minimum=1)
    check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)
    check_int("round_to", round_to, minimum=1)
    new = int((1.0 - sparsity) * d)
    new -= new % round_to
    if new < 1:
        raise ValueError(f"sparsity={sparsity} leaves no dimension of d={d} at round_to={round_to}")
    return new


def _f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def fold_layernorm(params: dict, config: LMConfig) -> tuple[dict, LMConfig]:
    """LayerNorm model -> equivalent model with parameter-free RMSNorms (``norm_dim = D``): centred
    embeddings, mean-free residual writers, norm affine absorbed into the next linears."""
    if config.norm != "layernorm":
        raise ValueError(f"fold_layernorm needs a LayerNorm model, got norm={config.norm!r}")
    if any(k in b for b in params["blocks"] for k in ("attn_shortcut", "mlp_shortcut")):
        raise ValueError("fold_layernorm expects an unsliced model (no shortcut matrices)")
    dtype = params["tok_embed"].dtype
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    center = lambda x: x - x.mean(axis=-1, keepdims=True)  # noqa: E731

    def absorb(ln, lin):
        w, b = _f64(lin["kernel"]), _f64(lin["bias"])
        scale = _f64(ln.get("scale", np.ones(w.shape[0])))
        bias = _f64(ln.get("bias", np.zeros(w.shape[0])))
        return {"kernel": cast(scale[:, None] * w), "bias": cast(b + bias @ w)}

    def demean(lin):
        return {"kernel": cast(center(_f64(lin["kernel"]))), "bias": cast(center(_f64(lin["bias"])))}

    out = {"tok_embed": cast(center(_f64(params["tok_embed"])))}
    if "pos_embed" in params:
        out["pos_embed"] = cast(center(_f64(params["pos_embed"])))
    out["blocks"] = [{"ln1": {}, "qkv": absorb(b["ln1"], b["qkv"]), "out": demean(b["out"]),
                      "ln2": {}, "fc1": absorb(b["ln2"], b["fc1"]), "fc2": demean(b["fc2"])} for b in params["blocks"]]
    out["ln_f"] = {}
    out["lm_head"] = absorb(params["ln_f"], params["lm_head"])
    d = int(params["tok_embed"].shape[1])
    return out, config._replace(norm="rmsnorm", norm_dim=d).checked()


def pca_calc(xs) -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues, Q)`` of ``H = sum X^T X + 0.01 mean(diag H) I`` over the rows of ``xs``
    (``(..., D)``, float64), eigenvalues in decreasing order and ``Q``'s columns the eigenvectors."""
    x = _f64(xs).reshape(-1, np.shape(xs)[-1])
    h = x.T @ x
    h[np.diag_indices_from(h)] += 0.01 * np.mean(np.diag(h))
    vals, vecs = np.linalg.eigh(h)
    order = np.argsort(-vals, kind="stable")
    return vals[order], vecs[:, order]


def _rotation(xs, rotation: str, rng: np.random.Generator) -> np.ndarray:
    if rotation == "pca":
        return pca_calc(xs)[1]
    d = np.shape(xs)[-1]
    if rotation == "random":
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        return q * np.sign(np.diag(r))[None]  # Haar measure
    x = _f64(xs).reshape(-1, d)
    energy = np.einsum("nd,nd->d", x, x)
    return np.eye(d)[:, np.argsort(-energy, kind="stable")]


def rotate_and_slice(params: dict, config: LMConfig, calib_tokens, new_dim: int, *, rotation: str = "pca",
                     seed: int = 0) -> dict:
    """Rotate (``rotation`` = ``"pca"``, ``"random"`` or ``"none"``) and slice an RMSNorm model
    (from :func:`fold_layernorm`) to residual width ``new_dim``, sequentially block by block on the
    calibration windows ``calib_tokens`` ``(N, T)``; adds the shortcut matrices. The head is not sliced."""
    check_choice("rotation", rotation, ROTATIONS)
    if config.norm != "rmsnorm" or any(p for p in [params["ln_f"]] + [b[k] for b in params["blocks"]
                                                                      for k in ("ln1", "ln2")]):
        raise ValueError("rotate_and_slice needs the parameter-free RMSNorm model of fold_layernorm")
    d = int(params["tok_embed"].shape[1])
    new_dim = check_int("new_dim", new_dim, minimum=1, maximum=d)
    rng = np.random.default_rng(seed)
    dtype = params["tok_embed"].dtype
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    tokens = jnp.asarray(calib_tokens)
    x = _f64(_embed(params, tokens, config=config))
    q = _rotation(x, rotation, rng)
    out = {"tok_embed": cast((_f64(params["tok_embed"]) @ q)[:, :new_dim])}
    if "pos_embed" in params:
        out["pos_embed"] = cast((_f64(params["pos_embed"]) @ q)[:, :new_dim])
    x = (x @ q)[..., :new_dim]
    blocks, n_blocks = [], len(params["blocks"])
    for i, b in enumerate(params["blocks"]):
        nb = {"ln1": {}, "ln2": {}}
        nb["qkv"] = {"kernel": cast((q.T @ _f64(b["qkv"]["kernel"]))[:new_dim]), "bias": b["qkv"]["bias"]}
        attn = _f64(_attention_branch({**nb, "out": b["out"]}, cast(x), config=config))
        mid = x @ q.T[:new_dim] + attn  # the signal between attention and MLP, original basis
        q_mid = _rotation(mid, rotation, rng)
        nb["attn_shortcut"] = cast((q.T @ q_mid)[:new_dim, :new_dim])
        nb["out"] = {"kernel": cast((_f64(b["out"]["kernel"]) @ q_mid)[:, :new_dim]),
                     "bias": cast((_f64(b["out"]["bias"]) @ q_mid)[:new_dim])}
        nb["fc1"] = {"kernel": cast((q_mid.T @ _f64(b["fc1"]["kernel"]))[:new_dim]), "bias": b["fc1"]["bias"]}
        mid_rot = x @ _f64(nb["attn_shortcut"]) + attn @ q_mid[:, :new_dim]
        mlp = _f64(_mlp_branch({**nb, "fc2": b["fc2"]}, cast(mid_rot), config=config))
        outs = mid_rot @ q_mid.T[:new_dim] + mlp
        q = _rotation(outs, rotation, rng)
        dim = d if i == n_blocks - 1 else new_dim
        nb["mlp_shortcut"] = cast((q_mid.T @ q)[:new_dim, :dim])
        nb["fc2"] = {"kernel": cast((_f64(b["fc2"]["kernel"]) @ q)[:, :dim]),
                     "bias": cast((_f64(b["fc2"]["bias"]) @ q)[:dim])}
        x = (outs @ q)[..., :dim]
        blocks.append(nb)
    out["blocks"] = blocks
    out["ln_f"] = {}
    out["lm_head"] = {"kernel": cast(q.T @ _f64(params["lm_head"]["kernel"])), "bias": params["lm_head"]["bias"]}
    return out


def slicegpt(params: dict, config: LMConfig, calib_tokens, sparsity: float, *, rotation: str = "pca",
             seed: int = 0, round_to: int = 8) -> tuple[dict, LMConfig]:
    """Fold the LayerNorms (if any), then :func:`rotate_and_slice` to :func:`sliced_dim` of ``sparsity``."""
    if config.norm == "layernorm":
        params, config = fold_layernorm(params, config)
    d = int(params["tok_embed"].shape[1])
    return rotate_and_slice(params, config, calib_tokens, sliced_dim(d, sparsity, round_to),
                            rotation=rotation, seed=seed), config
