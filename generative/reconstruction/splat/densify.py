"""Adaptive density control of 3DGS (Kerbl et al. 2023, sec. 5.2), in numpy between jitted steps.

Gaussians whose accumulated mean-gradient norm exceeds ``grad_threshold`` are cloned (small ones) or
split in two with scales / 1.6 (large ones, max scale above ``scale_threshold``); Gaussians with opacity
below ``min_opacity`` are pruned. Deviation: the gradient is that of the 3D means (the official code
accumulates the screen-space mean gradient); the split samples from the Gaussian as 3DGS does.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from generative.reconstruction.splat.render import quat_to_rotmat


def densify_and_prune(params: dict, grad_norm, rng: np.random.Generator, *, grad_threshold: float,
                      scale_threshold: float, min_opacity: float = 0.005, max_gaussians: int = 2000) -> dict:
    """Clone / split high-gradient Gaussians, then prune transparent ones; returns new (numpy-built) params."""
    p = {k: np.asarray(v) for k, v in params.items()}
    g = np.asarray(grad_norm)
    if g.shape != (len(p["means"]),):
        raise ValueError(f"grad_norm must have shape ({len(p['means'])},), got {g.shape}")
    big = np.exp(p["log_scales"]).max(1) > scale_threshold
    room = max(max_gaussians - len(g), 0)
    hot = np.flatnonzero(g > grad_threshold)
    hot = hot[np.argsort(-g[hot])][:room]
    clone, split = hot[~big[hot]], hot[big[hot]]
    new = {k: [v] for k, v in p.items()}
    for k, v in p.items():
        new[k].append(v[clone])
    if len(split):
        R = np.asarray(quat_to_rotmat(jnp.asarray(p["quats"][split])))
        s = np.exp(p["log_scales"][split])
        offs = np.einsum("nij,nj->ni", R, s * rng.standard_normal(s.shape))
        for k, v in p.items():
            new[k].append(v[split])
        new["means"][-1] = p["means"][split] + offs
        new["means"][0] = p["means"].copy()
        new["means"][0][split] = p["means"][split] - offs
        new["log_scales"][0] = p["log_scales"].copy()
        new["log_scales"][0][split] -= np.log(1.6)
        new["log_scales"][-1] = new["log_scales"][-1] - np.log(1.6)
    out = {k: np.concatenate(v) for k, v in new.items()}
    keep = 1 / (1 + np.exp(-out["opacity_logits"])) >= min_opacity
    dtype = params["means"].dtype
    return {k: jnp.asarray(v[keep], dtype) for k, v in out.items()}
