"""Matrix-group machinery for GL+(n, R), SL(n, R) and the affine groups R^n x| G (P19).

Mironenco & Forré, "Lie Group Decompositions for Equivariant Neural Networks" (ICLR 2024).
Equation numbers refer to arXiv:2310.11366v2.

* Polar (Cartan) decomposition ``G = P . K``: every ``g`` in GL+(n) factors uniquely as
  ``g = p r`` with ``p`` symmetric positive definite and ``r`` in SO(n) (Sec. 4, the map
  ``psi = phi^{-1}: G -> Pos(n) x SO(n)``; SL(n) uses the unit-determinant SPD factor).
* Scale factorisation ``GL+(n) = R_{>0} x SL(n)``: ``g = det(g)^{1/n} u`` with ``det u = 1``.
* Global parametrisation ``xi: gl(n) -> G``, ``xi(X) = exp(X_p) exp(X_k)`` where ``X_p``/``X_k``
  are the symmetric/skew parts of ``X`` (Cartan decomposition ``g = p + k``), with inverse
  ``xi^{-1}(g) = log(p) + log(r)`` for ``g = p r``. Kernels of group convolutions are functions
  of ``xi^{-1}(h^{-1} g)`` in the coordinates returned by :func:`gl_vee` (orthonormal for the
  trace inner product ``<X, Y> = tr(X^T Y)``).

All functions are batched over leading axes and jit-/vmap-friendly. ``log`` on SO(n) is closed
form for n = 2, 3 (the only cases the paper uses); everything else is written for general n.

Domains are checked for concrete inputs: NaN/inf entries, ``det <= 0`` where GL+(n) is required
(:func:`polar_decomposition`, :func:`xi_inv`, :func:`sl_scale_decomposition`), singular matrices
(:func:`group_inverse`, :func:`affine_inverse`), non-SPD matrices (:func:`spd_log`,
:func:`spd_sqrt`) and non-rotations (:func:`so_log`) raise ``ValueError``. Under ``jax.jit`` the
values are unknown at trace time and these are preconditions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_finite_array, is_traced, check_int


def _check_square(g, name: str = "g", min_ndim: int = 2) -> jax.Array:
    g = jnp.asarray(g)
    if g.ndim < min_ndim or g.shape[-1] != g.shape[-2]:
        raise ValueError(f"{name} must have shape (..., n, n), got {g.shape}")
    if not jnp.issubdtype(g.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {g.dtype}")
    check_finite_array(name, g)
    return g


def _host(g) -> np.ndarray | None:
    """``g`` as float64 numpy, or ``None`` for a tracer (values unknown at trace time)."""
    return None if is_traced(g) else np.asarray(g, np.float64)


def _check_det_positive(g, name: str) -> None:
    a = _host(g)
    if a is not None and a.size:
        det = np.linalg.det(a)
        if not np.all(det > 0):
            raise ValueError(f"{name} must lie in GL+(n) (det > 0), got det = {float(np.min(det)):.3g}")


def _check_invertible(g, name: str) -> None:
    a = _host(g)
    if a is not None and a.size:
        sv = np.linalg.svd(a, compute_uv=False)
        if not np.all(sv[..., -1] > 1e-12 * np.maximum(sv[..., 0], 1e-300)):
            raise ValueError(f"{name} must be invertible, got a singular matrix (smallest singular value "
                             f"{float(np.min(sv[..., -1])):.3g})")


def _check_spd(p, name: str) -> None:
    a = _host(p)
    if a is not None and a.size:
        asym = np.abs(a - np.swapaxes(a, -1, -2)).max()
        if asym > 1e-4 * max(1.0, np.abs(a).max()):
            raise ValueError(f"{name} must be symmetric positive definite, got max |{name} - {name}^T| = {asym:.3g}")
        low = float(np.linalg.eigvalsh(0.5 * (a + np.swapaxes(a, -1, -2))).min())
        if low <= 0:
            raise ValueError(f"{name} must be symmetric positive definite, got smallest eigenvalue {low:.3g}")


def _check_rotation(r, name: str) -> None:
    a = _host(r)
    if a is not None and a.size:
        err = np.abs(a @ np.swapaxes(a, -1, -2) - np.eye(a.shape[-1])).max()
        if err > 1e-3 or not np.all(np.linalg.det(a) > 0):
            raise ValueError(f"{name} must be a rotation (orthogonal, det +1), got max |r r^T - I| = {err:.3g} "
                             f"and det = {float(np.min(np.linalg.det(a))):.3g}")


def _check_symmetric(y, name: str) -> None:
    a = _host(y)
    if a is not None and a.size:
        asym = np.abs(a - np.swapaxes(a, -1, -2)).max()
        if asym > 1e-4 * max(1.0, np.abs(a).max()):
            raise ValueError(f"{name} must be symmetric, got max |{name} - {name}^T| = {asym:.3g}")


def _t(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, -1, -2)


def _sym_fn(x: jax.Array, fn) -> jax.Array:
    """Apply the scalar function ``fn`` to the eigenvalues of the symmetric matrix ``x``."""
    e, v = jnp.linalg.eigh(0.5 * (x + _t(x)))
    return (v * fn(e)[..., None, :]) @ _t(v)


def spd_exp(y) -> jax.Array:
    """Matrix exponential of a symmetric matrix (lands in Pos(n))."""
    y = _check_square(y, "y")
    _check_symmetric(y, "y")
    return _sym_fn(y, jnp.exp)


def spd_log(p) -> jax.Array:
    """Matrix logarithm of a symmetric positive-definite matrix (a symmetric matrix)."""
    p = _check_square(p, "p")
    _check_spd(p, "p")
    return _sym_fn(p, jnp.log)


def spd_sqrt(p) -> jax.Array:
    """Principal square root of a symmetric positive-definite matrix."""
    p = _check_square(p, "p")
    _check_spd(p, "p")
    return _sym_fn(p, jnp.sqrt)


def polar_decomposition(g) -> tuple[jax.Array, jax.Array]:
    """Left polar decomposition ``g = p r`` of ``g`` in GL+(n) (the map psi = phi^{-1}, Sec. 4).

    ``p = (g g^T)^{1/2}`` is symmetric positive definite and ``r = p^{-1} g`` is in SO(n).
    Returns ``(p, r)``. Raises ``ValueError`` for ``det g <= 0`` (concrete inputs).
    """
    g = _check_square(g)
    _check_det_positive(g, "g")
    e, v = jnp.linalg.eigh(g @ _t(g))
    half_log = 0.5 * jnp.log(e)
    p = (v * jnp.exp(half_log)[..., None, :]) @ _t(v)
    p_inv = (v * jnp.exp(-half_log)[..., None, :]) @ _t(v)
    return p, p_inv @ g


def compose_polar(p, r) -> jax.Array:
    """Inverse of :func:`polar_decomposition`: ``(p, r) -> p r`` (the map phi, Sec. 4)."""
    p, r = _check_square(p, "p"), _check_square(r, "r")
    _check_spd(p, "p")
    _check_rotation(r, "r")
    return p @ r


def sl_scale_decomposition(g) -> tuple[jax.Array, jax.Array]:
    """Factor ``g`` in GL+(n) as ``s * u`` with ``s = det(g)^{1/n} > 0`` and ``u`` in SL(n).

    GL+(n) = R_{>0} x SL(n) is a direct product (scalars are central), so the Haar measure
    factorises as ``ds / s`` times the Haar measure of SL(n). Returns ``(s, u)``.
    """
    g = _check_square(g)
    _check_det_positive(g, "g")
    n = g.shape[-1]
    s = jnp.linalg.det(g) ** (1.0 / n)
    return s, g / s[..., None, None]


def so_log(r) -> jax.Array:
    """Principal logarithm of a rotation (a skew-symmetric matrix); closed form for n = 2, 3."""
    r = _check_square(r, "r")
    _check_rotation(r, "r")
    n = r.shape[-1]
    if n == 2:
        theta = jnp.arctan2(r[..., 1, 0], r[..., 0, 0])
        return theta[..., None, None] * jnp.array([[0.0, -1.0], [1.0, 0.0]], r.dtype)
    if n == 3:
        cos = jnp.clip(0.5 * (jnp.trace(r, axis1=-2, axis2=-1) - 1.0), -1.0, 1.0)
        theta = jnp.arccos(cos)
        sin = jnp.sin(theta)
        small = sin < 1e-6
        factor = jnp.where(small, 0.5 + theta**2 / 12.0, theta / (2.0 * jnp.where(small, 1.0, sin)))
        return factor[..., None, None] * (r - _t(r))
    raise NotImplementedError(f"so_log is implemented for n = 2, 3 only, got n = {n}")


def rotation_2d(theta) -> jax.Array:
    """The SO(2) matrix of angle ``theta`` (counter-clockwise in the (axis 0, axis 1) plane)."""
    if isinstance(theta, (str, bytes)) or not (hasattr(theta, "dtype") or isinstance(theta, (int, float))):
        raise TypeError(f"theta must be a number or a float array, got {type(theta).__name__}")
    theta = check_finite_array("theta", jnp.asarray(theta))
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)


def gl_dim(n: int) -> int:
    """Dimension n^2 of gl(n) (= number of coordinates returned by :func:`gl_vee`)."""
    n = check_int("n", n, minimum=1)
    return n * n


def _triu(n: int, k: int) -> tuple:
    return tuple(jnp.array(a) for a in jnp.triu_indices(n, k))


def gl_vee(x) -> jax.Array:
    """Coordinates of ``x`` in gl(n) in an orthonormal basis for ``tr(X^T Y)`` (Sec. 4).

    Order: the n(n+1)/2 symmetric coordinates (diagonal entries, then ``sqrt(2) x_ij`` of the
    symmetric part for i < j), followed by the n(n-1)/2 skew coordinates (``sqrt(2)`` times the
    lower-triangular entries of the skew part). Inverse of :func:`gl_hat`.
    """
    x = _check_square(x, "x")
    n = x.shape[-1]
    s, k = 0.5 * (x + _t(x)), 0.5 * (x - _t(x))
    diag = jnp.diagonal(s, axis1=-2, axis2=-1)
    iu, ju = _triu(n, 1)
    off = jnp.sqrt(2.0) * s[..., iu, ju]
    skew = jnp.sqrt(2.0) * k[..., ju, iu]
    return jnp.concatenate([diag, off, skew], -1)


def gl_hat(v, n: int) -> jax.Array:
    """Matrix in gl(n) with coordinates ``v`` (shape (..., n^2)); inverse of :func:`gl_vee`."""
    v = jnp.asarray(v)
    if v.shape[-1] != gl_dim(n):
        raise ValueError(f"v (gl({n}) coordinates) must have last axis {n * n}, got shape {v.shape}")
    m = n * (n - 1) // 2
    diag, off, skew = v[..., :n], v[..., n : n + m], v[..., n + m :]
    iu, ju = _triu(n, 1)
    x = jnp.zeros(v.shape[:-1] + (n, n), v.dtype)
    x = x.at[..., jnp.arange(n), jnp.arange(n)].set(diag)
    x = x.at[..., iu, ju].set((off - skew) / jnp.sqrt(2.0))
    x = x.at[..., ju, iu].set((off + skew) / jnp.sqrt(2.0))
    return x


def xi(x) -> jax.Array:
    """Global parametrisation ``xi: gl(n) -> GL+(n)``, ``X -> exp(X_p) exp(X_k)`` (Sec. 4).

    ``X_p`` is the symmetric and ``X_k`` the skew part of the matrix ``x``; the map is a
    diffeomorphism onto GL+(n) when ``X_k`` is restricted to the principal domain of ``log``.
    """
    x = _check_square(x, "x")
    return spd_exp(0.5 * (x + _t(x))) @ jax.scipy.linalg.expm(0.5 * (x - _t(x)))


def xi_inv(g) -> jax.Array:
    """Inverse parametrisation ``xi^{-1}(g) = log(p) + log(r)`` for ``g = p r`` (Sec. 4).

    Returns a matrix in gl(n); use :func:`gl_vee` for coordinates (kernel inputs).
    """
    p, r = polar_decomposition(g)
    return spd_log(p) + so_log(r)


def group_product(a, b) -> jax.Array:
    """Group product ``a b`` of (batches of) matrices."""
    a, b = _check_square(a, "a"), _check_square(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"b must have the matrix size of a, got a {a.shape} and b {b.shape}")
    return a @ b


def group_inverse(g) -> jax.Array:
    """Inverse ``g^{-1}`` computed through the polar factors: ``(p r)^{-1} = r^T p^{-1}``.

    Raises ``ValueError`` for a singular ``g`` (concrete inputs).
    """
    return _inverse(g, "g")


def _inverse(g, name: str) -> jax.Array:
    g = _check_square(g, name)
    _check_invertible(g, name)
    e, v = jnp.linalg.eigh(g @ _t(g))
    p_inv = (v * (e ** -0.5)[..., None, :]) @ _t(v)
    r = p_inv @ g
    return _t(r) @ p_inv


def act(g, x) -> jax.Array:
    """Linear action of ``g`` (..., n, n) on points ``x`` (..., n): ``g x``."""
    return _act(g, x, "g", "x")


def _act(g, x, g_name: str, x_name: str) -> jax.Array:
    g = _check_square(g, g_name)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != g.shape[-1]:
        raise ValueError(f"{x_name} of shape {x.shape} does not match {g_name} of shape {g.shape} "
                         f"(need last axis {g.shape[-1]})")
    return jnp.einsum("...ij,...j->...i", g, x)


def _check_translation(t, a, t_name: str, a_name: str) -> jax.Array:
    t = jnp.asarray(t)
    if t.ndim < 1 or t.shape[-1] != a.shape[-1]:
        raise ValueError(f"{t_name} must have shape (..., {a.shape[-1]}) to match {a_name} {a.shape}, got {t.shape}")
    check_finite_array(t_name, t)
    return t


def affine_product(t1, a1, t2, a2) -> tuple[jax.Array, jax.Array]:
    """Product in R^n x| G: ``(t1, a1)(t2, a2) = (t1 + a1 t2, a1 a2)``."""
    a1, a2 = _check_square(a1, "a1"), _check_square(a2, "a2")
    if a1.shape[-1] != a2.shape[-1]:
        raise ValueError(f"a2 must have the matrix size of a1, got a1 {a1.shape} and a2 {a2.shape}")
    t1 = _check_translation(t1, a1, "t1", "a1")
    return t1 + _act(a1, t2, "a1", "t2"), a1 @ a2


def affine_inverse(t, a) -> tuple[jax.Array, jax.Array]:
    """Inverse in R^n x| G: ``(t, a)^{-1} = (-a^{-1} t, a^{-1})``."""
    a_inv = _inverse(a, "a")
    _check_translation(t, a_inv, "t", "a")
    return -act(a_inv, t), a_inv


def affine_act(t, a, x) -> jax.Array:
    """Action of ``(t, a)`` in R^n x| G on points ``x``: ``a x + t``."""
    a = _check_square(a, "a")
    return _act(a, x, "a", "x") + _check_translation(t, a, "t", "a")
