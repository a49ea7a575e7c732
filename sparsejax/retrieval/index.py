"""An inverted index over sparse document vectors, its brute-force reference, cost measures and a
BM25 baseline (for P13).

The index is a ``scipy.sparse`` CSC matrix (one posting list per vocabulary term: the documents
where the term is nonzero and their weights). :func:`search` scores one query term-at-a-time:
the posting lists of the query's nonzero terms are scaled by the query weights and accumulated,
then the top ``k`` are selected; ties are broken by the lower document id, exactly as
:func:`brute_force_search` does on the dense product. scipy/numpy, not JAX: posting lists have
data-dependent lengths.

Cost: :func:`expected_flops` is the mean number of multiply-adds per (query, document) pair,
``E_q[sum_{t in q} df_t] / n_docs`` (the quantity the FLOPS regulariser approximates).
BM25 comes from ``bm25s`` (Lucene variant, k1 = 1.5, b = 0.75), tokens passed as id strings.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from sparsejax.core.validation import check_array, check_int, check_finite_array


class InvertedIndex(NamedTuple):
    """``postings``: CSC ``(n_docs, V)`` matrix of the nonzero document weights."""

    postings: sp.csc_matrix

    @property
    def n_docs(self) -> int:
        return self.postings.shape[0]


def build_index(doc_vectors) -> InvertedIndex:
    """Inverted index of ``doc_vectors (n_docs, V)`` (only nonzero weights are stored)."""
    check_array("doc_vectors", doc_vectors, ndim=2, dtype_kind="f")
    d = np.asarray(doc_vectors, np.float32)
    check_finite_array("doc_vectors", d)
    return InvertedIndex(sp.csc_matrix(d))


def top_k(scores, k: int):
    """Ids and scores of the ``k`` highest ``scores (n,)``, ties to the lower id."""
    s = np.asarray(scores)
    k = check_int("k", k, minimum=1, maximum=s.shape[0])
    if k < s.shape[0]:
        kth = np.partition(-s, k - 1)[k - 1]
        cand = np.flatnonzero(-s <= kth)
    else:
        cand = np.arange(s.shape[0])
    order = np.lexsort((cand, -s[cand]))[:k]
    ids = cand[order]
    return ids, s[ids]


def _check_queries(index, q_vecs, k):
    check_array("q_vecs", q_vecs, ndim=2, dtype_kind="f")
    if q_vecs.shape[1] != index.postings.shape[1]:
        raise ValueError(f"q_vecs have {q_vecs.shape[1]} terms but the index has {index.postings.shape[1]}")
    return check_int("k", k, minimum=1, maximum=index.n_docs)


def search(index: InvertedIndex, q_vecs, k: int):
    """Top-``k`` documents of every query ``q_vecs (Q, V)`` by sparse dot product through the posting
    lists; returns ``(ids (Q, k), scores (Q, k))``."""
    k = _check_queries(index, q_vecs, k)
    q = np.asarray(q_vecs, np.float32)
    ids, out = np.zeros((q.shape[0], k), np.int64), np.zeros((q.shape[0], k), np.float32)
    post = index.postings
    for i, qi in enumerate(q):
        terms = np.flatnonzero(qi)
        acc = np.zeros(index.n_docs, np.float32)
        for t in terms:
            lo, hi = post.indptr[t], post.indptr[t + 1]
            acc[post.indices[lo:hi]] += qi[t] * post.data[lo:hi]
        ids[i], out[i] = top_k(acc, k)
    return ids, out


def brute_force_search(doc_vectors, q_vecs, k: int):
    """Reference for :func:`search`: the dense product ``q_vecs @ doc_vectors.T`` and the same top-k."""
    check_array("doc_vectors", doc_vectors, ndim=2, dtype_kind="f")
    s = np.asarray(q_vecs, np.float32) @ np.asarray(doc_vectors, np.float32).T
    k = check_int("k", k, minimum=1, maximum=s.shape[1])
    res = [top_k(row, k) for row in s]
    return np.stack([r[0] for r in res]), np.stack([r[1] for r in res])


def expected_flops(index: InvertedIndex, q_vecs) -> float:
    """Mean multiply-adds per (query, document) pair: ``mean_q sum_{t: q_t != 0} df_t / n_docs``."""
    _check_queries(index, q_vecs, 1)
    df = np.diff(index.postings.indptr)
    touched = (np.asarray(q_vecs) != 0) @ df
    return float(np.mean(touched) / index.n_docs)


def mean_doc_nonzeros(index: InvertedIndex) -> float:
    """Mean number of nonzero terms per document."""
    return float(index.postings.nnz / index.n_docs)


def _strings(tokens, pad_id):
    return [[str(t) for t in row if t != pad_id] for row in np.asarray(tokens)]


class BM25:
    """BM25 over token-id documents (``bm25s``, module doc); ``pad_id`` tokens are dropped."""

    def __init__(self, doc_tokens, pad_id: int = 0, k1: float = 1.5, b: float = 0.75):
        import bm25s

        check_array("doc_tokens", doc_tokens, ndim=2, dtype_kind="iu")
        self.pad_id = pad_id
        self.n_docs = int(doc_tokens.shape[0])
        self.model = bm25s.BM25(k1=k1, b=b)
        self.model.index(_strings(doc_tokens, pad_id), show_progress=False)

    def search(self, query_tokens, k: int):
        """``(ids (Q, k), scores (Q, k))`` of the BM25 top-k of every query ``(Q, L)``."""
        check_array("query_tokens", query_tokens, ndim=2, dtype_kind="iu")
        k = check_int("k", k, minimum=1, maximum=self.n_docs)
        res = self.model.retrieve(_strings(query_tokens, self.pad_id), k=k, show_progress=False)
        return np.asarray(res.documents), np.asarray(res.scores)

    def scores(self, query_tokens) -> np.ndarray:
        """``(Q, n_docs)`` BM25 scores of every query against every document."""
        check_array("query_tokens", query_tokens, ndim=2, dtype_kind="iu")
        return np.stack([self.model.get_scores(q) for q in _strings(query_tokens, self.pad_id)])


def per_query_latency(fn, queries, repeats: int = 1) -> float:
    """Mean wall time in milliseconds of ``fn(query)`` over the rows of ``queries`` (one call each,
    best of ``repeats`` passes)."""
    repeats = check_int("repeats", repeats, minimum=1)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for q in queries:
            fn(q)
        best = min(best, time.perf_counter() - t0)
    return float(1000.0 * best / max(len(queries), 1))
