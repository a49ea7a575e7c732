"""Sampling and Monte-Carlo integration with the decomposed Haar measure of GL+(n) / SL(n) (P19).

Through the polar decomposition ``g = exp(Y) r`` (``Y`` symmetric, ``r`` in SO(n)) the Haar
measure of G = GL+(n) splits into the Haar measure of the compact factor SO(n) and the
G-invariant measure of the symmetric space Pos(n) = G / SO(n) (Sec. 4, decomposition of the
Haar measure ``dmu_G = dmu_Pos dmu_SO``). In the coordinates ``Y`` of Pos(n) (``p = exp(Y)``) the
invariant measure has the density (w.r.t. Lebesgue measure on orthonormal coordinates of Y)

    rho(Y) = prod_{i<j} sinh(l_i - l_j) / (l_i - l_j),        l = eigenvalues of Y,

which is the Jacobian of the exponential map of the symmetric space. For SL(n), ``Y`` is
traceless and the same density holds on that subspace.

``sample_group`` draws ``Y`` from an isotropic Gaussian of scale ``spd_scale`` on the
orthonormal coordinates of Sym(n) (the log-normal SPD sampler of the official code) and ``r``
from the Haar measure of SO(n), and returns importance log-weights ``log rho(Y) - log q(Y)`` so
that ``mean(exp(log_w) f(g))`` is an unbiased Monte-Carlo estimate of the Haar integral of
``f`` (Haar measure normalised so that SO(n) has volume 1 and ``rho(0) = 1``).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from geometry.lie.groups import _check_square, _check_symmetric, rotation_2d, spd_exp
from sparsejax.core.validation import check_int, check_callable, check_type

ROTATION_SAMPLERS = ("haar", "equidistant", "grid", "identity")


class GroupSamples(NamedTuple):
    """Group elements ``g`` (N, n, n), their polar factors and Haar importance log-weights (N,)."""

    g: jax.Array
    log_weight: jax.Array


def haar_so(key: jax.Array, num: int, n: int) -> jax.Array:
    """``num`` rotations drawn from the Haar measure of SO(n) (QR of a Gaussian matrix)."""
    num = check_int("num", num, minimum=1)
    n = check_int("n", n, minimum=1)
    q, r = jnp.linalg.qr(jax.random.normal(key, (num, n, n)))
    q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    flip = jnp.where(jnp.linalg.det(q) < 0, -1.0, 1.0)
    return q.at[:, :, 0].multiply(flip[:, None])


def equidistant_so2(key: jax.Array, num: int, random_offset: bool = True) -> jax.Array:
    """``num`` equally spaced SO(2) angles, optionally with a uniform random offset.

    With the offset (a stratified Haar sample) each rotation is marginally Haar distributed and
    the set is invariant in distribution under left multiplication; without it, the fixed grid
    ``2 pi k / num`` of the official code's equidistant SO(2) sampler.
    """
    num = check_int("num", num, minimum=1)
    offset = jax.random.uniform(key, (), minval=0.0, maxval=2.0 * math.pi / num) if random_offset else 0.0
    return rotation_2d(offset + 2.0 * math.pi * jnp.arange(num) / num)


def sym_dim(n: int, traceless: bool = False) -> int:
    """Dimension of Sym(n) (or of its traceless subspace)."""
    n = check_int("n", n, minimum=1)
    return n * (n + 1) // 2 - int(traceless)


def _sym_basis(n: int, traceless: bool) -> jax.Array:
    """Orthonormal basis (for tr(X^T Y)) of Sym(n) or its traceless subspace, shape (d, n, n)."""
    mats = []
    for i in range(n):
        mats.append(jnp.zeros((n, n)).at[i, i].set(1.0))
    if traceless:  # orthonormal basis of the traceless diagonals (Gram-Schmidt via QR)
        diag = jnp.eye(n) - 1.0 / n
        q, _ = jnp.linalg.qr(diag[:, : n - 1])
        mats = [jnp.diag(q[:, k]) for k in range(n - 1)]
    for i in range(n):
        for j in range(i + 1, n):
            e = jnp.zeros((n, n)).at[i, j].set(1.0).at[j, i].set(1.0)
            mats.append(e / jnp.sqrt(2.0))
    return jnp.stack(mats)


def pos_log_density(y) -> jax.Array:
    """``log rho(Y)``: log-density of the invariant measure of Pos(n) at ``exp(Y)`` (module doc).

    ``y`` is a (batch of) symmetric matrices; the density is w.r.t. orthonormal coordinates.
    """
    y = _check_square(y, "y")
    _check_symmetric(y, "y")
    lam = jnp.linalg.eigvalsh(y)
    n = y.shape[-1]
    iu, ju = jnp.triu_indices(n, 1)
    d = jnp.abs(lam[..., iu] - lam[..., ju])
    safe = jnp.where(d < 1e-4, 1.0, d)
    # log(sinh(d)/d), with the series d^2/6 near 0 and a stable form for large d
    term = jnp.where(d < 1e-4, d**2 / 6.0, safe + jnp.log1p(-jnp.exp(-2.0 * safe)) - jnp.log(2.0 * safe))
    return term.sum(-1)


def sample_group(
    key: jax.Array,
    num: int,
    n: int = 2,
    *,
    spd_scale: float = 0.3,
    traceless: bool = False,
    rotations: str = "haar",
) -> GroupSamples:
    """Draw ``num`` elements ``g = exp(Y) r`` of GL+(n) (or SL(n) if ``traceless``) (Sec. 4).

    ``Y ~ N(0, spd_scale^2)`` on orthonormal coordinates of Sym(n) (``spd_scale = 0`` gives
    pure rotations, i.e. SO(n)); ``r`` from ``rotations`` in {"haar", "equidistant" (n = 2,
    randomly shifted grid), "grid" (n = 2, fixed grid 2 pi k / num), "identity"}. ``log_weight = log rho(Y) - log q(Y)`` are the importance weights w.r.t. the
    decomposed Haar measure (``0`` when ``spd_scale = 0``, where the sample is Haar on SO(n)).
    """
    if num < 1 or n < 1:
        raise ValueError(f"num and n must be >= 1, got num={num}, n={n}")
    if spd_scale < 0:
        raise ValueError(f"spd_scale must be >= 0, got {spd_scale}")
    if rotations not in ROTATION_SAMPLERS:
        raise ValueError(f"rotations must be one of {ROTATION_SAMPLERS}, got {rotations!r}")
    if rotations in ("equidistant", "grid") and n != 2:
        raise ValueError(f"{rotations} rotations are defined for n = 2 only")
    k_spd, k_rot = jax.random.split(key)
    if rotations == "haar":
        r = haar_so(k_rot, num, n)
    elif rotations in ("equidistant", "grid"):
        r = equidistant_so2(k_rot, num, random_offset=rotations == "equidistant")
    else:
        r = jnp.broadcast_to(jnp.eye(n), (num, n, n))
    if spd_scale == 0:
        return GroupSamples(r, jnp.zeros((num,)))
    basis = _sym_basis(n, traceless)
    z = jax.random.normal(k_spd, (num, basis.shape[0]))
    y = jnp.einsum("bd,dij->bij", spd_scale * z, basis)
    d = basis.shape[0]
    log_q = -0.5 * jnp.sum(z**2, -1) - d * math.log(spd_scale) - 0.5 * d * math.log(2.0 * math.pi)
    return GroupSamples(spd_exp(y) @ r, pos_log_density(y) - log_q)


def haar_integral(fn: Callable[[jax.Array], jax.Array], samples: GroupSamples) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo estimate of the Haar integral of ``fn`` and its standard error.

    ``fn`` maps a batch of group elements (N, n, n) to values (N,); returns ``(mean, stderr)``
    of ``exp(log_weight) * fn(g)``.
    """
    check_callable("fn", fn)
    check_type("samples", samples, GroupSamples, "GroupSamples (from sample_group)")
    vals = jnp.exp(samples.log_weight) * fn(samples.g)
    if vals.shape != samples.log_weight.shape:
        raise ValueError(f"fn must return one value per sample, got shape {vals.shape}")
    num = vals.shape[0]
    return vals.mean(), vals.std() / jnp.sqrt(num)
