"""P13: IDF-aware FLOPS objective, query vectors, inverted index, metrics against ir_measures, BM25."""
import ir_measures
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.retrieval import (
    BM25, SparseDocEncoder, brute_force_search, build_index, distillation_loss, ensemble_teacher_scores,
    expected_flops, flops, flops_lambda, idf_from_corpus, infonce_loss, mean_doc_nonzeros, mrr_at_k, ndcg_at_k,
    query_vectors, retrieval_loss, scores, search, single_relevance, zipf_topic_corpus,
)


def _sparse_docs(rng, n, v, density=0.1):
    d = rng.random((n, v)).astype(np.float32) * (rng.random((n, v)) < density)
    d[:, 0] = 0.0
    return d


def test_score_is_idf_weighted_sum_over_query_terms():
    rng = np.random.default_rng(0)
    v = 30
    idf = rng.uniform(0.1, 5.0, v).astype(np.float32)
    idf[0] = 0.0
    q_tok = rng.integers(0, v, (5, 6)).astype(np.int32)   # repeats and padding (0) included
    d = _sparse_docs(rng, 7, v, 0.5)
    s = np.asarray(scores(query_vectors(jnp.asarray(q_tok), jnp.asarray(idf)), jnp.asarray(d)))
    for qi in range(5):
        terms = set(int(t) for t in q_tok[qi]) - {0}
        for di in range(7):
            assert s[qi, di] == pytest.approx(sum(idf[t] * d[di, t] for t in terms), rel=1e-5)


def test_idf_one_gives_standard_objective():
    rng = np.random.default_rng(1)
    v, b = 40, 6
    q_tok = rng.integers(1, v, (b, 4)).astype(np.int32)
    d = jnp.asarray(_sparse_docs(rng, b, v, 0.3))
    ones = np.ones(v, np.float32)
    q = query_vectors(jnp.asarray(q_tok), jnp.asarray(ones))
    binary = np.zeros((b, v), np.float32)
    for i, row in enumerate(q_tok):
        binary[i, row] = 1.0
    np.testing.assert_array_equal(np.asarray(q), binary)
    step, lam, warm = 3, 0.05, 10
    loss, aux = retrieval_loss(q, d, step, lam=lam, warmup=warm)
    s = binary @ np.asarray(d).T
    logp = s - np.log(np.exp(s).sum(1, keepdims=True))
    standard = -np.mean(np.diag(logp)) + lam * ((step + 1) / warm) ** 2 * np.sum(np.mean(np.abs(np.asarray(d)), 0) ** 2)
    assert float(loss) == pytest.approx(standard, rel=1e-5)
    assert float(aux["flops"]) == pytest.approx(float(flops(d)), rel=1e-6)


def test_flops_lambda_quadratic_warmup():
    assert float(flops_lambda(0, 0.002, 200)) == pytest.approx(0.002 * (1 / 200) ** 2)
    assert float(flops_lambda(99, 0.002, 200)) == pytest.approx(0.002 * 0.25)
    assert float(flops_lambda(10_000, 0.002, 200)) == pytest.approx(0.002)


def test_idf_matches_formula_and_unseen_default():
    docs = np.array([[1, 2, 2], [2, 3, 0], [1, 1, 1]], np.int32)
    idf = idf_from_corpus(docs, 6)
    n = 3
    for t, df in ((1, 2), (2, 2), (3, 1)):
        assert idf[t] == pytest.approx(np.log1p((n - df + 0.5) / (df + 0.5)), rel=1e-6)
    assert idf[0] == 0.0 and idf[4] == 1.0 and idf[5] == 1.0


def test_index_search_equals_brute_force_and_cost():
    rng = np.random.default_rng(2)
    d = _sparse_docs(rng, 200, 60, 0.15)
    q = _sparse_docs(rng, 25, 60, 0.1)
    index = build_index(d)
    ids, sc = search(index, q, 10)
    bf_ids, bf_sc = brute_force_search(d, q, 10)
    np.testing.assert_array_equal(ids, bf_ids)
    np.testing.assert_allclose(sc, bf_sc, rtol=1e-5)
    assert mean_doc_nonzeros(index) == pytest.approx((d != 0).sum() / 200)
    pair_cost = ((q != 0)[:, None, :] & (d != 0)[None]).sum(-1).mean()
    assert expected_flops(index, q) == pytest.approx(pair_cost, rel=1e-6)
    with pytest.raises(ValueError, match="terms"):
        search(index, q[:, :10], 5)
    with pytest.raises(ValueError, match="k"):
        search(index, q, 201)


def _ir_measures(ranked, rel, k):
    qrels = [ir_measures.Qrel(str(qi), str(di), int(g)) for qi in range(rel.shape[0])
             for di in np.flatnonzero(rel[qi]) for g in [rel[qi, di]]]
    run = [ir_measures.ScoredDoc(str(qi), str(di), float(k - r)) for qi in range(ranked.shape[0])
           for r, di in enumerate(ranked[qi, :k])]
    agg = ir_measures.calc_aggregate([ir_measures.nDCG @ k, ir_measures.RR @ k], qrels, run)
    return agg[ir_measures.nDCG @ k], agg[ir_measures.RR @ k]


def test_metrics_match_ir_measures():
    rng = np.random.default_rng(3)
    n_q, n_d = 12, 40
    rel = rng.integers(0, 4, (n_q, n_d)) * (rng.random((n_q, n_d)) < 0.15)
    rel[0, 5] = 2                                                   # every query has a judged document
    rel[rel.sum(1) == 0, 0] = 1
    ranked = np.stack([rng.permutation(n_d)[:10] for _ in range(n_q)])
    nd, rr = _ir_measures(ranked, rel, 10)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(nd, abs=1e-6)
    assert mrr_at_k(ranked, rel, 10) == pytest.approx(rr, abs=1e-6)
    one = single_relevance(np.array([3, 0]), 5)
    assert ndcg_at_k(np.array([[3, 1], [2, 0]]), one, 2) == pytest.approx((1 + 1 / np.log2(3)) / 2)


def test_teacher_ensemble_and_kd():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) * 10 + 3
    t = np.asarray(ensemble_teacher_scores(jnp.asarray(a), jnp.asarray(b)))
    na = (a - a.min(1, keepdims=True)) / (a.max(1, keepdims=True) - a.min(1, keepdims=True) + 1e-6)
    nb = (b - b.min(1, keepdims=True)) / (b.max(1, keepdims=True) - b.min(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(t, 30 * (na + nb) / 2, rtol=1e-5)
    s = rng.normal(size=(4, 5))
    pt = np.exp(t) / np.exp(t).sum(1, keepdims=True)
    ps = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    assert float(distillation_loss(jnp.asarray(s), jnp.asarray(t))) == pytest.approx(
        np.mean(np.sum(pt * np.log(pt / ps), 1)), rel=1e-4)
    assert float(distillation_loss(jnp.asarray(t), jnp.asarray(t))) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="teacher"):
        retrieval_loss(jnp.ones((2, 3)), jnp.ones((2, 3)), 0, lam=0.1, warmup=1, kd_weight=1.0)
    with pytest.raises(ValueError, match="square"):
        infonce_loss(jnp.ones((2, 3)))


def test_encoder_outputs_nonnegative_log_saturated_vectors():
    tok = jax.random.randint(jax.random.PRNGKey(0), (3, 7), 1, 25)
    model = SparseDocEncoder(25, d_model=16, n_heads=2)
    d = np.asarray(jax.jit(lambda t: model.apply(model.init(jax.random.PRNGKey(1), t), t))(tok))
    assert d.shape == (3, 25) and (d >= 0).all() and (d[:, 0] == 0).all()


def test_corpus_and_bm25():
    c = zipf_topic_corpus(0, n_docs=60, doc_len=12, n_train_queries=30, n_test_queries=10, n_topics=3,
                          concepts_per_topic=8, n_common=10)
    assert c.docs.shape == (60, 12) and c.docs.max() < c.vocab_size and c.docs.min() >= 1
    assert not set(c.test_relevant) & set(c.train_relevant)
    assert len(set(c.test_relevant)) == 10
    bm = BM25(c.docs)
    ids, sc = bm.search(c.test_queries, 5)
    full = bm.scores(c.test_queries)
    np.testing.assert_allclose(np.sort(full, 1)[:, ::-1][:, :5], sc, rtol=1e-5)
    with pytest.raises(ValueError, match="n_test_queries"):
        zipf_topic_corpus(0, n_docs=10, n_test_queries=10)
