"""Laplacian and padded eigendecomposition helpers of geometry.spe.spectral."""
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.spe import (
    batch_spectra,
    eigh_padded,
    graph_spectrum,
    normalized_laplacian,
    pad_adjacency,
    random_sign_flip,
)

N_PAD = 10


def _padded(graph, n_pad=N_PAD):
    adj, mask = pad_adjacency([graph], n_pad)
    return jnp.asarray(adj[0]), jnp.asarray(mask[0])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, N_PAD), p=st.floats(0.2, 0.9), seed=st.integers(0, 10_000))
def test_laplacian_and_eigenpairs_match_networkx_and_numpy(n, p, seed):
    g = nx.gnp_random_graph(n, p, seed=seed)
    adj, mask = _padded(g)
    lap = np.asarray(normalized_laplacian(adj, mask))
    ref = nx.normalized_laplacian_matrix(g, nodelist=range(n)).toarray()
    # networkx puts 0 on the diagonal of isolated nodes; we use 1 (D^{-1/2} := 0 there).
    isolated = np.array([g.degree(v) == 0 for v in range(n)])
    ref[isolated, isolated] = 1.0
    np.testing.assert_allclose(lap[:n, :n], ref, atol=1e-6)
    assert np.all(lap[n:] == 0) and np.all(lap[:, n:] == 0)

    spec = graph_spectrum(adj, mask)
    vals, vecs, valid = map(np.asarray, (spec.eigvals, spec.eigvecs, spec.eig_mask))
    assert valid.sum() == n and valid[:n].all()
    np.testing.assert_allclose(vals[:n], np.linalg.eigvalsh(ref), atol=1e-5)
    np.testing.assert_allclose(vecs[:, :n].T @ vecs[:, :n], np.eye(n), atol=1e-5)
    np.testing.assert_allclose(lap @ vecs, vecs * vals, atol=1e-5)
    assert np.all(vecs[n:] == 0) and np.all(vecs[:, n:] == 0) and np.all(vals[n:] == 0)


def test_top_k_and_oversized_k():
    adj, mask = _padded(nx.cycle_graph(6))
    lap = normalized_laplacian(adj, mask)
    vals_all, vecs_all, _ = eigh_padded(lap, mask)
    vals3, vecs3, valid3 = eigh_padded(lap, mask, k=3)
    np.testing.assert_allclose(vals3, vals_all[:3])
    assert vecs3.shape == (N_PAD, 3) and valid3.all()
    vals14, vecs14, valid14 = eigh_padded(lap, mask, k=14)
    assert vals14.shape == (14,) and vecs14.shape == (N_PAD, 14) and int(valid14.sum()) == 6
    np.testing.assert_allclose(vals14[:6], np.sort(1 - np.cos(2 * np.pi * np.arange(6) / 6)), atol=1e-5)


def test_batch_spectra_equals_per_graph():
    """The batch equals the per-graph spectra: same eigenvalues and masks, and eigenvectors equal up to
    sign where the eigenvalue is simple; in a degenerate eigenspace (K7, the star) any orthonormal basis
    is correct, so there the batch's columns must be orthonormal eigenvectors of the same Laplacian."""
    graphs = [nx.path_graph(4), nx.complete_graph(7), nx.star_graph(5)]
    adj, mask = pad_adjacency(graphs, N_PAD)
    batch = batch_spectra(jnp.asarray(adj), jnp.asarray(mask), k=5)
    for b in range(3):
        single = graph_spectrum(adj[b], mask[b], k=5)
        np.testing.assert_array_equal(np.asarray(single.adj), np.asarray(batch.adj)[b])
        np.testing.assert_array_equal(np.asarray(single.eig_mask), np.asarray(batch.eig_mask)[b])
        vals = np.asarray(batch.eigvals)[b]
        np.testing.assert_allclose(np.asarray(single.eigvals), vals, atol=1e-6)
        valid = np.asarray(batch.eig_mask)[b]
        vecs, one = np.asarray(batch.eigvecs)[b][:, valid], np.asarray(single.eigvecs)[:, valid]
        lap = np.asarray(normalized_laplacian(jnp.asarray(adj[b]), jnp.asarray(mask[b])))
        np.testing.assert_allclose(lap @ vecs, vecs * vals[valid], atol=1e-5)
        np.testing.assert_allclose(vecs.T @ vecs, np.eye(valid.sum()), atol=1e-5)
        all_vals = np.linalg.eigvalsh(lap[np.ix_(mask[b], mask[b])])
        for j in np.flatnonzero(valid):
            if np.sum(np.abs(all_vals - vals[j]) < 1e-4) == 1:  # simple eigenvalue: unique up to sign
                np.testing.assert_allclose(np.abs(vecs[:, j]), np.abs(one[:, j]), atol=1e-5)


def test_random_sign_flip():
    v = jnp.arange(1.0, 13.0).reshape(3, 4)
    flipped = random_sign_flip(jax.random.PRNGKey(3), v)
    ratio = np.asarray(flipped / v)
    assert set(np.unique(ratio)) <= {-1.0, 1.0}
    assert np.all(ratio == ratio[0])  # one sign per column


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="square"):
        normalized_laplacian(jnp.zeros((3, 4)), jnp.ones(3, bool))
    with pytest.raises(ValueError, match="node_mask"):
        normalized_laplacian(jnp.zeros((3, 3)), jnp.ones(4, bool))
    with pytest.raises(ValueError, match="k must be"):
        eigh_padded(jnp.eye(3), jnp.ones(3, bool), k=0)
    with pytest.raises(ValueError, match=r"\(B, N, N\)"):
        batch_spectra(jnp.zeros((3, 3)), jnp.ones(3, bool))
