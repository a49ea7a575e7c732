"""QuickSelection: an evolution step keeps the connection count and removes exactly the sign-split
zeta sets; strength sums |W1| rows; the sparse DAE recovers planted features better than chance."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.pruning import evolve, neuron_strength, select_features, train_quickselection
from sparsejax.pruning.quickselection import er_densities_epsilon


def test_evolve_keeps_count_and_drops_sign_split_sets():
    key = jax.random.PRNGKey(0)
    w = jax.random.normal(key, (30, 20))
    mask = jax.random.uniform(jax.random.PRNGKey(1), w.shape) < 0.3
    w = jnp.where(mask, w, 0.0)
    new_w, new_mask = evolve(jax.random.PRNGKey(2), w, mask, 0.2)
    assert int(new_mask.sum()) == int(mask.sum())
    assert np.all(np.asarray(new_w)[~np.asarray(new_mask)] == 0)
    wa, ma = np.asarray(w), np.asarray(mask)
    pos = np.sort(wa[ma & (wa >= 0)])
    neg = np.sort(wa[ma & (wa < 0)])
    k_pos, k_neg = math.ceil(0.2 * pos.size), math.ceil(0.2 * neg.size)
    removed = set(pos[:k_pos].tolist()) | set(neg[neg.size - k_neg:].tolist())
    kept_vals = set(wa[ma & np.asarray(new_mask) & (np.asarray(new_w) == wa)].tolist())
    assert removed.isdisjoint(kept_vals)
    survivors = set(wa[ma].tolist()) - removed
    assert survivors <= set(np.asarray(new_w)[np.asarray(new_mask)].tolist())
    grown = np.asarray(new_mask) & ~(ma & (np.asarray(new_w) == wa))
    assert int(grown.sum()) == k_pos + k_neg and np.all(np.asarray(new_w)[grown] != 0)  # random values, not zeros


def test_strength_and_selection():
    k = jnp.array([[1.0, -2.0], [0.0, 0.5], [-3.0, 0.0]])
    np.testing.assert_allclose(neuron_strength(k), [3.0, 0.5, 3.0])
    assert list(select_features(neuron_strength(k), 2)) == [0, 2]
    with pytest.raises(ValueError, match="k must be"):
        select_features([1.0, 2.0], 3)


def test_er_density():
    d = er_densities_epsilon({"k": jnp.zeros((100, 50)), "b": jnp.zeros(50)}, 13)
    assert d["k"] == pytest.approx(13 * 150 / 5000) and d["b"] is None


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_recovers_planted_features_and_keeps_connections():
    from sklearn.datasets import make_classification

    # Madelon-like: columns 0-4 informative, 5-9 redundant (linear combinations), 10-29 noise
    x, _ = make_classification(n_samples=600, n_features=30, n_informative=5, n_redundant=5, n_repeated=0,
                               shuffle=False, random_state=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    res = train_quickselection(jax.random.PRNGKey(0), x, epochs=10, hidden=64, epsilon=5, batch_size=50)
    assert len(set(res.connections)) == 1
    assert res.losses[-1] < res.losses[0]
    chosen = select_features(res.strength, 10)
    recall = len(set(chosen.tolist()) & set(range(10))) / 10
    assert recall >= 0.6  # random selection: 1/3 expected, P(recall >= 0.6) ~ 0.06
