"""Semantic directions in the h-space of a diffusion model (Haas et al. 2024, P17).

A *direction* is a trajectory of bottleneck shifts, one per DDIM step: an array of shape
``(S, *h_shape)`` (global) or ``(S, B, *h_shape)`` (one per image); editing adds
``alpha * direction[i]`` to ``h`` at step ``i`` (:func:`edit_along_direction`). The h-codes of a
set of samples are stacked sample-first, ``hs`` of shape ``(N, S, *h_shape)``
(``jnp.swapaxes(trajectory.hs, 0, 1)`` for a :class:`~generative.diffusion.ddim.DDIMTrajectory`).

Methods (section numbers of the paper):

* unsupervised global directions: principal components of the h-codes (Sec. 4.1),
  :func:`pca_directions`;
* unsupervised image-specific directions: top right singular vectors of the Jacobian of the
  denoiser output w.r.t. ``h`` (Sec. 4.2, Alg. 1), computed matrix-free by subspace iteration on
  ``J^T J`` with ``jax.linearize``/``jax.vjp``: :func:`jacobian_svd`,
  :func:`denoiser_jacobian_directions`;
* supervised directions: difference of mean h-codes of labelled positive/negative samples, or of
  the top/bottom samples ranked by an attribute classifier (Sec. 5): :func:`mean_difference_direction`,
  :func:`extreme_scores_direction`;
* disentanglement by linear projection onto the orthogonal complement of other directions
  (Sec. 5.1, as in InterFaceGAN's conditional manipulation): :func:`project_out`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from generative.diffusion.ddim import DDIMTrajectory, ddim_sample
from generative.diffusion.schedules import NoiseSchedule
from sparsejax.core.validation import check_finite_array, check_int, is_traced


class PCADirections(NamedTuple):
    """Unit principal directions ``vectors`` (``(k, S, *h_shape)``), the standard deviation of the
    h-codes along each (``(k,)``, or ``(k, S)`` per timestep), the explained-variance ratios
    (same shape as ``stds``) and the mean h-code (``(S, *h_shape)``)."""

    vectors: jax.Array
    stds: jax.Array
    explained_variance_ratio: jax.Array
    mean: jax.Array


class JacobianSVD(NamedTuple):
    """Top-``k`` singular triplets of a Jacobian ``J = df/dh``: left vectors ``u`` (``(k, *out_shape)``),
    singular values ``s`` (``(k,)``, descending) and right vectors ``v`` (``(k, *h_shape)``)."""

    u: jax.Array
    s: jax.Array
    v: jax.Array


def _check_hs(hs: jax.Array, name: str = "hs") -> None:
    if not hasattr(hs, "ndim") or hs.ndim < 2:
        raise ValueError(f"{name} must have shape (N, S, *h_shape), got {getattr(hs, 'shape', type(hs))}")
    if hs.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {hs.shape[0]}")


def _fix_sign(v: jax.Array) -> jax.Array:
    """Flip each vector (leading axis) so that its entry of largest magnitude is positive."""
    flat = v.reshape(v.shape[0], -1)
    pick = jnp.take_along_axis(flat, jnp.argmax(jnp.abs(flat), axis=1)[:, None], axis=1)
    return v * jnp.sign(pick).reshape((-1,) + (1,) * (v.ndim - 1))


def pca_directions(hs: jax.Array, num_components: int, *, per_timestep: bool = True) -> PCADirections:
    """Principal components of h-codes ``hs`` of shape ``(N, S, *h_shape)`` (Sec. 4.1).

    Per timestep (default, the paper's choice, Sec. IV-A, and the official demo's ``get_PCs_indv``):
    a separate PCA at every step, the j-th components of all steps concatenated into the j-th
    direction, signs flipped so that each step's component has a positive inner product with the
    first step's; vectors have unit norm per step and ``stds`` is ``(k, S)``. ``per_timestep=False``
    (pooled): each sample's whole trajectory is one vector of length ``S * prod(h_shape)``, vectors
    have unit norm over the trajectory and ``stds`` is ``(k,)``.
    """
    _check_hs(hs)
    check_finite_array("hs", hs)
    num_components = check_int("num_components", num_components, minimum=1)
    n, steps = hs.shape[:2]
    max_k = min(n, int(np.prod(hs.shape[2:] if per_timestep else hs.shape[1:])))
    if not 1 <= num_components <= max_k:
        raise ValueError(f"num_components must be in [1, {max_k}], got {num_components}")
    mean = hs.mean(axis=0)

    def pca(x):  # x: (N, D) -> unit vectors (k, D), stds (k,), explained ratio (k,)
        xc = x - x.mean(axis=0)
        _, s, vt = jnp.linalg.svd(xc, full_matrices=False)
        var = s**2 / (n - 1)
        return vt[:num_components], jnp.sqrt(var[:num_components]), var[:num_components] / var.sum()

    if not per_timestep:
        vt, stds, ratio = pca(hs.reshape(n, -1))
        vecs = _fix_sign(vt).reshape((num_components,) + hs.shape[1:])
        return PCADirections(vecs, stds, ratio, mean)

    vt, stds, ratio = jax.vmap(pca, in_axes=1)(hs.reshape(n, steps, -1))  # (S, k, D)
    vt = jax.vmap(_fix_sign)(vt)
    signs = jnp.sign(jnp.einsum("skd,kd->sk", vt, vt[0]))
    vt = vt * jnp.where(signs == 0, 1.0, signs)[..., None]
    vecs = jnp.swapaxes(vt, 0, 1).reshape((num_components,) + hs.shape[1:])
    return PCADirections(vecs, stds.T, ratio.T, mean)


def jacobian_svd(
    f: Callable, h: jax.Array, num_vectors: int, key: jax.Array, *, num_iters: int = 30, oversample: int = 4
) -> JacobianSVD:
    """Top singular triplets of ``J = df/dh`` at ``h`` without forming ``J`` (Sec. 4.2, Alg. 1).

    Block power (subspace) iteration ``V <- orth(J^T J V)`` on a block of
    ``num_vectors + oversample`` vectors, where ``J V`` is a batch of Jacobian-vector products
    (``jax.linearize``) and ``J^T U`` a batch of vector-Jacobian products (``jax.vjp``); a final
    Rayleigh-Ritz step (thin SVD of the small matrix ``J V``) returns the singular triplets. This
    generalises the paper's sequential power iteration with deflation. Each right vector is
    sign-fixed so that its largest-magnitude entry is positive.
    """
    size = int(np.prod(h.shape))
    block = min(num_vectors + oversample, size)
    if not 1 <= num_vectors <= size:
        raise ValueError(f"num_vectors must be in [1, {size}], got {num_vectors}")
    if num_iters < 1:
        raise ValueError(f"num_iters must be >= 1, got {num_iters}")
    h_flat = h.reshape(-1)

    def f_flat(z):
        return f(z.reshape(h.shape)).reshape(-1)

    _, jvp = jax.linearize(f_flat, h_flat)
    _, vjp = jax.vjp(f_flat, h_flat)
    jv = jax.vmap(jvp, in_axes=1, out_axes=1)  # (D, k) -> (M, k)
    jtu = jax.vmap(lambda u: vjp(u)[0], in_axes=1, out_axes=1)  # (M, k) -> (D, k)

    v0, _ = jnp.linalg.qr(jax.random.normal(key, (size, block), h_flat.dtype))
    v, _ = jnp.linalg.qr(jax.lax.fori_loop(0, num_iters, lambda _, v: jnp.linalg.qr(jtu(jv(v)))[0], v0))
    ub, s, wt = jnp.linalg.svd(jv(v), full_matrices=False)
    right = (v @ wt.T)[:, :num_vectors].T  # (k, D)
    left = ub[:, :num_vectors].T
    sign = jnp.sign(jnp.take_along_axis(right, jnp.argmax(jnp.abs(right), axis=1)[:, None], axis=1))
    out_shape = jax.eval_shape(f, h).shape
    return JacobianSVD(
        (left * sign).reshape((num_vectors,) + out_shape), s[:num_vectors], (right * sign).reshape((num_vectors,) + h.shape)
    )


def denoiser_jacobian_directions(
    eps_fn: Callable,
    trajectory: DDIMTrajectory,
    index: int,
    num_vectors: int,
    key: jax.Array,
    *,
    num_iters: int = 30,
    output_mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Image-specific directions of sample ``index`` of ``trajectory`` (Sec. 4.2): at every DDIM step
    ``i`` the top right singular vectors of ``d eps(x_{t_i}, t_i, h + dh) / d dh`` at ``dh = 0``.

    ``output_mask`` (broadcastable to one image, e.g. ``(H, W, 1)`` of 0/1) gives the *masked*
    Jacobian of the paper's eq. 9-10, ``d (M * eps) / d dh``: its singular vectors are the shifts
    that change the region ``M`` most (region-specific edits; the official ``calc_power_dirs``
    with ``mask``). Returns ``(vectors, singular_values)`` of shapes ``(k, S, *h_shape)`` and
    ``(k, S)``; the vectors have unit norm per step and their signs are aligned with the first
    step's. Edit with :func:`global_direction_at` to apply one step's vector at every step (the
    paper's choice) or with the per-step vectors as they are.
    """
    if trajectory.hs is None:
        raise ValueError("the trajectory has no h-codes (eps_fn returned h=None)")
    steps, batch = trajectory.xs.shape[:2]
    index = check_int("index", index, minimum=0, maximum=batch - 1)
    num_vectors = check_int("num_vectors", num_vectors, minimum=1)
    h_shape = trajectory.hs.shape[2:]
    if output_mask is not None:
        output_mask = jnp.asarray(output_mask)
        try:
            jnp.broadcast_shapes(output_mask.shape, trajectory.xs.shape[2:])
        except ValueError:
            raise ValueError(f"output_mask of shape {output_mask.shape} does not broadcast to an image "
                             f"{trajectory.xs.shape[2:]}") from None
        check_finite_array("output_mask", output_mask)
    mask = 1.0 if output_mask is None else output_mask

    def at_step(inputs):
        x, t, k = inputs
        f = lambda dh: eps_fn(x[None], t[None], dh[None])[0][0] * mask  # noqa: E731
        return jacobian_svd(f, jnp.zeros(h_shape, x.dtype), num_vectors, k, num_iters=num_iters)

    keys = jax.random.split(key, steps)
    res = jax.lax.map(at_step, (trajectory.xs[:, index], trajectory.timesteps, keys))
    v = res.v  # (S, k, *h_shape)
    flat = v.reshape(steps, num_vectors, -1)
    signs = jnp.sign(jnp.einsum("skd,kd->sk", flat, flat[0]))
    v = v * jnp.where(signs == 0, 1.0, signs).reshape((steps, num_vectors) + (1,) * len(h_shape))
    return jnp.swapaxes(v, 0, 1), res.s.T


def global_direction_at(vectors: jax.Array, step: int) -> jax.Array:
    """Apply the vector found at one step at every step (the paper's "directions found at timestep t
    applied across all timesteps", official ``global_at_idx=True``).

    ``vectors``: ``(k, S, *h_shape)`` (e.g. from :func:`denoiser_jacobian_directions`); returns the
    same shape with ``out[:, i] = vectors[:, step]`` for every ``i``.
    """
    if not hasattr(vectors, "ndim") or vectors.ndim < 2:
        raise ValueError(f"vectors must have shape (k, S, *h_shape), got {getattr(vectors, 'shape', type(vectors))}")
    step = check_int("step", step, minimum=0, maximum=vectors.shape[1] - 1)
    return jnp.broadcast_to(vectors[:, step:step + 1], vectors.shape)


def mean_difference_direction(hs: jax.Array, labels) -> jax.Array:
    """Supervised direction from labelled h-codes (Sec. 5): ``mean(h | label) - mean(h | not label)``.

    ``hs``: ``(N, S, *h_shape)``; ``labels``: ``(N,)`` booleans (e.g. attributes of real images
    whose h-codes come from DDIM inversion). Returns a direction ``(S, *h_shape)``.
    """
    _check_hs(hs)
    check_finite_array("hs", hs)
    labels = np.asarray(labels)
    if labels.shape != hs.shape[:1] or labels.dtype != bool:
        raise ValueError(f"labels must be a boolean array of shape ({hs.shape[0]},), got {labels.dtype} {labels.shape}")
    if labels.all() or not labels.any():
        raise ValueError("labels must contain both True and False")
    return hs[labels].mean(axis=0) - hs[~labels].mean(axis=0)


def extreme_scores_direction(hs: jax.Array, scores, num_examples: int) -> jax.Array:
    """Supervised direction from attribute scores of (generated) samples (Sec. 5): the mean h-code
    of the ``num_examples`` highest-scoring samples minus that of the ``num_examples`` lowest."""
    _check_hs(hs)
    check_finite_array("hs", hs)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != hs.shape[:1]:
        raise ValueError(f"scores must have shape ({hs.shape[0]},), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if not 1 <= num_examples <= hs.shape[0] // 2:
        raise ValueError(f"num_examples must be in [1, {hs.shape[0] // 2}], got {num_examples}")
    order = np.argsort(scores, kind="stable")
    return hs[order[-num_examples:]].mean(axis=0) - hs[order[:num_examples]].mean(axis=0)


def project_out(direction: jax.Array, others: jax.Array) -> jax.Array:
    """Remove from ``direction`` its component in the span of ``others`` (Sec. 5.1):
    ``n - N^T (N N^T)^+ N n`` with the rows of ``N`` the flattened ``others`` (shape ``(m, *direction.shape)``).

    The result is orthogonal to every row of ``others``, so an edit along it does not move the
    h-code along the directions of the conditioned attributes.
    """
    if others.ndim != direction.ndim + 1 or others.shape[1:] != direction.shape:
        raise ValueError(f"others must have shape (m, {', '.join(map(str, direction.shape))}), got {others.shape}")
    check_finite_array("direction", direction)
    check_finite_array("others", others)
    n = direction.reshape(-1)
    mat = others.reshape(others.shape[0], -1)
    coef = jnp.linalg.lstsq(mat @ mat.T, mat @ n)[0]
    return (n - coef @ mat).reshape(direction.shape)


def scale_to_h_std(direction: jax.Array, hs: jax.Array, *, per_timestep: bool = False) -> jax.Array:
    """Rescale ``direction`` (``(S, *h_shape)``) so that a unit step moves the h-codes ``hs`` by one
    standard deviation of their projection on it (over the trajectory, or per step).

    Gives unsupervised directions (PCA, Jacobian) a common editing scale, like the paper's
    ``alpha * sigma_k * v_k`` for principal components.
    """
    _check_hs(hs)
    if hs.shape[1:] != direction.shape:
        raise ValueError(f"direction shape {direction.shape} does not match h-codes {hs.shape[1:]}")
    check_finite_array("direction", direction)
    if not is_traced(direction):
        norms = np.linalg.norm(np.asarray(direction).reshape(direction.shape[0] if per_timestep else 1, -1), axis=1)
        if not np.all(norms > 0):
            raise ValueError("direction must be non-zero (at every step with per_timestep), got a zero vector")
    n = hs.shape[0]
    if per_timestep:
        d = direction.reshape(direction.shape[0], -1)
        unit = d / jnp.linalg.norm(d, axis=1, keepdims=True)
        std = jnp.std(jnp.einsum("nsd,sd->ns", hs.reshape(n, d.shape[0], -1), unit), axis=0, ddof=1)
        return (unit * std[:, None]).reshape(direction.shape)
    unit = direction / jnp.linalg.norm(direction)
    std = jnp.std(hs.reshape(n, -1) @ unit.reshape(-1), ddof=1)
    return unit * std


def edit_along_direction(
    eps_fn: Callable,
    schedule: NoiseSchedule,
    x_T: jax.Array,
    direction: jax.Array,
    alphas,
    num_steps: int,
    *,
    step_mask=None,
    eta: float = 0.0,
    key: jax.Array | None = None,
    asymmetric: bool = False,
    clip_x0: float | None = None,
) -> jax.Array:
    """Edited samples: DDIM from ``x_T`` with ``h_i <- h_i + alpha * step_mask[i] * direction[i]``.

    ``direction``: ``(num_steps, ...)`` broadcastable to ``h`` (global ``(S, *h_shape)`` or per
    image ``(S, B, *h_shape)``); ``alphas``: ``(A,)``; ``step_mask``: ``(num_steps,)`` weights
    (default all ones) choosing the steps at which the shift is applied. With ``eta > 0`` the same
    ``key`` (hence the same noises) is used for every ``alpha``. Returns ``(A, B, ...)``;
    ``alpha = 0`` reproduces the unedited sample.
    """
    if direction.shape[0] != num_steps:
        raise ValueError(f"direction must have leading axis num_steps={num_steps}, got {direction.shape}")
    check_finite_array("direction", direction)
    check_finite_array("alphas", jnp.asarray(alphas))
    alphas = jnp.asarray(alphas, jnp.float32).reshape(-1)
    mask = jnp.ones((num_steps,), jnp.float32) if step_mask is None else jnp.asarray(step_mask, jnp.float32)
    if mask.shape != (num_steps,):
        raise ValueError(f"step_mask must have shape ({num_steps},), got {mask.shape}")
    shifts = direction * mask.reshape((-1,) + (1,) * (direction.ndim - 1))

    def one(alpha):
        return ddim_sample(
            eps_fn, schedule, x_T, num_steps, eta=eta, key=key, delta_hs=alpha * shifts,
            asymmetric=asymmetric, clip_x0=clip_x0,
        ).x0

    return jax.lax.map(one, alphas)
