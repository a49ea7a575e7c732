"""Ranking metrics NDCG@k and MRR@k (for P13), with trec_eval's conventions.

NDCG@k: gain = relevance grade (linear, trec_eval / ``ir_measures.nDCG``), discount
``1 / log2(rank + 1)``, normalised by the ideal ranking of all judged documents of the query;
MRR@k: ``1 / rank`` of the first relevant (grade > 0) document within the top k, else 0. Both are
averaged over queries; a query without relevant documents scores 0. The tests check both against
``ir_measures``.
"""
from __future__ import annotations

import numpy as np

from sparsejax.core.validation import check_array, check_index_range, check_int


def _check(ranked, relevance, k):
    check_array("ranked", ranked, ndim=2, dtype_kind="iu")
    check_array("relevance", relevance, ndim=2)
    if ranked.shape[0] != relevance.shape[0]:
        raise ValueError(f"ranked has {ranked.shape[0]} queries but relevance has {relevance.shape[0]}")
    k = check_int("k", k, minimum=1)
    r = np.asarray(ranked)[:, :k]
    if r.size and (r.min() < 0 or r.max() >= relevance.shape[1]):
        raise ValueError(f"ranked ids must lie in [0, {relevance.shape[1]}), got [{r.min()}, {r.max()}]")
    rel = np.asarray(relevance, np.float64)
    if (rel < 0).any():
        raise ValueError("relevance grades must be >= 0")
    return r, rel, k


def ndcg_at_k(ranked, relevance, k: int = 10) -> float:
    """Mean NDCG@k of ``ranked (Q, >=k)`` document ids given graded ``relevance (Q, n_docs)``."""
    r, rel, k = _check(ranked, relevance, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    gains = np.take_along_axis(rel, r, axis=1)
    dcg = (gains * disc[: r.shape[1]]).sum(1)
    ideal = -np.sort(-rel, axis=1)[:, :k]
    idcg = (ideal * disc[: ideal.shape[1]]).sum(1)
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)))


def mrr_at_k(ranked, relevance, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top ``k``."""
    r, rel, k = _check(ranked, relevance, k)
    hit = np.take_along_axis(rel, r, axis=1) > 0
    first = np.where(hit.any(1), hit.argmax(1) + 1, np.inf)
    return float(np.mean(1.0 / first))


def single_relevance(relevant, n_docs: int) -> np.ndarray:
    """``(Q, n_docs)`` binary relevance with one relevant document ``relevant[q]`` per query."""
    check_array("relevant", relevant, ndim=1, dtype_kind="iu")
    n_docs = check_int("n_docs", n_docs, minimum=1)
    check_index_range("relevant", relevant, n_docs)
    rel = np.zeros((len(relevant), n_docs), np.float32)
    rel[np.arange(len(relevant)), np.asarray(relevant)] = 1.0
    return rel
