"""Group proxes: the WGSEF prox equals a brute-force minimiser, k-support special cases (k=1: l1, k=d: l2),
group lasso closed form, and the optax transforms implement prox(params + updates)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import minimize

from sparsejax.nn import MLP
from sparsejax.regularizers import group_lasso, k_support_norm, nonzero_groups, sef, wgsef, wgsef_factors
from sparsejax.structured.coupled import group_norms, mlp_groups


def _ksup_sq_np(x, k):
    """Squared k-support norm, closed form of Argyriou et al. 2012 Prop. 2.1 (host reference)."""
    z = np.sort(np.abs(x))[::-1]
    if k >= z.size:
        return float(np.sum(z**2))
    for r in range(k):
        j = k - r - 1
        avg = z[j:].sum() / (r + 1)
        if (j == 0 or z[j - 1] > avg) and avg >= z[j]:
            return float(np.sum(z[:j] ** 2) + z[j:].sum() ** 2 / (r + 1))
    raise AssertionError("no r found")


def _brute(f, d, rng, starts=4):
    best = None
    for _ in range(starts):
        r = minimize(f, rng.uniform(0, 2, size=d), method="Powell",
                     options=dict(xtol=1e-10, ftol=1e-13, maxiter=50000))
        best = r if best is None or r.fun < best.fun else best
    return best


def test_k_support_special_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=7)
    np.testing.assert_allclose(k_support_norm(x, 1), np.abs(x).sum(), rtol=1e-5)
    np.testing.assert_allclose(k_support_norm(x, 7), np.linalg.norm(x), rtol=1e-5)
    sparse = np.zeros(7)
    sparse[[1, 4]] = [3.0, -1.0]
    np.testing.assert_allclose(k_support_norm(sparse, 2), np.linalg.norm(sparse), rtol=1e-5)
    for k in range(1, 8):
        np.testing.assert_allclose(float(k_support_norm(x, k)) ** 2, _ksup_sq_np(x, k), rtol=1e-5)
    for k in range(1, 8):  # SEF >= 1/2 ||x||^2, nonincreasing in k
        assert float(sef(x, k)) >= 0.5 * np.sum(x**2) - 1e-5
        if k > 1:
            assert float(sef(x, k)) <= float(sef(x, k - 1)) + 1e-5


@pytest.mark.parametrize("k,lam,weighted,gap", [(1, 0.3, False, False), (2, 1.0, False, False), (3, 0.5, False, False),
                                                (2, 2.0, True, False), (2, 0.4, False, True), (3, 0.7, False, True)])
def test_wgsef_prox_matches_brute_force(k, lam, weighted, gap):
    rng = np.random.default_rng(k * 10 + int(lam * 10))
    d = 6
    v = 2 * np.abs(rng.normal(size=d))
    w = rng.uniform(0.5, 2, size=d) if weighted else None
    om = np.ones(d) if w is None else w

    def f(x):
        reg = 0.5 * _ksup_sq_np(om * x, k) - (0.5 * np.sum(x**2) if gap else 0.0)
        return 0.5 * np.sum((x - v) ** 2) + lam * reg

    ours = v * np.asarray(wgsef_factors(v, k, lam, w, gap=gap))
    ref = _brute(f, d, rng)
    assert f(ours) <= ref.fun + 1e-5 * (1 + abs(ref.fun))
    np.testing.assert_allclose(ours, ref.x, atol=3e-3)


def test_wgsef_prox_special_cases():
    rng = np.random.default_rng(3)
    v = np.abs(rng.normal(size=9))
    # k = d: prox of lam/2 ||x||^2 is v / (1 + lam)
    np.testing.assert_allclose(wgsef_factors(v, 9, 0.5), np.full(9, 1 / 1.5), rtol=1e-5)
    # k = 1: prox of lam/2 ||x||_1^2 is soft thresholding at tau = lam ||x||_1 (fixed point)
    x = v * np.asarray(wgsef_factors(v, 1, 0.3))
    tau = 0.3 * np.abs(x).sum()
    np.testing.assert_allclose(x, np.maximum(v - tau, 0), atol=1e-5)
    # at most as many nonzeros as before, zero stays zero
    v[2] = 0.0
    assert np.asarray(wgsef_factors(v, 3, 0.5))[2] == 0.0


def test_transforms_apply_prox_after_sgd():
    model = MLP(3, hidden=(8,))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.ones((1, 4)))["params"]
    specs = mlp_groups(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    stepped = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    n = np.asarray(group_norms(stepped, specs[0]))
    # group lasso: closed-form radial shrinkage at threshold eta * lam
    tx = optax.chain(optax.sgd(0.1), group_lasso(specs, 2.0, 0.1))
    upd, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, upd)
    np.testing.assert_allclose(group_norms(new, specs[0]), np.maximum(n - 0.2, 0), atol=1e-5)
    # WGSEF: the same factors as wgsef_factors at eta * lam
    tx = optax.chain(optax.sgd(0.1), wgsef(specs, 2, 5.0, 0.1))
    upd, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    new = optax.apply_updates(params, upd)
    np.testing.assert_allclose(group_norms(new, specs[0]), n * np.asarray(wgsef_factors(n, 2, 0.5)), rtol=1e-4,
                               atol=1e-6)
    assert nonzero_groups(new, specs)["dense_0"] == int(np.sum(np.asarray(wgsef_factors(n, 2, 0.5)) > 0))
    with pytest.raises(ValueError, match="k\\['dense_0'\\]"):
        wgsef(specs, 9, 1.0, 0.1)
    with pytest.raises(ValueError, match="gap=True"):
        wgsef(specs, 2, 20.0, 0.1, gap=True)
