import numpy as np
import pytest

from geometry.clustering import (
    clustering_accuracy, estimate_parameters, ila_sdp, la_cost_matrices, la_sdp, membership_matrices,
    neg2_profile_loglik, peng_wei_sdp, round_memberships, sample_gaussian_mixture, two_cluster_heterogeneous,
)


def _random_params(rng, k, p):
    covs = []
    for _ in range(k):
        a = rng.normal(size=(p, p))
        covs.append(a @ a.T + 0.5 * np.eye(p))
    w = rng.uniform(0.5, 1.5, k)
    return np.stack(covs), w / w.sum()


@pytest.mark.parametrize("seed", range(4))
def test_la_objective_equals_profile_loglik_for_any_partition(seed):
    rng = np.random.default_rng(seed)
    n, p, k = 25, 3, 3
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p)
    labels = rng.permutation(np.arange(n) % k)
    covs, w = _random_params(rng, k, p)
    a, z = la_cost_matrices(x, covs, w), membership_matrices(labels, k)
    sdp_obj = float(np.sum(a * z))
    assert sdp_obj + n * p * np.log(2 * np.pi) == pytest.approx(neg2_profile_loglik(x, labels, covs, w), rel=1e-10)
    # direct evaluation with explicit group means
    direct = n * p * np.log(2 * np.pi)
    for j in range(k):
        g = x[labels == j]
        r = g - g.mean(0)
        direct += (np.trace(r @ np.linalg.inv(covs[j]) @ r.T) + len(g) * np.log(np.linalg.det(covs[j]))
                   - 2 * len(g) * np.log(w[j]))
    assert direct == pytest.approx(neg2_profile_loglik(x, labels, covs, w), rel=1e-10)
    # the partition's memberships are LA-SDP feasible
    assert np.allclose(z.sum(0) @ np.ones(n), 1) and np.allclose(np.trace(z, axis1=1, axis2=2), 1)
    assert z.min() >= 0 and all(np.linalg.eigvalsh(m).min() > -1e-12 for m in z)
    assert np.array_equal(round_memberships(z), labels)


def test_la_sdp_recovers_separated_clusters_and_is_below_the_true_partition():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    covs = np.stack([0.3 * np.eye(2), np.diag([1.0, 0.1]), np.diag([0.1, 1.5])])
    x, y = sample_gaussian_mixture([6, 8, 7], means, covs, seed=1)
    c, w = estimate_parameters(x, y, 3)
    a = la_cost_matrices(x, c, w)
    z = la_sdp(a, solver="CLARABEL", eps=1e-8)
    assert clustering_accuracy(y, round_memberships(z)) == 1.0
    # the relaxation's optimum is at most the objective of the true partition (which is feasible)
    assert np.sum(a * z) <= np.sum(a * membership_matrices(y, 3)) + 1e-5
    assert np.allclose(z.sum(0).sum(1), 1, atol=1e-6)


def test_peng_wei_and_ila_sdp_recover_well_separated_heterogeneous_mixture():
    x, y = two_cluster_heterogeneous(20, 2, 8.0, seed=2, narrow=0.3, wide=1.5)
    pw = peng_wei_sdp(x, 2, solver="CLARABEL", eps=1e-8)
    assert clustering_accuracy(y, pw) == 1.0
    res = ila_sdp(x, 2, init_labels=pw)
    assert clustering_accuracy(y, res.labels) == 1.0
    c, w = estimate_parameters(x, y, 2)
    assert res.neg2_loglik == pytest.approx(neg2_profile_loglik(x, y, c, w))
    assert res.neg2_loglik == min(res.history)


def test_ila_sdp_improves_a_wrong_start_on_unequal_covariances():
    # a start that mixes half of each cluster: the covariance re-estimation must move to the true split
    x, y = two_cluster_heterogeneous(24, 2, 6.0, seed=0, narrow=0.4, wide=1.0)
    start = np.where(np.arange(24) % 4 == 0, 1 - y, y)
    res = ila_sdp(x, 2, init_labels=start)
    assert clustering_accuracy(y, res.labels) == 1.0
    assert res.history[0] > res.neg2_loglik


def test_bad_inputs():
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="labels"):
        membership_matrices(np.array([0, 1, 2]), 2)
    with pytest.raises(ValueError, match="empty"):
        membership_matrices(np.array([0, 0, 0]), 2)
    with pytest.raises(ValueError, match="weights"):
        la_cost_matrices(x, np.stack([np.eye(2)] * 2), np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="positive definite"):
        la_cost_matrices(x, np.stack([np.eye(2), -np.eye(2)]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="x"):
        ila_sdp(np.full((5, 2), np.nan), 2)
    with pytest.raises(ValueError, match="all 2 clusters"):
        ila_sdp(x, 2, init_labels=np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="wide"):
        two_cluster_heterogeneous(10, 2, 1.0, wide=0.0)
    with pytest.raises(ValueError, match="cost"):
        la_sdp(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="covs"):
        sample_gaussian_mixture([3, 3], np.zeros((2, 2)), np.stack([np.eye(3)] * 2))
