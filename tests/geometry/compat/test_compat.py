"""P42: d-simplex vertices, the HOC loss, compatibility metrics and the compatible training step."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from geometry.compat import (
    CompatNet, average_compatibility, average_multimodel_accuracy, compatibility_matrix, dsimplex,
    empirical_compatibility, hoc_loss, hoc_objective, identification_accuracy, make_compat_step,
    pairwise_compatibility, rehearsal_memory, simplex_logits, train_task, vertex_labels,
)


@pytest.mark.parametrize("k", [2, 3, 7, 16])
def test_dsimplex_vertices_are_equidistant_unit_vectors(k):
    v = dsimplex(k).astype(np.float64)
    assert v.shape == (k, k - 1)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    gram = v @ v.T
    np.testing.assert_allclose(gram[~np.eye(k, dtype=bool)], -1.0 / (k - 1), atol=1e-6)
    np.testing.assert_allclose(v.sum(0), 0.0, atol=1e-6)
    d = np.linalg.norm(v[:, None] - v[None], axis=-1)[~np.eye(k, dtype=bool)]
    np.testing.assert_allclose(d, np.sqrt(2 + 2 / (k - 1)), atol=1e-5)


def test_label_map_and_fixed_logits():
    np.testing.assert_array_equal(vertex_labels(np.array([0, 3, 15]), 16), [15, 12, 0])
    with pytest.raises(ValueError, match="labels"):
        vertex_labels(np.array([16]), 16)
    v = dsimplex(5)
    f = jnp.asarray(v[[4, 1]])  # features on vertices 4 and 1 are classified as those vertices
    np.testing.assert_array_equal(np.argmax(simplex_logits(f, v), 1), [4, 1])
    with pytest.raises(ValueError, match="num_classes - 1"):
        simplex_logits(jnp.ones((2, 3)), v)


def test_hoc_loss_matches_hand_computation():
    rng = np.random.default_rng(0)
    new, old = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = np.array([0, 0, 1])
    nn_, no = new / np.linalg.norm(new, axis=1, keepdims=True), old / np.linalg.norm(old, axis=1, keepdims=True)
    mu, total = 10.0, 0.0
    for i in range(3):
        terms = [mu * no[i] @ nn_[j] if y[i] != y[j] else 0.0 for j in range(3)]
        total += -mu * no[i] @ nn_[i] + np.log(np.sum(np.exp(terms)))
    got = float(hoc_loss(jnp.asarray(new, jnp.float32), jnp.asarray(old, jnp.float32), jnp.asarray(y), mu))
    assert got == pytest.approx(total / 3, rel=1e-5)
    with pytest.raises(ValueError, match="feat_old must be finite"):
        hoc_loss(jnp.asarray(new, jnp.float32), jnp.full((3, 4), jnp.nan), jnp.asarray(y))
    with pytest.raises(ValueError, match="same batch"):
        hoc_loss(jnp.ones((3, 4)), jnp.ones((2, 4)), jnp.asarray(y))
    ce = jnp.float32(2.0)
    assert float(hoc_objective(ce, jnp.asarray(new, jnp.float32), jnp.asarray(old, jnp.float32), jnp.asarray(y))) \
        == pytest.approx(0.1 * 2.0 + 0.9 * float(hoc_loss(jnp.asarray(new, jnp.float32), jnp.asarray(old, jnp.float32),
                                                          jnp.asarray(y))), rel=1e-5)


def test_identification_and_self_compatibility():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 10)
    centres = rng.standard_normal((4, 6)) * 10
    feats = centres[y] + rng.standard_normal((40, 6))
    assert identification_accuracy(feats, y, feats, y) == 1.0
    # scaling a feature does not change its direction, so accuracy is invariant
    assert identification_accuracy(feats * 5, y, feats, y) == 1.0
    # a model is compatible with itself: every pair meets Definition 1 (with equality)
    assert pairwise_compatibility(feats, feats, y, n_pairs=500) == 1.0
    # the same model twice: cross-test equals self-test, so the strict ECC is not met (no improvement)
    m = compatibility_matrix([feats, feats], [feats, feats], y, y)
    np.testing.assert_allclose(m[np.tril_indices(2)], 1.0)
    assert average_compatibility(m) == 0.0
    # a rotated copy lives in another feature space: near-random search against the old gallery
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    assert pairwise_compatibility(feats @ q, feats, y, n_pairs=2000) < 1.0


def test_ac_am_reproduce_official_formulas():
    m = np.array([[0.5, 0, 0], [0.6, 0.7, 0], [0.4, 0.8, 0.9]])
    # pairs (1,0): 0.6 > 0.5 yes; (2,0): 0.4 > 0.5 no; (2,1): 0.8 > 0.7 yes
    np.testing.assert_array_equal(empirical_compatibility(m), [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert average_compatibility(m) == pytest.approx(2 / 3)
    assert average_multimodel_accuracy(m) == pytest.approx((0.5 + 0.6 + 0.7 + 0.4 + 0.8 + 0.9) / 6)
    assert average_compatibility(np.array([[0.3]])) == 1.0
    with pytest.raises(ValueError, match="square"):
        average_compatibility(np.zeros((2, 3)))


def test_fixed_classifier_gets_no_update_and_hoc_step_learns():
    model = CompatNet(num_classes=5, feat_dim=4, hidden=(8,), fixed=True)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((12, 6)), jnp.float32)
    y = jnp.asarray(np.arange(12) % 3)
    params = model.init(jax.random.PRNGKey(0), x)
    assert "classifier" not in params["params"]  # the simplex is a constant, not a parameter
    tx = optax.adam(1e-2)
    step = make_compat_step(model, tx, hoc=True)
    old = model.apply(params, x)[0]
    state, losses = tx.init(params), []
    for _ in range(10):
        params, state, loss = step(params, state, x, y, old, jnp.ones(5, bool))
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(model.apply(params, x)[1], model.apply(params, x)[0] @ dsimplex(5).T, rtol=1e-5)
    with pytest.raises(ValueError, match="feat_dim"):
        CompatNet(num_classes=5, feat_dim=3)


def test_rehearsal_memory_and_balanced_training():
    x = np.arange(60, dtype=np.float32).reshape(30, 2)
    y = np.repeat(np.arange(3), 10)
    mx, my = rehearsal_memory(x, y, 4, seed=0)
    assert np.bincount(my).tolist() == [4, 4, 4]
    assert all(yy == y[int(xx[0]) // 2] for xx, yy in zip(mx, my))
    model = CompatNet(num_classes=4, feat_dim=3, hidden=(8,), fixed=False)
    params = model.init(jax.random.PRNGKey(0), x[:2])
    tx = optax.sgd(1e-2)
    step = make_compat_step(model, tx, hoc=False)
    params, _, losses = train_task(step, params, tx.init(params), x[:10], y[:10], epochs=2, batch_size=8,
                                   class_mask=np.array([1, 1, 1, 0], bool), seed=0, memory=(mx, my))
    assert len(losses) == 2 * ((10 + 12) // 8) and np.isfinite(losses).all()
