"""Recovery metrics shared by P10, P31 and P22.

* :func:`nmse` - ``||x_hat - x||^2 / ||x||^2`` (P31 reports it squared, as ``svd_kroSBL.m`` / ``OLS.m`` do).
* :func:`support_recovery_rate` - ``|S_hat & S| / |S_hat | S|`` with ``S_hat = {i: |x_hat_i| > 1e-3 max|x_hat|}``,
  the definition of the official P31 code (``recover_rate.m``, ``delta = 1e-3``).
* :func:`spectral_angles` / :func:`match_endmembers` / :func:`sad` - spectral angle distance between endmember
  spectra after the best one-to-one matching (Hungarian method, ``scipy.optimize.linear_sum_assignment``).
* :func:`abundance_rmse` - root mean squared abundance error after that matching (P22).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from sparsejax.core.validation import check_array, check_finite_array, check_number, check_same_length


def _vector(name, x):
    check_array(name, x, ndim=1)
    check_finite_array(name, x)
    return np.asarray(x)


def nmse(x_hat, x) -> float:
    """Normalised squared error ``||x_hat - x||^2 / ||x||^2`` (real or complex vectors; ``x`` nonzero)."""
    x_hat, x = _vector("x_hat", x_hat), _vector("x", x)
    check_same_length(x_hat=x_hat, x=x)
    den = float(np.sum(np.abs(x) ** 2))
    if den == 0:
        raise ValueError("x must be nonzero for nmse")
    return float(np.sum(np.abs(x_hat - x) ** 2) / den)


def support_recovery_rate(x_hat, x, rel_threshold: float = 1e-3) -> float:
    """``|S_hat & S| / |S_hat | S|`` (P31 ``recover_rate.m``): ``S = supp(x)``,
    ``S_hat = {i: |x_hat_i| > rel_threshold * max|x_hat|}``; 1 means exact support recovery."""
    x_hat, x = _vector("x_hat", x_hat), _vector("x", x)
    check_same_length(x_hat=x_hat, x=x)
    check_number("rel_threshold", rel_threshold, minimum=0.0, max_inclusive=False, maximum=1.0)
    a = np.abs(x_hat)
    est = a > rel_threshold * a.max() if a.max() > 0 else np.zeros(a.shape, bool)
    true = np.abs(x) > 0
    union = int(np.sum(est | true))
    if union == 0:
        raise ValueError("x and x_hat are both zero: the support recovery rate is undefined")
    return float(np.sum(est & true) / union)


def spectral_angles(m_true, m_est) -> np.ndarray:
    """``(K_true, K_est)`` matrix of angles (radians) between the columns of ``m_true`` (L x K) and ``m_est``."""
    check_array("m_true", m_true, ndim=2)
    check_array("m_est", m_est, ndim=2)
    check_finite_array("m_true", m_true)
    check_finite_array("m_est", m_est)
    a, b = np.asarray(m_true, float), np.asarray(m_est, float)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"m_true and m_est must have the same number of bands, got {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("spectral angles need nonzero endmember columns")
    cos = (a.T @ b) / np.outer(na, nb)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def match_endmembers(m_true, m_est) -> np.ndarray:
    """Permutation ``perm`` (``m_est[:, perm[k]]`` matches ``m_true[:, k]``) minimising the total spectral angle."""
    angles = spectral_angles(m_true, m_est)
    if angles.shape[1] < angles.shape[0]:
        raise ValueError(f"m_est needs at least as many columns as m_true, got {angles.shape}")
    rows, cols = linear_sum_assignment(angles)
    return cols[np.argsort(rows)]


def sad(m_true, m_est) -> float:
    """Mean spectral angle distance (radians) after Hungarian matching of the endmembers."""
    perm = match_endmembers(m_true, m_est)
    angles = spectral_angles(m_true, m_est)
    return float(np.mean(angles[np.arange(angles.shape[0]), perm]))


def abundance_rmse(a_true, a_est, perm=None) -> float:
    """RMSE between abundance matrices (K x N); ``perm`` reorders the rows of ``a_est`` (from :func:`match_endmembers`)."""
    check_array("a_true", a_true, ndim=2)
    check_array("a_est", a_est, ndim=2)
    check_finite_array("a_true", a_true)
    check_finite_array("a_est", a_est)
    a_est = np.asarray(a_est, float)
    if perm is not None:
        a_est = a_est[np.asarray(perm)]
    if a_est.shape != np.shape(a_true):
        raise ValueError(f"a_est must have shape {np.shape(a_true)} after matching, got {a_est.shape}")
    return float(np.sqrt(np.mean((np.asarray(a_true, float) - a_est) ** 2)))
