"""Compatibility metrics of P42 (official code miccunifi/iamcl2r: ``performance_metrics.py``
``identification``, ``eval.py`` ``evaluate``, ``compatibility_metrics.py``).

* 1:N identification: the gallery is reduced to one template per class (mean of the L2-normalised
  gallery features, renormalised); a query is correct when the template with the largest inner product
  with its normalised feature has its class (top-1; the official code searches with faiss).
* Compatibility matrix ``M[t, k]``: identification with queries encoded by model ``t`` and the gallery by
  model ``k <= t`` (upper triangle unused, 0).
* Empirical compatibility criterion (ECC) for ``t > k``: ``M[t, k] > M[k, k]`` (the new model searching
  the old gallery beats the old model); AC is the fraction of pairs ``t > k`` meeting it (official
  ``average_compatibility``, which counts ``M[t, k] <= M[k, k]`` as a violation; AC = 1 for one model).
* AM: mean of the lower triangle of ``M`` including the diagonal. Deviation: the official
  ``average_accuracy`` replaces zeros by NaN before the mean (so an accuracy of exactly 0 is dropped) and
  rescales to percent; here every lower-triangle entry counts and values stay in [0, 1].
* Definition 1 (pairwise compatibility): for ``t > k``, ``d(phi_t(x_i), phi_k(x_j)) <= d(phi_k(x_i),
  phi_k(x_j))`` when ``y_i = y_j`` and ``>=`` when ``y_i != y_j`` (Euclidean distance of normalised
  features); :func:`pairwise_compatibility` returns the fraction of pairs meeting it.
"""
from __future__ import annotations

import numpy as np

from sparsejax.core.validation import check_array, check_int


def _unit(f) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _check_feats(name, feats, labels_name, labels) -> None:
    check_array(name, np.asarray(feats), ndim=2, dtype_kind="f")
    check_array(labels_name, np.asarray(labels), ndim=1, dtype_kind="iu")
    if np.shape(feats)[0] != np.shape(labels)[0] or np.shape(feats)[0] == 0:
        raise ValueError(f"{name} ({np.shape(feats)[0]} rows) and {labels_name} ({np.shape(labels)[0]}) must "
                         "have the same non-zero length")


def identification_accuracy(gallery_feats, gallery_labels, query_feats, query_labels) -> float:
    """Top-1 1:N search accuracy of queries against per-class gallery templates."""
    _check_feats("gallery_feats", gallery_feats, "gallery_labels", gallery_labels)
    _check_feats("query_feats", query_feats, "query_labels", query_labels)
    if np.shape(gallery_feats)[1] != np.shape(query_feats)[1]:
        raise ValueError(f"gallery features have dimension {np.shape(gallery_feats)[1]}, queries "
                         f"{np.shape(query_feats)[1]}: models with different feature spaces are not comparable")
    g, gl = _unit(gallery_feats), np.asarray(gallery_labels)
    classes = np.unique(gl)
    templates = _unit(np.stack([g[gl == c].mean(0) for c in classes]))
    pred = classes[np.argmax(_unit(query_feats) @ templates.T, axis=1)]
    return float(np.mean(pred == np.asarray(query_labels)))


def compatibility_matrix(query_feats: list, gallery_feats: list, query_labels, gallery_labels) -> np.ndarray:
    """``M[t, k] = identification_accuracy(gallery_feats[k], ..., query_feats[t], ...)`` for ``k <= t``."""
    if len(query_feats) != len(gallery_feats) or not query_feats:
        raise ValueError(f"query_feats and gallery_feats must list the same models (got {len(query_feats)} and "
                         f"{len(gallery_feats)})")
    n = len(query_feats)
    m = np.zeros((n, n))
    for t in range(n):
        for k in range(t + 1):
            m[t, k] = identification_accuracy(gallery_feats[k], gallery_labels, query_feats[t], query_labels)
    return m


def _check_matrix(matrix) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    check_array("matrix", m, ndim=2)
    if m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"matrix must be square and non-empty, got shape {m.shape}")
    return m


def empirical_compatibility(matrix) -> np.ndarray:
    """Boolean (T, T): entry ``[t, k]`` is True when ``t > k`` and ``M[t, k] > M[k, k]`` (the ECC)."""
    m = _check_matrix(matrix)
    t, k = np.tril_indices(m.shape[0], -1)
    out = np.zeros(m.shape, dtype=bool)
    out[t, k] = m[t, k] > m[k, k]
    return out


def average_compatibility(matrix) -> float:
    """AC: fraction of pairs ``t > k`` meeting the ECC (1 for a single model, as in the official code)."""
    m = _check_matrix(matrix)
    pairs = m.shape[0] * (m.shape[0] - 1) // 2
    return 1.0 if pairs == 0 else float(empirical_compatibility(m).sum() / pairs)


def average_multimodel_accuracy(matrix) -> float:
    """AM: mean of ``M[t, k]`` over ``k <= t``."""
    m = _check_matrix(matrix)
    return float(m[np.tril_indices(m.shape[0])].mean())


def pairwise_compatibility(new_feats, old_feats, labels, n_pairs: int = 10000, seed: int = 0) -> float:
    """Fraction of random pairs ``(i, j)``, ``i != j``, meeting Definition 1 for the new/old models.

    ``new_feats[i] = phi_t(x_i)``, ``old_feats[i] = phi_k(x_i)`` on the same images. A model compared with
    itself meets it for every pair (both sides are equal).
    """
    _check_feats("new_feats", new_feats, "labels", labels)
    _check_feats("old_feats", old_feats, "labels", labels)
    check_int("n_pairs", n_pairs, minimum=1)
    check_int("seed", seed, minimum=0)
    n = np.shape(labels)[0]
    if n < 2:
        raise ValueError("pairwise_compatibility needs at least 2 points")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    new, old, y = _unit(new_feats), _unit(old_feats), np.asarray(labels)
    cross = np.linalg.norm(new[i] - old[j], axis=1)
    same_model = np.linalg.norm(old[i] - old[j], axis=1)
    same = y[i] == y[j]
    ok = np.where(same, cross <= same_model, cross >= same_model)
    return float(ok.mean())
