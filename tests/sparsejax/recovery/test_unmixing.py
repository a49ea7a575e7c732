"""P22 unmixing: the objective does not increase (fixed guidance map), noiseless pure-pixel data is
recovered, VCA/FCLS are exact on noiseless pure-pixel data, the l2,1 loss resists a corrupted channel."""
import numpy as np
import pytest

from sparsejax.recovery import (
    abundance_rmse, fcls, guidance_map, hyperspectral_scene, match_endmembers, sad, unmix, vca,
)


@pytest.mark.parametrize("loss,p", [("l21", 0.5), ("l21", 1.0), ("fro", 0.5)])
def test_objective_does_not_increase(loss, p):
    s = hyperspectral_scene(0, side=8, bands=30, k=3, snr_db=25.0, outlier_fraction=0.1)
    out = unmix(s["Y"], 3, 0, loss=loss, p=p, lam=0.05, max_iter=60, tol=0.0)
    h = out["history"]
    assert h.size == 60
    assert np.all(np.diff(h) <= 1e-8 * np.abs(h[:-1]))


def test_noiseless_pure_pixels_recovered():
    s = hyperspectral_scene(1, side=10, bands=40, k=3, snr_db=None)
    out = unmix(s["Y"], 3, 0, image_shape=(10, 10), max_iter=200)
    assert sad(s["M"], out["M"]) < 1e-2
    perm = match_endmembers(s["M"], out["M"])
    assert abundance_rmse(s["A"], out["A"], perm) < 1e-2
    assert (out["A"] >= 0).all() and (out["M"] >= 0).all()
    assert np.abs(out["A"].sum(0) - 1).max() < 1e-3
    assert ((0 <= out["h"]) & (out["h"] < 1)).all()


def test_vca_fcls_exact_on_noiseless_pure_pixels():
    s = hyperspectral_scene(2, side=8, bands=25, k=4, snr_db=None)
    m = vca(s["Y"], 4, 3)
    assert sad(s["M"], m) < 1e-8
    a = fcls(s["Y"], s["M"])
    np.testing.assert_allclose(a, s["A"], atol=1e-6)


def test_l21_moves_less_than_frobenius_under_one_corrupted_channel():
    s = hyperspectral_scene(3, side=8, bands=30, k=3, snr_db=None)
    y_bad = s["Y"].copy()
    y_bad[7] = 5 * s["Y"].max()  # one saturated channel
    shifts = {}
    for loss in ("l21", "fro"):
        kw = dict(loss=loss, p=1.0, lam=0.0, max_iter=150, init=(s["M"], s["A"]))
        clean = unmix(s["Y"], 3, 0, **kw)["A"]
        bad = unmix(y_bad, 3, 0, **kw)["A"]
        shifts[loss] = np.sqrt(np.mean((clean - bad) ** 2))
    assert shifts["l21"] < 0.5 * shifts["fro"]


def test_guidance_map_extremes_and_errors():
    a = np.array([[1.0, 0.25], [0.0, 0.25], [0.0, 0.25], [0.0, 0.25]])
    np.testing.assert_allclose(guidance_map(a, h_max=0.8), [0.8, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="Y"):
        unmix(-np.ones((4, 5)), 2, 0)
    with pytest.raises(ValueError, match="p"):
        unmix(np.ones((4, 5)), 2, 0, p=0.0)
    with pytest.raises(ValueError, match="loss"):
        unmix(np.ones((4, 5)), 2, 0, loss="l1")
