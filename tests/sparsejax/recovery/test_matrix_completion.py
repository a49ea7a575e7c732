"""Robust alternating minimisation for matrix completion (P26)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.recovery.matrix_completion import (
    alternating_minimization, als_half_step, incoherent_low_rank, init_factors, observed_index, relative_error,
    soft_impute,
)

M, MASK, OBS = incoherent_low_rank(jax.random.PRNGKey(0), 60, 60, 3, 0.45)


def test_observed_index_lists_each_columns_observed_rows():
    idx, valid = observed_index(MASK)
    mask = np.asarray(MASK)
    for j in range(mask.shape[1]):
        assert sorted(np.asarray(idx[j])[np.asarray(valid[j])]) == list(np.flatnonzero(mask[:, j]))


def test_noiseless_incoherent_low_rank_matrix_is_recovered_and_robust_matches_exact():
    key = jax.random.PRNGKey(1)
    Ue, Ve, he = alternating_minimization(key, OBS, MASK, 3, iters=12, solver="exact", M_true=M)
    Us, Vs, hs = alternating_minimization(key, OBS, MASK, 3, iters=12, solver="sketch", tol0=1e-7, decay=1.0,
                                          tol_final=1e-7, M_true=M)
    assert relative_error(M, Ue, Ve) < 1e-5 and relative_error(M, Us, Vs) < 1e-5
    assert he[-1] < 1e-3 * he[0] and len(hs) == 12
    assert float(jnp.linalg.norm(Ue @ Ve.T - Us @ Vs.T) / jnp.linalg.norm(M)) < 1e-5


def test_sketch_half_step_matches_exact_regressions():
    U = init_factors(OBS, MASK, 3)
    mask = np.asarray(MASK)
    # the padded length alternating_minimization uses, so the jitted half-steps are shared
    idx, valid = observed_index(MASK, int(max(mask.sum(0).max(), mask.sum(1).max())))
    tol = jnp.float32(1e-7)
    Ve = als_half_step(jax.random.PRNGKey(0), U, OBS, idx, valid, tol, "exact", 12, 50)
    Vs = als_half_step(jax.random.PRNGKey(0), U, OBS, idx, valid, tol, "sketch", 12, 50)
    j = 5
    ref = np.linalg.lstsq(np.asarray(U)[mask[:, j]], np.asarray(OBS)[mask[:, j], j], rcond=None)[0]
    np.testing.assert_allclose(Ve[j], ref, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(Vs, Ve, rtol=1e-3, atol=1e-4)


def test_trimming_zeroes_coherent_rows():
    spiky = OBS.at[0].multiply(50.0)
    U = init_factors(spiky, MASK, 3, mu=1.0)
    assert float(jnp.abs(U[0]).max()) < 1e-6
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-5)
    assert float(jnp.abs(init_factors(spiky, MASK, 3)[0]).max()) > 0.5


def test_soft_impute_on_a_full_mask_is_singular_value_thresholding():
    full = jnp.ones_like(MASK)
    z, hist = soft_impute(M, full, 0.5, iters=2, M_true=M)
    u, s, vt = np.linalg.svd(np.asarray(M), full_matrices=False)
    np.testing.assert_allclose(z, (u * np.maximum(s - 0.5, 0)) @ vt, atol=1e-4)
    assert len(hist) == 2


def test_bad_input():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="solver"):
        alternating_minimization(key, OBS, MASK, 3, solver="cg")
    with pytest.raises(ValueError, match="mask"):
        alternating_minimization(key, OBS, MASK[:5], 3)
    with pytest.raises(ValueError, match="decay"):
        alternating_minimization(key, OBS, MASK, 3, decay=2.0)
    with pytest.raises(ValueError, match="rate"):
        incoherent_low_rank(key, 5, 5, 1, 0.0)
