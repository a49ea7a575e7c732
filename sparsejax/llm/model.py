"""A functional decoder-only language model whose weights are an explicit pytree.

Unlike :class:`sparsejax.nn.DecoderLM` (flax.linen), nothing here fixes the shapes: every block
reads its widths from its own weights, so the residual width may differ from block to block
(SliceGPT), residual *shortcut matrices* may sit on the skip connections, heads and FFN channels
may be permuted (S²FT), and adapters can add to any kernel. The params pytree is::

    {"tok_embed": (V, D0),
     "pos_embed": (max_len, D0)               # learned positions only
     "blocks": [{"ln1": norm, "qkv": dense (D_in -> 3*H*hd), "out": dense (H*hd -> D_mid),
                 "attn_shortcut": (D_in, D_mid)  # optional; identity when absent
                 "ln2": norm, "fc1": dense (D_mid -> F), "fc2": dense (F -> D_out),
                 "mlp_shortcut": (D_mid, D_out)  # optional
                 }, ...],
     "ln_f": norm, "lm_head": dense (D_last -> V)}

with ``dense = {"kernel": (in, out), "bias": (out,)}`` (flax layout: ``y = x @ kernel + bias``)
and ``norm`` = ``{"scale", "bias"}`` (LayerNorm), ``{"scale"}``, or ``{}`` (a parameter-free
RMSNorm). The fused ``qkv`` kernel's columns are ordered ``(3, heads, head_dim)`` as in
:class:`sparsejax.nn.SelfAttention`. Static choices live in :class:`LMConfig`.

The block is pre-norm: ``x <- x S_attn + out(attention(qkv(norm1(x))))``, then
``x <- x S_mlp + fc2(gelu(fc1(norm2(x))))``. Attention is the separate function
:func:`attention` ``(q, k, v, mask)``; :func:`forward` takes any function with that signature
(``attention_fn``), so sparse or structured attention can be swapped in without touching the
model. :func:`from_decoder_lm` converts ``DecoderLM`` params (logits equal up to rounding).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_choice, check_int, check_number

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rotary")


class LMConfig(NamedTuple):
    """Static (non-array) choices of the LM: ``vocab_size``, ``n_heads``, ``norm`` (``"layernorm"``
    or ``"rmsnorm"``), ``positions`` (``"learned"`` or ``"rotary"``), norm ``eps``, ``norm_dim``
    (the RMSNorm divisor ``D``: ``mean(x^2)`` is ``sum(x^2) / norm_dim``; ``None`` = the actual
    width; SliceGPT keeps the original width after slicing), ``rotary_base``."""

    vocab_size: int
    n_heads: int
    norm: str = "layernorm"
    positions: str = "learned"
    eps: float = 1e-6
    norm_dim: int | None = None
    rotary_base: float = 10000.0

    def checked(self) -> "LMConfig":
        """Validate every field (raises ``ValueError`` naming the field); returns ``self``."""
        check_int("vocab_size", self.vocab_size, minimum=1)
        check_int("n_heads", self.n_heads, minimum=1)
        check_choice("norm", self.norm, NORMS)
        check_choice("positions", self.positions, POSITIONS)
        check_number("eps", self.eps, minimum=0.0)
        if self.norm_dim is not None:
            check_int("norm_dim", self.norm_dim, minimum=1)
        check_number("rotary_base", self.rotary_base, minimum=1.0)
        return self


def dense(p: dict, x: jax.Array) -> jax.Array:
    """``x @ kernel (+ bias)`` for ``p = {"kernel", ["bias"]}``."""
    y = x @ p["kernel"]
    return y + p["bias"] if "bias" in p else y


def norm(p: dict, x: jax.Array, config: LMConfig) -> jax.Array:
    """LayerNorm (centre, divide by the std) or RMSNorm (divide by ``sqrt(sum(x^2)/norm_dim + eps)``),
    then the optional elementwise ``scale`` and ``bias`` in ``p``."""
    if config.norm == "layernorm":
        x = x - jnp.mean(x, axis=-1, keepdims=True)
        ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    else:
        ms = jnp.sum(jnp.square(x), axis=-1, keepdims=True) / (config.norm_dim or x.shape[-1])
    y = x * jax.lax.rsqrt(ms + config.eps)
    if "scale" in p:
        y = y * p["scale"]
    return y + p["bias"] if "bias" in p else y


def causal_mask(t: int) -> jax.Array:
    """``(t, t)`` boolean mask, ``True`` where query ``i`` may attend key ``j <= i``."""
    return jnp.tril(jnp.ones((t, t), bool))


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax attention: ``q, k, v`` of shape ``(B, T, H, hd)``, ``mask`` boolean and broadcastable
    to ``(B, H, Tq, Tk)`` (``True`` = attend). Returns ``(B, Tq, H, hd)``."""
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)


def rotary(x: jax.Array, base: float) -> jax.Array:
    """Rotary position embedding (rotate-half convention) of ``x`` with shape ``(B, T, H, hd)``."""
    t, hd = x.shape[1], x.shape[-1]
    half = hd // 2
    freqs = base ** (-jnp.arange(half, dtype=x.dtype) / half)
    angles = jnp.arange(t, dtype=x.dtype)[:, None] * freqs[None]
    cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def head_dim(block: dict, n_heads: int) -> int:
    """Per-head width of a block: ``qkv`` outputs ``3 * n_heads * head_dim`` columns."""
    width = block["qkv"]["kernel"].shape[1]
    if width % (3 * n_heads):
        raise ValueError(f"qkv kernel has {width} output columns, not a multiple of 3 * n_heads = {3 * n_heads}")
    return width // (3 * n_heads)


def _shortcut(x: jax.Array, block: dict, name: str) -> jax.Array:
    return x @ block[name] if name in block else x


def block_attention(block: dict, x: jax.Array, config: LMConfig, attention_fn: Callable = attention) -> jax.Array:
    """The attention branch ``out(attention(qkv(norm1(x))))`` of one block (no residual)."""
    b, t, _ = x.shape
    h, hd = config.n_heads, head_dim(block, config.n_heads)
    qkv = dense(block["qkv"], norm(block["ln1"], x, config)).reshape(b, t, 3, h, hd)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    if config.positions == "rotary":
        q, k = rotary(q, config.rotary_base), rotary(k, config.rotary_base)
    y = attention_fn(q, k, v, causal_mask(t))
    return dense(block["out"], y.reshape(b, t, h * hd))


def block_mlp(block: dict, x: jax.Array, config: LMConfig) -> jax.Array:
    """The MLP branch ``fc2(gelu(fc1(norm2(x))))`` of one block (no residual)."""
    return dense(block["fc2"], jax.nn.gelu(dense(block["fc1"], norm(block["ln2"], x, config)), approximate=True))


def block_forward(block: dict, x: jax.Array, config: LMConfig, attention_fn: Callable = attention,
                  return_mid: bool = False):
    """One pre-norm block with optional shortcut matrices; with ``return_mid`` also the residual
    stream between the attention and the MLP (SliceGPT's MLP-norm input)."""
    mid = _shortcut(x, block, "attn_shortcut") + block_attention(block, x, config, attention_fn)
    out = _shortcut(mid, block, "mlp_shortcut") + block_mlp(block, mid, config)
    return (out, mid) if return_mid else out


def embed(params: dict, tokens: jax.Array, config: LMConfig) -> jax.Array:
    """Token (+ learned position) embeddings ``(B, T, D0)``."""
    x = params["tok_embed"][tokens]
    if config.positions == "learned":
        x = x + params["pos_embed"][: tokens.shape[1]]
    return x


def head(params: dict, x: jax.Array, config: LMConfig) -> jax.Array:
    """Final norm and ``lm_head``: logits ``(B, T, V)``."""
    return dense(params["lm_head"], norm(params["ln_f"], x, config))


def check_tokens(params: dict, tokens: Any, config: LMConfig) -> None:
    """Raise unless ``tokens`` is an integer ``(B, T)`` array that fits the model."""
    shape = getattr(tokens, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"tokens must have shape (batch, time), got {shape}")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"tokens must be integers, got dtype {tokens.dtype}")
    if config.positions == "learned" and shape[1] > params["pos_embed"].shape[0]:
        raise ValueError(f"sequence length {shape[1]} exceeds max_len={params['pos_embed'].shape[0]}")


def forward(params: dict, tokens: jax.Array, config: LMConfig, *, attention_fn: Callable = attention) -> jax.Array:
    """Logits ``(B, T, V)`` of the LM on ``tokens`` ``(B, T)``; ``attention_fn(q, k, v, mask)``
    replaces :func:`attention` (e.g. a sparse attention)."""
    check_tokens(params, tokens, config)
    x = embed(params, tokens, config)
    for block in params["blocks"]:
        x = block_forward(block, x, config, attention_fn)
    return head(params, x, config)


def _dense_from(p: dict) -> dict:
    return {"kernel": jnp.asarray(p["kernel"]), "bias": jnp.asarray(p["bias"])}


def from_decoder_lm(flax_params: dict, n_heads: int, *, eps: float = 1e-6) -> tuple[dict, LMConfig]:
    """Convert :class:`sparsejax.nn.DecoderLM` params (``{"params": ...}`` or the inner dict) into
    ``(params, config)`` of this LM; :func:`forward` then gives the same logits. ``eps`` is the
    LayerNorm epsilon (flax's default 1e-6)."""
    p = flax_params.get("params", flax_params)
    if "tok_embed" not in p or "lm_head" not in p:
        raise ValueError(f"flax_params are not DecoderLM params (top-level keys {sorted(p)})")
    n_layers = sum(1 for k in p if k.startswith("block_"))
    ln = lambda q: {"scale": jnp.asarray(q["scale"]), "bias": jnp.asarray(q["bias"])}  # noqa: E731
    blocks = []
    for i in range(n_layers):
        b = p[f"block_{i}"]
        blocks.append({"ln1": ln(b["ln1"]), "qkv": _dense_from(b["attn"]["qkv"]), "out": _dense_from(b["attn"]["out"]),
                       "ln2": ln(b["ln2"]), "fc1": _dense_from(b["fc1"]), "fc2": _dense_from(b["fc2"])})
    params = {"tok_embed": jnp.asarray(p["tok_embed"]["embedding"]), "pos_embed": jnp.asarray(p["pos_embedding"]),
              "blocks": blocks, "ln_f": ln(p["ln_f"]), "lm_head": _dense_from(p["lm_head"])}
    config = LMConfig(int(params["tok_embed"].shape[0]), n_heads, eps=eps).checked()
    head_dim(blocks[0], n_heads)
    return params, config


def init_lm(key: jax.Array, vocab_size: int, *, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
            max_len: int = 64, mlp_ratio: int = 4, norm: str = "layernorm", positions: str = "learned") -> tuple[dict, LMConfig]:
    """Fresh ``(params, config)`` initialised at ``DecoderLM``'s scales: kernels ``N(0, 1/fan_in)``
    (flax's LeCun normal is truncated at 2 std; a plain normal is used, it compiles much faster),
    zero biases, ``N(0, 1/D)`` token embeddings, ``N(0, 0.02^2)`` positions, unit norm scales. ``norm="rmsnorm"`` keeps a learned ``scale`` and no norm bias; ``positions="rotary"``
    has no position table."""
    config = LMConfig(check_int("vocab_size", vocab_size, minimum=1), check_int("n_heads", n_heads, minimum=1),
                      norm=norm, positions=positions).checked()
    d = check_int("d_model", d_model, minimum=1)
    if d % n_heads:
        raise ValueError(f"d_model={d} must be a positive multiple of n_heads={n_heads}")
    f = d * check_int("mlp_ratio", mlp_ratio, minimum=1)
    n_layers = check_int("n_layers", n_layers, minimum=1)
    max_len = check_int("max_len", max_len, minimum=1)
    return _init(key, vocab_size, d, f, n_layers, max_len, norm, positions), config


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6, 7))
def _init(key, vocab_size, d, f, n_layers, max_len, norm, positions) -> dict:
    keys = iter(jax.random.split(key, 4 * n_layers + 3))

    def lin(d_in, d_out):
        return {"kernel": jax.random.normal(next(keys), (d_in, d_out)) / jnp.sqrt(d_in), "bias": jnp.zeros((d_out,))}

    def ln():
        return {"scale": jnp.ones((d,)), "bias": jnp.zeros((d,))} if norm == "layernorm" else {"scale": jnp.ones((d,))}

    params = {"tok_embed": jax.random.normal(next(keys), (vocab_size, d)) / jnp.sqrt(d)}
    pos_key = next(keys)
    if positions == "learned":
        params["pos_embed"] = 0.02 * jax.random.normal(pos_key, (max_len, d))
    params["blocks"] = [{"ln1": ln(), "qkv": lin(d, 3 * d), "out": lin(d, d), "ln2": ln(), "fc1": lin(d, f),
                         "fc2": lin(f, d)} for _ in range(n_layers)]
    params["ln_f"] = ln()
    params["lm_head"] = lin(d, vocab_size)
    return params


def lm_loss(params: dict, tokens: jax.Array, targets: jax.Array, config: LMConfig,
            attention_fn: Callable = attention) -> jax.Array:
    """Mean next-token cross-entropy of :func:`forward` on ``(tokens, targets)``."""
    from sparsejax.train import cross_entropy_loss

    return cross_entropy_loss(forward(params, tokens, config, attention_fn=attention_fn), targets)


def perplexity(params: dict, windows, config: LMConfig, batch_size: int = 128) -> float:
    """``exp(mean cross-entropy)`` over LM windows ``(N, T + 1)`` (inputs ``w[:, :-1]``, targets
    ``w[:, 1:]``). The last batch is padded (and the padding ignored), so every call with the same
    parameter shapes reuses one compiled evaluation."""
    import numpy as np

    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] < 2 or len(windows) == 0:
        raise ValueError(f"windows must have shape (N >= 1, T + 1 >= 2), got {windows.shape}")
    n = len(windows)
    padded = np.concatenate([windows, np.repeat(windows[:1], (-n) % batch_size, axis=0)])
    f = _window_losses(config)
    losses = np.concatenate([np.asarray(f(params, padded[i:i + batch_size])) for i in range(0, len(padded), batch_size)])
    return float(np.exp(losses[:n].mean()))


_LOSS_CACHE: dict = {}


def _window_losses(config: LMConfig):
    """Jitted per-window mean token cross-entropy, one per config."""
    import optax

    if config not in _LOSS_CACHE:
        def f(p, w):
            logits = forward(p, w[:, :-1], config)
            return optax.softmax_cross_entropy_with_integer_labels(logits, w[:, 1:]).mean(axis=1)
        _LOSS_CACHE[config] = jax.jit(f)
    return _LOSS_CACHE[config]
