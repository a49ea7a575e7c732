"""Exact symmetry and stability properties of SPE versus the LapPE / SignNet baselines."""
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.spe import (
    SPE,
    EigenvalueFunctions,
    GraphSpectrum,
    LapPE,
    SignNet,
    eigh_padded,
    graph_spectrum,
    make_pe,
    normalized_laplacian,
    pad_adjacency,
    soft_partitions,
)

N_PAD = 10
KEY = jax.random.PRNGKey(0)


def _spectrum(graph, n_pad=N_PAD):
    adj, mask = pad_adjacency([graph], n_pad)
    return graph_spectrum(adj[0], mask[0])


def _encoder(module):
    g = _spectrum(nx.cycle_graph(4))
    params = module.init(KEY, g)["params"]
    return params, jax.jit(lambda p, g: module.apply({"params": p}, g))


ENCODERS = {name: _encoder(m) for name, m in [("spe", SPE()), ("signnet", SignNet()), ("lap", LapPE())]}


def _rotate_eigenspaces(spec: GraphSpectrum, key, tol=1e-4):
    """Replace V by V Q with Q a random orthogonal block inside every repeated eigenspace."""
    vals, vecs = np.asarray(spec.eigvals), np.asarray(spec.eigvecs).copy()
    n = int(np.asarray(spec.eig_mask).sum())
    start, blocks = 0, 0
    for i in range(1, n + 1):
        if i == n or vals[i] - vals[i - 1] > tol:
            size = i - start
            if size > 1:
                key, sub = jax.random.split(key)
                q, _ = np.linalg.qr(np.asarray(jax.random.normal(sub, (size, size))))
                vecs[:, start:i] = vecs[:, start:i] @ q
                blocks += 1
            start = i
    assert blocks > 0, "test graph must have a repeated eigenvalue"
    return spec._replace(eigvecs=jnp.asarray(vecs))


def _flip_signs(spec, key):
    signs = jax.random.rademacher(key, spec.eigvecs.shape[-1:], dtype=spec.eigvecs.dtype)
    return spec._replace(eigvecs=spec.eigvecs * signs)


GRAPHS_WITH_MULTIPLICITIES = {
    "cycle8": nx.cycle_graph(8),
    "k34": nx.complete_bipartite_graph(3, 4),
    "k33": nx.complete_bipartite_graph(3, 3),
}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(sorted(GRAPHS_WITH_MULTIPLICITIES)))
def test_sign_invariance_spe_and_signnet(seed, which):
    spec = _spectrum(GRAPHS_WITH_MULTIPLICITIES[which])
    flipped = _flip_signs(spec, jax.random.PRNGKey(seed))
    for name in ("spe", "signnet"):
        params, fn = ENCODERS[name]
        np.testing.assert_allclose(fn(params, flipped), fn(params, spec), atol=1e-4, rtol=1e-4)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(sorted(GRAPHS_WITH_MULTIPLICITIES)))
def test_spe_basis_invariance_inside_repeated_eigenspaces(seed, which):
    spec = _spectrum(GRAPHS_WITH_MULTIPLICITIES[which])
    rotated = _rotate_eigenspaces(spec, jax.random.PRNGKey(seed))
    params, fn = ENCODERS["spe"]
    ref = fn(params, spec)
    np.testing.assert_allclose(fn(params, rotated), ref, atol=1e-4 * (1 + float(jnp.abs(ref).max())))


def test_baselines_are_not_basis_invariant():
    """Contrast: the same rotations move SignNet and LapPE (so the invariance tests can fail)."""
    spec = _spectrum(nx.complete_bipartite_graph(3, 4))
    rotated = _rotate_eigenspaces(spec, jax.random.PRNGKey(1))
    for name in ("signnet", "lap"):
        params, fn = ENCODERS[name]
        assert float(jnp.abs(fn(params, rotated) - fn(params, spec)).max()) > 1e-3
    params, fn = ENCODERS["lap"]
    flipped = spec._replace(eigvecs=-spec.eigvecs)
    assert float(jnp.abs(fn(params, flipped) - fn(params, spec)).max()) > 1e-3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(5, N_PAD), cycle=st.booleans())
def test_spe_permutation_equivariance(seed, n, cycle):
    g = nx.cycle_graph(n) if cycle else nx.gnp_random_graph(n, 0.4, seed=seed)
    adj, mask = pad_adjacency([g], N_PAD)
    perm = np.random.default_rng(seed).permutation(N_PAD)  # also moves padding slots
    params, fn = ENCODERS["spe"]
    out = fn(params, graph_spectrum(adj[0], mask[0]))
    out_perm = fn(params, graph_spectrum(adj[0][perm][:, perm], mask[0][perm]))
    np.testing.assert_allclose(out_perm, np.asarray(out)[perm], atol=1e-4 * (1 + float(jnp.abs(out).max())))


def test_soft_partitions_spectral_calculus():
    """phi = 1 gives the identity on real nodes, phi = lambda gives back the Laplacian (Eq. 2)."""
    spec = _spectrum(nx.petersen_graph(), n_pad=12)
    lap = normalized_laplacian(spec.adj, spec.node_mask)
    phi = jnp.stack([jnp.ones_like(spec.eigvals), spec.eigvals], axis=1) * spec.eig_mask[:, None]
    w = soft_partitions(spec.eigvecs, phi)
    np.testing.assert_allclose(w[..., 0], jnp.diag(spec.node_mask.astype(jnp.float32)), atol=1e-5)
    np.testing.assert_allclose(w[..., 1], lap, atol=1e-5)
    with pytest.raises(ValueError, match="phi"):
        soft_partitions(spec.eigvecs, phi[:3])


def _phi_lipschitz_bounds(phi_params):
    """Per-output upper bound on the Lipschitz constant of each ReLU MLP phi_l: prod of spectral norms."""
    bounds = []
    for l in range(len(phi_params)):
        mlp = phi_params[f"phi_{l}"]
        layers = [k for k in sorted(mlp) if k.startswith("dense_")] + ["out"]
        bounds.append(np.prod([np.linalg.norm(np.asarray(mlp[k]["kernel"]), 2) for k in layers]))
    return np.array(bounds)


def _perturbation(key, mask, size):
    e = jax.random.normal(key, (mask.shape[0],) * 2)
    e = (e + e.T) * jnp.outer(mask, mask)
    return e * size / jnp.linalg.norm(e)


def test_stability_spe_linear_in_perturbation_while_eigenvectors_jump():
    """Theorem 3.1 in practice on C_8 (eigenvalues of multiplicity 2, so eigh's basis is arbitrary).

    (a) each soft partition moves by at most Lip(phi_l) * ||E||_F (Lipschitz functional calculus
    in the Frobenius norm); (b) the SPE change is proportional to ||E|| (same ratio at two scales);
    (c) the raw eigenvectors, even after the best sign per column, jump by O(1) for ||E|| = 1e-4.
    """
    spec = _spectrum(nx.cycle_graph(8))
    mask = spec.node_mask.astype(jnp.float32)
    lap = normalized_laplacian(spec.adj, spec.node_mask)
    params, fn = ENCODERS["spe"]
    pe0 = fn(params, spec)
    bounds = _phi_lipschitz_bounds(params["phi"])
    w0 = soft_partitions(spec.eigvecs, _spe_phi(params, spec))
    ratios, jumps = [], []
    for size, key in [(1e-3, 1), (1e-4, 2)]:
        e = _perturbation(jax.random.PRNGKey(key), mask, size)
        vals, vecs, valid = eigh_padded(lap + e, spec.node_mask)
        pert = spec._replace(eigvals=vals, eigvecs=vecs, eig_mask=valid)
        w1 = soft_partitions(vecs, _spe_phi(params, pert))
        dw = np.linalg.norm(np.asarray(w1 - w0).reshape(-1, w0.shape[-1]), axis=0)
        assert np.all(dw <= bounds * size * 1.01 + 1e-5), (dw, bounds * size)
        ratios.append(float(jnp.linalg.norm(fn(params, pert) - pe0)) / size)
        best_sign = jnp.sign(jnp.sum(vecs * spec.eigvecs, axis=0))
        jumps.append(float(jnp.linalg.norm(vecs * best_sign - spec.eigvecs)) / size)
    print(f"SPE change / ||E||: {ratios}; eigenvector jump / ||E||: {jumps}")
    assert max(ratios) < 1e3 and max(ratios) / min(ratios) < 3.0
    assert min(jumps) > 1e3  # an O(1) jump for ||E|| <= 1e-3


def _spe_phi(params, spec):
    """phi_l(lambda) of the SPE module with ``params`` (masked to valid eigenpairs)."""
    phi = EigenvalueFunctions().apply({"params": params["phi"]}, spec.eigvals)
    return phi * spec.eig_mask[:, None]


def _truncate(spec: GraphSpectrum, k: int) -> GraphSpectrum:
    return spec._replace(eigvals=spec.eigvals[:k], eigvecs=spec.eigvecs[:, :k], eig_mask=spec.eig_mask[:k])


@pytest.mark.parametrize("k, invariant", [(3, True), (5, True), (2, False), (4, False)])
def test_spe_basis_invariance_with_truncated_spectrum(k, invariant):
    """C_8's spectrum is 0, then pairs (multiplicity 2), then 2: keeping k = 3 or 5 eigenpairs keeps
    whole eigenspaces and SPE is basis invariant; k = 2 or 4 cuts a pair and it is not."""
    spec = _spectrum(nx.cycle_graph(8))
    rotated = _rotate_eigenspaces(spec, jax.random.PRNGKey(3))
    params, fn = ENCODERS["spe"]
    a, b = fn(params, _truncate(spec, k)), fn(params, _truncate(rotated, k))
    change = float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a))
    if invariant:
        assert change < 1e-4, change
    else:
        assert change > 1e-3, change


def test_eigenvalue_functions_are_separate_networks_unless_shared():
    lam = jnp.linspace(0.0, 2.0, 5)
    sep = EigenvalueFunctions(num_partitions=3, hidden=8)
    params = sep.init(KEY, lam)["params"]
    assert sorted(params) == ["phi_0", "phi_1", "phi_2"]
    out = sep.apply({"params": params}, lam)
    assert out.shape == (5, 3)
    # changing phi_1's weights changes only column 1
    bumped = jax.tree_util.tree_map(lambda x: x, params)
    bumped["phi_1"]["out"]["bias"] = bumped["phi_1"]["out"]["bias"] + 1.0
    diff = np.asarray(sep.apply({"params": bumped}, lam) - out)
    np.testing.assert_allclose(diff[:, [0, 2]], 0.0)
    np.testing.assert_allclose(diff[:, 1], 1.0, rtol=1e-6)
    shared = EigenvalueFunctions(num_partitions=3, hidden=8, shared=True)
    assert "phi_0" not in shared.init(KEY, lam)["params"]


def test_make_pe():
    assert isinstance(make_pe("spe"), SPE) and isinstance(make_pe("signnet"), SignNet)
    with pytest.raises(ValueError, match="unknown positional encoding"):
        make_pe("rwse")


def test_spe_mean_pool_is_sum_pool_over_node_count():
    spec = _spectrum(nx.cycle_graph(6))
    params, fn = ENCODERS["spe"]
    mean = SPE(rho_pool="mean").apply({"params": params}, spec)
    np.testing.assert_allclose(mean, fn(params, spec) / 6.0, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rho_pool"):
        SPE(rho_pool="max").apply({"params": params}, spec)
