"""Tensor (Kronecker / triple-wise) attention, exact and fast (P21: Alman & Song, "How to Capture
Higher-order Correlations? Generalizing Matrix Softmax Attention to Kronecker Computation", ICLR 2024;
a theory paper without official code).

Definition: ``Q, K1, K2, V1, V2`` are ``(n, d)``; ``K1 ⊘ K2`` is the ``(n^2, d)`` column-wise Kronecker
(Khatri-Rao) product with row ``(j, k) = K1_j ∘ K2_k`` (elementwise), likewise ``V1 ⊘ V2``;
``A = exp(scale * Q (K1 ⊘ K2)^T)`` is ``(n, n^2)``, i.e. ``A_{i,(j,k)} = exp(scale * Σ_l Q_il K1_jl K2_kl)``,
``D = diag(A 1)`` and ``Att = D^{-1} A (V1 ⊘ V2)``. The abstract writes the matrix case without a scale;
``scale = 1/d`` by default is our recollection of the paper's normalisation [recalled], a parameter here.

* `tensor_attention`: the exact ``O(n^3 d)`` computation (``n^3`` logits; small ``n`` only). With
  ``K2 = V2 = 1`` (all ones) it is exactly softmax attention on ``(Q, K1, V1)`` with the same scale.
* `fast_tensor_attention`: the polynomial method. ``exp`` is replaced by its degree-``g`` Taylor
  polynomial, whose monomial expansion factorises over the three operands:
  ``P(Σ_l a_l b_l c_l) = Σ_{|α| <= g} (1/α!) a^α b^α c^α`` (multi-indices ``α`` of ``d`` entries), so
  ``A ≈ U0 (U1 ⊘ U2)^T`` with ``U0_i = [scale^|α| Q_i^α / α!]``, ``U1_j = [K1_j^α]``, ``U2_k = [K2_k^α]`` of rank
  ``r = C(d + g, g)``. The Khatri-Rao identity ``(U1 ⊘ U2)^T (V1 ⊘ V2) = (U1^T V1) ∘ (U2^T V2)`` then gives
  ``Att ≈ D~^{-1} U0 [(U1^T V1) ∘ (U2^T V2)]`` with ``D~ = diag(U0 [(U1^T 1) ∘ (U2^T 1)])``, in ``O(n r d)``.

Entry-bound condition (the paper's theorem, as stated in the abstract): if every entry of the inputs
is bounded by ``B = o(∛log n)``, an entrywise ``1/poly(n)`` approximation of ``Att`` takes ``n^{1+o(1)}``
time; if entries may be ``Ω(∛log n)``, no ``n^{3-o(1)}`` algorithm exists under SETH. Here a logit is at
most ``scale * d * B^3`` in absolute value (``B^3`` at ``scale = 1/d``), and the Taylor error on
``|x| <= R`` is at most ``R^{g+1} e^R / (g+1)!``: the degree needed grows with ``B^3``, the rank like
``C(d + g, g)``. Deviation: the paper's construction uses a Chebyshev-type polynomial of degree
``O(log n / log(log n / B^3))``; we use Taylor (same structure, somewhat larger degree for the same error).
An odd-degree Taylor polynomial can be negative for very negative logits, so ``D~`` is only guaranteed
positive for even ``g`` (`fast_tensor_attention` requires ``g`` even).
"""
from __future__ import annotations

import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_int, check_number

__all__ = ["tensor_attention", "fast_tensor_attention", "multi_indices", "polynomial_features",
           "khatri_rao", "softmax_attention", "TensorSelfAttention"]


def _check(q, k1, k2, v1, v2):
    for name, x in (("q", q), ("k1", k1), ("k2", k2), ("v1", v1), ("v2", v2)):
        check_array(name, x, dtype_kind="f")
        if x.ndim < 2 or x.shape[-2:] != q.shape[-2:] or x.shape[:-2] != q.shape[:-2]:
            raise ValueError(f"{name} must have the shape of q {tuple(q.shape)} (..., n, d), got {tuple(x.shape)}")
    return q.shape[-1]


def _scale(scale, d):
    return 1.0 / d if scale is None else check_number("scale", scale)


def khatri_rao(a, b):
    """Row-wise Khatri-Rao product: ``(..., n, d) x (..., m, d) -> (..., n * m, d)``, row ``(j, k) = a_j ∘ b_k``."""
    out = a[..., :, None, :] * b[..., None, :, :]
    return out.reshape(*out.shape[:-3], a.shape[-2] * b.shape[-2], a.shape[-1])


def tensor_attention(q, k1, k2, v1, v2, *, scale: float | None = None):
    """Exact tensor attention ``D^{-1} A (V1 ⊘ V2)`` (module doc), ``O(n^3 d)``; leading batch axes allowed."""
    d = _check(q, k1, k2, v1, v2)
    s = jnp.einsum("...il,...jl,...kl->...ijk", q, k1, k2) * _scale(scale, d)
    n = s.shape[-1]
    p = jax.nn.softmax(s.reshape(*s.shape[:-2], n * n), axis=-1).reshape(s.shape)
    return jnp.einsum("...ijk,...jl,...kl->...il", p, v1, v2)


def softmax_attention(q, k, v, *, scale: float | None = None):
    """Standard (non-causal) softmax attention ``softmax(scale * Q K^T) V`` with the same default scale ``1/d``."""
    d = q.shape[-1]
    return jax.nn.softmax(jnp.einsum("...il,...jl->...ij", q, k) * _scale(scale, d), axis=-1) @ v


def multi_indices(d: int, degree: int) -> np.ndarray:
    """All ``α ∈ N^d`` with ``|α| <= degree``, shape ``(C(d + degree, degree), d)``, by total degree."""
    d = check_int("d", d, minimum=1)
    degree = check_int("degree", degree, minimum=0)
    rows = [np.bincount(c, minlength=d) for t in range(degree + 1)
            for c in itertools.combinations_with_replacement(range(d), t)]
    return np.asarray(rows, np.int32).reshape(-1, d)


def polynomial_features(x, alphas: np.ndarray, coef=None):
    """``[coef_α · x^α]_α`` for rows of ``x (..., n, d)`` -> ``(..., n, r)``."""
    feats = jnp.prod(x[..., None, :] ** jnp.asarray(alphas, x.dtype), axis=-1)
    return feats if coef is None else feats * jnp.asarray(coef, x.dtype)


def fast_tensor_attention(q, k1, k2, v1, v2, *, degree: int, scale: float | None = None):
    """Polynomial-method tensor attention (module doc): rank ``C(d + degree, degree)``, ``O(n r d)``."""
    d = _check(q, k1, k2, v1, v2)
    degree = check_int("degree", degree, minimum=0)
    if degree % 2:
        raise ValueError(f"degree must be even (an odd Taylor polynomial of exp can be negative), got {degree}")
    alphas = multi_indices(d, degree)
    sc = _scale(scale, d)
    coef = np.array([sc ** int(a.sum()) / np.prod([math.factorial(int(t)) for t in a]) for a in alphas])
    u0 = polynomial_features(q, alphas, coef)
    u1, u2 = polynomial_features(k1, alphas), polynomial_features(k2, alphas)
    num = jnp.einsum("...ir,...rl->...il", u0, jnp.einsum("...jr,...jl->...rl", u1, v1)
                     * jnp.einsum("...kr,...kl->...rl", u2, v2))
    den = u0 @ (u1.sum(-2) * u2.sum(-2))[..., None]
    return num / den


class TensorSelfAttention(nn.Module):
    """One-head tensor self-attention layer (non-causal): projections ``q, k1, k2, v1, v2`` of width
    ``d_model``, exact `tensor_attention` (or `fast_tensor_attention` with ``degree``), an ``out``
    projection. ``__call__(x[B, n, d_in]) -> (B, n, d_model)``."""

    d_model: int
    degree: int | None = None

    @nn.compact
    def __call__(self, x):
        proj = [nn.Dense(self.d_model, name=name)(x) for name in ("q", "k1", "k2", "v1", "v2")]
        y = tensor_attention(*proj) if self.degree is None else fast_tensor_attention(*proj, degree=self.degree)
        return nn.Dense(self.d_model, name="out")(y)
