"""Pruning scores beyond magnitude (larger score = keep): saliency ``|w * g|``, SNIP, GraSP and
Wanda, each a pytree like the params that :func:`sparsejax.magnitude_mask` (``scores=``) ranks, or
that sets layer-wise ratios for random masks (:func:`ratios_from_scores`, P4's "random pruning at
SNIP/GraSP ratios").

* saliency / SNIP (Lee et al. 2019, "SNIP: single-shot network pruning based on connection
  sensitivity", Eq. 6): ``|dL/dw * w|`` on a batch (SNIP normalises by the sum, which does not
  change the ranking).
* GraSP (Wang et al. 2020, "Picking winning tickets before training by preserving gradient flow",
  Eq. 8): ``S = -w * (H g)``; the weights with the largest ``S`` are removed, so the keep-score is
  ``w * (H g)``, with ``H g`` a Hessian-vector product of the loss at the gradient ``g`` (held
  constant). Deviation: no softmax temperature (the official code divides the logits by 200);
  pass a tempered ``loss_fn`` to reproduce it.
* Wanda (Sun et al. 2024, "A simple and effective pruning approach for large language models",
  Eq. 1): ``|W_ij| * ||X_j||_2`` with the input-feature norms of calibration activations, compared
  within each output (:func:`wanda_mask`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.masks import keep_count
from sparsejax.core.sparsity_types import ranks_last
from sparsejax.core.tree import Predicate, is_none, path_str, select, check_like
from sparsejax.core.validation import check_finite_tree, check_number, check_callable, check_type

__all__ = ["saliency_scores", "snip_scores", "grasp_scores", "activation_norms", "wanda_scores", "wanda_mask",
           "ratios_from_scores"]


def saliency_scores(params, grads):
    """``|w * g|`` leaf by leaf (first-order Taylor saliency, jaxpruner's ``saliency``)."""
    check_like(params, grads, what="grads")
    check_finite_tree("grads", grads)
    return jax.tree_util.tree_map(lambda w, g: jnp.abs(w * g), params, grads)


def snip_scores(loss_fn, params, *batch):
    """SNIP connection sensitivity ``|dL/dw * w|`` of ``loss_fn(params, *batch)``."""
    check_callable("loss_fn", loss_fn)
    check_finite_tree("batch", batch)
    check_finite_tree("params", params)
    return saliency_scores(params, jax.grad(loss_fn)(params, *batch))


def grasp_scores(loss_fn, params, *batch):
    """GraSP keep-scores ``w * (H g)`` (remove the largest ``-w * H g``) of ``loss_fn(params, *batch)``."""
    check_callable("loss_fn", loss_fn)
    check_finite_tree("batch", batch)
    check_finite_tree("params", params)
    grad_fn = jax.grad(lambda p: loss_fn(p, *batch))
    g = jax.lax.stop_gradient(grad_fn(params))
    _, hg = jax.jvp(grad_fn, (params,), (g,))
    return jax.tree_util.tree_map(lambda w, h: w * h, params, hg)


def activation_norms(model, variables, x, *, method=None) -> dict:
    """``{module path: ||X_j||_2}`` over a calibration batch ``x``: the L2 norm (over all leading
    axes) of every input feature ``j`` of each ``nn.Dense`` / ``nn.Conv`` call (Wanda's ``||X_j||``)."""
    import flax
    import flax.linen as nn

    check_type("model", model, nn.Module, "flax.linen Module")

    norms: dict[str, jax.Array] = {}

    def record(next_fun, args, kwargs, context):
        mod = context.module
        if context.method_name == "__call__" and isinstance(mod, (nn.Dense, nn.Conv)) and args:
            inp = jnp.asarray(args[0], jnp.float32)
            sq = jnp.sum(jnp.square(inp.reshape(-1, inp.shape[-1])), axis=0)
            key = "/".join(mod.path)
            norms[key] = norms.get(key, 0.0) + sq
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        try:
            model.apply(variables, x, method=method)
        except flax.errors.ScopeParamShapeError as e:
            raise ValueError(f"x does not fit the model's parameters (wrong feature size?): {e}") from e
    return {k: jnp.sqrt(v) for k, v in norms.items()}


def wanda_scores(params, norms: dict, *, predicate: Predicate | None = None):
    """``|W| * ||X_j||`` at every selected kernel whose module appears in ``norms`` (from
    :func:`activation_norms`); ``None`` elsewhere. Conv kernels ``(*window, in, out)`` use the
    norm of input channel ``j`` for every window position (Wanda on the im2col matrix would
    weight each position by its own patch norm; the channel norm is the common approximation)."""
    selected = select(params, predicate)

    def leaf(path, sel, w):
        p = path_str(path)
        if sel is None:
            return None
        module = "/".join(p.split("/")[1:-1]) if p.startswith("params/") else "/".join(p.split("/")[:-1])
        if module not in norms:
            raise ValueError(f"no activation norms for params leaf {p!r} (module {module!r}); have {sorted(norms)}")
        n = norms[module]
        if n.shape != (w.shape[-2],):
            raise ValueError(f"activation norms of {module!r} have shape {n.shape}, kernel {p!r} has "
                             f"{w.shape[-2]} inputs")
        return jnp.abs(w) * n[:, None]

    return jax.tree_util.tree_map_with_path(leaf, selected, params, is_leaf=is_none)


def wanda_mask(params, scores, sparsity: float):
    """Wanda's per-output comparison group: every output column of every kernel keeps its
    ``round((1 - sparsity) * fan_in)`` highest-scoring inputs (over all leading axes)."""
    check_like(params, scores, what="scores")
    sparsity = check_number("sparsity", sparsity, minimum=0.0, maximum=1.0, max_inclusive=False)

    def leaf(s):
        if s is None:
            return None
        cols = jnp.moveaxis(s, -1, 0).reshape(s.shape[-1], -1)  # (out, fan_in)
        k = keep_count(1.0 - sparsity, cols.shape[1])
        keep = (ranks_last(cols) < k).reshape((s.shape[-1],) + s.shape[:-1])
        return jnp.moveaxis(keep, 0, -1)

    return jax.tree_util.tree_map(leaf, scores, is_leaf=is_none)


def ratios_from_scores(params, scores, sparsity: float, *, predicate: Predicate | None = None):
    """Per-leaf densities that a *global* ranking of ``scores`` at ``sparsity`` gives (e.g. SNIP or
    GraSP scores), for :func:`sparsejax.random_mask`: P4's random pruning at SNIP/GraSP layer ratios."""
    from sparsejax.core.masks import magnitude_mask

    mask = magnitude_mask(params, sparsity, "global", predicate=predicate, scores=scores)
    return jax.tree_util.tree_map(lambda m: None if m is None else float(np.mean(np.asarray(m))), mask,
                                  is_leaf=is_none)
