"""Reference Lipschitz bounds beside the SDPs of P47: the naive product of spectral norms (upper) and a
sampled Jacobian-norm maximisation (lower).

:func:`sampled_lower_bound` evaluates ``‖J(x)‖₂`` (``jax.jacfwd``, exact on each linear region of these
piecewise-linear networks) at sampled points, then refines the best ones by random-perturbation hill
climbing (the gradient of ``‖J(x)‖`` in ``x`` is zero almost everywhere for piecewise-linear networks,
so plain gradient ascent cannot move). Every value it returns is attained, hence ``<=`` the true constant.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from geometry.lipschitz.networks import apply_network, check_network
from sparsejax.core.validation import check_array, check_int, check_key, check_number

__all__ = ["naive_bound", "jacobian_norms", "sampled_lower_bound"]


def naive_bound(weights) -> float:
    """``Π_k ‖W_k‖₂``: an ℓ2 upper bound for any network with 1-Lipschitz activations."""
    ws = check_network(weights, "relu")
    return float(np.prod([np.linalg.norm(w, 2) for w in ws]))


def _jacobian_fn(weights, biases, activation, group_size, vs):
    ws, bs = [jnp.asarray(w) for w in weights], [jnp.asarray(b) for b in biases]
    vs = None if vs is None else [jnp.asarray(v) for v in vs]

    def f(xi):
        return apply_network(ws, bs, xi, activation, group_size, vs)
    jac = jax.jit(jax.vmap(jax.jacfwd(f)))
    # spectral norms in NumPy: XLA's SVD compiles slowly and these Jacobians are tiny
    return lambda pts: np.linalg.norm(np.asarray(jac(pts), dtype=np.float64), ord=2, axis=(1, 2))


def jacobian_norms(weights, biases, x, activation: str, group_size: int = 2, vs=None) -> np.ndarray:
    """Spectral norms of the input Jacobian at each row of ``x`` (shape ``(n, n_0)``)."""
    x = check_array("x", jnp.asarray(x), ndim=2)
    return _jacobian_fn(weights, biases, activation, group_size, vs)(x)


def sampled_lower_bound(weights, biases, activation: str, key, *, n_samples: int = 4096, scale: float = 2.0,
                        refine_steps: int = 50, n_keep: int = 16, group_size: int = 2, vs=None) -> float:
    """Largest ``‖J(x)‖₂`` over ``x ~ N(0, scale² I)`` samples and a hill-climbing refinement of the best."""
    check_network(weights, activation, group_size, vs)
    key = check_key("key", key)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    refine_steps = check_int("refine_steps", refine_steps, minimum=0)
    n_keep = check_int("n_keep", n_keep, minimum=1)
    scale = check_number("scale", scale, minimum=0.0, min_inclusive=False)
    n0 = np.asarray(weights[0]).shape[1]
    norms_of = _jacobian_fn(weights, biases, activation, group_size, vs)
    # NumPy draws seeded from the key: eager jax.random calls compile op by op and dominate small runs
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    x = scale * rng.standard_normal((n_samples, n0))
    norms = norms_of(x)
    best = np.argsort(-norms)[:min(n_keep, n_samples)]
    xb, nb = x[best], norms[best]
    for step in range(refine_steps):
        radius = scale * 0.5 * (1.0 - step / max(refine_steps, 1)) + 1e-3
        cand = xb + radius * rng.standard_normal(xb.shape)
        nc = norms_of(cand)
        better = nc > nb
        xb, nb = np.where(better[:, None], cand, xb), np.where(better, nc, nb)
    return float(np.max(nb))
