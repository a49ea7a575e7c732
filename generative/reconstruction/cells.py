"""Synthetic cells with a simple optical model: transmitted-light (TL) input and fluorescence target (P38 stand-in).

SparseSSP (P38) is trained on AllenCell label-free data (GB-scale, not available offline), so this module draws
synthetic stand-ins. Each ``(D, H, W)`` volume holds:

* a cell body (random ellipsoid), a nucleus inside it (smaller ellipsoid) and ``n_organelles`` small blobs inside
  the body but outside the nucleus;
* a **refractive-index map** ``n(x) = n_body 1_body + n_nuc 1_nuc + n_org 1_org`` (contrast above the medium);
* the **TL volume**: the RI map blurred by an axially elongated Gaussian PSF (``sigma_z = axial_ratio *
  sigma_xy``, brightfield PSFs are much longer along z), plus a defocus-contrast term (minus the Laplacian of the
  blurred map, phase contrast of a weak phase object), plus Gaussian noise; standardised to zero mean, unit std;
* the **fluorescence target**: nucleus (DNA stain) plus organelles at weight ``organelle_weight``, blurred by a
  tighter PSF, scaled to ``[0, 1]``;
* **per-structure targets** (``structures``, one channel per :data:`STRUCTURES` name, the multi-task stand-in for
  AllenCell's one-structure-per-cell-line labels used by RepMode/SparseSSP's task routing): ``dna`` (nucleus),
  ``organelles`` (the blobs) and ``membrane`` (the one-voxel shell of the cell body), each blurred by the target
  PSF and scaled to ``[0, 1]`` on its own.

Deviations (stand-ins, not physics-accurate): Gaussian PSFs instead of a vectorial/Born model, no scattering or
absorption, no Poisson noise, blobs instead of labelled structures. All blurs use ``scipy.ndimage.gaussian_filter``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

STRUCTURES = ("dna", "organelles", "membrane")


def _ellipsoid(grid, centre, radii, rot) -> np.ndarray:
    """Boolean mask of a rotated ellipsoid on a ``(3, D, H, W)`` coordinate grid."""
    q = np.tensordot(rot.T, grid - centre[:, None, None, None], axes=1)
    return np.sum((q / radii[:, None, None, None]) ** 2, axis=0) <= 1.0


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def make_cell(rng: np.random.Generator, shape=(32, 64, 64), n_organelles=(20, 50), sigma_xy: float = 1.0,
              axial_ratio: float = 3.0, target_sigma: float = 0.5, defocus: float = 0.5, noise: float = 0.05,
              organelle_weight: float = 0.6) -> dict[str, np.ndarray]:
    """One synthetic cell: ``{"tl", "target", "ri"}``, each a float32 ``(D, H, W)`` volume, and ``"structures"``,
    float32 ``(len(STRUCTURES), D, H, W)`` (the per-structure targets; they draw no random numbers, so adding them
    left ``tl``/``target``/``ri`` unchanged).

    Coordinates are in voxels; radii scale with the volume so that every shape fits inside it. ``n_organelles``
    is an inclusive ``(low, high)`` range of blob counts.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be (D, H, W) with every side >= 4, got {shape}")
    if not (sigma_xy > 0 and axial_ratio >= 1 and target_sigma >= 0 and noise >= 0):
        raise ValueError("need sigma_xy > 0, axial_ratio >= 1, target_sigma >= 0, noise >= 0")
    lo, hi = n_organelles
    if not 0 <= lo <= hi:
        raise ValueError(f"n_organelles must be a (low, high) range with 0 <= low <= high, got {n_organelles}")
    size = np.asarray(shape, float)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij"))
    centre = size / 2 + rng.uniform(-0.08, 0.08, 3) * size
    body_r = size * rng.uniform(0.28, 0.42, 3)
    rot = _rotation(rng)
    body = _ellipsoid(grid, centre, body_r, rot)
    nuc_r = body_r * rng.uniform(0.35, 0.55, 3)
    nucleus = _ellipsoid(grid, centre + rng.uniform(-0.1, 0.1, 3) * body_r, nuc_r, _rotation(rng)) & body
    org = np.zeros(shape, bool)
    for _ in range(int(rng.integers(lo, hi + 1))):
        for _try in range(20):                     # rejection: centre inside the body, outside the nucleus
            c = centre + rng.uniform(-1, 1, 3) * body_r
            idx = tuple(np.clip(np.round(c).astype(int), 0, np.asarray(shape) - 1))
            if body[idx] and not nucleus[idx]:
                org |= _ellipsoid(grid, c, rng.uniform(0.6, 1.6, 3) * max(1.0, size.min() / 16), _rotation(rng))
                break
    org &= body & ~nucleus
    ri = 0.3 * body + 0.25 * nucleus + 0.5 * org
    blurred = ndimage.gaussian_filter(ri.astype(float), (axial_ratio * sigma_xy, sigma_xy, sigma_xy))
    tl = blurred - defocus * ndimage.laplace(blurred) + noise * rng.normal(size=shape)
    tl = (tl - tl.mean()) / max(tl.std(), 1e-8)
    fluo = ndimage.gaussian_filter(nucleus + organelle_weight * org, target_sigma) if target_sigma > 0 \
        else (nucleus + organelle_weight * org).astype(float)
    fluo = fluo / max(fluo.max(), 1e-8)
    membrane = body & ~ndimage.binary_erosion(body)
    structures = []
    for mask in (nucleus, org, membrane):
        m = ndimage.gaussian_filter(mask.astype(float), target_sigma) if target_sigma > 0 else mask.astype(float)
        structures.append(m / max(m.max(), 1e-8))
    return {"tl": tl.astype(np.float32), "target": fluo.astype(np.float32), "ri": ri.astype(np.float32),
            "structures": np.stack(structures).astype(np.float32)}


def make_cells(n: int, seed: int = 0, shape=(32, 64, 64), **kwargs) -> dict[str, np.ndarray]:
    """``n`` cells stacked: ``{"tl", "target", "ri"}`` of shape ``(n, D, H, W)`` and ``"structures"`` of shape
    ``(n, len(STRUCTURES), D, H, W)``; keyword arguments go to
    :func:`make_cell`. Deterministic in ``seed``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    cells = [make_cell(rng, shape, **kwargs) for _ in range(n)]
    return {k: np.stack([c[k] for c in cells]) for k in cells[0]}
