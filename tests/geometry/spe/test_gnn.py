"""GIN regressor: graph-level permutation invariance, padding independence, train-mode sign flips."""
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from geometry.spe import GINRegressor, batch_spectra, batched_apply, init_params, make_pe, pad_adjacency


def _batch(graphs, n_pad):
    adj, mask = pad_adjacency(graphs, n_pad)
    return batch_spectra(jnp.asarray(adj), jnp.asarray(mask))


@pytest.mark.parametrize("name", ["spe", "none"])
def test_regressor_is_permutation_invariant_and_padding_independent(name):
    g = nx.gnp_random_graph(8, 0.4, seed=3)
    perm = np.random.default_rng(0).permutation(8)
    h = nx.relabel_nodes(g, {int(i): int(p) for i, p in enumerate(perm)})
    model = GINRegressor(make_pe(name, pe_dim=8, hidden=16), out_dim=3, hidden=16, num_layers=2)
    apply = jax.jit(batched_apply(model))
    batch10 = _batch([g, h, nx.path_graph(5)], 10)
    params = init_params(model, jax.random.PRNGKey(0), batch10)
    out10 = apply(params, batch10)
    assert out10.shape == (3, 3)
    np.testing.assert_allclose(out10[0], out10[1], rtol=1e-4, atol=1e-4)
    out12 = apply(params, _batch([g, h, nx.path_graph(5)], 12))
    np.testing.assert_allclose(out12, out10, rtol=1e-4, atol=1e-4)


def test_lap_pe_flips_signs_per_graph_only_in_training():
    g = nx.cycle_graph(7)
    model = GINRegressor(make_pe("lap", pe_dim=8), out_dim=1, hidden=16, num_layers=2)
    apply = jax.jit(batched_apply(model))
    batch = _batch([g] * 6, 8)
    params = init_params(model, jax.random.PRNGKey(0), batch)
    evaluated = apply(params, batch)
    np.testing.assert_allclose(evaluated, jnp.broadcast_to(evaluated[0], evaluated.shape), rtol=1e-5)
    trained = apply(params, batch, jax.random.PRNGKey(1))
    assert float(jnp.ptp(trained)) > 1e-4
    with pytest.raises(ValueError, match="batched"):
        init_params(model, jax.random.PRNGKey(0), jax.tree_util.tree_map(lambda a: a[0], batch))
