"""A synthetic Zipf-topic corpus with lexical mismatch between queries and documents (for P13).

Vocabulary: id 0 is padding; ids ``1..n_common`` are frequent "function" words drawn from a Zipf
law over the whole corpus; the rest are ``n_topics * concepts_per_topic`` concepts, each with two
surface forms, a *document form* and a *query form* (synonyms). A document has one topic; each of
its ``doc_len`` tokens is a common word with probability ``p_common``, else a concept of its topic
drawn from a Zipf law over the topic's concepts, written in its query form with probability
``p_doc_synonym`` (so query forms are rare in documents but not absent) and in its document form
otherwise. A query is built from one source document (its single relevant document): 1-2 common
words plus 2-5 distinct concepts of the source document, each written in its query form with
probability ``mismatch``. Test queries have distinct source documents that no training query
uses (so a model cannot memorise test documents); training queries draw their sources with
replacement from the other documents. A lexical matcher (BM25) therefore misses most query-form words, while a
document encoder can learn to expand a document with the query forms of its concepts.

This generator is ours (the paper uses MS MARCO / BEIR); its parameters are the experiment's.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparsejax.core.validation import check_int, check_number

PAD = 0


class Corpus(NamedTuple):
    """``docs (n_docs, doc_len)`` int32; ``train_queries``/``test_queries`` ``(n, q_len)`` int32 padded
    with :data:`PAD`; ``train_relevant``/``test_relevant`` ``(n,)`` the relevant document of each
    query; ``doc_topics (n_docs,)``; ``vocab_size``; ``query_form (V,)`` maps a concept's document
    form to its query form (identity elsewhere)."""

    docs: np.ndarray
    train_queries: np.ndarray
    train_relevant: np.ndarray
    test_queries: np.ndarray
    test_relevant: np.ndarray
    doc_topics: np.ndarray
    vocab_size: int
    query_form: np.ndarray


def _zipf(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


def zipf_topic_corpus(seed: int, *, n_docs: int = 2000, doc_len: int = 40, n_train_queries: int = 600,
                      n_test_queries: int = 200, n_topics: int = 20, concepts_per_topic: int = 50,
                      n_common: int = 100, p_common: float = 0.4, p_doc_synonym: float = 0.1,
                      mismatch: float = 0.6, zipf_exponent: float = 1.0, q_len: int = 8) -> Corpus:
    """Draw a :class:`Corpus` (module doc)."""
    seed = check_int("seed", seed, minimum=0)
    n_docs = check_int("n_docs", n_docs, minimum=2)
    doc_len = check_int("doc_len", doc_len, minimum=6)
    n_train_queries = check_int("n_train_queries", n_train_queries, minimum=1)
    n_test_queries = check_int("n_test_queries", n_test_queries, minimum=1)
    if n_test_queries >= n_docs:
        raise ValueError(f"n_test_queries={n_test_queries} must be < n_docs={n_docs} (test queries have distinct "
                         "source documents, and training queries need the rest)")
    n_topics = check_int("n_topics", n_topics, minimum=1)
    concepts_per_topic = check_int("concepts_per_topic", concepts_per_topic, minimum=5)
    n_common = check_int("n_common", n_common, minimum=2)
    for name, v in (("p_common", p_common), ("p_doc_synonym", p_doc_synonym), ("mismatch", mismatch)):
        check_number(name, v, minimum=0.0, maximum=1.0)
    check_number("zipf_exponent", zipf_exponent, minimum=0.0)
    q_len = check_int("q_len", q_len, minimum=7)
    rng = np.random.default_rng(seed)
    n_concepts = n_topics * concepts_per_topic
    doc_form = 1 + n_common + np.arange(n_concepts)            # concept c -> its document-form id
    qry_form = 1 + n_common + n_concepts + np.arange(n_concepts)
    vocab_size = 1 + n_common + 2 * n_concepts
    common_p = _zipf(n_common, zipf_exponent)
    concept_p = _zipf(concepts_per_topic, zipf_exponent)
    # a random rank order of concepts inside every topic, so concept ids carry no frequency information
    ranks = np.stack([rng.permutation(concepts_per_topic) for _ in range(n_topics)])

    topics = rng.integers(0, n_topics, n_docs)
    is_common = rng.random((n_docs, doc_len)) < p_common
    commons = 1 + rng.choice(n_common, size=(n_docs, doc_len), p=common_p)
    local = rng.choice(concepts_per_topic, size=(n_docs, doc_len), p=concept_p)
    concepts = topics[:, None] * concepts_per_topic + ranks[topics[:, None], local]
    synonym = rng.random((n_docs, doc_len)) < p_doc_synonym
    docs = np.where(is_common, commons, np.where(synonym, qry_form[concepts], doc_form[concepts]))

    def queries(sources):
        out = np.full((len(sources), q_len), PAD, np.int64)
        for row, d in enumerate(sources):
            present = np.unique(concepts[d][~is_common[d]])
            n_con = min(len(present), int(rng.integers(2, 6)))
            chosen = rng.choice(present, size=n_con, replace=False)
            words = np.where(rng.random(n_con) < mismatch, qry_form[chosen], doc_form[chosen])
            extra = 1 + rng.choice(n_common, size=int(rng.integers(1, 3)), p=common_p)
            toks = rng.permutation(np.concatenate([words, extra]))[:q_len]
            out[row, :len(toks)] = toks
        return out.astype(np.int32)

    perm = rng.permutation(n_docs)
    test_src = perm[:n_test_queries]
    train_src = rng.choice(perm[n_test_queries:], size=n_train_queries)
    query_form = np.arange(vocab_size)
    query_form[doc_form] = qry_form
    return Corpus(docs.astype(np.int32), queries(train_src), train_src.astype(np.int32), queries(test_src),
                  test_src.astype(np.int32), topics.astype(np.int32), vocab_size, query_form)
