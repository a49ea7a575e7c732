"""Image and volume quality metrics shared by the 3D reconstruction papers (P30, P38, P46).

PSNR is computed here (one line of numpy); SSIM is scikit-image's ``structural_similarity``
(Wang et al. 2004, Gaussian-free 7x7 uniform window, its defaults) rather than a copy of our own.
Volumes are ``(D, H, W)`` arrays; "per plane" means the mean over all 2D slices taken along one
axis: axial (fixed z, axis 0), coronal (fixed y, axis 1) and sagittal (fixed x, axis 2), the
convention of DiffusionMBIR's tables.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

PLANES = {"axial": 0, "coronal": 1, "sagittal": 2}
_MSE_FLOOR = 1e-12  # per-slice PSNR is capped at 120 dB so that one exact slice cannot make the mean inf


def _pair(estimate, reference) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"estimate shape {est.shape} differs from reference shape {ref.shape}")
    if est.size == 0:
        raise ValueError("empty arrays have no PSNR/SSIM")
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(ref))):
        raise ValueError("estimate and reference must be finite")
    return est, ref


def _range(ref: np.ndarray, data_range: float | None) -> float:
    value = float(ref.max() - ref.min()) if data_range is None else float(data_range)
    if value <= 0:
        raise ValueError(f"data_range must be positive, got {value} (constant reference? pass data_range)")
    return value


def psnr(estimate, reference, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(R^2 / MSE)``.

    ``R`` is ``data_range`` or, by default, the reference's max minus min. Identical inputs give ``inf``.
    """
    est, ref = _pair(estimate, reference)
    rng = _range(ref, data_range)
    mse = float(np.mean((est - ref) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(estimate, reference, data_range: float | None = None, channel_axis: int | None = None) -> float:
    """Structural similarity of two 2D images (scikit-image, its default window).

    ``channel_axis`` names the colour axis of an RGB image (e.g. ``-1``); ``None`` means grey.
    """
    est, ref = _pair(estimate, reference)
    spatial = est.ndim - (channel_axis is not None)
    if spatial != 2:
        raise ValueError(f"ssim expects a 2D image (plus an optional channel axis), got shape {est.shape}")
    if min(s for i, s in enumerate(est.shape) if channel_axis is None or i != channel_axis % est.ndim) < 7:
        raise ValueError(f"ssim needs images at least 7 pixels on a side, got shape {est.shape}")
    return float(structural_similarity(est, ref, data_range=_range(ref, data_range), channel_axis=channel_axis))


def volume_metrics(estimate, reference, data_range: float | None = None) -> dict[str, float]:
    """PSNR and SSIM of a ``(D, H, W)`` volume, per plane and overall.

    Returns ``psnr`` (whole volume), and for each plane in :data:`PLANES` ``psnr_<plane>`` and
    ``ssim_<plane>``: the mean over the slices along that axis, each slice scored with the volume's
    data range so that slices are comparable (per-slice PSNR capped at 120 dB). Planes whose slices are smaller than 7x7 get no SSIM.
    """
    est, ref = _pair(estimate, reference)
    if est.ndim != 3:
        raise ValueError(f"volume_metrics expects a (D, H, W) volume, got shape {est.shape}")
    rng = _range(ref, data_range)
    out = {"psnr": psnr(est, ref, rng)}
    for name, axis in PLANES.items():
        e_slices = np.moveaxis(est, axis, 0)
        r_slices = np.moveaxis(ref, axis, 0)
        mse = np.mean((e_slices - r_slices) ** 2, axis=(1, 2))
        out[f"psnr_{name}"] = float(np.mean(10 * np.log10(rng**2 / np.maximum(mse, _MSE_FLOOR * rng**2))))
        if min(e_slices.shape[1:]) >= 7:
            out[f"ssim_{name}"] = float(np.mean([ssim(e, r, rng) for e, r in zip(e_slices, r_slices)]))
    return out
