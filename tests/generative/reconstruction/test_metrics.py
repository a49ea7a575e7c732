"""PSNR matches its formula; SSIM is 1 on identical images and drops under noise; per-plane slicing is right."""
import numpy as np
import pytest

from generative.reconstruction.metrics import psnr, ssim, volume_metrics


def test_psnr_formula_and_identity():
    rng = np.random.default_rng(0)
    ref = rng.uniform(size=(16, 16))
    est = ref + 0.1
    assert psnr(est, ref, data_range=1.0) == pytest.approx(20.0)
    assert psnr(ref, ref) == float("inf")


def test_ssim_identity_and_noise():
    rng = np.random.default_rng(1)
    ref = rng.uniform(size=(32, 32))
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(ref + rng.normal(scale=0.3, size=ref.shape), ref) < 0.8
    rgb = rng.uniform(size=(16, 16, 3))
    assert ssim(rgb, rgb, channel_axis=-1) == pytest.approx(1.0)


def test_volume_metrics_planes_see_the_right_axis():
    rng = np.random.default_rng(2)
    ref = rng.uniform(size=(8, 10, 12))
    est = ref.copy()
    est[3] += 0.5  # one axial slice wrong: the axial mean is dominated by 7 exact slices
    m = volume_metrics(est, ref, data_range=1.0)
    assert m["psnr_axial"] > 100  # 7 of 8 slices hit the 120 dB cap
    assert m["psnr_coronal"] < 30 and m["psnr_sagittal"] < 30  # every coronal/sagittal slice has an error row
    assert set(m) == {"psnr", "psnr_axial", "psnr_coronal", "psnr_sagittal", "ssim_axial", "ssim_coronal",
                      "ssim_sagittal"}


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        psnr(np.full(4, np.nan), np.arange(4.0))
    with pytest.raises(ValueError, match="2D"):
        ssim(np.zeros((8, 8, 8)), np.arange(512.0).reshape(8, 8, 8))
    with pytest.raises(ValueError, match="volume"):
        volume_metrics(np.zeros((8, 8)), np.arange(64.0).reshape(8, 8))
