"""Measured (not assumed) equivariance of PΘNITA-style models, and averaging over grid rotations.

PΘNITA is exactly SE(n) equivariant only in the continuous limit of its orientation grid; with a
finite grid it is exact for the rotations that map the grid onto itself (e.g. the icosahedral
group for the 12-point icosahedron) and approximate for all others (Bekkers et al., ICLR 2024,
Sec. 4). :func:`equivariance_error` measures the error under Haar-random rotations of SO(n);
:func:`grid_averaged_apply` averages the outputs over random rotations of the grid, which makes
the network equivariant in expectation and shrinks the error of a finite average.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from geometry.ponita.graph import PointCloudBatch, check_batch
from geometry.ponita.grids import random_rotation
from sparsejax.core.validation import check_int


def grid_averaged_apply(model, params, pos, node_mask, scalars=None, vectors=None, *,
                        key: Optional[jax.Array] = None, n_grid_rotations: int = 0):
    """``model.apply`` averaged over ``n_grid_rotations`` Haar-random rotations of the orientation grid.

    ``n_grid_rotations = 0`` is the plain forward pass (fixed grid). Models without a grid
    (EGNN, the e3nn baseline) ignore ``grid_rotation`` and give the plain output. Returns
    ``(scalars, vectors)`` like ``model.apply``.
    """
    n_grid_rotations = check_int("n_grid_rotations", n_grid_rotations, minimum=0)
    if n_grid_rotations == 0:
        return model.apply(params, pos, node_mask, scalars, vectors)
    if key is None:
        raise ValueError("grid_averaged_apply needs a key when n_grid_rotations > 0")
    dim = pos.shape[-1]
    rots = jax.vmap(lambda k: random_rotation(k, dim, pos.dtype))(jax.random.split(key, n_grid_rotations))
    outs = jax.lax.map(lambda r: model.apply(params, pos, node_mask, scalars, vectors, grid_rotation=r), rots)
    return jax.tree_util.tree_map(lambda a: jnp.mean(a, 0), outs)


def _relative_error(diff: jax.Array, ref: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(diff**2)) / jnp.maximum(jnp.sqrt(jnp.sum(ref**2)), 1e-30)


def equivariance_error(model, params, batch: PointCloudBatch, key: jax.Array, n_rotations: int = 8, *,
                       n_grid_rotations: int = 0, apply_fn: Optional[Callable] = None) -> dict:
    """Relative equivariance error of ``model`` under ``n_rotations`` Haar-random rotations of SO(d).

    For each rotation ``R`` the batch is rotated (positions and vector features) and the error is
    ``||s(Rx) - s(x)|| / ||s(x)||`` for the invariant scalar outputs and
    ``||v(Rx) - R v(x)|| / ||v(x)||`` for the vector outputs (Frobenius norms over the batch);
    the mean over rotations is returned. With ``n_grid_rotations > 0`` every forward pass averages
    over that many independent random grid rotations (:func:`grid_averaged_apply`).

    ``apply_fn(params, pos, node_mask, scalars, vectors, key) -> (scalars, vectors)`` replaces the
    default forward pass (e.g. to measure energies and forces). Returns ``{"scalar": float | None,
    "vector": float | None, "n_rotations", "n_grid_rotations"}`` (``None`` for an output the model
    does not have).
    """
    n_rotations = check_int("n_rotations", n_rotations, minimum=1)
    n_grid_rotations = check_int("n_grid_rotations", n_grid_rotations, minimum=0)
    if not isinstance(batch, PointCloudBatch):
        raise TypeError(f"batch must be a PointCloudBatch, got {type(batch).__name__}")
    pos, mask, scal, vec = batch
    check_batch(pos, mask, scal, vec)
    dim = pos.shape[-1]
    if apply_fn is None:
        def apply_fn(p, x, m, s, v, k):
            return grid_averaged_apply(model, p, x, m, s, v, key=k, n_grid_rotations=n_grid_rotations)

    @jax.jit
    def errors(rot_key, k0, k1):
        rot = random_rotation(rot_key, dim, pos.dtype)
        s0, v0 = apply_fn(params, pos, mask, scal, vec, k0)
        s1, v1 = apply_fn(params, pos @ rot.T, mask, scal, None if vec is None else vec @ rot.T, k1)
        return _relative_error(s1 - s0, s0), _relative_error(v1 - v0 @ rot.T, v0)

    keys = jax.random.split(key, (n_rotations, 3))
    found = [errors(*k) for k in keys]
    s_err = float(jnp.mean(jnp.stack([f[0] for f in found])))
    v_err = float(jnp.mean(jnp.stack([f[1] for f in found])))
    s_out, v_out = jax.eval_shape(lambda: apply_fn(params, pos, mask, scal, vec, keys[0, 0]))
    return {"scalar": s_err if s_out.shape[-1] > 0 else None,
            "vector": v_err if v_out.shape[-2] > 0 else None,
            "n_rotations": n_rotations, "n_grid_rotations": n_grid_rotations}
