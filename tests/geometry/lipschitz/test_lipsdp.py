import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geometry.lipschitz import (
    apply_network, groupsort, householder, lipsdp_nsr, lipsdp_relu, lipsdp_residual_relu, maxmin,
    maxmin_householder_vectors, naive_bound, sampled_lower_bound,
)


def _random_vs(rng, widths):
    out = []
    for w in widths:
        a = rng.normal(size=(w // 2, 2))
        out.append(a / np.linalg.norm(a, axis=1, keepdims=True))
    return out


def test_activations_pointwise():
    z = jnp.asarray(np.random.default_rng(0).normal(size=(50, 8)), dtype=jnp.float32)
    v = jnp.asarray(_random_vs(np.random.default_rng(0), [8])[0])

    @jax.jit  # one compile instead of op-by-op dispatch
    def acts(z):
        return maxmin(z), householder(z, jnp.asarray(maxmin_householder_vectors(8))), groupsort(z, 4), householder(z, v)
    mm, hh_mm, gs, hh = acts(z)
    assert jnp.allclose(mm, hh_mm, atol=1e-6)
    s = gs.reshape(50, 2, 4)
    assert jnp.all(s[..., :-1] >= s[..., 1:])
    assert jnp.allclose(jnp.sort(s, -1), jnp.sort(z.reshape(50, 2, 4), -1))
    # Householder preserves the norm of every pair and the component orthogonal to v
    h, zp = hh.reshape(50, 4, 2), z.reshape(50, 4, 2)
    assert jnp.allclose(jnp.linalg.norm(h, axis=-1), jnp.linalg.norm(zp, axis=-1), atol=1e-5)
    perp = jnp.stack([-v[:, 1], v[:, 0]], 1)
    assert jnp.allclose(jnp.sum(h * perp, -1), jnp.sum(zp * perp, -1), atol=1e-5)


def test_lipsdp_relu_closed_forms():
    d = np.array([0.3, -2.0, 1.2])
    assert lipsdp_relu([np.eye(3), np.diag(d)]) == pytest.approx(2.0, abs=1e-4)
    # sum of ReLUs: all units active on the positive orthant, L = sqrt(n) exactly
    assert lipsdp_relu([np.eye(5), np.ones((1, 5))]) == pytest.approx(np.sqrt(5), abs=1e-4)
    assert lipsdp_relu([np.array([[1.5]]), np.array([[-2.0]]), np.array([[0.5]])]) == pytest.approx(1.5, abs=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_lipsdp_relu_between_exact_constant_and_naive(seed):
    rng = np.random.default_rng(seed)
    w0, w1 = rng.normal(size=(3, 3)), rng.normal(size=(2, 3))
    # W0 invertible: every activation pattern is realised, so L = max over patterns of ||W1 D W0||
    exact = max(np.linalg.norm(w1 @ np.diag(p) @ w0, 2) for p in itertools.product([0, 1], repeat=3))
    bound = lipsdp_relu([w0, w1])
    assert exact - 1e-5 <= bound <= naive_bound([w0, w1]) + 1e-5


def test_single_maxmin_layer_is_one_lipschitz_only_for_nsr():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    assert lipsdp_nsr([q, np.eye(4)]) == pytest.approx(1.0, abs=1e-5)
    assert lipsdp_residual_relu([q, np.eye(4)], rewrite="one_relu") == pytest.approx(1.0, abs=1e-5)
    # the paper's two-ReLU rewrite fails to recover 1-Lipschitzness (abstract's claim)
    assert lipsdp_residual_relu([q, np.eye(4)]) > 1.3


@pytest.mark.parametrize("activation,group_size", [("maxmin", 2), ("groupsort", 4), ("householder", 2)])
def test_upper_bounds_are_sound(activation, group_size):
    rng = np.random.default_rng(7)
    sizes = [3, 8, 8, 2]
    ws = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) for o in sizes[1:]]
    vs = _random_vs(rng, sizes[1:-1]) if activation == "householder" else None
    nsr = lipsdp_nsr(ws, activation, group_size, vs)
    ubs = {"nsr": nsr, "naive": naive_bound(ws)}
    if activation != "groupsort":
        ubs["res2" if activation == "maxmin" else "res1"] = lipsdp_residual_relu(
            ws, activation, vs, rewrite="two_relu" if activation == "maxmin" else "one_relu")
    assert nsr <= ubs["naive"] + 1e-6
    lower = sampled_lower_bound(ws, bs, activation, jax.random.PRNGKey(0), n_samples=256, refine_steps=5,
                                group_size=group_size, vs=vs)
    x = 2 * rng.normal(size=(500, 3))
    y = x + 0.5 * rng.normal(size=(500, 3))
    net = jax.jit(lambda a: apply_network(ws, bs, a, activation, group_size, vs))
    fx, fy = np.asarray(net(x)), np.asarray(net(y))
    ratio = float(np.max(np.linalg.norm(fx - fy, axis=1) / np.linalg.norm(x - y, axis=1)))
    for name, ub in ubs.items():
        assert ub * (1 + 1e-4) >= lower, name
        assert ub * (1 + 1e-4) >= ratio, name


@pytest.mark.parametrize("seed", range(2))
def test_one_relu_rewrite_is_never_looser_than_nsr(seed):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(6, 3)), rng.normal(size=(6, 6)), rng.normal(size=(2, 6))]
    vs = _random_vs(rng, [6, 6])
    for act, v in (("maxmin", None), ("householder", vs)):
        nsr = lipsdp_nsr(ws, act, vs=v)
        assert lipsdp_residual_relu(ws, act, v, rewrite="one_relu") <= nsr * (1 + 1e-5)
    assert lipsdp_nsr(ws, "maxmin") <= lipsdp_residual_relu(ws, "maxmin") * (1 + 1e-5)


def test_bad_inputs():
    w = [np.eye(4), np.eye(4)]
    with pytest.raises(ValueError, match="multiple of the group size"):
        lipsdp_nsr([np.eye(3), np.eye(3)], "maxmin")
    with pytest.raises(ValueError, match="no one-layer"):
        lipsdp_residual_relu(w, "groupsort")
    with pytest.raises(ValueError, match="vs"):
        lipsdp_nsr(w, "householder")
    with pytest.raises(ValueError, match="lipsdp_relu"):
        lipsdp_nsr(w, "relu")
    with pytest.raises(ValueError, match="columns"):
        naive_bound([np.eye(3), np.eye(4)])
    with pytest.raises(ValueError, match="activation"):
        lipsdp_nsr(w, "tanh")
