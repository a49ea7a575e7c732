import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.sparse import csgraph

from geometry.graphs import is_connected_subset
from geometry.porous import (
    DecompositionParams, ball_graph, gaussian_field_pores, region_graph, simulate, skeleton_regions, sphere_pack,
    voxel_adjacency, voxel_graph, well_mixed_graph, well_mixed_rhs,
)


@pytest.fixture(scope="module")
def mask():
    return sphere_pack(20, 0.4, radius=(2.0, 4.0), seed=1)


def test_sphere_pack_connected_and_porosity(mask):
    adj, _ = voxel_adjacency(mask)
    assert csgraph.connected_components(adj, directed=False)[0] == 1
    assert 0.2 < mask.mean() <= 0.4


def test_regions_partition_pore_voxels_and_are_connected(mask):
    adj, coords = voxel_adjacency(mask)
    labels = skeleton_regions(mask, adj=adj)
    assert labels.shape == (coords.shape[0],)
    k = labels.max() + 1
    assert np.array_equal(np.unique(labels), np.arange(k)) and 1 < k < coords.shape[0] // 5
    for r in range(k):
        assert is_connected_subset(adj, np.flatnonzero(labels == r))
    g = region_graph(mask, labels)
    assert g.volume.sum() == mask.sum()


def test_region_graph_connected_when_pore_space_is(mask):
    g = region_graph(mask)
    assert csgraph.connected_components(g.contact, directed=False)[0] == 1
    # contact areas = faces between different regions
    adj, _ = voxel_adjacency(mask)
    labels = g.voxel_node
    coo = adj.tocoo()
    assert g.contact.sum() == np.sum(labels[coo.row] != labels[coo.col])


def test_straight_tube_skeleton_single_region():
    m = np.zeros((5, 5, 20), dtype=bool)
    m[1:4, 1:4, 1:19] = True
    assert skeleton_regions(m).max() == 0


def _initial(graph, seed=0, spots=5):
    rng = np.random.default_rng(seed)
    init = np.zeros((5, graph.n_nodes))
    init[1] = 10.0 * graph.volume / graph.volume.sum()
    np.add.at(init[0], graph.voxel_node[rng.integers(0, graph.voxel_node.size, spots)], 0.01)
    init[3] = 1.0 / graph.n_nodes
    return init


@pytest.mark.parametrize("scheme", ["split", "coupled"])
@pytest.mark.parametrize("builder", [voxel_graph, region_graph, ball_graph, well_mixed_graph])
def test_simulator_conserves_total_mass(mask, builder, scheme):
    g = builder(mask)
    init = _initial(g)
    params = DecompositionParams(v_som=0.1)
    _, totals, final = simulate(g, init, days=1.0, dt=0.05, n_sub=2, params=params, scheme=scheme)
    np.testing.assert_allclose(totals.sum(1), init.sum(), rtol=1e-11)
    assert (final >= -1e-12).all()


def test_diffusion_cg_matches_direct(mask):
    g = region_graph(mask)
    init = _initial(g)
    a = simulate(g, init, days=0.5, dt=0.05, solver="direct")[1]
    b = simulate(g, init, days=0.5, dt=0.05, solver="cg")[1]
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


def test_one_region_reduces_to_well_mixed_ode(mask):
    g = well_mixed_graph(mask)
    params = DecompositionParams(v_som=0.2, k_ab=5.0, v_dom=3.0)
    init = np.array([[0.5], [20.0], [1.0], [4.0], [0.0]])
    times, totals, _ = simulate(g, init, days=3.0, dt=1e-3, params=params)
    ref = solve_ivp(well_mixed_rhs(float(g.volume[0]), params), (0, 3.0), init[:, 0], t_eval=times,
                    rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(totals, ref.y.T, atol=2e-2 * init.sum())
    err_fine = np.abs(totals - ref.y.T).max()
    coarse = simulate(g, init, days=3.0, dt=4e-3, params=params)[1][::1]
    ref_c = solve_ivp(well_mixed_rhs(float(g.volume[0]), params), (0, 3.0), init[:, 0],
                      t_eval=np.arange(coarse.shape[0]) * 4e-3, rtol=1e-10, atol=1e-12)
    assert err_fine < np.abs(coarse - ref_c.y.T).max()  # first-order convergence in dt


def test_coupled_voxels_converge_to_well_mixed_ode_split_does_not():
    """A 4^3 all-pore box with fast diffusion is well mixed: as dt -> 0 the coupled voxel scheme tracks the one-node
    ODE (first order, same error as the one-node graph), while the split scheme starves the biomass voxel."""
    box = np.ones((4, 4, 4), dtype=bool)
    vox, one = voxel_graph(box), well_mixed_graph(box)
    params = DecompositionParams(diffusion=1e5)
    init = np.zeros((5, 64))
    init[1], init[3], init[0, 5] = 10.0 / 64, 0.5 / 64, 0.01
    errs = {}
    for dt in (0.01, 0.005):
        t = np.arange(0, 201) * 0.01
        ref = solve_ivp(well_mixed_rhs(64.0, params), (0, 2.0), init.sum(1), t_eval=t, rtol=1e-10, atol=1e-13,
                        method="LSODA").y.T
        every = int(round(0.01 / dt))
        for scheme in ("split", "coupled"):
            for name, g, x0 in (("vox", vox, init), ("one", one, init.sum(1, keepdims=True))):
                tot = simulate(g, x0, days=2.0, dt=dt, params=params, scheme=scheme, record_every=every)[1]
                errs[scheme, name, dt] = np.abs(tot - ref).max() / init.sum()
    for dt in (0.01, 0.005):
        assert errs["coupled", "vox", dt] == pytest.approx(errs["coupled", "one", dt], rel=1e-4)
        assert errs["split", "vox", dt] > 2 * errs["coupled", "vox", dt]
    ratio = errs["coupled", "vox", 0.01] / errs["coupled", "vox", 0.005]
    assert 1.7 < ratio < 2.3 and errs["coupled", "vox", 0.005] < 0.15  # first order in dt


def test_gaussian_field_porosity_exact_and_connected():
    n = 24
    for p in (0.3, 0.37):
        raw = gaussian_field_pores(n, p, sigma=2.0, seed=3, connected=False)
        assert abs(int(raw.sum()) - p * n ** 3) <= 1
        kept = gaussian_field_pores(n, p, sigma=2.0, seed=3)
        assert not (kept & ~raw).any() and kept.sum() > 0.9 * raw.sum()
        adj, _ = voxel_adjacency(kept)
        assert csgraph.connected_components(adj, directed=False)[0] == 1
    with pytest.raises(ValueError):
        gaussian_field_pores(n, 0.3, sigma=0.0)


def test_bad_input(mask):
    g = region_graph(mask)
    with pytest.raises(ValueError):
        simulate(g, np.zeros((5, 3)), days=1, dt=0.1)
    with pytest.raises(ValueError):
        simulate(g, _initial(g), days=1, dt=5.0)
    with pytest.raises(ValueError):
        simulate(g, _initial(g), days=1, dt=0.1, scheme="strang")
    with pytest.raises(ValueError):
        voxel_graph(np.zeros((3, 3, 3), dtype=bool))
    with pytest.raises(ValueError):
        sphere_pack(10, porosity=1.5)
