"""sparse_retrieval experiment (P13): a tiny run gives every method's row, the claims and a summary."""
import pytest

from experiments import sparse_retrieval
from experiments.runner import RunContext


@pytest.mark.slow
def test_sparse_retrieval_tiny_run(tmp_path):
    cfg = {**sparse_retrieval.PRESETS["smoke"], "n_docs": 80, "doc_len": 8, "n_topics": 2, "concepts_per_topic": 6,
           "n_common": 6, "n_train_queries": 64, "n_test_queries": 16, "steps": 4, "batch": 8, "d_model": 16,
           "lambdas": [0.01, 0.1], "kd_lambdas": [0.01]}
    out = sparse_retrieval.run(cfg, RunContext("sparse_retrieval", tmp_path, 0, quiet=True))
    methods = [r["method"] for r in out["rows"]]
    assert methods == ["bm25", "dense", "idf_flops", "idf_flops", "std_flops", "std_flops", "idf_flops_kd"]
    for r in out["rows"]:
        assert 0.0 <= r["ndcg@10"] <= 1.0 and 0.0 <= r["mrr@10"] <= r["ndcg@10"] + 1e-9 and r["latency_ms"] > 0
        if "index_matches_brute_force" in r:
            assert r["index_matches_brute_force"] == 1.0
    assert "NDCG@10" in sparse_retrieval.summarize({"metrics": out, "config": cfg})
