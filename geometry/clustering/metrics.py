"""Clustering metrics shared by every clustering experiment (P8, P20): Hungarian-matched accuracy and NMI.

Accuracy matches predicted clusters to classes by a maximum-weight assignment on the contingency table
(scipy's ``linear_sum_assignment``); NMI is scikit-learn's (arithmetic normalisation).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score

from sparsejax.core.validation import check_array


def _labels(name: str, labels) -> np.ndarray:
    arr = check_array(name, np.asarray(labels), ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    return arr


def _pair(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels("labels_true", labels_true), _labels("labels_pred", labels_pred)
    if t.shape != p.shape:
        raise ValueError(f"labels_true and labels_pred must have the same length, got {t.size} and {p.size}")
    return t, p


def clustering_accuracy(labels_true, labels_pred) -> float:
    """Fraction of points whose cluster, mapped one-to-one to a class by the Hungarian method, is their class.

    Clusters left unmatched (more clusters than classes) count as errors.
    """
    t, p = _pair(labels_true, labels_pred)
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((pi.max() + 1, ti.max() + 1), dtype=np.int64)
    np.add.at(table, (pi, ti), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / t.size)


def normalized_mutual_info(labels_true, labels_pred) -> float:
    """Normalised mutual information between two labelings (scikit-learn, arithmetic mean normalisation)."""
    t, p = _pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(t, p))
