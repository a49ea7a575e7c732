import itertools

import numpy as np
import pytest

from geometry.clustering import clustering_accuracy, normalized_mutual_info


def _brute_accuracy(t, p):
    classes, clusters = np.unique(t), np.unique(p)
    r, best = min(len(classes), len(clusters)), 0
    for cs in itertools.permutations(clusters, r):
        for ks in itertools.combinations(classes, r):
            best = max(best, sum(np.sum((p == c) & (t == k)) for c, k in zip(cs, ks)))
    return best / t.size


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_matches_brute_force_over_permutations(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, 40)
    p = rng.integers(0, 4 + seed % 2, 40)
    assert clustering_accuracy(t, p) == pytest.approx(_brute_accuracy(t, p))


def test_relabelled_clusters_score_one():
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([5, 5, 3, 3, 9, 9])
    assert clustering_accuracy(t, p) == 1.0
    assert normalized_mutual_info(t, p) == pytest.approx(1.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        clustering_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(TypeError, match="labels_pred"):
        clustering_accuracy([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="labels_true"):
        normalized_mutual_info([], [])
