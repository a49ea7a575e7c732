"""Random graph families, edge perturbation, padding and brute-force cycle counts."""
from math import comb, factorial

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.spe import FAMILIES, count_cycles, pad_adjacency, perturb_edges, random_graph, sample_graphs


@pytest.mark.parametrize("n", [4, 6, 7])
def test_complete_graph_closed_form(n):
    expected = [comb(n, k) * factorial(k - 1) / 2 for k in (3, 4, 5, 6)]
    np.testing.assert_array_equal(count_cycles(nx.complete_graph(n)), expected)


def test_cycle_and_petersen():
    np.testing.assert_array_equal(count_cycles(nx.cycle_graph(5)), [0, 0, 1, 0])
    np.testing.assert_array_equal(count_cycles(nx.cycle_graph(8)), [0, 0, 0, 0])
    # Petersen graph: girth 5, twelve 5-cycles and ten 6-cycles.
    np.testing.assert_array_equal(count_cycles(nx.petersen_graph()), [0, 0, 12, 10])
    # K_{3,3}: bipartite, C(3,2)^2 = 9 four-cycles and 3!*3!/(2*3) = 6 six-cycles.
    np.testing.assert_array_equal(count_cycles(nx.complete_bipartite_graph(3, 3)), [0, 9, 0, 6])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), family=st.sampled_from(FAMILIES))
def test_counts_match_networkx_enumeration_and_trace(seed, family):
    g = random_graph(family, 11, np.random.default_rng(seed))
    ref = np.zeros(7)
    for cycle in nx.simple_cycles(g, length_bound=6):
        ref[len(cycle)] += 1
    counts = count_cycles(g)
    np.testing.assert_array_equal(counts, ref[3:])
    a = nx.to_numpy_array(g)
    assert counts[0] == np.trace(a @ a @ a) / 6


def test_families_and_sampling():
    rng = np.random.default_rng(0)
    for family in FAMILIES:
        assert random_graph(family, 12, rng).number_of_nodes() == 12
    graphs = sample_graphs(20, (5, 8), rng)
    assert all(5 <= g.number_of_nodes() <= 8 for g in graphs)
    with pytest.raises(ValueError, match="family"):
        random_graph("tree", 5, rng)
    with pytest.raises(ValueError, match="n_range"):
        sample_graphs(3, (8, 5), rng)


def test_perturb_edges_changes_exactly_the_requested_number():
    g = nx.gnp_random_graph(15, 0.3, seed=1)
    h = perturb_edges(g, 0.2, np.random.default_rng(0))
    e = g.number_of_edges()
    k = round(0.2 * e)
    assert h.number_of_edges() == e
    assert len(set(g.edges()) - set(h.edges())) == k
    assert perturb_edges(g, 0.0, np.random.default_rng(0)).edges() == g.edges()
    with pytest.raises(ValueError, match="fraction"):
        perturb_edges(g, 1.5, np.random.default_rng(0))


def test_pad_adjacency():
    adj, mask = pad_adjacency([nx.path_graph(3), nx.cycle_graph(5)], 6)
    assert adj.shape == (2, 6, 6) and mask.sum(1).tolist() == [3, 5]
    np.testing.assert_array_equal(adj, adj.transpose(0, 2, 1))
    assert adj[0].sum() == 4 and adj[1].sum() == 10 and adj[:, :, 5].sum() == 0
    with pytest.raises(ValueError, match="n_max"):
        pad_adjacency([nx.path_graph(7)], 6)
    with pytest.raises(ValueError, match="cycle lengths"):
        count_cycles(nx.path_graph(3), (2,))
