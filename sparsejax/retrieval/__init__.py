"""Inference-free learned sparse retrieval with the IDF-aware FLOPS loss, an inverted index and
ranking metrics (P13)."""
from sparsejax.retrieval.corpus import PAD, Corpus, zipf_topic_corpus
from sparsejax.retrieval.encoder import DenseEncoder, SparseDocEncoder
from sparsejax.retrieval.index import (
    BM25, InvertedIndex, brute_force_search, build_index, expected_flops, mean_doc_nonzeros, per_query_latency,
    search, top_k,
)
from sparsejax.retrieval.metrics import mrr_at_k, ndcg_at_k, single_relevance
from sparsejax.retrieval.training import encode_documents, train_dense_encoder, train_sparse_encoder
from sparsejax.retrieval.objective import (
    SCORE_SCALE, distillation_loss, ensemble_teacher_scores, flops, flops_lambda, idf_from_corpus, infonce_loss,
    query_vectors, retrieval_loss, scores,
)

__all__ = [
    "PAD", "Corpus", "zipf_topic_corpus", "SparseDocEncoder", "DenseEncoder", "InvertedIndex", "build_index",
    "search", "brute_force_search", "top_k", "expected_flops", "mean_doc_nonzeros", "per_query_latency", "BM25",
    "ndcg_at_k", "mrr_at_k", "single_relevance", "SCORE_SCALE", "idf_from_corpus", "query_vectors", "scores",
    "flops", "flops_lambda", "infonce_loss", "ensemble_teacher_scores", "distillation_loss", "retrieval_loss",
    "encode_documents", "train_sparse_encoder", "train_dense_encoder",
]
