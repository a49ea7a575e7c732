"""Shared recovery metrics (against brute force / hand values) and generator invariants."""
import itertools

import numpy as np
import pytest

from sparsejax.recovery import (
    abundance_rmse, hyperspectral_scene, kron_all, kron_sparse_problem, match_endmembers, nmse, sad,
    spectral_angles, support_recovery_rate,
)


def test_sad_matches_brute_force_permutations():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.uniform(0.01, 1, (2, 15, 4))
        ang = spectral_angles(a, b)
        brute = min(np.mean([ang[i, p[i]] for i in range(4)]) for p in itertools.permutations(range(4)))
        assert sad(a, b) == pytest.approx(brute)
    perm = rng.permutation(4)
    assert sad(a, a[:, perm] * 3.0) == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_array_equal(perm[match_endmembers(a, a[:, perm])], np.arange(4))


def test_support_recovery_rate_and_nmse_hand_values():
    x = np.array([0.0, 1.0, 0.0, -2.0, 0.0])
    assert support_recovery_rate(x, x) == 1.0
    assert support_recovery_rate(np.array([0.0, 1.0, 1.0, 0.0, 1e-4]), x) == pytest.approx(1 / 3)
    assert nmse(np.zeros(5), x) == 1.0
    assert nmse(x * 1.1, x) == pytest.approx(0.01)
    assert abundance_rmse(np.eye(2), np.eye(2)[::-1], perm=[1, 0]) == 0.0
    with pytest.raises(ValueError, match="x"):
        nmse(np.ones(3), np.zeros(3))


def test_generators_invariants():
    p = kron_sparse_problem(0, n=6, m=(3, 4, 5), k=2, snr_db=10.0)
    assert np.count_nonzero(p["x"]) == 8 and p["y"].shape == (60,)
    resid = p["y"] - kron_all(p["A"]) @ p["x"]
    assert np.var(resid) == pytest.approx(p["noise_var"], rel=0.5)
    s = hyperspectral_scene(0, side=6, bands=20, k=3, outlier_fraction=0.25)
    np.testing.assert_allclose(s["A"].sum(0), 1.0)
    np.testing.assert_allclose(s["A"][:, :3], np.eye(3))
    assert s["outlier_bands"].size == 5 and (s["Y"] >= 0).all()
    assert ((s["mixing"] >= -1e-12) & (s["mixing"] <= 1 + 1e-12)).all()
