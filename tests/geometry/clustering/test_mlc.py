"""P20 MLC: coding rates, the doubly stochastic membership, the loss and the synthetic manifolds."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from geometry.clustering import (
    MLCNet, coding_rate, compressed_rate, copy_feature_head, doubly_stochastic_membership, make_mlc_step,
    mlc_loss, numerical_rank, rate_reduction, subspace_statistics, union_of_manifolds, union_of_subspaces,
    warmup_loss,
)


def _unit_rows(key, n, d):
    z = jax.random.normal(key, (n, d))
    return z / jnp.linalg.norm(z, axis=1, keepdims=True)


def _random_doubly_stochastic(rng, n, iters=500):
    g = rng.uniform(0.01, 1.0, (n, n)) ** 4
    for _ in range(iters):
        g /= g.sum(1, keepdims=True)
        g /= g.sum(0, keepdims=True)
    return g / g.sum(1, keepdims=True)


def test_coding_rate_matches_formula_and_identity_membership():
    z = _unit_rows(jax.random.PRNGKey(0), 30, 6)
    n, d, eps2 = 30, 6, 0.1
    zn = np.asarray(z, np.float64)
    want = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps2) * zn.T @ zn)[1]
    assert float(coding_rate(z, eps2)) == pytest.approx(want, rel=1e-5)
    # every point its own cluster: R_c = 1/2 log(1 + d / eps2) exactly for unit rows
    assert float(compressed_rate(z, jnp.eye(n), eps2)) == pytest.approx(0.5 * np.log(1 + d / eps2), rel=1e-5)


def test_one_hot_and_block_membership_give_supervised_mcr2():
    rng = np.random.default_rng(1)
    z = _unit_rows(jax.random.PRNGKey(1), 24, 5)
    y = rng.integers(0, 3, 24)
    zn = np.asarray(z, np.float64)
    want = sum((y == k).sum() / (2 * 24) * np.linalg.slogdet(
        np.eye(5) + 5 / ((y == k).sum() * 0.1) * zn[y == k].T @ zn[y == k])[1] for k in range(3))
    one_hot = jnp.asarray(np.eye(3)[y], jnp.float32)
    block = jnp.asarray((y[:, None] == y[None, :]) / np.bincount(y)[y][None, :], jnp.float32)
    assert float(compressed_rate(z, one_hot)) == pytest.approx(want, rel=1e-5)
    assert float(compressed_rate(z, block)) == pytest.approx(want, rel=1e-5)


def test_rate_reduction_nonnegative_and_orthogonally_invariant():
    rng = np.random.default_rng(2)
    reduction = jax.jit(rate_reduction)
    for trial in range(3):
        z = _unit_rows(jax.random.PRNGKey(10 + trial), 20, 4)
        g = jnp.asarray(_random_doubly_stochastic(rng, 20), jnp.float32)
        dr = float(reduction(z, g))
        assert dr >= -1e-5
        q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        assert float(reduction(z @ jnp.asarray(q, jnp.float32), g)) == pytest.approx(dr, abs=1e-4)
    # zero reduction when all points share one cluster (uniform membership)
    assert float(reduction(z, jnp.full((20, 20), 1 / 20))) == pytest.approx(0.0, abs=1e-4)


def test_sinkhorn_membership_doubly_stochastic_and_differentiable():
    c = _unit_rows(jax.random.PRNGKey(3), 25, 6)
    sinkhorn = jax.jit(doubly_stochastic_membership, static_argnums=(1, 2))  # eager ott is slow op by op
    g = np.asarray(sinkhorn(c, 0.175, 30))
    assert (g >= 0).all()
    np.testing.assert_allclose(g.sum(1), 1.0, atol=1e-3)
    np.testing.assert_allclose(g.sum(0), 1.0, atol=1e-3)
    # the default few iterations: rows exact (last update), columns close, rate reduction >= 0
    def loss(cc):
        g = doubly_stochastic_membership(cc)
        return mlc_loss(cc, g), (g, rate_reduction(cc, g))

    (_, (g3, dr)), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(c)
    np.testing.assert_allclose(np.asarray(g3).sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(g3).sum(0), 1.0, atol=0.1)
    assert float(dr) >= 0.0
    assert np.isfinite(np.asarray(grad)).all() and float(jnp.abs(grad).max()) > 0


def test_gamma_term_and_warmup_single_view():
    z = _unit_rows(jax.random.PRNGKey(4), 12, 3)
    g = jnp.full((12, 12), 1 / 12)
    assert float(mlc_loss(z, g, gamma=0.5) - mlc_loss(z, g, gamma=0.0)) == pytest.approx(0.25, rel=1e-4)
    assert float(warmup_loss([z], invariance=0.0)) == pytest.approx(-float(coding_rate(z)), rel=1e-5)


def test_mlc_step_lowers_loss_and_heads_copied():
    x, _ = union_of_subspaces(10, 2, ambient_dim=8, subspace_dim=2, seed=0)
    model = MLCNet(hidden=(16,), z_dim=4)
    params = copy_feature_head(model.init(jax.random.PRNGKey(0), x[:2]))
    z, c = model.apply(params, x)
    np.testing.assert_allclose(np.asarray(z), np.asarray(c))
    tx = optax.adam(1e-2)
    step, state = make_mlc_step(model, tx), tx.init(params)
    losses = []
    for _ in range(8):
        params, state, m = step(params, state, jnp.asarray(x))
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0]


def test_generators_and_subspace_statistics():
    x, y = union_of_subspaces(30, 3, ambient_dim=12, subspace_dim=2, noise=0.0, seed=5)
    assert x.shape == (90, 12) and np.bincount(y).tolist() == [30, 30, 30]
    stats = subspace_statistics(x, y, energy=0.999)
    assert stats["ranks"] == [2, 2, 2]
    assert 0 < stats["mean_abs_cos"] < 1
    # orthogonal coordinate subspaces: principal-angle cosines are all zero
    e = np.zeros((40, 6))
    e[:20, :2], e[20:, 2:4] = np.random.default_rng(0).standard_normal((20, 2)), np.random.default_rng(1).standard_normal((20, 2))
    assert subspace_statistics(e, np.repeat([0, 1], 20))["max_abs_cos"] == pytest.approx(0.0, abs=1e-12)
    xm, ym = union_of_manifolds(50, 3, ambient_dim=16, curvature=5.0, noise=0.0, seed=0)
    assert xm.shape == (150, 16) and np.isfinite(xm).all()
    assert min(numerical_rank(xm[ym == k], 0.99) for k in range(3)) > 2  # curved: more than its 2 dims
    np.testing.assert_array_equal(union_of_manifolds(5, seed=3)[0], union_of_manifolds(5, seed=3)[0])


def test_bad_inputs_raise():
    z = _unit_rows(jax.random.PRNGKey(0), 5, 3)
    with pytest.raises(ValueError, match="membership"):
        compressed_rate(z, jnp.eye(4))
    with pytest.raises(ValueError, match="eps2"):
        coding_rate(z, eps2=0.0)
    with pytest.raises(ValueError, match="z must be finite"):
        coding_rate(z.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="eta"):
        doubly_stochastic_membership(z, eta=-1.0)
    with pytest.raises(ValueError, match="manifold_dim"):
        union_of_manifolds(5, latent_dim=3, manifold_dim=3)
    with pytest.raises(TypeError, match="n_per_cluster"):
        union_of_subspaces(2.5)


@pytest.mark.slow
def test_manifold_clustering_experiment_tiny_run(tmp_path):
    from experiments import manifold_clustering
    from experiments.runner import RunContext

    cfg = {**manifold_clustering.PRESETS["smoke"], "n_per_cluster": 10, "digits_n": 60, "warmup_steps": 2,
           "steps": 3, "hidden": [16], "z_dim": 4}
    out = manifold_clustering.run(cfg, RunContext("manifold_clustering", tmp_path, 0, quiet=True))
    assert [r["dataset"] for r in out["rows"]] == ["manifolds", "digits"]
    for r in out["rows"]:
        assert set(r["scores"]) == {"mlc", "kmeans", "spectral_knn", "ssc"}
        assert all(0.0 < s["acc"] <= 1.0 and 0.0 <= s["nmi"] <= 1.0 for s in r["scores"].values())
        assert r["trace"][-1]["R"] >= r["trace"][-1]["Rc"] - 1e-4  # rate reduction >= 0 during training
    assert "MLC most accurate" in manifold_clustering.summarize({"metrics": out, "config": cfg})
