"""SAEs on a language model's residual stream (P37's LM setting): activations and the spliced loss.

:func:`residual_stream` runs the embeddings and the first ``layer`` blocks of a
:mod:`sparsejax.llm.model` LM and returns the residual stream there; :func:`next_token_loss` finishes
the forward pass from that point, optionally after replacing the stream by ``replace(x)`` (an SAE's
reconstruction, or an ablation). :func:`loss_recovered` is the usual splice metric,

    (L_ablated - L_spliced) / (L_ablated - L_clean),

1 when splicing the SAE in costs nothing, 0 when it is no better than ablating the stream. The
ablation is the mean activation of the training stream (``"mean"``) or zero (``"zero"``). The paper
reports its LM results on GPT-2; the metric's exact form there is not given in the abstract, so this
standard form is our choice (reconstruction).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_int
from sparsejax.llm.model import LMConfig, block_forward, check_tokens, embed, head


def _check_layer(params: dict, layer) -> int:
    return check_int("layer", layer, minimum=0, maximum=len(params["blocks"]))


def residual_stream(params: dict, tokens, config: LMConfig, layer: int) -> jax.Array:
    """The residual stream ``(B, T, D)`` after the first ``layer`` blocks (``0``: the embeddings)."""
    layer = _check_layer(params, layer)
    check_tokens(params, tokens, config)
    x = embed(params, tokens, config)
    for block in params["blocks"][:layer]:
        x = block_forward(block, x, config)
    return x


def continue_forward(params: dict, x: jax.Array, config: LMConfig, layer: int) -> jax.Array:
    """Logits ``(B, T, V)`` from the residual stream ``x`` after block ``layer`` (the rest of the blocks and the head)."""
    layer = _check_layer(params, layer)
    for block in params["blocks"][layer:]:
        x = block_forward(block, x, config)
    return head(params, x, config)


def next_token_loss(params: dict, windows, config: LMConfig, layer: int,
                    replace: Callable[[jax.Array], jax.Array] | None = None, batch_size: int = 256) -> float:
    """Mean next-token cross-entropy on LM ``windows`` ``(N, T + 1)``, with the residual stream after
    block ``layer`` replaced by ``replace(x)`` (``x`` flattened to ``(B * T, D)``) when given."""
    windows = np.asarray(check_array("windows", windows, ndim=2, dtype_kind="iu"))
    batch_size = check_int("batch_size", batch_size, minimum=1)

    @jax.jit
    def batch_loss(w):
        x = residual_stream(params, w[:, :-1], config, layer)
        if replace is not None:
            x = replace(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        logp = jax.nn.log_softmax(continue_forward(params, x, config, layer))
        return -jnp.take_along_axis(logp, w[:, 1:, None], -1).sum()

    total = sum(float(batch_loss(jnp.asarray(windows[i:i + batch_size]))) for i in range(0, len(windows), batch_size))
    return total / (windows.shape[0] * (windows.shape[1] - 1))


def loss_recovered(clean: float, spliced: float, ablated: float) -> float:
    """``(ablated - spliced) / (ablated - clean)``; raises when ablation does not hurt (no gap to recover)."""
    gap = float(ablated) - float(clean)
    if not np.isfinite(gap) or gap <= 0:
        raise ValueError(f"ablated loss {ablated} must exceed the clean loss {clean} for loss recovered to be defined")
    return (float(ablated) - float(spliced)) / gap
