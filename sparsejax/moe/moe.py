"""Mixture-of-experts FFN with top-k routing, no token dropping and the Switch/GShard load-balancing
loss; functional (explicit parameter dicts) so that the expert weights can be sharded (`fssdp`).

Parameters (`init_moe_lm`): a tiny MoE language model used by the P49 experiment and tests,
``embed (V, d)``, ``router (d, E)``, experts ``w1 (E, d, h)``, ``b1 (E, h)``, ``w2 (E, h, d)``, ``b2 (E, d)``,
``ln_scale (d,)``, ``head (d, V)``; ``logits = head(LN(x + MoE(LN(x))))`` with ``x = embed[tokens]`` (a
bigram-style model: the MoE FFN is the only mixing; no attention, so the sharded and the
single-device programs differ only in the expert path).

Routing (`route`): softmax router probabilities ``p (N, E)``; each token goes to its ``k`` largest
experts with combine weights ``p`` renormalised over the chosen ``k`` (GShard / Mixtral style); every
token is processed (no capacity, no dropping). Load-balancing loss (Switch Transformer):
``E * Σ_e f_e P_e`` with ``f_e`` the fraction of (token, slot) assignments to ``e`` and ``P_e`` the mean
router probability; it is 1 for perfectly uniform routing.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.core.validation import check_int

__all__ = ["init_moe_lm", "route", "expert_ffn", "moe_ffn", "load_balancing_loss", "moe_lm_logits", "EXPERT_KEYS"]

EXPERT_KEYS = ("w1", "b1", "w2", "b2")


def init_moe_lm(key, vocab: int, d: int, hidden: int, n_experts: int) -> dict:
    """Parameters of the tiny MoE LM (module doc)."""
    for name, v in (("vocab", vocab), ("d", d), ("hidden", hidden), ("n_experts", n_experts)):
        check_int(name, v, minimum=1)
    ks = jax.random.split(key, 5)
    return {"embed": jax.random.normal(ks[0], (vocab, d)) * 0.5,
            "router": jax.random.normal(ks[1], (d, n_experts)) * d ** -0.5,
            "w1": jax.random.normal(ks[2], (n_experts, d, hidden)) * d ** -0.5,
            "b1": jnp.zeros((n_experts, hidden)),
            "w2": jax.random.normal(ks[3], (n_experts, hidden, d)) * hidden ** -0.5,
            "b2": jnp.zeros((n_experts, d)),
            "ln_scale": jnp.ones((d,)),
            "head": jax.random.normal(ks[4], (d, vocab)) * d ** -0.5}


def _ln(x, scale):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-6) * scale


def route(router, x, k: int):
    """``(combine (N, E), probs (N, E), chosen (N, E) bool)``: top-``k`` experts per token (module doc)."""
    probs = jax.nn.softmax(x @ router, axis=-1)
    _, idx = jax.lax.top_k(probs, k)
    chosen = jnp.zeros(probs.shape, bool).at[jnp.arange(probs.shape[0])[:, None], idx].set(True)
    w = jnp.where(chosen, probs, 0.0)
    return w / w.sum(-1, keepdims=True), probs, chosen


def load_balancing_loss(probs, chosen):
    """Switch load-balancing loss ``E * Σ_e f_e P_e`` (1 when uniform)."""
    e = probs.shape[-1]
    f = chosen.mean(0) / jnp.maximum(chosen.sum(-1).mean(), 1)
    return e * jnp.sum(f * probs.mean(0))


def expert_ffn(experts: dict, x):
    """Every expert on every token: ``(E, N, d)`` (``gelu(x W1 + b1) W2 + b2``)."""
    h = jax.nn.gelu(jnp.einsum("nd,edh->enh", x, experts["w1"]) + experts["b1"][:, None])
    return jnp.einsum("enh,ehd->end", h, experts["w2"]) + experts["b2"][:, None]


def moe_ffn(params: dict, x, k: int):
    """``(y (N, d), aux_loss, load (E,))`` of the MoE FFN on tokens ``x (N, d)``; ``load`` counts the tokens
    routed to each expert. Dense per-expert compute weighted by the combine matrix (exact, no dropping)."""
    combine, probs, chosen = route(params["router"], x, k)
    y = jnp.einsum("ne,end->nd", combine, expert_ffn(params, x))
    return y, load_balancing_loss(probs, chosen), chosen.sum(0)


def moe_lm_logits(params: dict, tokens, k: int, ffn=None):
    """Logits ``(..., V)`` of the MoE LM, aux loss and expert loads; ``ffn(normed_x)`` replaces the
    local `moe_ffn` (the FSSDP step passes its sharded version)."""
    x = params["embed"][tokens.reshape(-1)]
    h = _ln(x, params["ln_scale"])
    y, aux, load = moe_ffn(params, h, k) if ffn is None else ffn(h)
    out = _ln(x + y, params["ln_scale"]) @ params["head"]
    return out.reshape(*tokens.shape, -1), aux, load
